"""The judged subjects, the views cut around them, and the simulated photographers whose crops are rules on the
*judged* subject box and the frame (never on anything cropkit computes)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from cropkit.decisions import CropDecision
from cropkit.errors import CropkitError
from cropkit.fileio import atomic_write_bytes, read_source_bytes
from cropkit.geometry import Box, clamp_box, denormalise, largest_centred_box

Taste = Callable[[int, int, Box, np.random.Generator], Box]


# ---- the judged subjects and the views cut around them ----------------------------------------------------------

def read_subjects(file: Path) -> dict[str, Box]:
    """``{"subjects": {"NAME.jpg": [x0, y0, x1, y1]}}`` in fractions of the upright image, checked."""
    data, _ = read_source_bytes(file, max_bytes=4 << 20)
    try:
        subjects = json.loads(data)["subjects"]
    except (ValueError, KeyError, TypeError) as exc:
        raise CropkitError(f"{file}: not a subjects file ({exc}); expected {{\"subjects\": {{name: box}}}}") from None
    out = {}
    for name, box in subjects.items():
        ok = (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)
              and 0 <= box[0] < box[2] <= 1 and 0 <= box[1] < box[3] <= 1)
        if not ok or "/" in name or name.startswith("."):
            raise CropkitError(f"{file}: subject of {name!r} must be [x0, y0, x1, y1] fractions with x0 < x1, y0 < y1")
        out[name] = tuple(float(v) for v in box)
    return out


@dataclass(frozen=True)
class View:
    """One picture the simulated photographer crops: a sub-window (maybe mirrored) of a photo, its subject in
    pixels of the view."""

    path: Path
    photo: str
    width: int
    height: int
    subject: Box


def _window_keeping(subject: Box, rng: np.random.Generator) -> Box:
    """A random window (fractions) of 55-100% per side that keeps the whole subject in view where it can."""
    fw, fh = rng.uniform(0.55, 1.0, 2)
    fw, fh = max(fw, subject[2] - subject[0]), max(fh, subject[3] - subject[1])
    lo_x, hi_x = max(0.0, subject[2] - fw), min(subject[0], 1.0 - fw)
    lo_y, hi_y = max(0.0, subject[3] - fh), min(subject[1], 1.0 - fh)
    x0 = rng.uniform(lo_x, hi_x) if hi_x > lo_x else min(max(0.0, subject[0]), 1.0 - fw)
    y0 = rng.uniform(lo_y, hi_y) if hi_y > lo_y else min(max(0.0, subject[1]), 1.0 - fh)
    return (x0, y0, x0 + fw, y0 + fh)


def make_views(photos: Path, subjects: dict[str, Box], dest: Path, per_photo: dict[str, int], seed: int = 0,
               long_side: int = 640) -> list[View]:
    """``per_photo[name]`` views of each photo: the whole frame first, then windows keeping the subject, each
    mirrored with probability 1/2; written once as JPEGs (new files only)."""
    dest.mkdir(parents=True, exist_ok=True)
    views = []
    for name in sorted(per_photo):
        rng = np.random.default_rng([seed, *name.encode()])
        data, _ = read_source_bytes(photos / name)
        with Image.open(BytesIO(data)) as img:
            src = ImageOps.exif_transpose(img).convert("RGB")
        sx0, sy0, sx1, sy1 = subjects[name]
        for k in range(per_photo[name]):
            win = (0.0, 0.0, 1.0, 1.0) if k == 0 else _window_keeping(subjects[name], rng)
            mirror = k > 0 and rng.random() < 0.5
            w, h = src.size
            crop = src.crop((round(win[0] * w), round(win[1] * h), round(win[2] * w), round(win[3] * h)))
            crop.thumbnail((long_side, long_side), Image.Resampling.LANCZOS)
            fw, fh = win[2] - win[0], win[3] - win[1]
            sub = ((sx0 - win[0]) / fw, (sy0 - win[1]) / fh, (sx1 - win[0]) / fw, (sy1 - win[1]) / fh)
            sub = tuple(min(max(v, 0.0), 1.0) for v in sub)
            if mirror:
                crop = ImageOps.mirror(crop)
                sub = (1 - sub[2], sub[1], 1 - sub[0], sub[3])
            path = dest / f"{Path(name).stem}_v{k:02d}.jpg"
            if not path.exists():
                buf = BytesIO()
                crop.save(buf, format="JPEG", quality=90)
                atomic_write_bytes(path, buf.getvalue(), replace=False)
            views.append(View(path, name, crop.width, crop.height, denormalise(sub, crop.width, crop.height)))
    return views


# ---- simulated photographers: crops defined on the judged subject and the frame ------------------------------------

def _around(cx: float, cy: float, w: float, h: float, fx: float, fy: float, width: int, height: int) -> Box:
    """A w x h box (shrunk to fit the frame, aspect kept) with the point (cx, cy) at fraction (fx, fy) of it."""
    s = min(1.0, width / w, height / h)
    w, h = w * s, h * s
    return clamp_box((cx - fx * w, cy - fy * h, cx - fx * w + w, cy - fy * h + h), width, height)


def habit(width: int, height: int, subject: Box, rng: np.random.Generator) -> Box:
    """Content-blind: 3:2 at 90% of the widest fit, a little above the middle, whatever the picture shows."""
    full = largest_centred_box(1.5, width, height)
    w, h = 0.9 * (full[2] - full[0]), 0.9 * (full[3] - full[1])
    return _around(width / 2, height * 0.45, w, h, 0.5, 0.5, width, height)


def portrait_around(width: int, height: int, subject: Box, rng: np.random.Generator) -> Box:
    """4:5 around the subject with a margin of 20% of its size on every side."""
    x0, y0, x1, y1 = subject
    w, h = (x1 - x0) * 1.4, (y1 - y0) * 1.4
    w, h = max(w, h * 0.8), max(h, w / 0.8)
    return _around((x0 + x1) / 2, (y0 + y1) / 2, w, h, 0.5, 0.5, width, height)


def thirds(width: int, height: int, subject: Box, rng: np.random.Generator) -> Box:
    """The original aspect at 70% of the frame, the subject's centre on the nearest thirds point."""
    cx, cy = (subject[0] + subject[2]) / 2, (subject[1] + subject[3]) / 2
    fx = 1 / 3 if cx < width / 2 else 2 / 3
    fy = 1 / 3 if cy < height / 2 else 2 / 3
    return _around(cx, cy, 0.7 * width, 0.7 * height, fx, fy, width, height)


