"""Before/after exports: crops recovered from exported pictures beside their originals.

Each export is matched to its original by name (the original's name starts the export's: ``IMG_1.jpg`` and
``IMG_1-Edit.jpg``), else by content (a coarse search over every original); the crop box is then recovered by
normalised cross-correlation over scales (FFT on reduced decodes), refined at a finer scale around the best match.
The peak correlation is the confidence: boxes below the threshold are reported, not logged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from cropkit.extract.decode import DecodeError, decode_oriented_rgb, open_image
from cropkit.extract.prepare import MAX_FILE_BYTES
from cropkit.extract.scan import Found, find_images
from cropkit.fileio import read_source_bytes
from cropkit.geometry import Box
from cropkit.sources.merge import Imported, Skip, source_path

MIN_CONFIDENCE = 0.8  # peak normalised correlation below which a recovered box is reported, not logged
COARSE_SIDE = 192  # long side of the original for the search over scales
FINE_SIDE = 1024  # long side for the refinement
SEARCH_SIDE = 64  # long side for matching an export to an original by content
SCALES = 64  # crop widths tried, geometrically from MIN_TEMPLATE to the whole width (about 5% apart)
FINE_TEMPLATE = 320  # pixels: the refinement works where the crop is about this wide (at most FINE_SIDE)
MIN_TEMPLATE = 10  # pixels, at the coarse scale
MAX_CONTENT_SEARCH = 2000  # originals an export without a name match or capture time is searched among
EXIF_IFD, DATE_TAKEN, SUBSEC_TAKEN = 0x8769, 0x9003, 0x9291


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


def _best(image: np.ndarray, export: Image.Image, widths: list[float],
          templates: dict | None = None) -> tuple[float, float, float, float]:
    """The best (score, x, y, width) of ``export`` resized to each width in ``widths`` over ``image``
    (``templates``: the resized exports by size, kept across calls with one export)."""
    templates = {} if templates is None else templates
    aspect = export.width / export.height
    best = (-1.0, 0.0, 0.0, 0.0)
    for tw in widths:
        th = tw / aspect
        w, h = round(tw), round(th)
        if w < 4 or h < 4 or w > image.shape[1] or h > image.shape[0]:
            continue
        if (w, h) not in templates:
            templates[(w, h)] = np.asarray(export.resize((w, h), Image.Resampling.BOX), dtype=np.float32)
        template = templates[(w, h)]
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


def _read(path: Path) -> bytes:
    data, _ = read_source_bytes(path, max_bytes=MAX_FILE_BYTES)  # extract's limit, checked before reading
    return data


def _decode(path: Path, side: int) -> tuple[Image.Image, tuple[int, int]]:
    return decode_oriented_rgb(_read(path), side)


def capture_time(data: bytes) -> str | None:
    """EXIF DateTimeOriginal (with SubSecTimeOriginal) from the file's header, which exports usually keep."""
    try:
        exif = open_image(data).getexif().get_ifd(EXIF_IFD)
        when, sub = exif.get(DATE_TAKEN), exif.get(SUBSEC_TAKEN)
    except Exception:  # no readable EXIF: no capture time to match on
        return None
    return f"{when}.{sub}"[:64] if isinstance(when, str) and when.strip(" \x00:") else None


def name_matches(export: Path, originals: list[Path]) -> list[Path]:
    """The originals whose name (without extension, any letter case) starts the export's name, longest first:
    ``IMG_1-Edit.jpg`` and ``IMG_1 copy.jpg`` come from ``IMG_1.jpg``, not ``IMG_10.jpg``; several when camera
    counters wrapped (``2023/IMG_0001.jpg``, ``2024/IMG_0001.jpg``)."""
    stem = export.stem.lower()
    found = [p for p in originals if stem == p.stem.lower()
             or (stem.startswith(p.stem.lower()) and not stem[len(p.stem)].isalnum())]
    return sorted(found, key=lambda p: -len(p.stem))


