"""Features to files: one float16 .npy per image content and encoder, written atomically.

A feature file holds ``1 + G*G`` rows of ``D`` values: row 0 is the global embedding, the rest the
G x G grid in row-major order (top-left first), both L2-normalised.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# the one .npy reader lives in cropkit.features.packed (read_npy and npy_is_whole are also imported from here)
from cropkit.features.packed import PACKED, PackDamaged, PackedFeatures, npy_is_whole, read_npy, remove_stale_packs
from cropkit.fileio import atomic_write_bytes


def encoder_folder_name(encoder_id: str) -> str:
    """A folder name for an encoder id: features of two encoders never share a folder."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", encoder_id).strip("_")


def pack_features(global_emb: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Stack a (D,) embedding and a (G, G, D) grid into one (1 + G*G, D) float16 array."""
    d = global_emb.shape[-1]
    return np.concatenate([global_emb.reshape(1, d), grid.reshape(-1, d)]).astype(np.float16)


def feature_problem(arr: np.ndarray) -> str | None:
    """Why an array is not one image's features ((1 + G*G, D) finite values); None when it is."""
    rows = arr.shape[0] - 1 if arr.ndim == 2 else -1
    side = round(rows**0.5) if rows > 0 else 0
    if arr.ndim != 2 or side * side != rows or not np.isfinite(arr).all():
        return f"shape {arr.shape} is not (1 + G*G, D) finite values"
    return None


def unpack_features(arr: np.ndarray) -> Features:
    """The inverse of pack_features; raises ValueError for an array of the wrong shape or with NaNs."""
    problem = feature_problem(arr)
    if problem is not None:
        raise ValueError(problem)
    side = round((arr.shape[0] - 1) ** 0.5)
    return Features(arr[0].astype(np.float32), arr[1:].astype(np.float32).reshape(side, side, -1))


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


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
    """The feature files of one encoder (features of two encoders never share a folder), read from the pack
    (``cropkit pack``) where it holds them whole, else from each image's own file."""

    def __init__(self, embeddings_dir: Path, encoder_id: str):
        super().__init__(embeddings_dir / encoder_folder_name(encoder_id))
        self.encoder_id = encoder_id
        self._packed: PackedFeatures | None = None
        self._pack_refused: str | None = None
        self._packed_checked = False

    @property
    def packed(self) -> PackedFeatures | None:
        """The pack when there is a usable one, else None (opened on first use, after removing what killed packs
        left)."""
        if not self._packed_checked:
            self._packed_checked = True
            remove_stale_packs(self.folder)
            try:
                self._packed = PackedFeatures.open(self.folder)
            except PackDamaged as exc:
                self._pack_refused = str(exc)
        return self._packed

    @property
    def pack_problem(self) -> str | None:
        """What was found wrong with the pack so far, and what to do; None when nothing was."""
        found = [self._pack_refused] if self._pack_refused else self._packed.problems if self._packed else []
        if not found:
            return None
        more = f" (and {len(found) - 1} more problem{'s' if len(found) > 2 else ''})" if len(found) > 1 else ""
        return (f"the packed store {self.folder / PACKED} {found[0]}{more}: its images are read from their own "
                "feature files instead; run cropkit pack to build it again")

    def _from_pack(self, content_hash: str) -> tuple[np.ndarray | None, str | None]:
        """The pack's features of ``content_hash`` when it holds them whole, else None and why the pack could not
        give them (None when it simply lacks them)."""
        if self.packed is None:
            return None, self._pack_refused
        failed: dict[str, str] = {}
        array = self.packed.get_many([content_hash], failed).get(content_hash)
        problem = None if array is None else feature_problem(array)
        if problem is not None:
            return None, self.packed.note(f"holds unusable features for image {content_hash[:12]} ({problem})")
        return array, failed.get(content_hash)

    def is_whole(self, content_hash: str, shape: tuple[int, ...] | None = None) -> bool:
        if super().is_whole(content_hash, shape):
            return True
        array = self._from_pack(content_hash)[0]
        return array is not None and (shape is None or array.shape == tuple(shape))

    def load_array(self, content_hash: str) -> np.ndarray:
        """From the pack when it holds the image's features whole, else from the image's own file; ValueError
        (saying what to do, and naming the pack when it failed too) when neither can give them."""
        array, pack_problem = self._from_pack(content_hash)
        if array is not None:
            return array
        try:
            return super().load_array(content_hash)
        except ValueError as exc:
            if pack_problem is None:
                raise
            raise ValueError(f"{exc}, then cropkit pack (the packed store {self.folder / PACKED} {pack_problem})") \
                from None

    def load(self, content_hash: str) -> Features:
        """Read one image's features; raises ValueError when they are corrupt or not this store's shape."""
        array = self.load_array(content_hash)  # the pack's are whole: a problem here is the image's own file's
        try:
            return unpack_features(array)
        except ValueError as exc:
            raise ValueError(f"corrupt feature file {self.path_for(content_hash)}: {exc}; "
                             "delete it and rerun cropkit extract") from None
