"""Features to files: one float16 .npy per image content and encoder, written atomically.

A feature file holds ``1 + G*G`` rows of ``D`` values: row 0 is the global embedding, the rest the
G x G grid in row-major order (top-left first), both L2-normalised.
"""

from __future__ import annotations

import io
import os
import re
import stat
from dataclasses import dataclass
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


def npy_is_whole(path: Path, shape: tuple[int, ...] | None = None, dtype=np.float16) -> bool:
    """Whether ``path`` is a complete .npy of ``dtype`` (and ``shape`` where given), from its header and size alone."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False
    with os.fdopen(fd, "rb") as f:
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return False
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}.get(np.lib.format.read_magic(f))
            if read_header is None:
                return False
            found, _fortran, found_dtype = read_header(f)
        except (OSError, ValueError, EOFError):
            return False
        whole = st.st_size == f.tell() + int(np.prod(found)) * found_dtype.itemsize
        return whole and found_dtype == np.dtype(dtype) and (shape is None or tuple(found) == tuple(shape))


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
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise ValueError(f"unreadable {path}: {exc}; delete it and rerun cropkit extract") from None


class FeatureStore(NpyStore):
    """The feature files of one encoder: features of two encoders never share a folder."""

    def __init__(self, embeddings_dir: Path, encoder_id: str):
        super().__init__(embeddings_dir / encoder_folder_name(encoder_id))
        self.encoder_id = encoder_id

    def load(self, content_hash: str) -> Features:
        """Read one feature file; raises ValueError when it is corrupt or not this store's shape."""
        try:
            return unpack_features(self.load_array(content_hash))
        except ValueError as exc:
            raise ValueError(f"corrupt feature file {self.path_for(content_hash)}: {exc}; "
                             "delete it and rerun cropkit extract") from None
