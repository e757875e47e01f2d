"""Named sidecar files beside images: written only on request, removable with ``clean-sidecars``."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cropkit.fileio import TMP_MARK, atomic_write_bytes
from cropkit.scan import walk_files

SIDECAR_SUFFIXES = (".embedding.npy", ".phash", ".saliency.npy", ".hands.json")


def sidecar_path(image: Path, suffix: str) -> Path:
    return image.with_name(image.name + suffix)


def is_sidecar_name(name: str) -> bool:
    """``<something>`` + one of the sidecar suffixes, or a temp file a killed sidecar writer left."""
    if TMP_MARK in name and name.startswith("."):
        name = name[1 : name.index(TMP_MARK)]
    return any(name.endswith(s) and len(name) > len(s) for s in SIDECAR_SUFFIXES)


def write_sidecar(image: Path, suffix: str, data: bytes) -> str:
    """Write one sidecar beside ``image``; returns 'written', 'unchanged' or 'refused: <why>'.

    A new name is created without ever replacing a file; an earlier sidecar (a regular file of that
    name) is replaced atomically; a link, folder or anything else at that name is left alone.
    """
    target = sidecar_path(image, suffix)
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        return "written" if atomic_write_bytes(target, data, replace=False) else "refused: the name was taken meanwhile"
    if not stat.S_ISREG(st.st_mode):
        return "refused: something that is not a plain sidecar file has that name"
    if st.st_size == len(data) and target.read_bytes() == data:
        return "unchanged"
    atomic_write_bytes(target, data)
    return "written"


def clean_sidecars(folder: Path, dry_run: bool = False) -> list[Path]:
    """Delete exactly the sidecar files below ``folder`` (plain files only, never links); return them."""
    found: list[Path] = []
    for entry, _skipped in walk_files(folder):
        if entry is None or not is_sidecar_name(entry.name):
            continue
        if not entry.is_file(follow_symlinks=False):
            continue
        path = Path(entry.path)
        if not dry_run:
            path.unlink()
        found.append(path)
    return found
