"""Named sidecar files beside images, owned by cropkit: every one it writes is recorded (path, size, SHA-256) in
``data/ai_data/cache/sidecars.jsonl``; it replaces or deletes only recorded ones whose content still matches.

A sidecar is defined by its name first, then by the record: only ``<image>.<sidecar suffix>`` beside an image that
exists (or a temp file of such a name) can ever be deleted, whatever a record says."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cropkit.extract.scan import is_image_name, walk_files
from cropkit.features.cues import Cues
from cropkit.features.store import npy_bytes
from cropkit.features.subject import SubjectMap
from cropkit.fileio import (
    TMP_MARK,
    BadLine,
    append_jsonl,
    atomic_write_bytes,
    read_jsonl,
    read_source_bytes,
    temp_writer_alive,
)

SIDECAR_SUFFIXES = (".embedding.npy", ".phash", ".saliency.npy", ".hands.json")
MAX_SIDECAR_BYTES = 1 << 24  # a recorded name holding more than this was replaced by something else


def sidecar_path(image: Path, suffix: str) -> Path:
    return image.with_name(image.name + suffix)


def _written_name(name: str) -> str:
    """The name a temp file stands for (``.a.jpg.phash<mark>...`` -> ``a.jpg.phash``); any other name as it is."""
    return name[1 : name.index(TMP_MARK)] if TMP_MARK in name and name.startswith(".") else name


def is_sidecar_name(name: str) -> bool:
    """``<something>`` + one of the sidecar suffixes, or a temp file a killed sidecar writer left."""
    name = _written_name(name)
    return any(name.endswith(s) and len(name) > len(s) for s in SIDECAR_SUFFIXES)


def not_deletable(path: Path) -> str | None:
    """None when ``path`` may be a sidecar by its name: ``<image>.<sidecar suffix>`` (or a temp file of one) whose
    image, a file with an image's name, is beside it; else why cropkit never deletes it, whatever a record says."""
    name = _written_name(path.name)
    image = next((name[: -len(s)] for s in SIDECAR_SUFFIXES if name.endswith(s)), "")
    if not is_image_name(image):
        return (f"not a sidecar's name (an image's name followed by {', '.join(SIDECAR_SUFFIXES)}): cropkit never "
                "deletes it, whatever its record says")
    try:
        is_file = stat.S_ISREG(os.stat(path.with_name(image)).st_mode)
    except OSError:
        is_file = False
    return None if is_file else f"its image {image} is not beside it: delete it yourself if unwanted"


def _digest(data: bytes) -> tuple[int, str]:
    return len(data), hashlib.sha256(data).hexdigest()


def _real_key(path: Path) -> str:
    """The recorded name of a sidecar: its folder's real path (links resolved) and its own name."""
    return os.path.join(os.path.realpath(path.parent), path.name)


