"""The review loop without any widget: a queue of images, editable crops, decisions, undo and statistics.

Coordinates are pixels of the full-resolution upright image. The ipycanvas widget (``cropkit.review.widget``) and the
tests drive the same methods; every decision is appended to the logs at once. An image that cannot be read is
shown with its reason and nothing to decide; a decision is logged once, for the image shown.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from cropkit.decisions import (
    SUGGESTIONS_LOG,
    TRAINING_LOG,
    CropDecision,
    SuggestionDecision,
    append_decision,
    append_undo,
)
from cropkit.errors import CropkitError
from cropkit.fileio import NotRegularFile, atomic_write_bytes, read_source_bytes
from cropkit.geometry import Box, clamp_box, fit_box_to_aspect, largest_centred_box

ASPECT_CHOICES = {"free": None, "original": "original", "1:1": 1.0, "4:5": 0.8, "3:2": 1.5, "16:9": 16 / 9}
HANDLES = ("nw", "n", "ne", "e", "se", "s", "sw", "w")
MIN_SIDE = 8.0
QUEUE_ORDERS = ("file", "newest", "uncertain")


@dataclass
class CropBox:
    """One crop being edited; ``suggested`` is the AI box it started from (None for a crop the user added)."""

    box: Box
    suggested: Box | None = None
    score: float | None = None

    @property
    def changed(self) -> bool:
        return self.suggested is None or max(abs(a - b) for a, b in zip(self.box, self.suggested)) > 0.5


@dataclass
class Decided:
    """What one accept or reject logged, so that undo can cancel it and restore the image's crops and the
    proposer that suggested them."""

    index: int
    records: list
    boxes: list[CropBox]
    model_name: str


def resize_box(start: Box, handle: str, x: float, y: float, aspect: float | None, width: float,
               height: float) -> Box:
    """Drag one handle of ``start`` to (x, y); with an aspect the opposite side (or corner) stays put.
    The result stays inside the image and at least MIN_SIDE pixels wide and high."""
    x0, y0, x1, y1 = start
    if "w" in handle:
        x0 = min(x, x1 - MIN_SIDE)
    if "e" in handle:
        x1 = max(x, x0 + MIN_SIDE)
    if "n" in handle:
        y0 = min(y, y1 - MIN_SIDE)
    if "s" in handle:
        y1 = max(y, y0 + MIN_SIDE)
    if aspect is None:
        return (max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1))
    cx, cy = (start[0] + start[2]) / 2, (start[1] + start[3]) / 2
    w, h = x1 - x0, y1 - y0
    if handle in ("n", "s"):
        w = h * aspect
        x0, x1 = cx - w / 2, cx + w / 2
        ax, ay = cx, (start[3] if handle == "n" else start[1])
    elif handle in ("e", "w"):
        h = w / aspect
        y0, y1 = cy - h / 2, cy + h / 2
        ax, ay = (start[2] if handle == "w" else start[0]), cy
    else:  # a corner: the side the pointer changed more (relatively) drives the other
        w0, h0 = start[2] - start[0], start[3] - start[1]
        w, h = (w, w / aspect) if abs(w / w0 - 1) >= abs(h / h0 - 1) else (h * aspect, h)
        ax, ay = (start[2] if "w" in handle else start[0]), (start[3] if "n" in handle else start[1])
        x0, x1 = (ax - w, ax) if "w" in handle else (ax, ax + w)
        y0, y1 = (ay - h, ay) if "n" in handle else (ay, ay + h)
    # shrink about the anchor until the box fits the image
    limits = [ax / (ax - x0) if ax - x0 > 1e-9 else 1.0, (width - ax) / (x1 - ax) if x1 - ax > 1e-9 else 1.0,
              ay / (ay - y0) if ay - y0 > 1e-9 else 1.0, (height - ay) / (y1 - ay) if y1 - ay > 1e-9 else 1.0]
    s = min(1.0, *limits)
    return (ax - (ax - x0) * s, ay - (ay - y0) * s, ax + (x1 - ax) * s, ay + (y1 - ay) * s)


@dataclass
class ReviewSession:
    """A review of ``queue`` (absolute image paths) with suggestions from ``suggester`` (cropkit.learn.suggest)."""

    suggester: object
    queue: list[Path]
    aspect_name: str = "free"
    index: int = 0
    boxes: list[CropBox] = field(default_factory=list)
    active: int = 0
    width: int = 0
    height: int = 0
    image: str = ""
    companion: str = ""
    model_name: str = ""
    history: list[Decided] = field(default_factory=list)
    decided: int = 0
    approved: int = 0
    problem: str = ""  # why the image shown cannot be reviewed ("can't be read: ..."); nothing to decide then
    notice: str = ""  # what the last key did not do, and why
    others: list[str] = field(default_factory=list)  # other reviewer processes open on this root
    log_marks: dict[str, int] | None = None  # log sizes when the queue was read; later lines are checked
    _drag: tuple | None = None
    _logged_here: list = field(default_factory=list)  # records of this image a failed accept did write
    _own: set = field(default_factory=set)  # (image, ts) of every line this session wrote
    _warned: str = ""  # the image whose decision by another reviewer the user was told about
    _registration: weakref.finalize | None = None

    def __post_init__(self) -> None:
        if self.log_marks is None:
            self.log_marks = log_sizes(self.logs)
        try:
            path = register_reviewer(self.suggester.layout.ai_data)
            self._registration = weakref.finalize(self, _unlink_quietly, path)
        except OSError:  # a read-only or full data/ai_data: the first decision says so; the log check still runs
            self._registration = None

    def close(self) -> None:
        """Withdraw this session's registration (also done when it is garbage-collected or Python exits)."""
        if self._registration is not None:
            self._registration()

    @property
    def logs(self) -> Path:
        return self.suggester.layout.logs

    @property
    def aspect(self) -> float | None:
        """The locked aspect of crops of the image shown ("original": that image's own; None while unknown)."""
        value = ASPECT_CHOICES[self.aspect_name]
        if value == "original":
            return self.width / self.height if self.height else None
        return value

    @property
    def done(self) -> bool:
        return self.index >= len(self.queue)

    @property
    def acceptance_rate(self) -> float:
        return self.approved / self.decided if self.decided else 0.0

    def load(self, index: int, boxes: list[CropBox] | None = None, model_name: str | None = None) -> None:
        """Show image ``index`` with a fresh suggestion from the current proposer (or the given crops, suggested by
        ``model_name``). Never raises for a bad image: it is shown with ``problem`` set and no crops."""
        self.index = max(0, min(index, len(self.queue)))
        self._drag, self._logged_here, self.notice, self.problem = None, [], "", ""
        self.boxes, self.active, self.width, self.height, self.model_name = [], 0, 0, 0, ""
        self.others = other_reviewers(self.suggester.layout.ai_data)
        if self.done:
            return
        path = self.queue[self.index]
        self.image, self.companion = self.suggester.layout.relative_name(path), read_companion(path)
        try:
            result = self.suggester.suggest(path, aspect=self.aspect, k=1)
            if self.aspect_name == "original":  # its own aspect is known now: ask for a crop of that aspect
                result = self.suggester.suggest(path, aspect=result.width / result.height, k=1)
        except Exception as exc:  # one bad image never stops the review: say why, and let the user go on
            self.problem = f"can't be read: {_reason(exc, path)}"
            return
        self.image, self.width, self.height = result.image, result.width, result.height
        self.model_name = model_name or result.proposer
        if boxes is None:
            top = result.suggestions[0]
            box = tuple(round(v, 1) for v in top.box)
            boxes = [CropBox(box, box, round(top.score, 4))]
        self.boxes = boxes

    def cannot_show(self, reason: str) -> None:
        """The image turned out unreadable while being shown: nothing to decide on it."""
        self.problem, self.boxes, self._drag = f"can't be read: {reason}", [], None

    # editing -------------------------------------------------------------------------------------------

    def hit(self, x: float, y: float, tolerance: float) -> tuple[int, str] | None:
        """Which crop and which handle (or 'move' inside) is at (x, y); the active crop wins ties."""
        order = [self.active] + [i for i in range(len(self.boxes)) if i != self.active]
        for i in order:
            x0, y0, x1, y1 = self.boxes[i].box
            points = {"nw": (x0, y0), "n": ((x0 + x1) / 2, y0), "ne": (x1, y0), "e": (x1, (y0 + y1) / 2),
                      "se": (x1, y1), "s": ((x0 + x1) / 2, y1), "sw": (x0, y1), "w": (x0, (y0 + y1) / 2)}
            for name in HANDLES:
                px, py = points[name]
                if abs(x - px) <= tolerance and abs(y - py) <= tolerance:
                    return i, name
        for i in order:
            x0, y0, x1, y1 = self.boxes[i].box
            if x0 < x < x1 and y0 < y < y1:
                return i, "move"
        return None

    def press(self, x: float, y: float, tolerance: float = 12.0) -> bool:
        """Start dragging whatever is under (x, y); False when nothing is there."""
        found = self.hit(x, y, tolerance)
        if found is None:
            return False
        self.active, handle = found
        self._drag = (handle, x, y, self.boxes[self.active].box)
        return True

    def move(self, x: float, y: float) -> None:
        if self._drag is None:
            return
        handle, sx, sy, start = self._drag
        if handle == "move":
            dx, dy = x - sx, y - sy
            box = clamp_box((start[0] + dx, start[1] + dy, start[2] + dx, start[3] + dy), self.width, self.height)
        else:
            box = resize_box(start, handle, x, y, self.aspect, self.width, self.height)
        self.boxes[self.active].box = box

    def release(self) -> None:
        self._drag = None

    @property
    def dragging(self) -> bool:
        return self._drag is not None

    def set_aspect(self, name: str) -> None:
        """Lock crops to an aspect (kept for the following images too) and refit the active crop now."""
        if name not in ASPECT_CHOICES:
            raise ValueError(f"aspect {name!r}: choose one of {', '.join(ASPECT_CHOICES)}")
        self.aspect_name = name
        if self.boxes and self.aspect is not None:
            b = self.boxes[self.active]
            b.box = fit_box_to_aspect(b.box, self.aspect, self.width, self.height)

    def add_box(self) -> None:
        """Another crop of this image (multi-crop), centred, at the locked aspect."""
        if self.done or self.problem:
            return
        full = largest_centred_box(self.aspect, self.width, self.height)
        cx, cy = (full[0] + full[2]) / 2, (full[1] + full[3]) / 2
        w, h = (full[2] - full[0]) * 0.6, (full[3] - full[1]) * 0.6
        self.boxes.append(CropBox((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)))
        self.active = len(self.boxes) - 1

    # decisions -----------------------------------------------------------------------------------------

    def accept(self) -> list:
        """Log every crop of this image (approved if the suggestion is unchanged, modified if adjusted; crops the
        user added as plain crops) and move to the next image."""
        return self._decide(self._records(rejected=False))

    def reject(self) -> list:
        """Log the suggestion as rejected (crops the user added are still logged as crops) and move on."""
        return self._decide(self._records(rejected=True))

    def _records(self, rejected: bool) -> list:
        records = []
        for b in self.boxes:
            if b.suggested is None:
                records.append(CropDecision(self.image, self.width, self.height, _round(b.box), time.time(),
                                            source="cropkit-review"))
                continue
            kind = "rejected" if rejected else "modified" if b.changed else "approved"
            final = None if rejected else _round(b.box)
            records.append(SuggestionDecision(self.image, self.width, self.height, _round(b.suggested), final,
                                              kind, self.model_name, time.time()))
        return records

    def _decide(self, records: list) -> list:
        """Log ``records`` and move on. If a write fails (a full disk, a read-only folder) the error is
        raised and the image stays; the records already written are not written again on the retry.
        Nothing is logged for an unreadable image, and a decision another reviewer logged for this image
        meanwhile is shown first: the same key again logs this one as well."""
        if self.done or self.problem or not self.boxes:  # the panel already says why
            return []
        if not self._logged_here and self._warned != self.image:
            elsewhere = self.decided_elsewhere()
            if elsewhere:
                self._warned = self.image
                self.notice = (f"another reviewer decided {self.image} meanwhile ({elsewhere}); nothing logged. "
                               "Press the same key again to log yours as well, or skip (s) to keep theirs.")
                return []
        for r in records[len(self._logged_here):]:
            append_decision(self.logs, r)  # one flushed line each, at once
            self._logged_here.append(r)
            self._own.add((r.image, r.ts))
        records = self._logged_here
        self.history.append(Decided(self.index, records, [CropBox(b.box, b.suggested, b.score) for b in self.boxes],
                                    self.model_name))
        self.decided += 1
        self.approved += any(getattr(r, "decision", None) == "approved" for r in records)
        self.load(self.index + 1)
        return records

    def decided_elsewhere(self) -> str:
        """Decisions for the image shown that others appended to the logs since the queue was read (and did not
        undo), described for the user; empty when there are none."""
        found, undone = [], set()
        for name, offset in (self.log_marks or {}).items():
            for obj in lines_since(self.logs / name, offset):
                if obj.get("image") != self.image:
                    continue
                if "undo" in obj:
                    undone.add(obj["undo"])
                elif (self.image, obj.get("ts")) not in self._own:
                    found.append(obj)
        found = [o for o in found if o.get("ts") not in undone]
        return "; ".join(f"{o.get('decision', 'a crop')}" + (f" at {_clock(o['ts'])}" if _is_number(o.get("ts"))
                                                              else "") for o in found)

    def skip(self) -> None:
        """No decision: on to the next image."""
        self.load(self.index + 1)

    def previous(self) -> None:
        self.load(self.index - 1)

    def undo(self) -> Decided | None:
        """Cancel the last decision with undo lines in the logs and go back to its image, crops as they were."""
        if not self.history:
            return None
        last = self.history[-1]
        now = time.time()
        for r in last.records:  # written before anything changes here: a failed write leaves the undo to redo
            append_undo(self.logs, r, now)
        self.history.pop()
        self.decided -= 1
        self.approved -= any(getattr(r, "decision", None) == "approved" for r in last.records)
        self.load(last.index, last.boxes, last.model_name)
        return last


