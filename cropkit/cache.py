"""processed_files.jsonl: one line per processed file and model, append-only, last line wins."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cropkit.fileio import BadLine, append_jsonl, read_jsonl


@dataclass(frozen=True)
class CacheEntry:
    """What extraction learned about one file for one model, or why it failed."""

    path: str
    size: int
    mtime_ns: int
    model: str
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
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> CacheEntry:
        """Validate one cache line; raises ValueError naming what is wrong."""
        for key, kind in (("path", str), ("size", int), ("mtime_ns", int), ("model", str), ("status", str)):
            if not isinstance(obj.get(key), kind):
                raise ValueError(f"field {key!r} missing or not {kind.__name__}")
        if obj["status"] not in ("ok", "failed"):
            raise ValueError(f"unknown status {obj['status']!r}")
        if obj["status"] == "ok" and not isinstance(obj.get("hash"), str):
            raise ValueError("an ok entry needs its content hash")
        known = {k: obj[k] for k in cls.__dataclass_fields__ if k in obj}
        return cls(**known)


class ProcessedCache:
    """The cache entries of one model, indexed by path; other models' lines are kept but ignored."""

    def __init__(self, file: Path, model_id: str):
        self.file = file
        self.model_id = model_id
        self.entries: dict[str, CacheEntry] = {}
        self.bad_lines: list[BadLine] = []
        for lineno, obj in read_jsonl(file):
            if isinstance(obj, BadLine):
                self.bad_lines.append(obj)
                continue
            if obj.get("model") != model_id:
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