class SidecarRegistry:
    """The sidecars cropkit wrote under one root: append-only, the last line for a path wins."""

    def __init__(self, ai_data: Path):
        self.ai_data = ai_data
        self.file = ai_data / "cache" / "sidecars.jsonl"
        self.records: dict[str, tuple[int, str]] = {}
        self.bad_lines: list[BadLine] = []
        for lineno, obj in read_jsonl(self.file):
            if isinstance(obj, BadLine):
                self.bad_lines.append(obj)
            elif not isinstance(obj.get("path"), str):
                self.bad_lines.append(BadLine(self.file, lineno, "field 'path' missing or not str"))
            elif obj.get("deleted") is True:
                self.records.pop(obj["path"], None)
            elif isinstance(obj.get("size"), int) and isinstance(obj.get("sha256"), str):
                self.records[obj["path"]] = (obj["size"], obj["sha256"])
            else:
                self.bad_lines.append(BadLine(self.file, lineno, "fields 'size' and 'sha256' missing or wrong type"))

    def records_below(self, folder: Path) -> int:
        """How many recorded sidecars lie below ``folder`` (by its real path)."""
        below = os.path.realpath(folder).rstrip(os.sep) + os.sep
        return sum(key.startswith(below) for key in self.records)

    def check_writable(self) -> None:
        """Raise OSError now if no record could be kept: a sidecar without its record would never count as ours."""
        self.file.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(self.file, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644))

    def record(self, path: Path, data: bytes) -> None:
        """Record a sidecar just written (after its atomic write: a kill in between leaves it not ours)."""
        key, (size, sha) = _real_key(path), _digest(data)
        append_jsonl(self.file, {"path": key, "size": size, "sha256": sha, "ts": time.time()})
        self.records[key] = (size, sha)

    def forget(self, key: str) -> None:
        append_jsonl(self.file, {"path": key, "deleted": True, "ts": time.time()})
        self.records.pop(key, None)

    def problem(self, key: str) -> str | None:
        """None when the file at ``key`` is a plain file whose content is what cropkit recorded, else why not."""
        record = self.records.get(key)
        if record is None:
            return "not written by cropkit (or written before cropkit kept a record): delete it yourself if unwanted"
        try:
            st = os.lstat(key)
        except FileNotFoundError:
            return "gone"
        except OSError as exc:
            return f"cannot check it: {exc.strerror or exc}"
        if not stat.S_ISREG(st.st_mode):
            return "not a plain file any more (a link, folder or special file)"
        if st.st_size != record[0]:
            return "changed since cropkit wrote it"
        try:
            data, _ = read_source_bytes(Path(key), max_bytes=MAX_SIDECAR_BYTES, follow_link=False)
        except (OSError, ValueError) as exc:
            return f"cannot check it: {exc}"
        return None if _digest(data) == record else "changed since cropkit wrote it"


def write_sidecar(image: Path, suffix: str, data: bytes, registry: SidecarRegistry) -> str:
    """Write one sidecar beside ``image``; returns 'written', 'unchanged', 'kept-user-file: <why>' or
    'refused: <why>'.

    A new name is created without ever replacing a file, then recorded; a file of that name is replaced only
    when it is a sidecar cropkit recorded and its content is still what it wrote.
    """
    target = sidecar_path(image, suffix)
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        if not atomic_write_bytes(target, data, replace=False):
            return "refused: the name was taken meanwhile"
        registry.record(target, data)
        return "written"
    if not stat.S_ISREG(st.st_mode):
        return "refused: something that is not a plain file has that name"
    key = _real_key(target)
    why = registry.problem(key)
    if why is not None:
        return f"kept-user-file: {why}"
    if registry.records[key] == _digest(data):  # it holds what cropkit recorded, which is this
        return "unchanged"
    atomic_write_bytes(target, data)
    registry.record(target, data)
    return "written"


@dataclass
class CleanReport:
    """What ``clean_sidecars`` deleted (or would delete) and what it left, with the reason for each."""

    folder: Path
    dry_run: bool
    record: Path | None = None  # the record read, when it lists no sidecar below ``folder``
    deleted: list[Path] = field(default_factory=list)
    left: list[tuple[Path, str]] = field(default_factory=list)
    bad_records: list[BadLine] = field(default_factory=list)  # unreadable lines of the record, ignored

    def lines(self) -> list[str]:
        verb = "would delete" if self.dry_run else "deleted"
        out = [f"{verb} {path}" for path in self.deleted]
        out += [f"left {path}: {why}" for path, why in self.left]
        out += [f"ignored unreadable sidecar record {bad}" for bad in self.bad_records]
        if self.record is not None:
            out.append(f"note: {self.record} records no sidecar under {self.folder}; if cropkit wrote them for "
                       "another root, pass --root that root (the folder holding its data/ai_data)")
        out.append(f"{verb} {len(self.deleted)} sidecar files under {self.folder}"
                   + (f"; left {len(self.left)} (listed above)" if self.left else ""))
        return out


