"""Weight-free composition cues from pixels: a saliency map and an edge map on a small grid.

They let crop proposals follow the picture even when the CLIP encoder is untrained.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from cropkit.geometry import Box

CUE_SIDE = 64


def _blur(a: np.ndarray, radius: int) -> np.ndarray:
    """Separable box blur (applied twice, close to a Gaussian) with edge padding."""
    k = np.ones(2 * radius + 1) / (2 * radius + 1)
    for _ in range(2):
        a = np.apply_along_axis(lambda r: np.convolve(np.pad(r, radius, mode="edge"), k, "valid"), 0, a)
        a = np.apply_along_axis(lambda r: np.convolve(np.pad(r, radius, mode="edge"), k, "valid"), 1, a)
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

    def saliency_inside(self, box_norm: Box) -> float:
        """Share of the saliency mass inside a normalised box."""
        return float(_patch(self.saliency, box_norm).sum())

    def border_edges(self, box_norm: Box) -> float:
        """Mean edge energy along the box's border: high when the crop cuts through things."""
        p = _patch(self.edges, box_norm)
        return float(np.concatenate([p[0], p[-1], p[:, 0], p[:, -1]]).mean())

    def saliency_centroid(self, box_norm: Box) -> tuple[float, float]:
        """Centre of saliency mass inside a normalised box, in the box's own 0..1 coordinates."""
        patch = _patch(self.saliency, box_norm)
        m = patch.sum()
        if m <= 0:
            return 0.5, 0.5
        ys, xs = np.mgrid[0 : patch.shape[0], 0 : patch.shape[1]]
        cx = ((xs + 0.5) * patch).sum() / m / patch.shape[1]
        cy = ((ys + 0.5) * patch).sum() / m / patch.shape[0]
        return float(cx), float(cy)


def _patch(a: np.ndarray, box_norm: Box) -> np.ndarray:
    """The cells of a cue grid under a normalised box (at least one cell)."""
    s = a.shape[0]
    x0, y0, x1, y1 = (min(s, max(0, int(round(v * s)))) for v in box_norm)
    x0, y0 = min(x0, s - 1), min(y0, s - 1)
    return a[y0 : max(y1, y0 + 1), x0 : max(x1, x0 + 1)]


def compute_cues(img: Image.Image) -> Cues:
    """Cues of a decoded image (any size; the whole frame is squashed to the cue grid)."""
    gray = np.asarray(img.convert("L").resize((CUE_SIDE, CUE_SIDE), Image.Resampling.BILINEAR), np.float64) / 255.0
    return Cues(spectral_residual_saliency(gray), edge_energy(gray))
