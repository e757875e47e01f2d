"""Boxes and crop metrics: pure functions, no I/O. A box is ``(x0, y0, x1, y1)`` with x1 > x0, y1 > y0;
arrays of boxes are (N, 4)."""

from __future__ import annotations

import math

import numpy as np

Box = tuple[float, float, float, float]
MAX_ASPECT = 20.0  # the widest panorama or tallest strip a crop may ask for (width/height up to 20:1)


def area(box: Box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when they do not overlap)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = area(a) + area(b) - inter
    return inter / union if union > 0 else 0.0


def bde(a: Box, b: Box, width: float, height: float) -> float:
    """Boundary displacement error: mean absolute shift of the four edges, x over width and y over height."""
    return (abs(a[0] - b[0]) / width + abs(a[2] - b[2]) / width
            + abs(a[1] - b[1]) / height + abs(a[3] - b[3]) / height) / 4.0


def is_finite_number(v: object) -> bool:
    """An int or float (not a bool) that is finite as a float: NaN, infinities and 400-digit ints are not."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:  # an int too large for a float
        return False


def is_valid_box(box: object, width: float, height: float) -> bool:
    """Four finite numbers with 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height."""
    if not isinstance(box, (list, tuple)) or len(box) != 4:
        return False
    if not all(is_finite_number(v) for v in box):
        return False
    x0, y0, x1, y1 = box
    return 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height


def clamp_box(box: Box, width: float, height: float) -> Box:
    """Move a box inside the image, shrinking it only if it is larger than the image."""
    w, h = min(box[2] - box[0], width), min(box[3] - box[1], height)
    x0 = min(max(box[0], 0.0), width - w)
    y0 = min(max(box[1], 0.0), height - h)
    return (x0, y0, x0 + w, y0 + h)


def parse_aspect(text: str | None) -> float | None:
    """'4:5' or '1.25' to width/height (from 1:20 to 20:1); None, '' or 'free' to None."""
    if text is None or text.strip().lower() in ("", "free", "none"):
        return None
    try:
        if ":" in text:
            w, h = (float(v) for v in text.split(":", 1))
        else:
            w, h = float(text), 1.0
    except ValueError:
        raise ValueError(f"aspect {text!r}: write it as W:H, for example 4:5 or 16:9") from None
    if not (w > 0 and h > 0 and math.isfinite(w) and math.isfinite(h)):
        raise ValueError(f"aspect {text!r}: both sides must be positive numbers")
    return check_aspect(w / h, text)


def check_aspect(aspect: float, shown: str | None = None) -> float:
    """The aspect (width/height) itself when it lies between 1:20 and 20:1; raises ValueError otherwise."""
    if not (isinstance(aspect, (int, float)) and 1 / MAX_ASPECT <= aspect <= MAX_ASPECT):
        raise ValueError(f"aspect {shown or aspect!r}: choose one between 1:{MAX_ASPECT:g} and {MAX_ASPECT:g}:1")
    return float(aspect)


def fit_box_to_aspect(box: Box, aspect: float | None, width: float, height: float) -> Box:
    """The box of the requested aspect (width/height) with the same centre and area, kept inside the image."""
    if aspect is None:
        return clamp_box(box, width, height)
    return tuple(float(v) for v in fit_boxes_to_aspect(np.array([box], dtype=np.float64), aspect, width, height)[0])


def normalise(box: Box, width: float, height: float) -> Box:
    return (box[0] / width, box[1] / height, box[2] / width, box[3] / height)


def denormalise(box: Box, width: float, height: float) -> Box:
    return (box[0] * width, box[1] * height, box[2] * width, box[3] * height)


def largest_centred_box(aspect: float | None, width: float, height: float) -> Box:
    """The full frame, or the largest box of the given aspect centred in it."""
    if aspect is None:
        return (0.0, 0.0, float(width), float(height))
    w = min(width, height * aspect)
    h = w / aspect
    x0, y0 = (width - w) / 2, (height - h) / 2
    return (x0, y0, x0 + w, y0 + h)


def candidate_boxes(width: float, height: float, aspect: float | None,
                    scales: tuple[float, ...] = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5), steps: int = 7) -> list[Box]:
    """Sliding windows of one aspect (or the image's own) at several scales, on a steps x steps grid of positions."""
    full = largest_centred_box(aspect, width, height)
    fw, fh = full[2] - full[0], full[3] - full[1]
    out: list[Box] = []
    for s in scales:
        w, h = fw * s, fh * s
        xs = [(width - w) * i / (steps - 1) for i in range(steps)] if width - w > 1e-9 else [0.0]
        ys = [(height - h) * i / (steps - 1) for i in range(steps)] if height - h > 1e-9 else [0.0]
        out.extend((x, y, x + w, y + h) for y in ys for x in xs)
    return list(dict.fromkeys(out))


STANDARD_ASPECTS = {"1:1": 1.0, "4:5": 0.8, "5:4": 1.25, "3:2": 1.5, "2:3": 2 / 3, "4:3": 4 / 3, "3:4": 0.75,
                    "16:9": 16 / 9, "9:16": 9 / 16}


def nearest_standard_aspect(box: Box) -> str:
    """The standard aspect name closest (in log ratio) to a box's shape."""
    r = (box[2] - box[0]) / (box[3] - box[1])
    return min(STANDARD_ASPECTS, key=lambda name: abs(math.log(r / STANDARD_ASPECTS[name])))


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) IoU of two arrays of boxes."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = ix * iy
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)


