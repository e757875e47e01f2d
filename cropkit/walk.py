"""Walking a folder tree: each real folder once (links followed, loops and duplicates reported), listed through
descriptors that never touch access times. The scan finds images with it and the layout names them from it."""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cropkit.fileio import open_folder


@dataclass(frozen=True)
class Skipped:
    """Something that looked like an image, or a folder, that cannot be used; ``kind`` is a reason code."""

    path: Path
    kind: str
    message: str


PRUNED = Path("<pruned>")  # marks the folder walk_files leaves out


def walk_files(folder: Path, follow_links: bool = True, prune: Path | None = None,
               seen: dict[tuple[int, int], Path] | None = None) -> Iterator[tuple[Path, None] | tuple[None, Skipped]]:
    """Yield the path of every entry below ``folder`` that is not a folder, listing folders without touching
    their access times (O_NOATIME where allowed).

    Each real folder is walked once, by (device, inode): first the folders below ``folder`` (depth first, entries
    by name), then the folders that links lead to (``follow_links``; else the links are yielded as entries).
    A second way into a walked folder is a ``duplicate-folder`` skip; a link to a folder that holds it (up to
    ``/``) a ``symlink-loop``. The folder ``prune`` (cropkit's own data/ai_data when it lies in the library) is
    not walked at all. ``seen``, when given, is filled with each walked folder by (device, inode), named as
    walked (the pruned folder as ``PRUNED``).
    """
    try:
        top = folder.stat()
    except OSError as exc:
        yield None, Skipped(folder, "unreadable-folder", str(exc))
        return
    seen = {} if seen is None else seen
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