class ContentIndex:
    """Every original decoded once, small (gray, long side SEARCH_SIDE * 2), with its capture time: what an export
    without a name match is searched in. Built on first use, with progress."""

    def __init__(self, originals: list[Path]):
        self.originals = originals
        self.small: dict[Path, np.ndarray] = {}
        self.taken: dict[Path, str | None] = {}
        self.built = False

    def build(self) -> None:
        if self.built:
            return
        self.built = True
        for path in tqdm(self.originals, desc="originals decoded for matching by content", unit="image",
                         disable=None, leave=False):
            try:
                data = _read(path)
                img, _ = decode_oriented_rgb(data, SEARCH_SIDE)
            except (OSError, ValueError, DecodeError):
                continue
            self.small[path] = gray(img, SEARCH_SIDE * 2).astype(np.uint8)
            self.taken[path] = capture_time(data)

    def candidates(self, taken: str | None) -> tuple[list[Path], str]:
        """The originals to search for an export taken at ``taken``: those taken at the same moment when any
        is, else all of them up to MAX_CONTENT_SEARCH; and why, for a message."""
        self.build()
        same = [p for p, t in self.taken.items() if taken is not None and t == taken]
        if same:
            return same, f"{len(same)} original(s) taken at {taken}"
        if len(self.small) > MAX_CONTENT_SEARCH:
            return [], (f"no name match, and {len(self.small):,} originals with no capture time in common are "
                        f"more than the {MAX_CONTENT_SEARCH:,} searched by content: name the export after its "
                        "original (IMG_1-Edit.jpg for IMG_1.jpg) or keep its EXIF capture time")
        return list(self.small), f"content search over {len(self.small)} original(s)"

    def best(self, export: Image.Image, candidates: list[Path]) -> tuple[Path | None, float]:
        """The candidate in which ``export`` is found best by a coarse search, and its score."""
        ex = export.convert("L")
        aspect = export.width / export.height
        best: tuple[Path | None, float] = (None, -1.0)
        templates: dict = {}
        for path in candidates:
            small = self.small[path].astype(np.float32)
            largest = min(small.shape[1], small.shape[0] * aspect)
            score = _best(small, ex, list(np.geomspace(8, largest, 16)), templates)[0] if largest >= 8 else -1.0
            if score > best[1]:
                best = (path, score)
        return best


def find_export_crops(originals: Path, exports: Path, is_original: Callable[[Path], bool] = lambda p: False,
                      prune: Path | None = None) -> Iterator[Imported | Skip]:
    """Each picture under ``exports`` located in its original under ``originals`` (read-only): every original
    whose name it starts with is tried and the best match kept; without one, the original found by content among
    those taken at the same moment (EXIF), else among all (at most MAX_CONTENT_SEARCH). A file for which
    ``is_original`` holds (the library's own picture, reached through a link) is no export."""
    library = sorted(f.path for f in find_images(originals, prune=prune) if isinstance(f, Found))
    index = ContentIndex(library)
    listed = list(find_images(exports))
    for found in tqdm(listed, desc="exports located", unit="export", disable=None, leave=False):
        origin = source_path(found.path)
        if not isinstance(found, Found):
            yield Skip(origin, "unreadable export", found.message)
            continue
        if is_original(found.path):
            yield Skip(origin, "a picture of the library, not an export", "")
            continue
        try:
            data = _read(found.path)
            export, _ = decode_oriented_rgb(data, 512)
        except (OSError, ValueError, DecodeError) as exc:
            yield Skip(origin, "unreadable export", str(exc))
            continue
        tried = name_matches(found.path, library)
        if not tried:
            candidates, why = index.candidates(capture_time(data))
            original, _score = index.best(export, candidates)
            if original is None:
                yield Skip(origin, "no original found", why)
                continue
            tried = [original]
        best: Imported | None = None
        for original in tried:
            try:
                img, size = _decode(original, FINE_SIDE)
            except (OSError, ValueError, DecodeError) as exc:
                yield Skip(origin, "unreadable original", f"{original.name}: {exc}")
                continue
            match = locate(img, export, size)
            if math.isfinite(match.score) and (best is None or match.score > best.confidence):
                best = Imported(original, size[0], size[1], match.box, origin, confidence=match.score)
        if best is not None:
            yield best
        elif tried:
            yield Skip(origin, "no match", ", ".join(p.name for p in tried))
