"""Weight-free composition cues from pixels: a saliency map and an edge map on a small grid.

They let crop proposals follow the picture even when the CLIP encoder is untrained.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

CUE_SIDE = 32
CUES_SHAPE = (2, CUE_SIDE, CUE_SIDE)  # one cue file: saliency and edges, see Cues.to_array


def _box_blur_axis(a: np.ndarray, radius: int, axis: int) -> np.ndarray:
    n = 2 * radius + 1
    pad = [(0, 0), (0, 0)]
    pad[axis] = (radius + 1, radius)
    c = np.cumsum(np.pad(a, pad, mode="edge"), axis=axis)
    hi = np.take(c, range(n, c.shape[axis]), axis=axis)
    lo = np.take(c, range(0, c.shape[axis] - n), axis=axis)
    return (hi - lo) / n


def _blur(a: np.ndarray, radius: int) -> np.ndarray:
    """Separable box blur, applied twice (close to a Gaussian), with edge padding."""
    for _ in range(2):
        a = _box_blur_axis(_box_blur_axis(a, radius, 0), radius, 1)
    return a


def spectral_residual_saliency(gray: np.ndarray) -> np.ndarray:
    """Hou & Zhang's spectral residual saliency of a small grayscale array, normalised to sum 1."""
    f = np.fft.fft2(gray - gray.mean())
    log_amp = np.log(np.abs(f) + 1e-8)
    residual = log_amp - _blur(log_amp, 1)
    sal = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(f)))) ** 2
    sal = _blur(sal, 2)
    total = sal.sum()
    return sal / total if total > 0 else np.full_like(sal, 1.0 / sal.size)


def edge_energy(gray: np.ndarray) -> np.ndarray:
    """Gradient magnitude, normalised to mean 1."""
    gy, gx = np.gradient(gray)
    mag = np.hypot(gx, gy)
    m = mag.mean()
    return mag / m if m > 0 else np.ones_like(mag)


@dataclass(frozen=True)
class Cues:
    """Saliency (sums to 1) and edges (mean 1) on a CUE_SIDE x CUE_SIDE grid over the whole frame."""

    saliency: np.ndarray
    edges: np.ndarray

    def to_array(self) -> np.ndarray:
        """(2, side, side) float16: saliency then edges, for a cue file."""
        return np.stack([self.saliency, self.edges]).astype(np.float16)

    @classmethod
    def from_array(cls, arr: np.ndarray) -> Cues:
        if arr.ndim != 3 or arr.shape[0] != 2 or arr.shape[1] != arr.shape[2] or not np.isfinite(arr).all():
            raise ValueError(f"cue array of shape {arr.shape} is not (2, side, side)")
        sal = arr[0].astype(np.float64)
        return cls(sal / max(sal.sum(), 1e-12), arr[1].astype(np.float64))


def compute_cues(img: Image.Image) -> Cues:
    """Cues of a decoded image (any size; the whole frame is squashed to the cue grid)."""
    small = img.convert("L").resize((2 * CUE_SIDE, 2 * CUE_SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    gray = np.asarray(small, np.float64) / 255.0
    sal = spectral_residual_saliency(gray)
    sal = sal.reshape(CUE_SIDE, 2, CUE_SIDE, 2).sum(axis=(1, 3))
    edges = edge_energy(gray).reshape(CUE_SIDE, 2, CUE_SIDE, 2).mean(axis=(1, 3))
    return Cues(sal, edges)
