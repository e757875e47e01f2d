"""A feature store that holds millions, and the one reader of .npy files that every store uses.

``cropkit pack`` gathers one encoder's feature files into shards of records (``packed/shard-00000.npy``: the 32
bytes of an image's content hash beside its (rows, D) float16 features, memory-mapped) and a SQLite index (hash ->
shard, row and path; the format and shape), so that learning opens a few files instead of one per image. Each row
read is checked against the hash beside it: a damaged pack gives nothing rather than another image's features,
and ``FeatureStore`` reads the image's own file instead. A pack is built in ``.packing/`` and renamed into place;
what a killed one left there is removed (or put back) by the next command that opens the store.
"""

from __future__ import annotations

import contextlib
import io
import math
import mmap
import os
import re
import secrets
import shutil
import sqlite3
import stat
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import numpy as np

from cropkit.errors import TMP_MARK
from cropkit.fileio import pid_alive

PACKED = "packed"
INDEX = "index.sqlite"
FORMAT = 2  # 1: shards of bare features, no hash beside each row (refused: pack again)
SHARD_IMAGES = 16384  # images per shard: ~285 MB for ViT-B-32's 17 x 512 float16 features
WORK = ".packing"  # where packs are built and the old one is set aside: tmp/old<TMP_MARK><pid>-<token>
_LEFT = re.compile(rf"(tmp|old){re.escape(TMP_MARK)}(\d+)-[0-9a-f]+")
_LEGACY = re.compile(r"\.packed\.(tmp|old)-(\d+)")  # what cropkit before format 2 left beside the feature files

# --- the .npy reader -------------------------------------------------------------------------------------------

_MAGIC = b"\x93NUMPY"
_PREFIX = 4096  # read at once when checking a file: more than any header of ours


def _header(data: bytes) -> bytes:
    """The exact header bytes (magic to data) at the start of a .npy file's bytes; b"" when there are none."""
    if not data.startswith(_MAGIC) or len(data) < 12 or data[6] not in (1, 2):
        return b""
    size_len = 2 if data[6] == 1 else 4
    end = 8 + size_len + int.from_bytes(data[8:8 + size_len], "little")
    return data[:end] if end <= len(data) else b""


@lru_cache(maxsize=64)
def _parse_header(header: bytes) -> tuple[tuple[int, ...], np.dtype, int] | None:
    """Shape, dtype and data offset of a .npy header; None when it is not a C-ordered array without objects.
    Cached: every file of one store has the same header."""
    if not header:
        return None
    stream = io.BytesIO(header)
    stream.seek(8)
    try:
        read = np.lib.format.read_array_header_1_0 if header[6] == 1 else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(stream)
    except (ValueError, EOFError, SyntaxError, TypeError):
        return None
    if fortran or dtype.hasobject:
        return None
    return tuple(shape), dtype, len(header)


