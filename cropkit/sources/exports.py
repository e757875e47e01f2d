"""Before/after exports: crops recovered from exported pictures beside their originals.

Each export is matched to its original by name (the original's name starts the export's: ``IMG_1.jpg`` and
``IMG_1-Edit.jpg``), else by content (a coarse search over every original); the crop box is then recovered by
normalised cross-correlation over scales (FFT on reduced decodes), refined at a finer scale around the best match.
The peak correlation is the confidence: boxes below the threshold are reported, not logged.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from cropkit.extract.decode import DecodeError, decode_oriented_rgb
from cropkit.extract.scan import Found, find_images
from cropkit.fileio import read_source_bytes
from cropkit.geometry import Box
from cropkit.sources.merge import Imported, Skip

MIN_CONFIDENCE = 0.8  # peak normalised correlation below which a recovered box is reported, not logged
COARSE_SIDE = 192  # long side of the original for the search over scales
FINE_SIDE = 1024  # long side for the refinement
SEARCH_SIDE = 64  # long side for matching an export to an original by content
SCALES = 64  # crop widths tried, geometrically from MIN_TEMPLATE to the whole width (about 5% apart)
FINE_TEMPLATE = 320  # pixels: the refinement works where the crop is about this wide (at most FINE_SIDE)
MIN_TEMPLATE = 10  # pixels, at the coarse scale


@dataclass(frozen=True)
class Match:
    """Where an export sits in its original: the box in the original's upright pixels and the peak correlation."""

    box: Box
    score: float


def gray(img: Image.Image, long_side: int) -> np.ndarray:
    """A float32 grayscale copy whose long side is at most ``long_side``."""
    img = img.convert("L")
    scale = min(1.0, long_side / max(img.size))
    if scale < 1.0:
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                         Image.Resampling.BOX)
    return np.asarray(img, dtype=np.float32)


