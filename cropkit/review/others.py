"""Other reviewers on the same root: who else has a reviewer open, and which decisions they appended to the
logs since this one read its queue. No lock: both keep logging, and the user is told."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
import weakref
from pathlib import Path

from cropkit.decisions import SUGGESTIONS_LOG, TRAINING_LOG
from cropkit.fileio import atomic_write_bytes, read_source_bytes

REVIEWERS = "reviewers"  # folder under data/ai_data: one small file per open reviewer session


def log_sizes(logs: Path) -> dict[str, int]:
    """The current size of each decision log: lines after these are what others appended later."""
    marks = {}
    for name in (SUGGESTIONS_LOG, TRAINING_LOG):
        try:
            marks[name] = os.stat(logs / name).st_size
        except FileNotFoundError:
            marks[name] = 0
    return marks


def lines_since(path: Path, offset: int) -> list[dict]:
    """The JSON objects of the whole lines appended to ``path`` after byte ``offset`` (all of them if the file
    shrank); unreadable lines are left out (the log readers report them)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset if os.fstat(f.fileno()).st_size >= offset else 0)
            data = f.read()
    except FileNotFoundError:
        return []
    out = []
    for raw in data.splitlines():
        with contextlib.suppress(ValueError, RecursionError):
            obj = json.loads(raw)
            if isinstance(obj, dict):
                out.append(obj)
    return out


def decided_elsewhere(logs: Path, marks: dict[str, int], image: str, own: set) -> str:
    """Decisions for ``image`` appended to the logs after ``marks`` by others (not one of the ``own`` (image, ts)
    lines, and not undone since), described for the user; empty when there are none."""
    found, undone = [], set()
    for name, offset in marks.items():
        for obj in lines_since(logs / name, offset):
            if obj.get("image") != image:
                continue
            if "undo" in obj:
                undone.add(obj["undo"])
            elif (image, obj.get("ts")) not in own:
                found.append(obj)
    found = [o for o in found if o.get("ts") not in undone]
    return "; ".join(f"{o.get('decision', 'a crop')}" + (f" at {_clock(o['ts'])}" if _is_number(o.get("ts"))
                                                          else "") for o in found)


def register_reviewer(reviewer: object, ai_data: Path) -> weakref.finalize:
    """Record that ``reviewer`` is open on this root (pid and start times). Calling the result withdraws the
    record; so does ``reviewer`` being garbage-collected, or Python exiting. OSError when it cannot be written."""
    pid = os.getpid()
    path = ai_data / REVIEWERS / f"{pid}-{secrets.token_hex(4)}.json"
    info = {"pid": pid, "started": time.time(), "process_start": _process_start(pid)}
    atomic_write_bytes(path, json.dumps(info).encode())
    return weakref.finalize(reviewer, _unlink_quietly, path)


def other_reviewers(ai_data: Path) -> list[str]:
    """Other live processes with a reviewer open on this root, described for the user; registrations of dead
    processes are removed. Reviewers in this process are not listed (the log check covers them too)."""
    folder = ai_data / REVIEWERS
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("*.json")):
        try:
            info = json.loads(read_source_bytes(path, max_bytes=4096)[0])
            pid, started = int(info["pid"]), float(info["started"])
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            continue
        if pid == os.getpid():
            continue
        identity = _process_start(pid)
        if identity is None or identity != info.get("process_start"):
            _unlink_quietly(path)  # that process ended (or its pid now belongs to another): stale
            continue
        found.append(f"another reviewer (pid {pid}) is open on this root since {_clock(started)}; "
                     "decisions from both are logged")
    return found


def _process_start(pid: int) -> str | None:
    """An identity of a live process (its start tick on Linux, 'alive' elsewhere), None when it is gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, another user's
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "alive"


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) < 1e11


def _clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))
