"""processed_files.jsonl: one line per processed file and encoder, append-only, last line wins.

On disk the encoder id is the ``model`` key (the file format predates the word).
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cropkit.decisions import MAX_PATH_CHARS, MAX_SIDE, brief
from cropkit.fileio import BadLine, append_jsonl, read_jsonl
from cropkit.geometry import is_finite_number

_SHA256 = re.compile(r"[0-9a-f]{64}")
_PHASH = re.compile(r"[0-9a-f]{16}")
_INT64 = 2**63
DISK_KEYS = {"encoder_id": "model"}  # field name -> key in the file


@dataclass(frozen=True)
class CacheEntry:
    """What extraction learned about one file for one encoder, or why it failed."""

    path: str
    size: int
    mtime_ns: int
    encoder_id: str  # "model" on disk
    status: str  # "ok" or "failed"
    hash: str | None = None
    phash: str | None = None
    width: int | None = None
    height: int | None = None
    shapes: dict[str, list[int]] | None = None
    error: dict[str, str] | None = None
    ts: float = field(default_factory=time.time)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def matches(self, size: int, mtime_ns: int) -> bool:
        return self.size == size and self.mtime_ns == mtime_ns

    def to_json(self) -> dict[str, Any]:
        return {(DISK_KEYS.get(k, k)): v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> CacheEntry:
        """Validate every field it keeps; raises ValueError naming what is wrong."""
        ok = obj.get("status") == "ok"
        if obj.get("status") not in ("ok", "failed"):
            raise ValueError(f"'status' must be ok or failed, not {brief(obj.get('status'))}")
        for key in ("path", "model"):
            v = obj.get(key)
            if not isinstance(v, str) or not v or "\x00" in v or len(v) > MAX_PATH_CHARS:
                raise ValueError(f"{key!r} must be a non-empty string, not {brief(v)}")
        _check(obj, "size", _is_int(obj.get("size"), 0, _INT64), "a file size in bytes")
        _check(obj, "mtime_ns", _is_int(obj.get("mtime_ns"), -_INT64, _INT64), "a modification time in ns")
        _check(obj, "hash", _matches(_SHA256, obj.get("hash"), optional=not ok), "a SHA-256 in lowercase hex")
        _check(obj, "phash", _matches(_PHASH, obj.get("phash"), optional=True), "16 hex digits or null")
        for key in ("width", "height"):
            v = obj.get(key)
            _check(obj, key, _is_int(v, 1, MAX_SIDE) or (v is None and not ok), f"1 to {MAX_SIDE:,} pixels")
        shapes = obj.get("shapes")
        _check(obj, "shapes", shapes is None or (isinstance(shapes, dict) and len(shapes) <= 8 and all(
            isinstance(k, str) and isinstance(v, list) and len(v) <= 4 and all(_is_int(n, 1, 1 << 20) for n in v)
            for k, v in shapes.items())), "a map of names to array shapes")
        error = obj.get("error")
        _check(obj, "error", error is None or (isinstance(error, dict) and len(error) <= 8 and all(
            isinstance(k, str) and isinstance(v, str) and len(v) <= MAX_PATH_CHARS for k, v in error.items())),
            "a map of short texts")
        _check(obj, "ts", "ts" not in obj or is_finite_number(obj["ts"]), "seconds since 1970")
        known = {k: obj[DISK_KEYS.get(k, k)] for k in cls.__dataclass_fields__ if DISK_KEYS.get(k, k) in obj}
        return cls(**known)


def _is_int(v: object, low: int, high: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def _matches(pattern: re.Pattern, v: object, optional: bool) -> bool:
    return (v is None and optional) or (isinstance(v, str) and pattern.fullmatch(v) is not None)


def _check(obj: dict, key: str, good: bool, meaning: str) -> None:
    if not good:
        raise ValueError(f"{key!r} must be {meaning}, not {brief(obj.get(key))}")


class ProcessedCache:
    """The cache entries of one encoder, indexed by path; other encoders' lines are kept but ignored."""

    def __init__(self, file: Path, encoder_id: str):
        self.file = file
        self.encoder_id = encoder_id
        self.entries: dict[str, CacheEntry] = {}
        self.bad_lines: list[BadLine] = []
        for lineno, obj in read_jsonl(file):
            if isinstance(obj, BadLine):
                self.bad_lines.append(obj)
                continue
            if obj.get("model") != encoder_id:
                continue
            try:
                entry = CacheEntry.from_json(obj)
            except (TypeError, ValueError) as exc:
                self.bad_lines.append(BadLine(file, lineno, str(exc)))
                continue
            self.entries[entry.path] = entry

    def get(self, path: str) -> CacheEntry | None:
        return self.entries.get(path)

    def append(self, entry: CacheEntry) -> None:
        append_jsonl(self.file, entry.to_json())
        self.entries[entry.path] = entry
