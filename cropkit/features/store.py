"""Features to files: one float16 .npy per image content and encoder, written atomically.

A feature file holds ``1 + G*G`` rows of ``D`` values: row 0 is the global embedding, the rest the
G x G grid in row-major order (top-left first), both L2-normalised.
"""

from __future__ import annotations

import io
import math
import os
import re
import stat
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from cropkit.fileio import atomic_write_bytes


def encoder_folder_name(encoder_id: str) -> str:
    """A folder name for an encoder id: features of two encoders never share a folder."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", encoder_id).strip("_")


def pack_features(global_emb: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Stack a (D,) embedding and a (G, G, D) grid into one (1 + G*G, D) float16 array."""
    d = global_emb.shape[-1]
    return np.concatenate([global_emb.reshape(1, d), grid.reshape(-1, d)]).astype(np.float16)


def unpack_features(arr: np.ndarray) -> Features:
    """The inverse of pack_features; raises ValueError for an array of the wrong shape or with NaNs."""
    rows = arr.shape[0] - 1 if arr.ndim == 2 else -1
    side = round(rows**0.5) if rows > 0 else 0
    if arr.ndim != 2 or side * side != rows or not np.isfinite(arr).all():
        raise ValueError(f"shape {arr.shape} is not (1 + G*G, D) finite values")
    return Features(arr[0].astype(np.float32), arr[1:].astype(np.float32).reshape(side, side, -1))


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


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
    """Shape, dtype and data offset of a .npy header; None when it is not a plain C-ordered numeric array.
    Cached: every file of one store has the same header."""
    if not header:
        return None
    stream = io.BytesIO(header)
    stream.seek(8)
    try:
        read = np.lib.format.read_array_header_1_0 if header[6] == 1 else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(stream)
    except (ValueError, EOFError, SyntaxError):
        return None
    if fortran or dtype.hasobject or dtype.kind not in "fiub":
        return None
    return tuple(shape), dtype, len(header)


def _read(path: Path, at_most: int | None = None) -> tuple[bytes, int] | None:
    """The bytes of a regular file (the first ``at_most`` only, where given) and its size, never blocking on a
    pipe; None when it cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
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
    if parsed is None:
        raise ValueError("not a plain numeric .npy array")
    shape, dtype, offset = parsed
    if len(data) != offset + _data_bytes(shape, dtype):
        raise ValueError(f"{len(data)} bytes where the header promises {offset + _data_bytes(shape, dtype)}")
    return np.frombuffer(data, dtype, offset=offset).reshape(shape)


def feature_shape(shapes: object) -> tuple[int, int] | None:
    """The (1 + G*G, D) shape of a feature file from a cache line's ``shapes``; None when they are unusable."""
    try:
        side, side2, dim = shapes["grid"]  # type: ignore[index]
        if side == side2 and shapes["global"] == [dim] and side > 0 and dim > 0:  # type: ignore[index]
            return 1 + side * side, dim
    except (TypeError, KeyError, ValueError):
        pass
    return None


@dataclass(frozen=True)
class Features:
    """The unpacked features of one image."""

    global_emb: np.ndarray  # (D,)
    grid: np.ndarray  # (G, G, D)


class NpyStore:
    """A folder of .npy arrays named by the content hash of the image they describe."""

    def __init__(self, folder: Path):
        self.folder = folder

    def path_for(self, content_hash: str) -> Path:
        return self.folder / f"{content_hash}.npy"

    def has(self, content_hash: str) -> bool:
        return self.path_for(content_hash).is_file()

    def is_whole(self, content_hash: str, shape: tuple[int, ...] | None = None) -> bool:
        """Whether the file for ``content_hash`` is a complete float16 array (of ``shape`` where given): a
        truncated or foreign file is no cache hit and gets recomputed."""
        return npy_is_whole(self.path_for(content_hash), shape)

    def write(self, content_hash: str, array: np.ndarray) -> Path:
        path = self.path_for(content_hash)
        atomic_write_bytes(path, npy_bytes(array))
        return path

    def load_array(self, content_hash: str) -> np.ndarray:
        """Read one array; raises ValueError (saying what to do) when the file is corrupt or missing."""
        path = self.path_for(content_hash)
        try:
            return read_npy(path)
        except (OSError, ValueError) as exc:
            raise ValueError(f"unreadable {path}: {exc}; delete it and rerun cropkit extract") from None


class FeatureStore(NpyStore):
    """The feature files of one encoder: features of two encoders never share a folder."""

    def __init__(self, embeddings_dir: Path, encoder_id: str):
        super().__init__(embeddings_dir / encoder_folder_name(encoder_id))
        self.encoder_id = encoder_id
        self._packed: object | None = None  # cropkit.features.packed.PackedFeatures, opened on first use
        self._packed_checked = False

    @property
    def packed(self):
        """The packed store (``cropkit pack``) when there is one, else None."""
        if not self._packed_checked:
            from cropkit.features.packed import PackedFeatures

            self._packed, self._packed_checked = PackedFeatures.open(self.folder), True
        return self._packed

    def is_whole(self, content_hash: str, shape: tuple[int, ...] | None = None) -> bool:
        if super().is_whole(content_hash, shape):
            return True
        array = self.packed.get(content_hash) if self.packed is not None else None
        return array is not None and (shape is None or array.shape == tuple(shape))

    def load_array(self, content_hash: str) -> np.ndarray:
        """From the packed store when it holds the hash, else from the image's own file."""
        array = self.packed.get(content_hash) if self.packed is not None else None
        return array if array is not None else super().load_array(content_hash)

    def load(self, content_hash: str) -> Features:
        """Read one image's features; raises ValueError when they are corrupt or not this store's shape."""
        try:
            return unpack_features(self.load_array(content_hash))
        except ValueError as exc:
            raise ValueError(f"corrupt feature file {self.path_for(content_hash)}: {exc}; "
                             "delete it and rerun cropkit extract") from None
