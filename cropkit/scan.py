"""Finding work: walk a library for images, following folder links without looping, never opening files."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff"})


@dataclass(frozen=True)
class Found:
    """An image file, with the stat values that decide whether the cache still holds for it."""

    path: Path
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Skipped:
    """Something that looked like an image, or a folder, that cannot be used; ``kind`` is a reason code."""

    path: Path
    kind: str
    message: str


def is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def walk_files(folder: Path) -> Iterator[tuple[os.DirEntry, None] | tuple[None, Skipped]]:
    """Yield every directory entry below ``folder`` in sorted order, following links to folders.

    A link that leads back into a folder being walked is reported as a ``symlink-loop`` skip.
    """
    try:
        top = folder.stat()
    except OSError as exc:
        yield None, Skipped(folder, "unreadable-folder", str(exc))
        return
    yield from _walk(folder, {(top.st_dev, top.st_ino)})


def _walk(folder: Path, ancestors: set[tuple[int, int]]):
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        yield None, Skipped(folder, "unreadable-folder", str(exc))
        return
    for entry in entries:
        try:
            is_dir = entry.is_dir(follow_symlinks=True)
        except OSError:
            is_dir = False
        if not is_dir:
            yield entry, None
            continue
        try:
            st = entry.stat(follow_symlinks=True)
        except OSError as exc:
            yield None, Skipped(Path(entry.path), "unreadable-folder", str(exc))
            continue
        key = (st.st_dev, st.st_ino)
        if key in ancestors:
            yield None, Skipped(Path(entry.path), "symlink-loop", "link leads back into a folder above it")
            continue
        yield from _walk(Path(entry.path), ancestors | {key})


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


def find_images(folder: Path) -> Iterator[Found | Skipped]:
    """Yield each image below ``folder`` (any letter case of jpg/jpeg/png/webp/tif/tiff) or why it was skipped."""
    for entry, skipped in walk_files(folder):
        if skipped is not None:
            yield skipped
            continue
        if not is_image_name(entry.name):
            continue
        yield stat_image(Path(entry.path))
