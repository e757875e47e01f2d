"""Decision logs: the photographer's crops and the outcomes of AI suggestions, validated once at the edge.

Both logs are append-only JSONL; cropkit never rewrites a line. Readers report every unusable line with
its file and line number and go on.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from cropkit.errors import brief
from cropkit.fileio import BadLine, append_jsonl, read_jsonl
from cropkit.geometry import Box, is_finite_number, is_valid_box

TRAINING_LOG = "training_log.jsonl"
SUGGESTIONS_LOG = "suggestions.jsonl"
DECISIONS = ("approved", "modified", "rejected")
MAX_SIDE = 1_000_000  # pixels: no camera or scan comes near it
MAX_PATH_CHARS = 4096
LAST_TS = 253402300799.0  # 9999-12-31T23:59:59Z
MAX_ANGLE = 45.0  # degrees of straightening either way
def safe_image_path(value: object) -> str:
    """A path relative to the root with '/' separators that cannot escape it; raises ValueError otherwise.

    A name that is not valid UTF-8 on disk arrives surrogate-escaped (as os.fsdecode gives it) and is kept so.
    """
    if not isinstance(value, str) or not value or "\x00" in value or len(value) > MAX_PATH_CHARS:
        raise ValueError(f"'image' must be a non-empty path string of at most {MAX_PATH_CHARS} characters")
    if "\\" in value or value.startswith("/") or (len(value) > 1 and value[1] == ":"):
        raise ValueError(f"'image' {brief(value)} must be relative to the root, with '/' separators")
    parts = PurePosixPath(value).parts
    if ".." in parts or not parts:
        raise ValueError(f"'image' {brief(value)} escapes the library root")
    return value


def _size(obj: dict, key: str) -> int:
    v = obj.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or not 0 < v <= MAX_SIDE:
        raise ValueError(f"'{key}' must be a whole number of pixels from 1 to {MAX_SIDE:,}, not {brief(v)}")
    return v


def _box(obj: dict, key: str, width: int, height: int) -> Box:
    box = obj.get(key)
    if not is_valid_box(box, width, height):
        raise ValueError(f"'{key}' {brief(box)} is not [x0, y0, x1, y1] inside the {width}x{height} image")
    return tuple(float(v) for v in box)  # type: ignore[return-value]


def _seconds(v: object, key: str) -> float:
    """A time as seconds since 1970 (a number or an ISO-8601 string), finite and between 1970 and 9999."""
    seconds = None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        seconds = float(v) if abs(v) <= LAST_TS else None  # a 400-digit int would overflow float()
    elif isinstance(v, str) and len(v) <= 64:
        with contextlib.suppress(ValueError, OverflowError, OSError):
            seconds = datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
    if seconds is None or not (math.isfinite(seconds) and 0.0 <= seconds <= LAST_TS):
        raise ValueError(f"'{key}' {brief(v)} must be seconds since 1970 or an ISO-8601 time, between 1970 and 9999")
    return seconds


def _ts(obj: dict) -> float:
    return _seconds(obj.get("ts"), "ts")


def _angle(obj: dict) -> float:
    """The straightening angle in degrees (0 when absent, as in lines written before it existed)."""
    v = obj.get("angle", 0.0)
    if not is_finite_number(v) or abs(v) > MAX_ANGLE:
        raise ValueError(f"'angle' {brief(v)} must be a number of degrees between -{MAX_ANGLE:g} and {MAX_ANGLE:g}")
    return float(v)



@dataclass(frozen=True)
class Suggestion:
    """One proposed crop in pixels of the upright image, with the score its proposer gave it (higher is better)."""

    box: Box
    score: float


@dataclass(frozen=True)
class CropDecision:
    """A crop the photographer made in any tool (several for one image mean several crops). ``angle``: degrees the
    image was turned clockwise about its centre (straightened) before ``crop`` was cut from it, as drawn."""

    image: str
    width: int
    height: int
    crop: Box
    ts: float
    source: str | None = None
    hash: str | None = None
    angle: float = 0.0
    origin: str | None = None  # where in its source an imported crop was found (a sidecar, a catalog entry, ...)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> CropDecision:
        width, height = _size(obj, "width"), _size(obj, "height")
        return cls(safe_image_path(obj.get("image")), width, height, _box(obj, "crop", width, height), _ts(obj),
                   _optional_str(obj, "source"), _optional_str(obj, "hash"), _angle(obj), _optional_str(obj, "origin"))

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["crop"] = list(self.crop)
        return {k: v for k, v in d.items() if v is not None}


@dataclass(frozen=True)
class SuggestionDecision:
    """What the photographer did with one AI suggestion; ``final`` is None when rejected; ``angle`` as for
    ``CropDecision`` (the suggestion itself is never turned)."""

    image: str
    width: int
    height: int
    suggested: Box
    final: Box | None
    decision: str
    proposer: str  # the proposer version that suggested it; "model" on disk
    ts: float
    angle: float = 0.0

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> SuggestionDecision:
        width, height = _size(obj, "width"), _size(obj, "height")
        decision = obj.get("decision")
        if decision not in DECISIONS:
            raise ValueError(f"'decision' must be one of {', '.join(DECISIONS)}, not {brief(decision)}")
        if decision == "rejected":
            if obj.get("final") is not None:
                raise ValueError("a rejected suggestion has 'final': null")
            final = None
        else:
            final = _box(obj, "final", width, height)
        proposer = obj.get("model")
        if not isinstance(proposer, str) or not proposer or len(proposer) > 256:
            raise ValueError("'model' must name the proposer that made the suggestion (at most 256 characters)")
        return cls(safe_image_path(obj.get("image")), width, height, _box(obj, "suggested", width, height),
                   final, decision, proposer, _ts(obj), _angle(obj))

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["model"] = d.pop("proposer")
        d["suggested"] = list(self.suggested)
        d["final"] = list(self.final) if self.final is not None else None
        return d


def _optional_str(obj: dict, key: str) -> str | None:
    v = obj.get(key)
    if v is not None and (not isinstance(v, str) or len(v) > MAX_PATH_CHARS):
        raise ValueError(f"'{key}' must be a string of at most {MAX_PATH_CHARS} characters when present")
    return v


def read_log(path: Path, record_type: type) -> tuple[list, list[BadLine]]:
    """Every valid record of a log that no later undo line cancels, and every unusable line with why.

    Never raises on content. An undo line ``{"image", "undo": <ts of the cancelled line>, "ts"}`` is how the
    reviewer takes a decision back while the log stays append-only.
    """
    records, problems, undone = [], [], set()
    for lineno, obj in read_jsonl(path):
        if isinstance(obj, BadLine):
            problems.append(obj)
            continue
        try:
            if "undo" in obj:
                undone.add(_undo_key(obj))
            else:
                records.append(record_type.from_json(obj))
        except ValueError as exc:
            problems.append(BadLine(path, lineno, str(exc)))
    return [r for r in records if (r.image, r.ts) not in undone], problems


def _undo_key(obj: dict) -> tuple[str, float]:
    target = _seconds(obj["undo"], "undo")  # the 'ts' of the line it cancels
    _ts(obj)
    return safe_image_path(obj.get("image")), target


def read_crops(logs_dir: Path) -> tuple[list[CropDecision], list[BadLine]]:
    return read_log(logs_dir / TRAINING_LOG, CropDecision)


def read_suggestions(logs_dir: Path) -> tuple[list[SuggestionDecision], list[BadLine]]:
    return read_log(logs_dir / SUGGESTIONS_LOG, SuggestionDecision)


def _log_name(record: CropDecision | SuggestionDecision) -> str:
    return TRAINING_LOG if isinstance(record, CropDecision) else SUGGESTIONS_LOG


def append_decision(logs_dir: Path, record: CropDecision | SuggestionDecision) -> None:
    """Append one decision as one whole, flushed line to its log."""
    append_jsonl(logs_dir / _log_name(record), record.to_json())


def append_undo(logs_dir: Path, record: CropDecision | SuggestionDecision, ts: float) -> None:
    """Cancel an earlier decision by appending an undo line for it (nothing is ever rewritten)."""
    append_jsonl(logs_dir / _log_name(record), {"image": record.image, "undo": record.ts, "ts": ts})
