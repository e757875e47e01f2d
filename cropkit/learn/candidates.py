"""Candidate crops and the features the proposer scores them by: geometry, composition cues and CLIP grid.

Everything is vectorised over candidates and uses normalised coordinates (0..1 of the upright frame).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from cropkit.features.cues import Cues
from cropkit.features.store import Features
from cropkit.features.subject import SubjectMap
from cropkit.geometry import candidate_boxes, normalise

SCALES = (1.0, 0.92, 0.84, 0.76, 0.68, 0.6, 0.52, 0.44)
STEPS = 9
THIRDS = np.array([1 / 3, 2 / 3])


def candidate_set(width: int, height: int, aspects: list[float | None]) -> np.ndarray:
    """(C, 4) normalised candidate boxes over every aspect in ``aspects`` (None: the image's own)."""
    return _candidate_set(width, height, tuple(dict.fromkeys(aspects)))


@lru_cache(maxsize=256)
def _candidate_set(width: int, height: int, aspects: tuple[float | None, ...]) -> np.ndarray:
    boxes = []
    for aspect in aspects:
        boxes += [normalise(b, width, height) for b in candidate_boxes(width, height, aspect, SCALES, STEPS)]
    out = np.unique(np.round(np.array(boxes, dtype=np.float64), 6), axis=0)
    out.flags.writeable = False  # shared between callers through the cache
    return out


def _integral(a: np.ndarray) -> np.ndarray:
    """Summed-area table with a zero row and column in front; works on (H, W) or (H, W, K)."""
    out = np.zeros((a.shape[0] + 1, a.shape[1] + 1) + a.shape[2:], dtype=np.float64)
    out[1:, 1:] = a.cumsum(0).cumsum(1)
    return out


def _corner(table: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear read of a summed-area table at fractional normalised positions."""
    n = table.shape[0] - 1
    u, v = np.clip(x * n, 0, n), np.clip(y * n, 0, n)
    u0, v0 = np.minimum(u.astype(int), n - 1), np.minimum(v.astype(int), n - 1)
    fu, fv = u - u0, v - v0
    if table.ndim == 3:
        fu, fv = fu[:, None], fv[:, None]
    return ((1 - fu) * (1 - fv) * table[v0, u0] + fu * (1 - fv) * table[v0, u0 + 1]
            + (1 - fu) * fv * table[v0 + 1, u0] + fu * fv * table[v0 + 1, u0 + 1])


def box_sums(table: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Sum of the underlying map inside each normalised box (fractional cells counted in part)."""
    x0, y0, x1, y1 = boxes.T
    n = len(boxes)
    c = _corner(table, np.concatenate([x1, x0, x1, x0]), np.concatenate([y1, y1, y0, y0]))  # one call, four corners
    return c[:n] - c[n:2 * n] - c[2 * n:3 * n] + c[3 * n:]


# Maps whose mass (summing to 1) says where things are; the people maps are coverages, normalised here.
MASS_MAPS = ("saliency", "focus", "contrast", "person", "faces", "hands")
_WEIGHTED = ("saliency", "focus", "contrast", "faces")  # also tables of x- and y-weighted mass, for centroids


class CueTables:
    """Summed-area tables of one image's cues, stacked, so every map's mass in any box costs O(1)."""

    def __init__(self, cues: Cues):
        s = cues.saliency
        n = s.shape[0]
        centres = (np.arange(n) + 0.5) / n
        layers, self.index, totals = [], {}, {}
        for name in MASS_MAPS:
            m = cues.channel(name)
            totals[name] = total = float(m.sum())
            m = m / total if total > 1e-9 else np.zeros_like(m)
            self.index[name] = len(layers)
            layers.append(m)
            if name in _WEIGHTED:
                layers += [m * centres[None, :], m * centres[:, None]]
        self.index["edges"] = len(layers)
        layers.append(cues.edges / n / n)
        self.table = _integral(np.stack(layers, axis=-1))
        self.present = {name: totals[name] > 1e-6 for name in ("person", "faces", "hands")}
        peak = np.unravel_index(np.argmax(_smooth3(s)), s.shape)
        self.peak = ((peak[1] + 0.5) / n, (peak[0] + 0.5) / n)
        self.centroid = (float((s * centres[None, :]).sum()), float((s * centres[:, None]).sum()))

    def sums(self, boxes: np.ndarray) -> np.ndarray:
        """(C, layers): every stacked layer summed inside each normalised box."""
        return box_sums(self.table, boxes)

    def saliency_inside(self, boxes: np.ndarray) -> np.ndarray:
        """Share of the saliency mass inside each normalised box."""
        return self.sums(boxes)[:, self.index["saliency"]]

    def border_edges(self, boxes: np.ndarray, band: float = 0.08) -> np.ndarray:
        """Mean edge energy in a band just inside each box's border: high when a crop cuts through things."""
        ring = self.ring(boxes, self.sums(boxes), band)[:, self.index["edges"]]
        return ring / _ring_area(boxes, band)

    def ring(self, boxes: np.ndarray, sums: np.ndarray, band: float = 0.08) -> np.ndarray:
        """(C, layers) sums in a band just inside each box's border, given the sums inside the boxes."""
        return sums - self.sums(_inset(boxes, band))


def _inset(boxes: np.ndarray, band: float) -> np.ndarray:
    x0, y0, x1, y1 = boxes.T
    w, h = x1 - x0, y1 - y0
    return np.stack([x0 + band * w, y0 + band * h, x1 - band * w, y1 - band * h], axis=1)


def _ring_area(boxes: np.ndarray, band: float) -> np.ndarray:
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return np.maximum(w * h * (1 - (1 - 2 * band) ** 2), 1e-9)


class SubjectTables:
    """One image's subject map (cropkit.features.subject) as tables: its mass in any box in O(1), its centroid and
    its extent (the bounding box of the cells holding at least an even share, 1 / cells, of the mass)."""

    def __init__(self, subject: SubjectMap):
        m = subject.mass.astype(np.float64)
        n = m.shape[0]
        self.found = subject.found
        self.table = _integral(m)
        centres = (np.arange(n) + 0.5) / n
        self.centroid = (float((m * centres[None, :]).sum()), float((m * centres[:, None]).sum())) \
            if self.found else (0.5, 0.5)
        ys, xs = np.nonzero(m >= 1.0 / m.size)
        self.extent = (xs.min() / n, ys.min() / n, (xs.max() + 1) / n, (ys.max() + 1) / n) if len(xs) else None


class ImageContext:
    """Per-image tables reused by every candidate: the cue tables, the subject map's (when the image has one) and
    the CLIP grid."""

    def __init__(self, width: int, height: int, cues: Cues, features: Features):
        self.aspect = width / height
        self.cues = CueTables(cues)
        self.subject = SubjectTables(cues.subject) if cues.subject is not None else None
        proj = _projection(features.grid.shape[-1])  # cosines survive a random projection (Johnson-Lindenstrauss)
        g = features.grid.astype(np.float32, copy=False) @ proj
        self.grid = _integral(g / g.shape[0] / g.shape[1])
        self.global_emb = features.global_emb.astype(np.float32, copy=False) @ proj


@lru_cache(maxsize=4)
def _projection(dim: int, out: int = 48) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.standard_normal((dim, out)) / np.sqrt(out)).astype(np.float32)  # float32 throughout: BLAS


def _smooth3(a: np.ndarray) -> np.ndarray:
    p = np.pad(a, 1, mode="edge")
    return sum(p[i:i + a.shape[0], j:j + a.shape[1]] for i in range(3) for j in range(3))


FEATURE_NAMES = (
    "x0", "y0", "x1", "y1", "cx", "cy", "w", "h", "log_aspect", "log_area", "log_image_aspect",
    "sal_in", "sal_density", "sal_cx", "sal_cy", "thirds_dx", "thirds_dy", "centre_dx", "centre_dy",
    "peak_dx", "peak_dy", "centroid_dx", "centroid_dy", "peak_in", "edges_border", "edges_in",
    "focus_in", "focus_density", "focus_cx", "focus_cy", "focus_thirds",
    "contrast_in", "contrast_density", "contrast_cx", "contrast_cy",
    "person_in", "person_cut", "faces_in", "faces_cut", "faces_cx", "faces_cy", "faces_present",
    "hands_in", "hands_cut",
    "clip_in_global", "clip_in_out",
)
# Appended when the image has a subject map (a proposer trained with a subject model): the subject's mass inside
# the box, cut off beyond each edge and in the band just inside it, its centroid and extent relative to the box.
SUBJECT_FEATURE_NAMES = (
    "subject_in", "subject_out_left", "subject_out_right", "subject_out_top", "subject_out_bottom",
    "subject_band_left", "subject_band_right", "subject_band_top", "subject_band_bottom",
    "subject_cx", "subject_cy", "subject_w_ratio", "subject_h_ratio", "subject_found",
)
BAND = 0.08  # the edge band, in box fractions (as the edges cue's ring)


def feature_names(with_subject: bool) -> tuple[str, ...]:
    return FEATURE_NAMES + SUBJECT_FEATURE_NAMES if with_subject else FEATURE_NAMES


def candidate_features(ctx: ImageContext, boxes: np.ndarray) -> np.ndarray:
    """(C, len(feature_names(ctx.subject is not None))) float32 features of normalised candidate boxes in one
    image."""
    x0, y0, x1, y1 = boxes.T
    w, h = x1 - x0, y1 - y0
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    area = w * h
    cues = ctx.cues
    sums = cues.sums(boxes)
    ring = cues.ring(boxes, sums)

    def mass(name: str) -> np.ndarray:
        return sums[:, cues.index[name]]

    def centroid(name: str) -> tuple[np.ndarray, np.ndarray]:
        """Where the map's mass inside each box sits, in 0..1 of the box (0.5 when there is none)."""
        i, m = cues.index[name], mass(name)
        safe = np.maximum(m, 1e-9)
        rel_x = np.where(m > 1e-9, (sums[:, i + 1] / safe - x0) / w, 0.5)
        rel_y = np.where(m > 1e-9, (sums[:, i + 2] / safe - y0) / h, 0.5)
        return rel_x, rel_y

    def thirds(v: np.ndarray) -> np.ndarray:
        return np.minimum(*np.abs(v[None, :] - THIRDS[:, None]))

    sal_in = mass("saliency")
    sx, sy = centroid("saliency")
    fx, fy = centroid("focus")
    kx, ky = centroid("contrast")
    hx, hy = centroid("faces")
    px, py = cues.peak
    gx, gy = cues.centroid
    inside = box_sums(ctx.grid, boxes) / np.maximum(area, 1e-9)[:, None]
    outside = (ctx.grid[-1, -1][None, :] - inside * area[:, None]) / np.maximum(1 - area, 1e-3)[:, None]
    cos_global = _cos(inside, ctx.global_emb[None, :])
    cos_out = np.where(area > 0.97, 1.0, _cos(inside, outside))
    cols = [
        x0, y0, x1, y1, cx, cy, w, h, np.log(w / h * ctx.aspect), np.log(area),
        np.full_like(w, np.log(ctx.aspect)),
        sal_in, sal_in / area, sx, sy, thirds(sx), thirds(sy), np.abs(sx - 0.5), np.abs(sy - 0.5),
        (px - cx) / w, (py - cy) / h, (gx - cx) / w, (gy - cy) / h,
        ((x0 <= px) & (px <= x1) & (y0 <= py) & (py <= y1)).astype(np.float64),
        ring[:, cues.index["edges"]] / _ring_area(boxes, 0.08), mass("edges") / area,
        mass("focus"), mass("focus") / area, fx, fy, np.hypot(thirds(fx), thirds(fy)),
        mass("contrast"), mass("contrast") / area, kx, ky,
        mass("person"), ring[:, cues.index["person"]], mass("faces"), ring[:, cues.index["faces"]], hx, hy,
        np.full_like(w, float(cues.present["faces"])),
        mass("hands"), ring[:, cues.index["hands"]],
        cos_global, cos_out,
    ]
    if ctx.subject is not None:
        cols += subject_columns(ctx.subject, boxes)
    return np.stack(cols, axis=1).astype(np.float32)


def subject_columns(subject: SubjectTables, boxes: np.ndarray) -> list[np.ndarray]:
    """The SUBJECT_FEATURE_NAMES columns of normalised boxes (all zeros but the centroid's 0.5 when no subject)."""
    x0, y0, x1, y1 = boxes.T
    w, h = np.maximum(x1 - x0, 1e-9), np.maximum(y1 - y0, 1e-9)
    zero, one = np.zeros_like(x0), np.ones_like(x0)

    def mass(bx0, by0, bx1, by1) -> np.ndarray:
        return box_sums(subject.table, np.stack([bx0, by0, bx1, by1], axis=1))

    bw, bh = BAND * w, BAND * h
    gx, gy = subject.centroid
    if subject.extent is None:
        w_ratio = h_ratio = zero
    else:
        ex0, ey0, ex1, ey1 = subject.extent
        w_ratio, h_ratio = (ex1 - ex0) / w, (ey1 - ey0) / h
    return [
        mass(x0, y0, x1, y1),
        mass(zero, zero, x0, one), mass(x1, zero, one, one), mass(zero, zero, one, y0), mass(zero, y1, one, one),
        mass(x0, y0, x0 + bw, y1), mass(x1 - bw, y0, x1, y1), mass(x0, y0, x1, y0 + bh), mass(x0, y1 - bh, x1, y1),
        (gx - x0) / w if subject.found else 0.5 * one, (gy - y0) / h if subject.found else 0.5 * one,
        w_ratio, h_ratio, np.full_like(x0, float(subject.found)),
    ]


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-9)