def nms_top_k(boxes: np.ndarray, scores: np.ndarray, k: int, max_overlap: float = 0.7) -> list[int]:
    """Indices of the k best boxes, each overlapping every better chosen one by at most ``max_overlap`` IoU."""
    alive = np.ones(len(boxes), dtype=bool)
    chosen: list[int] = []
    while len(chosen) < k and alive.any():
        i = int(np.flatnonzero(alive)[np.argmax(scores[alive])])
        chosen.append(i)
        alive &= iou_matrix(boxes, boxes[i : i + 1])[:, 0] <= max_overlap
    return chosen


def fit_boxes_to_aspect(boxes: np.ndarray, aspect: float, width: float, height: float) -> np.ndarray:
    """Vectorised geometry.fit_box_to_aspect: same centre and area, the requested aspect, inside the image."""
    area = np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1e-9)
    w, h = np.sqrt(area * aspect), np.sqrt(area / aspect)
    scale = np.minimum(1.0, np.minimum(width / w, height / h))
    w, h = w * scale, h * scale
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    x0 = np.clip(cx - w / 2, 0.0, width - w)
    y0 = np.clip(cy - h / 2, 0.0, height - h)
    return np.stack([x0, y0, x0 + w, y0 + h], axis=1)


def turn_points(points: np.ndarray, angle: float, width: float, height: float) -> np.ndarray:
    """(n, 2) points turned ``angle`` degrees clockwise (as seen, y down) about the centre of a width x height
    image: where a pixel of the image appears once the image is straightened by ``angle``."""
    t = math.radians(angle)
    c, s = math.cos(t), math.sin(t)
    centre = np.array([width / 2, height / 2])
    d = np.asarray(points, dtype=np.float64) - centre
    return centre + d @ np.array([[c, s], [-s, c]])


def inside_turned(box: Box, angle: float, width: float, height: float) -> bool:
    """Whether ``box``, drawn on the image turned ``angle`` degrees, covers only pixels of the image."""
    x0, y0, x1, y1 = box
    corners = turn_points(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]), -angle, width, height)
    eps = 1e-6 * max(width, height)
    return bool(np.all(corners >= -eps) and np.all(corners[:, 0] <= width + eps)
                and np.all(corners[:, 1] <= height + eps))


def fit_inside_turned(box: Box, angle: float, width: float, height: float) -> Box:
    """``box`` shrunk about its centre (moved towards the image's centre only when that keeps it much larger) until
    it covers only pixels of the image turned ``angle`` degrees; unchanged when it already does."""
    if inside_turned(box, angle, width, height):
        return box
    hw, hh = (box[2] - box[0]) / 2, (box[3] - box[1]) / 2
    centre = np.array([width / 2, height / 2])
    offsets = turn_points(np.array([[-hw, -hh], [hw, -hh], [hw, hh], [-hw, hh]]) + centre, -angle, width,
                          height) - centre  # each corner's offset from the box's centre, in the image's frame

    def largest_scale(m: np.ndarray) -> float:
        base = turn_points(m[None], -angle, width, height)[0]
        if not (0 <= base[0] <= width and 0 <= base[1] <= height):
            return 0.0
        s = 1.0
        for e in offsets:
            for k, limit in ((0, width), (1, height)):
                if e[k] > 1e-12:
                    s = min(s, (limit - base[k]) / e[k])
                elif e[k] < -1e-12:
                    s = min(s, base[k] / -e[k])
        return max(0.0, s)

    m = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
    options = [(t, largest_scale(centre + t * (m - centre))) for t in np.linspace(1.0, 0.0, 11)]
    best = max(s for _, s in options)
    t, s = next((t, s) for t, s in options if s >= 0.9 * best)
    s *= 1 - 1e-9
    cx, cy = centre + t * (m - centre)
    return (cx - hw * s, cy - hh * s, cx + hw * s, cy + hh * s)