def tight_square(width: int, height: int, subject: Box, rng: np.random.Generator) -> Box:
    """A square just holding the subject (10% margin), centred on it."""
    side = 1.1 * max(subject[2] - subject[0], subject[3] - subject[1])
    return _around((subject[0] + subject[2]) / 2, (subject[1] + subject[3]) / 2, side, side, 0.5, 0.5, width, height)


def mixed(width: int, height: int, subject: Box, rng: np.random.Generator) -> Box:
    """Human-like: 3:2 for landscape frames and 4:5 for portrait ones, sized so the subject fills about a third of
    the crop's area, the subject a little above the middle and towards the nearer side; 3% jitter per decision,
    and one decision in ten is the content-blind habit instead."""
    if rng.random() < 0.1:
        return habit(width, height, subject, rng)
    aspect = 1.5 if width >= height else 0.8
    area = (subject[2] - subject[0]) * (subject[3] - subject[1]) * 3.0
    w = math.sqrt(area * aspect)
    h = w / aspect
    cx, cy = (subject[0] + subject[2]) / 2, (subject[1] + subject[3]) / 2
    fx = 0.45 if cx < width / 2 else 0.55
    jitter = rng.normal(0, 0.03, 3)
    w, h = w * (1 + jitter[2]), h * (1 + jitter[2])
    return _around(cx + jitter[0] * w, cy + jitter[1] * h, w, h, fx, 0.45, width, height)


TASTES: dict[str, Taste] = {"habit-3:2": habit, "portrait-4:5": portrait_around, "thirds": thirds,
                            "tight-square": tight_square, "mixed": mixed}
CONTENT_BLIND = ("habit-3:2",)


def decisions(taste: str, views: list[View], root: Path, seed: int = 0) -> list[CropDecision]:
    """The simulated photographer's crop of each view, in the order given."""
    rng = np.random.default_rng([seed, *taste.encode()])
    rule = TASTES[taste]
    return [CropDecision(v.path.relative_to(root).as_posix(), v.width, v.height,
                         rule(v.width, v.height, v.subject, rng), float(i + 1)) for i, v in enumerate(views)]


def split_by_photo(photos: list[str], test_share: float, seed: int = 0) -> tuple[list[str], list[str]]:
    """Training and held-out photos (sorted), by a seeded shuffle of the photo names."""
    order = sorted(photos)
    np.random.default_rng(seed).shuffle(order)
    n_test = max(1, round(len(order) * test_share))
    return sorted(order[n_test:]), sorted(order[:n_test])