def _open_regular(path: Path) -> tuple[int, os.stat_result]:
    """A read-only descriptor of a regular file, never blocking on a pipe, and its status; OSError otherwise."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{path} is not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def _read(path: Path, at_most: int | None = None) -> tuple[bytes, int] | None:
    """The bytes of a regular file (the first ``at_most`` only, where given) and its size; None when it cannot be
    read."""
    try:
        fd, st = _open_regular(path)
    except OSError:
        return None
    try:
        want = st.st_size if at_most is None else min(at_most, st.st_size)
        chunks, got = [], 0
        while got < want:
            chunk = os.read(fd, want - got)
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks), st.st_size
    except OSError:
        return None
    finally:
        os.close(fd)


def _data_bytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    return math.prod(shape) * dtype.itemsize  # Python integers: a forged shape cannot overflow


def npy_is_whole(path: Path, shape: tuple[int, ...] | None = None, dtype=np.float16) -> bool:
    """Whether ``path`` is a complete .npy of ``dtype`` (and ``shape`` where given), from its header and size alone."""
    found = _read(path, _PREFIX)
    parsed = _parse_header(_header(found[0])) if found else None
    if parsed is None:
        return False
    got_shape, got_dtype, offset = parsed
    whole = found[1] == offset + _data_bytes(got_shape, got_dtype)
    return whole and got_dtype == np.dtype(dtype) and (shape is None or got_shape == tuple(shape))


def read_npy(path: Path) -> np.ndarray:
    """A plain numeric .npy array (no pickles, no objects, C order), read in one call; ValueError when the file is
    not one, is cut short or has bytes after its data, OSError when it cannot be read."""
    found = _read(path)
    if found is None:
        raise OSError(f"cannot read {path} as a regular file")
    data = found[0]
    parsed = _parse_header(_header(data[:_PREFIX]))
    if parsed is None or parsed[1].kind not in "fiub":
        raise ValueError("not a plain numeric .npy array")
    shape, dtype, offset = parsed
    if len(data) != offset + _data_bytes(shape, dtype):
        raise ValueError(f"{len(data)} bytes where the header promises {offset + _data_bytes(shape, dtype)}")
    return np.frombuffer(data, dtype, offset=offset).reshape(shape)


def map_npy(path: Path, dtype: np.dtype) -> np.ndarray:
    """A .npy file of exactly ``dtype``, memory-mapped read-only; ValueError when it is not one or its size is not
    what its header promises, OSError when it cannot be opened."""
    fd, st = _open_regular(path)
    try:
        parsed = _parse_header(_header(os.read(fd, _PREFIX)))
        if parsed is None or parsed[1] != dtype:
            raise ValueError(f"not a .npy of {dtype}")
        shape, _, offset = parsed
        if st.st_size != offset + _data_bytes(shape, dtype):
            raise ValueError(f"{st.st_size} bytes where the header promises {offset + _data_bytes(shape, dtype)}")
        if st.st_size == offset:
            return np.empty(shape, dtype)
        buffer = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    finally:
        os.close(fd)
    return np.ndarray(shape, dtype, buffer=buffer, offset=offset)


# --- the pack ------------------------------------------------------------------------------------------------


class PackDamaged(ValueError):
    """The pack cannot be used: its message completes "the packed store FOLDER ..."."""


def shard_name(i: int) -> str:
    return f"shard-{i:05d}.npy"


def record_dtype(rows: int, dim: int) -> np.dtype:
    """One image in a shard: the 32 bytes of its content hash, then its (rows, dim) float16 features."""
    return np.dtype([("id", "u1", (32,)), ("f", "<f2", (rows, dim))])


def _hash_id(content_hash: object) -> bytes | None:
    """The 32 bytes of a hex SHA-256; None for anything else."""
    try:
        found = bytes.fromhex(content_hash) if len(content_hash) == 64 else b""  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return found if len(found) == 32 else None  # fromhex skips spaces: 64 characters with one are no hash


def _checked_meta(db: sqlite3.Connection) -> dict[str, int]:
    """The pack's format and shape from its index, checked; PackDamaged when unusable."""
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "pack" not in tables and "features" in tables:
        raise PackDamaged("was written by an older cropkit (its rows carry no hash to check them by)")
    if not {"pack", "features"} <= tables:
        raise PackDamaged("has an index without its tables (a view is not a table)")
    meta = dict(db.execute("SELECT key, value FROM pack LIMIT 32").fetchall())
    if meta.get("format") != FORMAT:
        raise PackDamaged(f"has format {str(meta.get('format'))[:20]}, which this cropkit cannot read")
    keys = ("rows", "dim", "shard_images", "images", "shards")
    if not all(type(meta.get(k)) is int and 0 <= meta[k] < 2**40 for k in keys):
        raise PackDamaged("has an index whose shape is missing or not whole numbers")
    if min(meta["rows"], meta["dim"], meta["shard_images"]) < 1 or meta["shards"] != -(
            -meta["images"] // meta["shard_images"]):
        raise PackDamaged("has an index whose shape does not add up")
    return meta


class PackedFeatures:
    """A packed store, opened read-only (PackDamaged when its index is unusable): ``get(hash)`` gives the packed
    (rows, D) array, or None when the pack lacks it or the row found is not that image's; ``problems`` says what
    was found damaged."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.problems: list[str] = []  # the first few, for the user
        self._shards: dict[int, np.ndarray | str] = {}
        index = folder / INDEX
        if not index.is_file():
            raise PackDamaged(f"has no index ({INDEX})")
        try:
            self.db = sqlite3.connect(f"{index.absolute().as_uri()}?mode=ro", uri=True, check_same_thread=False)
        except sqlite3.Error as exc:
            raise PackDamaged(f"has an index that cannot be opened ({exc})") from None
        try:
            self.meta = _checked_meta(self.db)
        except (sqlite3.Error, PackDamaged) as exc:
            self.db.close()
            raise exc if isinstance(exc, PackDamaged) else PackDamaged(f"has a damaged index ({exc})") from None
        self.dtype = record_dtype(self.meta["rows"], self.meta["dim"])

    @classmethod
    def open(cls, encoder_folder: Path) -> PackedFeatures | None:
        """The pack of an encoder folder; None when there is none, PackDamaged when it cannot be used."""
        folder = encoder_folder / PACKED
        return cls(folder) if folder.exists() else None

    def note(self, problem: str) -> str:
        if problem not in self.problems and len(self.problems) < 10:
            self.problems.append(problem)
        return problem

    def _images_in(self, shard: int) -> int:
        return min(self.meta["shard_images"], self.meta["images"] - shard * self.meta["shard_images"])

    def _shard(self, i: int) -> np.ndarray | str:
        """Shard ``i`` mapped, or why it cannot be used."""
        if i not in self._shards:
            try:
                shard = map_npy(self.folder / shard_name(i), self.dtype)
                if shard.shape != (self._images_in(i),):
                    raise ValueError(f"{shard.shape} images where the index says {self._images_in(i)}")
            except (OSError, ValueError) as exc:
                shard = self.note(f"has a damaged shard {shard_name(i)} ({exc})")
            self._shards[i] = shard
        return self._shards[i]

    def get(self, content_hash: str) -> np.ndarray | None:
        return self.get_many([content_hash]).get(content_hash)

    def get_many(self, hashes: Iterable[str], failed: dict[str, str] | None = None) -> dict[str, np.ndarray]:
        """Many at once, read shard by shard in row order (what a training run asks for); only rows that carry the
        hash asked for. ``failed`` (where given) receives why, for each hash the index lists that is not given."""
        failed = {} if failed is None else failed
        ids = {h: i for h in dict.fromkeys(hashes) if (i := _hash_id(h)) is not None}
        wanted = list(ids)
        where: list[tuple[str, object, object]] = []
        try:
            for start in range(0, len(wanted), 900):  # SQLite's limit on bound parameters
                part = wanted[start:start + 900]
                query = f"SELECT hash, shard, row FROM features WHERE hash IN ({','.join('?' * len(part))})"
                where += self.db.execute(query, part).fetchall()
        except sqlite3.Error as exc:
            failed.update(dict.fromkeys(wanted, self.note(f"has a damaged index ({exc})")))
            return {}
        by_shard: dict[int, list[tuple[int, str]]] = {}
        for h, s, r in where:
            if h not in ids:  # a forged index's column that turns hex digits into a number
                continue
            if (type(s), type(r)) == (int, int) and 0 <= s < self.meta["shards"] and 0 <= r < self._images_in(s):
                by_shard.setdefault(s, []).append((r, h))
            else:
                failed[h] = self.note(f"has an index naming shard {str(s)[:20]} row {str(r)[:20]}, which it lacks")
        out: dict[str, np.ndarray] = {}
        for s, found in by_shard.items():  # one sorted gather per shard, then views of it
            shard = self._shard(s)
            if isinstance(shard, str):
                failed.update(dict.fromkeys((h for _, h in found), shard))
                continue
            found.sort()
            block = shard[np.array([r for r, _ in found], dtype=np.int64)]
            claimed = np.frombuffer(b"".join(ids[h] for _, h in found), np.uint8).reshape(-1, 32)
            for (r, h), mine, features in zip(found, (block["id"] == claimed).all(axis=1), block["f"]):
                if mine:
                    out[h] = features
                else:
                    failed[h] = self.note(f"has rows that belong to other images (row {r} of {shard_name(s)})")
        return out

    def __len__(self) -> int:
        return self.meta["images"]

    def close(self) -> None:
        self.db.close()
        self._shards.clear()


def remove_stale_packs(encoder_folder: Path, legacy: bool = False) -> None:
    """Remove what killed packs left: their temp folders (the pid in the name no longer runs); an old pack set
    aside just before the kill is put back when nothing replaced it. ``legacy``: also the ``.packed.tmp-<pid>``
    folders of cropkit before format 2, beside the feature files (a scan of that big folder: pack asks, readers
    do not)."""
    left: list[tuple[Path, re.Match | None]] = []
    with contextlib.suppress(OSError):
        left += [(p, _LEFT.fullmatch(p.name)) for p in (encoder_folder / WORK).iterdir()]
    if legacy:
        with contextlib.suppress(OSError), os.scandir(encoder_folder) as it:
            left += [(Path(e.path), _LEGACY.fullmatch(e.name)) for e in it if e.name.startswith(".packed.")]
    for path, match in left:
        if not match or path.is_symlink() or not path.is_dir() or pid_alive(int(match[2])):
            continue
        if match[1] == "old":
            _settle_old(path, encoder_folder / PACKED)
        else:
            shutil.rmtree(path, ignore_errors=True)


def _settle_old(old: Path, final: Path) -> None:
    """An old pack set aside: put back when no pack replaced it, else removed."""
    if not final.exists():
        with contextlib.suppress(OSError):
            return old.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def pack(encoder_folder: Path, entries: Iterable[tuple[str, str]], shard_images: int = SHARD_IMAGES,
         progress=None) -> tuple[int, int]:
    """Pack the feature files of ``entries`` ((content hash, image path)) found in ``encoder_folder``; returns
    (images packed, feature files missing or unreadable). Replaces an earlier pack atomically."""
    remove_stale_packs(encoder_folder, legacy=True)
    token = f"{TMP_MARK}{os.getpid()}-{secrets.token_hex(4)}"
    work, final = encoder_folder / WORK, encoder_folder / PACKED
    tmp, old = work / f"tmp{token}", work / f"old{token}"
    tmp.mkdir(parents=True)
    db = sqlite3.connect(tmp / INDEX)
    db.execute("CREATE TABLE features (hash TEXT PRIMARY KEY, path TEXT, shard INTEGER, row INTEGER)")
    db.execute("CREATE TABLE pack (key TEXT PRIMARY KEY, value INTEGER)")
    packed = missing = 0
    records: np.ndarray | None = None  # the shard being filled
    index: list[tuple[str, str, int, int]] = []
    seen: set[str] = set()

    def flush() -> None:  # the shard just filled, or the last one
        np.save(tmp / shard_name((packed - 1) // shard_images), records[:(packed - 1) % shard_images + 1],
                allow_pickle=False)

    try:
        for content_hash, path in entries:
            if progress is not None:
                progress.update(1)
            if content_hash in seen:
                continue
            try:
                array = read_npy(encoder_folder / f"{content_hash}.npy")
            except (OSError, ValueError):
                array = None
            if records is None and array is not None and array.ndim == 2:
                records = np.empty(shard_images, record_dtype(*array.shape))
            key = _hash_id(content_hash)
            if array is None or key is None or records is None or array.shape != records.dtype["f"].shape \
                    or not np.isfinite(array).all():
                missing += 1
                continue
            seen.add(content_hash)
            row = packed % shard_images
            index.append((content_hash, path, packed // shard_images, row))
            records[row] = (np.frombuffer(key, np.uint8), array)
            packed += 1
            if row == shard_images - 1:
                flush()
        if packed % shard_images:
            flush()
        rows, dim = records.dtype["f"].shape if records is not None else (1, 1)
        meta = {"format": FORMAT, "rows": rows, "dim": dim, "shard_images": shard_images,
                "images": packed, "shards": -(-packed // shard_images)}
        db.executemany("INSERT INTO features VALUES (?, ?, ?, ?)", index)
        db.executemany("INSERT INTO pack VALUES (?, ?)", meta.items())
        db.commit()
        db.close()
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        db.close()
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists():
            _settle_old(old, final)
        raise
    return packed, missing
