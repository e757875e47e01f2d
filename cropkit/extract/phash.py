"""64-bit perceptual hash (DCT pHash), computed from an already decoded image."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image

_SIDE = 32
_KEEP = 8


@lru_cache(maxsize=1)
def _dct_matrix(n: int = _SIDE) -> np.ndarray:
    """Orthonormal DCT-II basis, rows are frequencies."""
    k = np.arange(n)[:, None]
    x = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * x + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


def phash64(img: Image.Image) -> str:
    """pHash: 32x32 grayscale, 2-D DCT, the 8x8 lowest frequencies against their median; 16 hex digits."""
    gray = np.asarray(img.convert("L").resize((_SIDE, _SIDE), Image.Resampling.LANCZOS), dtype=np.float64)
    d = _dct_matrix()
    low = (d @ gray @ d.T)[:_KEEP, :_KEEP].ravel()
    bits = low > np.median(low[1:])  # the DC term would dominate the median
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return f"{value:016x}"


def hamming(a: str, b: str) -> int:
    """Number of differing bits between two hex pHashes."""
    return (int(a, 16) ^ int(b, 16)).bit_count()