def _round(box: Box) -> Box:
    return tuple(round(float(v), 1) for v in box)


def _reason(exc: Exception, path: Path) -> str:
    message = str(exc) if isinstance(exc, CropkitError) else f"{type(exc).__name__}: {exc}"
    return message.removeprefix(f"{path}: ")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) < 1e11


def _clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))


COMPANION_MAX_BYTES = 256 * 1024
COMPANION_MAX_DEPTH = 50


def read_companion(image: Path) -> str:
    """The image's companion YAML as text (bounded size and nesting, validated with safe_load), or a note saying
    why it cannot be shown; read through a read-only, non-blocking, no-atime descriptor, never written."""
    for candidate in (image.with_suffix(".yaml"), image.with_suffix(".yml")):
        try:
            data, _ = read_source_bytes(candidate, max_bytes=COMPANION_MAX_BYTES)
        except FileNotFoundError:
            continue
        except NotRegularFile:
            return f"(companion {candidate.name} is not a regular file (a pipe, device or folder): not read)"
        except (OSError, ValueError) as exc:
            return f"(companion {candidate.name} cannot be read: {exc})"
        text = data.decode("utf-8", errors="replace")
        problem = _yaml_problem(text)
        return f"(companion {candidate.name} {problem})\n{text}" if problem else text
    return "(no companion .yaml)"