def clean_sidecars(folder: Path, ai_data: Path, dry_run: bool = False) -> CleanReport:
    """Delete the sidecars below ``folder`` that cropkit recorded in ``ai_data`` and that still hold what it wrote
    (plain files only; no folder link below ``folder`` is followed), and temp files its killed writers left.

    Everything else with a sidecar's name, and every recorded sidecar that changed, became a link or is gone, is
    left and reported; a file that cannot be deleted (a read-only library) is reported and the rest go on.
    """
    registry = SidecarRegistry(ai_data)
    if not dry_run:
        registry.check_writable()
    top = folder.resolve()  # the folder named may be a link; below it, none is followed
    report = CleanReport(top, dry_run, record=None if registry.records_below(top) else registry.file,
                         bad_records=registry.bad_lines)
    walked: set[str] = set()
    for path, skipped in walk_files(top, follow_links=False):
        if skipped is not None:
            report.left.append((skipped.path, f"cannot list it: {skipped.message}"))
            continue
        key = str(path)  # no link below ``top`` is followed, so this is its real path
        if key in registry.records:
            walked.add(key)
            _clean_one(path, registry, report)
        elif _is_stale_sidecar_temp(path):
            if (why := not_deletable(path)) is None:
                _delete(path, None, registry, report)
            else:
                report.left.append((path, why))
        elif is_sidecar_name(path.name):
            report.left.append((path, registry.problem(key) or ""))
    below = str(top).rstrip(os.sep) + os.sep
    for key in sorted(k for k in registry.records if k.startswith(below) and k not in walked):
        why = registry.problem(key) or "reached only through a folder link: clean that folder itself"
        report.left.append((Path(key), why))
        if why == "gone" and not dry_run:
            registry.forget(key)  # reported once
    return report


def _clean_one(path: Path, registry: SidecarRegistry, report: CleanReport) -> None:
    why = not_deletable(path) or registry.problem(str(path))
    if why is None:
        _delete(path, str(path), registry, report)
    else:
        report.left.append((path, why))


def _is_stale_sidecar_temp(path: Path) -> bool:
    name = path.name
    return (TMP_MARK in name and name.startswith(".") and is_sidecar_name(name) and not temp_writer_alive(name)
            and path.is_file() and not path.is_symlink())


def _delete(path: Path, key: str | None, registry: SidecarRegistry, report: CleanReport) -> None:
    if report.dry_run:
        report.deleted.append(path)
        return
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:  # a read-only library is a fine reason to leave it: report and go on
        report.left.append((path, f"cannot delete it: {exc.strerror or exc}"))
        return
    report.deleted.append(path)
    if key is not None:
        with contextlib.suppress(OSError):  # a missing "deleted" line only makes a later run report it as gone
            registry.forget(key)


def recording_roots(folder: Path, cwd: Path | None = None) -> list[Path]:
    """The cropkit roots whose sidecar record lists a sidecar below ``folder``, looked for in the current folder,
    ``folder`` itself and each folder above it (a library inside its root, or a root of its own)."""
    top = Path(os.path.realpath(folder))
    found: list[Path] = []
    for root in dict.fromkeys([Path(os.path.realpath(cwd or os.getcwd())), top, *top.parents]):
        ai_data = root / "data" / "ai_data"
        if (ai_data / "cache" / "sidecars.jsonl").is_file() and SidecarRegistry(ai_data).records_below(top):
            found.append(root)
    return found


def write_image_sidecars(image: Path, global_emb, phash: str | None, cues: Cues, registry: SidecarRegistry | None,
                         counts: Counter, subject: SubjectMap | None = None) -> None:
    """The sidecars of one image, each outcome counted in ``counts``. ``.saliency.npy`` holds the subject map when
    a subject model is on (all zeros: no subject found), else the spectral saliency."""
    saliency = subject.to_array() if subject is not None else cues.saliency.astype(np.float16)
    wanted = {".embedding.npy": npy_bytes(np.asarray(global_emb, dtype=np.float16)),
              ".saliency.npy": npy_bytes(saliency)}
    if phash:
        wanted[".phash"] = (phash + "\n").encode()
    if cues.version == "v2":  # the hands model ran: an empty list means it saw no hands
        wanted[".hands.json"] = (json.dumps(cues.hands_json(), separators=(",", ":")) + "\n").encode()
    for suffix, data in wanted.items():
        try:
            outcome = write_sidecar(image, suffix, data, registry)
        except OSError as exc:
            outcome = f"refused: {exc.strerror or exc}"
        counts[outcome.split(":")[0]] += 1
        if outcome not in ("written", "unchanged"):
            print(f"sidecar {image.name}{suffix} {outcome}", file=sys.stderr)
