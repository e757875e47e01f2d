"""Finding work: walk a library for images, each real folder once (links followed, loops and duplicates
reported), never opening files and never touching access times."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cropkit.fileio import open_folder

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


PRUNED = Path("<pruned>")  # marks the folder walk_files leaves out


def is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def walk_files(folder: Path, follow_links: bool = True,
               prune: Path | None = None) -> Iterator[tuple[Path, None] | tuple[None, Skipped]]:
    """Yield the path of every entry below ``folder`` that is not a folder, listing folders without touching
    their access times (O_NOATIME where allowed).

    Each real folder is walked once, by (device, inode): first the folders below ``folder`` (depth first, entries
    by name), then the folders that links lead to (``follow_links``; else the links are yielded as entries).
    A second way into a walked folder is a ``duplicate-folder`` skip; a link to a folder that holds it (up to
    ``/``) a ``symlink-loop``. The folder ``prune`` (cropkit's own data/ai_data when it lies in the library) is
    not walked at all.
    """
    try:
        top = folder.stat()
    except OSError as exc:
        yield None, Skipped(folder, "unreadable-folder", str(exc))
        return
    seen: dict[tuple[int, int], Path] = {}
    with contextlib.suppress(OSError):
        if prune is not None:
            st = prune.stat()
            seen[(st.st_dev, st.st_ino)] = PRUNED
    links: deque[tuple[Path, tuple[int, int], frozenset]] = deque()
    yield from _walk_tree(folder, (top.st_dev, top.st_ino), _keys_above(folder), seen, links, follow_links)
    while links:
        path, key, chain = links.popleft()
        if key in chain:
            yield None, Skipped(path, "symlink-loop", "link leads back into a folder above it")
        elif key in seen:
            if seen[key] is not PRUNED:
                yield None, Skipped(path, "duplicate-folder", f"leads to a folder already walked as {seen[key]}")
        else:
            yield from _walk_tree(path, key, chain, seen, links, follow_links)


def _keys_above(folder: Path) -> frozenset[tuple[int, int]]:
    """The (device, inode) of every folder that holds ``folder``, up to ``/``: a link to one of them is a loop."""
    keys = set()
    for parent in folder.resolve().parents:
        with contextlib.suppress(OSError):
            st = parent.stat()
            keys.add((st.st_dev, st.st_ino))
    return frozenset(keys)


def _walk_tree(top: Path, top_key: tuple[int, int], chain: frozenset, seen: dict, links: deque,
               follow_links: bool) -> Iterator[tuple[Path, None] | tuple[None, Skipped]]:
    """Walk the real folders below ``top`` depth first; links to folders are queued on ``links``."""
    seen[top_key] = top
    listing = _listing(top, follow_link=True)
    if isinstance(listing, Skipped):
        yield None, listing
        return
    stack = [(top, chain | {top_key}, iter(listing))]
    while stack:
        folder, folder_chain, entries = stack[-1]
        item = next(entries, None)
        if item is None:
            stack.pop()
            continue
        name, kind, key = item
        path = folder / name
        if kind == "folder":
            if key in seen:  # a bind mount of a folder already walked, or the pruned one
                if seen[key] is not PRUNED:
                    yield None, Skipped(path, "duplicate-folder", f"the same folder as {seen[key]}, already walked")
                continue
            seen[key] = path
            listing = _listing(path, follow_link=False)
            if isinstance(listing, Skipped):
                yield None, listing
                continue
            stack.append((path, folder_chain | {key}, iter(listing)))
        elif kind == "folder-link" and follow_links:
            links.append((path, key, folder_chain))
        else:
            yield path, None


def _listing(folder: Path, follow_link: bool) -> list[tuple[str, str, tuple[int, int] | None]] | Skipped:
    """``(name, kind, key)`` of each entry of ``folder`` by name; kind is 'folder', 'folder-link' or 'other'."""
    try:
        fd = open_folder(folder, follow_link)
    except OSError as exc:
        return Skipped(folder, "unreadable-folder", str(exc))
    try:  # entries of a descriptor's scandir stat through it: classify them before it is closed
        with os.scandir(fd) as it:
            return sorted(_classify(entry) for entry in it)
    except OSError as exc:
        return Skipped(folder, "unreadable-folder", str(exc))
    finally:
        os.close(fd)


def _classify(entry: os.DirEntry) -> tuple[str, str, tuple[int, int] | None]:
    try:
        if entry.is_dir(follow_symlinks=False):
            st = entry.stat(follow_symlinks=False)
            return entry.name, "folder", (st.st_dev, st.st_ino)
        if entry.is_symlink() and entry.is_dir(follow_symlinks=True):
            st = entry.stat(follow_symlinks=True)
            return entry.name, "folder-link", (st.st_dev, st.st_ino)
    except OSError:  # a link loop or an entry that vanished: not a folder to walk
        pass
    return entry.name, "other", None


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
