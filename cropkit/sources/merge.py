"""Merging imported crops into ``training_log.jsonl``: one line per crop with ``source`` and ``origin``, idempotent
(a crop already there adds nothing), a changed crop retiring the old line through the log's undo mechanism, and a
summary by reason for everything skipped.

Nothing is written beside the originals; the log only ever receives whole appended lines.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cropkit.decisions import CropDecision, append_decision, append_undo, read_crops
from cropkit.geometry import Box, is_valid_box
from cropkit.layout import Layout

SAME_PX = 0.05  # boxes this close (and angles within SAME_DEG) are the same crop
SAME_DEG = 0.01


@dataclass(frozen=True)
class Imported:
    """One crop found in a source: the original image, its upright size, the box in its upright pixels, the
    straightening angle (degrees, clockwise as seen), where in the source it was found, and how sure the reader
    is (1.0 for values the source records; a match score for recovered ones)."""

    path: Path
    width: int
    height: int
    box: Box
    origin: str
    angle: float = 0.0
    confidence: float = 1.0


@dataclass(frozen=True)
class Skip:
    """Something in a source that gives no crop, with a short reason (for the summary's counts) and detail."""

    origin: str
    reason: str
    detail: str = ""


@dataclass
class ImportSummary:
    """What an import did (or, with ``dry_run``, would do)."""

    source: str
    dry_run: bool = False
    imported: int = 0
    known: int = 0
    replaced: int = 0
    skipped: Counter = field(default_factory=Counter)
    first_skip: dict[str, str] = field(default_factory=dict)  # reason -> the first origin and detail
    seconds: float = 0.0

    def skip(self, item: Skip) -> None:
        self.skipped[item.reason] += 1
        self.first_skip.setdefault(item.reason, f"{item.origin}" + (f": {item.detail}" if item.detail else ""))

    def lines(self) -> list[str]:
        verb = "would import" if self.dry_run else "imported"
        out = [f"{self.source}: {verb} {self.imported} crop(s) ({self.replaced} replacing a changed one), "
               f"{self.known} already known, {sum(self.skipped.values())} skipped ({self.seconds:.1f} s)"]
        out += [f"  skipped, {reason}: {n} (first: {self.first_skip[reason]})" for reason, n in
                self.skipped.most_common()]
        if self.dry_run:
            out.append("  dry run: nothing was written")
        return out


def inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` (links resolved) lies inside ``folder``."""
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except (ValueError, OSError, RuntimeError):
        return False


def merge_crops(layout: Layout, source: str, found: Iterable[Imported | Skip], dry_run: bool = False,
                min_confidence: float = 0.0) -> ImportSummary:
    """Append each new crop of ``found`` to the log as ``source``; a crop already logged from the same source and
    origin adds nothing; one that changed there retires the old line (an undo line) and adds the new one."""
    started = time.perf_counter()
    summary = ImportSummary(source, dry_run)
    crops, _ = read_crops(layout.logs)
    logged: dict[tuple[str, str], list[CropDecision]] = {}
    for c in crops:
        if c.source == source:
            logged.setdefault((c.image, c.origin or ""), []).append(c)
    for item in found:
        if isinstance(item, Skip):
            summary.skip(item)
            continue
        if not inside(item.path, layout.images):
            summary.skip(Skip(item.origin, "outside the library", str(item.path)))
            continue
        if item.confidence < min_confidence:
            summary.skip(Skip(item.origin, "low confidence", f"{item.confidence:.2f} < {min_confidence:.2f}"))
            continue
        box = tuple(round(float(v), 2) for v in item.box)
        if not is_valid_box(box, item.width, item.height):
            summary.skip(Skip(item.origin, "box outside the image", f"{box} in {item.width}x{item.height}"))
            continue
        name = layout.relative_name(item.path)
        earlier = logged.get((name, item.origin), [])
        if any(_same(c, box, item.angle) for c in earlier):
            summary.known += 1
            continue
        record = CropDecision(name, item.width, item.height, box, time.time(), source=source,
                              angle=round(item.angle, 3), origin=item.origin)
        if not dry_run:
            for old in earlier:
                append_undo(layout.logs, old, record.ts)
            append_decision(layout.logs, record)
        logged[(name, item.origin)] = [record]
        summary.replaced += bool(earlier)
        summary.imported += 1
    summary.seconds = time.perf_counter() - started
    return summary


def _same(c: CropDecision, box: Box, angle: float) -> bool:
    return max(abs(a - b) for a, b in zip(c.crop, box)) <= SAME_PX and abs(c.angle - angle) <= SAME_DEG