def _yaml_problem(text: str) -> str:
    """Why ``text`` is no plain YAML document to show (too deeply nested, invalid), or ''."""
    try:
        depth = 0
        for event in yaml.parse(text, Loader=yaml.SafeLoader):  # the event parser keeps no Python stack
            depth += isinstance(event, yaml.CollectionStartEvent) - isinstance(event, yaml.CollectionEndEvent)
            if depth > COMPANION_MAX_DEPTH:
                return f"is nested more than {COMPANION_MAX_DEPTH} levels deep: shown as text only"
        yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        return f"is not valid YAML: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    return ""


def order_queue(paths: list[Path], order: str, suggester=None) -> list[Path]:
    """file: by path; newest: newest first by modification time; uncertain: where the proposer is least sure first.
    Images that cannot be read or scored go last (the reviewer then says why)."""
    if order == "file":
        return sorted(paths)
    if order == "newest":
        mtime = {p: _mtime_ns(p) for p in paths}
        return sorted(paths, key=lambda p: (mtime[p] is None, -(mtime[p] or 0)))
    if order == "uncertain":
        score = {p: _top_score(suggester, p) for p in paths}
        return sorted(paths, key=lambda p: (score[p] is None, score[p] or 0.0))
    raise ValueError(f"queue order {order!r}: choose one of {', '.join(QUEUE_ORDERS)}")


