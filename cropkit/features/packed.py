"""A feature store that holds millions: ``cropkit pack`` gathers one encoder's per-image feature files into
sharded float16 matrices (``packed/shard-00000.npy``, (images, rows, D) each, memory-mapped when read) and an
index in SQLite (content hash -> shard and row, and the image's path), so that training, evaluation and suggestion
open a few files instead of one per image. A hash the index lacks is read from its per-image file as before.

A pack is written to a temporary folder and renamed into place: a killed pack leaves the old one (or none).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from cropkit.features.store import read_npy

PACKED = "packed"
INDEX = "index.sqlite"
SHARD_IMAGES = 16384  # images per shard: ~285 MB for ViT-B-32's 17 x 512 float16 features


def shard_name(i: int) -> str:
    return f"shard-{i:05d}.npy"


class PackedFeatures:
    """A packed store, opened read-only: ``get(hash)`` gives the packed (rows, D) array or None."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.db = sqlite3.connect(f"file:{folder / INDEX}?mode=ro", uri=True, check_same_thread=False)
        self._shards: dict[int, np.ndarray] = {}

    @classmethod
    def open(cls, encoder_folder: Path) -> PackedFeatures | None:
        folder = encoder_folder / PACKED
        return cls(folder) if (folder / INDEX).is_file() else None

    def _shard(self, i: int) -> np.ndarray:
        if i not in self._shards:
            self._shards[i] = np.load(self.folder / shard_name(i), mmap_mode="r", allow_pickle=False)
        return self._shards[i]

    def get(self, content_hash: str) -> np.ndarray | None:
        row = self.db.execute("SELECT shard, row FROM features WHERE hash = ?", (content_hash,)).fetchone()
        return None if row is None else np.asarray(self._shard(row[0])[row[1]])

    def get_many(self, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """Many at once, read shard by shard in row order (what a training run asks for)."""
        wanted = list(dict.fromkeys(hashes))
        where: dict[str, tuple[int, int]] = {}
        for start in range(0, len(wanted), 900):  # SQLite's limit on bound parameters
            part = wanted[start:start + 900]
            query = f"SELECT hash, shard, row FROM features WHERE hash IN ({','.join('?' * len(part))})"
            where.update({h: (s, r) for h, s, r in self.db.execute(query, part)})
        out: dict[str, np.ndarray] = {}
        by_shard: dict[int, list[tuple[int, str]]] = {}
        for h, (s, r) in where.items():
            by_shard.setdefault(s, []).append((r, h))
        for s, found in by_shard.items():  # one sorted gather per shard, then views of it
            found.sort()
            block = self._shard(s)[np.array([r for r, _ in found])]
            out.update(zip((h for _, h in found), block))
        return out

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM features").fetchone()[0]

    def close(self) -> None:
        self.db.close()
        self._shards.clear()


def pack(encoder_folder: Path, entries: Iterable[tuple[str, str]], shard_images: int = SHARD_IMAGES,
         progress=None) -> tuple[int, int]:
    """Pack the feature files of ``entries`` ((content hash, image path)) found in ``encoder_folder``; returns
    (images packed, feature files missing or unreadable). Replaces an earlier pack atomically."""
    tmp = encoder_folder / f".{PACKED}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    db = sqlite3.connect(tmp / INDEX)
    db.execute("CREATE TABLE features (hash TEXT PRIMARY KEY, path TEXT, shard INTEGER, row INTEGER)")
    packed = missing = 0
    rows: list[np.ndarray] = []
    index: list[tuple[str, str, int, int]] = []
    seen: set[str] = set()
    shape = None

    def flush() -> None:
        nonlocal rows
        if rows:
            np.save(tmp / shard_name((packed - 1) // shard_images), np.stack(rows), allow_pickle=False)
            rows = []

    try:
        for content_hash, path in entries:
            if progress is not None:
                progress.update(1)
            if content_hash in seen:
                continue
            try:
                array = read_npy(encoder_folder / f"{content_hash}.npy")
            except (OSError, ValueError):
                missing += 1
                continue
            if shape is None:
                shape = array.shape
            if array.shape != shape:
                missing += 1
                continue
            seen.add(content_hash)
            shard = packed // shard_images
            index.append((content_hash, path, shard, packed % shard_images))
            rows.append(array.astype(np.float16, copy=False))
            packed += 1
            if len(rows) == shard_images:
                flush()
        flush()
        db.executemany("INSERT INTO features VALUES (?, ?, ?, ?)", index)
        db.commit()
        db.close()
        final = encoder_folder / PACKED
        old = encoder_folder / f".{PACKED}.old-{os.getpid()}"
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        db.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return packed, missing
