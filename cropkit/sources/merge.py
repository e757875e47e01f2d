"""Merging imported crops into ``training_log.jsonl``: one line per crop with ``source`` and ``origin``, idempotent
(a crop already there adds nothing), a changed crop retiring the old line through the log's undo mechanism, and a
summary by reason for everything skipped.

Nothing is written beside the originals; the log only ever receives whole appended lines.
"""

from __future__ import annotations

import os
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
MAX_ECHO = 240  # characters of a source's value or path shown in the summary


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
    retired: int = 0  # duplicate lines of earlier imports withdrawn (one image, one imported decision)
    skipped: Counter = field(default_factory=Counter)
    first_skip: dict[str, str] = field(default_factory=dict)  # reason -> the first origin and detail
    seconds: float = 0.0

    def skip(self, item: Skip) -> None:
        self.skipped[item.reason] += 1
        self.first_skip.setdefault(item.reason, cut(item.origin) + (f": {cut(item.detail)}" if item.detail else ""))

    def lines(self) -> list[str]:
        verb = "would import" if self.dry_run else "imported"
        out = [f"{self.source}: {verb} {self.imported} crop(s) ({self.replaced} replacing a changed one), "
               f"{self.known} already known, {sum(self.skipped.values())} skipped ({self.seconds:.1f} s)"]
        if self.retired:
            out.append(f"  {'would withdraw' if self.dry_run else 'withdrew'} {self.retired} duplicate line(s) of "
                       "earlier imports")
        out += [f"  skipped, {reason}: {n} (first: {self.first_skip[reason]})" for reason, n in
                self.skipped.most_common()]
        if self.dry_run:
            out.append("  dry run: nothing was written")
        return out


def cut(text: str, limit: int = MAX_ECHO) -> str:
    """``text`` for a message, at most about ``limit`` characters (its start and end kept)."""
    return text if len(text) <= limit else f"{text[:limit * 2 // 3]}...[{len(text):,} characters]...{text[-20:]}"


def source_path(path: Path) -> str:
    """A source file's identity in ``origin``: its full path, folders' links resolved (the file itself not
    followed), so two sources of one name are never confused."""
    path = Path(os.path.abspath(path))
    try:
        return (path.parent.resolve() / path.name).as_posix()
    except (OSError, RuntimeError):
        return path.as_posix()


def merge_crops(layout: Layout, kinds: tuple[str, ...], found: Iterable[tuple[str, Imported | Skip]],
                dry_run: bool = False, min_confidence: float = 0.0, per_image: bool = False) -> list[ImportSummary]:
    """Append each new crop of ``found`` ((kind, crop or skip) pairs) to the log; a summary per kind.

    A crop's place in the log is its image and ``origin`` (the source's full path, plus an entry's id):
    a crop already logged there adds nothing, a changed one retires the old line (an undo line) and adds the new
    one, and another origin's lines are never touched. With ``per_image`` the place is the image alone, across
    ``kinds`` (one imported decision per image: the reader has picked it by precedence); other lines of earlier
    imports for it are withdrawn. Names are the library's (``Layout.image_name``)."""
    started = time.perf_counter()
    summaries = {kind: ImportSummary(kind, dry_run) for kind in kinds}
    logged: dict[str, list[CropDecision]] = {}
    for c in read_crops(layout.logs)[0]:
        if c.source in summaries:
            logged.setdefault(c.image, []).append(c)
    for kind, item in found:
        summary = summaries[kind]
        if isinstance(item, Skip):
            summary.skip(item)
            continue
        name = layout.image_name(item.path)
        if name is None:
            summary.skip(Skip(item.origin, "outside the library", str(item.path)))
            continue
        if item.confidence < min_confidence:
            summary.skip(Skip(item.origin, "low confidence", f"best match {item.confidence:.2f} < "
                              f"{min_confidence:.2f}, in {name}"))
            continue
        box = tuple(round(float(v), 2) for v in item.box)
        if not is_valid_box(box, item.width, item.height):
            summary.skip(Skip(item.origin, "box outside the image", f"{box} in {item.width}x{item.height}"))
            continue
        lines = logged.get(name, [])
        earlier = [c for c in lines if per_image or c.origin == item.origin]
        legacy = [] if per_image else [c for c in lines if _legacy_of(c.origin, item.origin)]
        kept = next((c for c in earlier + legacy if _same(c, box, item.angle)), None)
        ts = time.time()
        retire = [c for c in earlier if c is not kept]
        if not dry_run:
            for old in retire:
                append_undo(layout.logs, old, ts)
        logged[name] = [c for c in logged.get(name, []) if c not in retire]
        if kept is not None:
            summary.known += 1
            summary.retired += len(retire)
            continue
        record = CropDecision(name, item.width, item.height, box, ts, source=kind, angle=round(item.angle, 3),
                              origin=item.origin)
        if not dry_run:
            append_decision(layout.logs, record)
        logged[name].append(record)
        summary.replaced += bool(retire)
        summary.imported += 1
    for summary in summaries.values():
        summary.seconds = time.perf_counter() - started
    return list(summaries.values())


def _legacy_of(logged: str | None, origin: str) -> bool:
    """Whether a line from before origins were full paths (``a.jpg``, ``Lightroom Catalog.lrcat#12``) may be this
    origin's: its name ends this one. Such a line with the same crop counts as known; it is never retired (two
    sources of one name cannot be told apart in it)."""
    return bool(logged) and not logged.startswith("/") and origin.endswith("/" + logged)


def _same(c: CropDecision, box: Box, angle: float) -> bool:
    return max(abs(a - b) for a, b in zip(c.crop, box)) <= SAME_PX and abs(c.angle - angle) <= SAME_DEG