def ncc_map(image: np.ndarray, template: np.ndarray) -> np.ndarray | None:
    """Normalised cross-correlation of ``template`` at every position where it fits inside ``image`` (an array of
    shape (H - h + 1, W - w + 1), values in -1..1); None for a flat template or one larger than the image."""
    h, w = template.shape
    big_h, big_w = image.shape
    if h > big_h or w > big_w:
        return None
    t = template - template.mean()
    t_norm = float(np.sqrt((t * t).sum()))
    if t_norm < 1e-3:
        return None
    shape = (big_h + h - 1, big_w + w - 1)
    corr = np.fft.irfft2(np.fft.rfft2(image, shape) * np.fft.rfft2(t[::-1, ::-1], shape), shape)
    corr = corr[h - 1:big_h, w - 1:big_w]
    ii = np.pad(image.astype(np.float64), ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    ii2 = np.pad(image.astype(np.float64) ** 2, ((1, 0), (1, 0))).cumsum(0).cumsum(1)

    def window(s: np.ndarray) -> np.ndarray:
        return s[h:, w:] - s[:-h, w:] - s[h:, :-w] + s[:-h, :-w]

    var = window(ii2) - window(ii) ** 2 / (h * w)
    denominator = np.sqrt(np.maximum(var, 0.0)) * t_norm
    return np.where(var > 1e-6 * h * w, corr / np.maximum(denominator, 1e-12), 0.0)


def _best(image: np.ndarray, export: Image.Image, widths: list[float]) -> tuple[float, float, float, float]:
    """The best (score, x, y, width) of ``export`` resized to each width in ``widths`` over ``image``."""
    aspect = export.width / export.height
    best = (-1.0, 0.0, 0.0, 0.0)
    for tw in widths:
        th = tw / aspect
        w, h = round(tw), round(th)
        if w < 4 or h < 4 or w > image.shape[1] or h > image.shape[0]:
            continue
        template = np.asarray(export.resize((w, h), Image.Resampling.BOX), dtype=np.float32)
        scores = ncc_map(image, template)
        if scores is None:
            continue
        y, x = np.unravel_index(int(np.argmax(scores)), scores.shape)
        if scores[y, x] > best[0]:
            best = (float(scores[y, x]), float(x), float(y), float(w))
    return best


def locate(original: Image.Image, export: Image.Image, full_size: tuple[int, int]) -> Match:
    """Where ``export`` (a crop of ``original``, resized and recompressed) sits in ``original`` (decoded at any
    reduction of the upright frame of ``full_size``): a search over scales at the coarse side, then a finer one
    around the best."""
    full_w, full_h = full_size
    ex = export.convert("L")
    coarse = gray(original, COARSE_SIDE)
    aspect = export.width / export.height
    largest = min(coarse.shape[1], coarse.shape[0] * aspect)
    widths = list(np.geomspace(MIN_TEMPLATE, largest, SCALES))
    score, x, y, w = _best(coarse, ex.copy(), widths)
    if score < 0:
        return Match((0.0, 0.0, float(full_w), float(full_h)), 0.0)
    side = min(FINE_SIDE, max(COARSE_SIDE, round(max(coarse.shape) * FINE_TEMPLATE / w)))
    fine = gray(original, side)
    k = fine.shape[1] / coarse.shape[1]  # coarse -> fine pixels
    margin = 3 * k + 2
    x0, y0 = max(0, int(x * k - margin)), max(0, int(y * k - margin))
    fine_w = w * k
    widths = [fine_w * (1 + 0.006 * i) for i in range(-8, 9)]  # +-5% in 0.6% steps around the best
    x1 = min(fine.shape[1], int(x * k + max(widths) + margin) + 1)
    y1 = min(fine.shape[0], int(y * k + max(widths) / aspect + margin) + 1)
    score2, fx, fy, fw = _best(fine[y0:y1, x0:x1], ex, widths)
    if score2 < score - 0.05:  # the refinement lost the match (a tiny crop): keep the coarse one
        fx, fy, fw, k, x0, y0, score2 = x, y, w, 1.0, 0, 0, score
        fine = coarse
    s = full_w / fine.shape[1]
    bx, by, bw = (x0 + fx) * s, (y0 + fy) * s, fw * s
    box = (bx, by, min(float(full_w), bx + bw), min(float(full_h), by + bw / aspect))
    return Match(box, score2)


def _decode(path: Path, side: int) -> tuple[Image.Image, tuple[int, int]]:
    data, _ = read_source_bytes(path)
    return decode_oriented_rgb(data, side)


def name_match(export: Path, originals: list[Path]) -> Path | None:
    """The original whose name (without extension, any letter case) the export's name starts with, the longest
    such name first: ``IMG_1-Edit.jpg`` and ``IMG_1 copy.jpg`` come from ``IMG_1.jpg``, not ``IMG_10.jpg``."""
    stem = export.stem.lower()
    found = [p for p in originals if stem == p.stem.lower()
             or (stem.startswith(p.stem.lower()) and not stem[len(p.stem)].isalnum())]
    return max(found, key=lambda p: len(p.stem)) if found else None


def content_match(export: Image.Image, originals: list[Path]) -> tuple[Path | None, float]:
    """The original in which ``export`` is found best by a coarse search, and its score."""
    ex = export.convert("L")
    best: tuple[Path | None, float] = (None, -1.0)
    for path in originals:
        try:
            img, _ = _decode(path, SEARCH_SIDE)
        except (OSError, ValueError, DecodeError):
            continue
        small = gray(img, SEARCH_SIDE * 2)
        aspect = export.width / export.height
        largest = min(small.shape[1], small.shape[0] * aspect)
        score = _best(small, ex, list(np.geomspace(8, largest, 16)))[0] if largest >= 8 else -1.0
        if score > best[1]:
            best = (path, score)
    return best


def find_export_crops(originals: Path, exports: Path) -> Iterator[Imported | Skip]:
    """Each picture under ``exports`` located in its original under ``originals`` (read-only)."""
    library = sorted(f.path for f in find_images(originals, prune=exports) if isinstance(f, Found))
    for found in find_images(exports):
        if not isinstance(found, Found):
            yield Skip(str(found.path), "unreadable export", found.message)
            continue
        origin = found.path.relative_to(exports).as_posix()
        try:
            export, _ = _decode(found.path, 512)
        except (OSError, ValueError, DecodeError) as exc:
            yield Skip(origin, "unreadable export", str(exc))
            continue
        original = name_match(found.path, library)
        if original is None:
            original, _score = content_match(export, library)
            if original is None:
                yield Skip(origin, "no original found", "no name match and no content match")
                continue
        try:
            img, size = _decode(original, FINE_SIDE)
        except (OSError, ValueError, DecodeError) as exc:
            yield Skip(origin, "unreadable original", f"{original.name}: {exc}")
            continue
        match = locate(img, export, size)
        if not math.isfinite(match.score):
            yield Skip(origin, "no match", original.name)
            continue
        yield Imported(original, size[0], size[1], match.box, origin, confidence=match.score)
