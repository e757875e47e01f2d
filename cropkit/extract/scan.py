"""Finding work: walk a library for images, each real folder once (links followed, loops and duplicates
reported), never opening files and never touching access times."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cropkit.walk import PRUNED, Skipped, walk_files

__all__ = ["PRUNED", "Found", "Skipped", "find_images", "is_image_name", "stat_image", "walk_files"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff"})


@dataclass(frozen=True)
class Found:
    """An image file, with the stat values that decide whether the cache still holds for it."""

    path: Path
    size: int
    mtime_ns: int


def is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def stat_image(path: Path) -> Found | Skipped:
    """Check one named file the way the walk checks each entry, without opening it."""
    try:
        st = path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return Skipped(path, "symlink-loop", "the link points to itself")
        if path.is_symlink():
            return Skipped(path, "broken-link", f"the link's target is missing: {os.readlink(path)}")
        return Skipped(path, "unreadable", exc.strerror or str(exc))
    if not stat.S_ISREG(st.st_mode):
        return Skipped(path, "not-a-file", "not a regular file (a pipe, socket, device or folder)")
    return Found(path, st.st_size, st.st_mtime_ns)


def find_images(folder: Path, prune: Path | None = None) -> Iterator[Found | Skipped]:
    """Yield each image below ``folder`` (any letter case of jpg/jpeg/png/webp/tif/tiff) or why it was skipped;
    nothing below ``prune``."""
    for path, skipped in walk_files(folder, prune=prune):
        if skipped is not None:
            yield skipped
        elif is_image_name(path.name):
            yield stat_image(path)
