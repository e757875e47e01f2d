"""Which images the reviewer shows, and in what order: those no log line decides yet, sorted by file, age or
the proposer's uncertainty."""

from __future__ import annotations

import os
from pathlib import Path

from cropkit.decisions import read_crops, read_suggestions
from cropkit.extract.scan import Found, find_images
from cropkit.layout import Layout

QUEUE_ORDERS = ("file", "newest", "uncertain")


def pending_images(layout: Layout) -> list[Path]:
    """Images of ``layout``'s library that no log line decides yet (a crop or a suggestion outcome); log names
    and library files are matched through ``layout.relative_name``, as the reviewer logs them."""
    crops, _ = read_crops(layout.logs)
    suggestions, _ = read_suggestions(layout.logs)
    done = {d.image for d in [*crops, *suggestions]}
    found = [f.path for f in find_images(layout.images, prune=layout.ai_data) if isinstance(f, Found)]
    return [p for p in found if layout.relative_name(p) not in done]


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