def _mtime_ns(path: Path) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _top_score(suggester, path: Path) -> float | None:
    try:
        return suggester.suggest(path, k=1).suggestions[0].score
    except Exception:  # shown with its reason when the queue reaches it
        return None


def pending_images(layout) -> list[Path]:
    """Images of ``layout``'s library that no log line decides yet (a crop or a suggestion outcome); log names
    and library files are matched through ``layout.relative_name``, as the reviewer logs them."""
    from cropkit.decisions import read_crops, read_suggestions
    from cropkit.extract.scan import Found, find_images

    crops, _ = read_crops(layout.logs)
    suggestions, _ = read_suggestions(layout.logs)
    done = {d.image for d in [*crops, *suggestions]}
    found = [f.path for f in find_images(layout.images, prune=layout.ai_data) if isinstance(f, Found)]
    return [p for p in found if layout.relative_name(p) not in done]


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


REVIEWERS = "reviewers"  # folder under data/ai_data: one small file per open reviewer session


def register_reviewer(ai_data: Path) -> Path:
    """Record that a reviewer is open on this root (pid and start times); returns the file to remove at close."""
    pid = os.getpid()
    path = ai_data / REVIEWERS / f"{pid}-{secrets.token_hex(4)}.json"
    info = {"pid": pid, "started": time.time(), "process_start": _process_start(pid)}
    atomic_write_bytes(path, json.dumps(info).encode())
    return path


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
