"""Bytes to pixels, fast and safe: reduced-size decoding, EXIF orientation, odd modes, hostile files.

Imports only Pillow and NumPy so decode workers start quickly and never load torch.
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings

import numpy as np
from PIL import Image, ImageOps, JpegImagePlugin, UnidentifiedImageError

# Above this many pixels a file is refused as a possible decompression bomb (about 179 MP,
# twice Pillow's warning level; a 100 MP medium-format frame still passes).
MAX_PIXELS = 2 * 89_478_485
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
EXIF_ORIENTATION = 0x0112
_TRANSPOSED = {5, 6, 7, 8}


class DecodeError(Exception):
    """An image that cannot be used; ``kind`` is a short reason code for summaries and the cache."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def open_image(data: bytes) -> Image.Image:
    """Open ``data`` without decoding pixels, as every reader of a picture should: over ``MAX_PIXELS`` (a possible
    decompression bomb), empty or unreadable is a DecodeError with the reason, never Pillow's raw warning."""
    if not data:
        raise DecodeError("empty-file", "the file is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise DecodeError("not-an-image", "not a readable image (unknown or corrupt format)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DecodeError("too-large", f"refused as a possible decompression bomb: {exc}") from None
    except OSError as exc:  # e.g. a JPEG cut off inside its header: "Truncated File Read"
        kind = "truncated" if "truncated" in str(exc).lower() else "decode-error"
        raise DecodeError(kind, f"cannot read the image header: {exc}") from None
    except Exception as exc:  # plugins raise many types on hostile headers
        raise DecodeError("decode-error", f"cannot read the image header: {type(exc).__name__}: {exc}") from None
    width, height = img.size
    if width * height > MAX_PIXELS:
        raise DecodeError("too-large", f"{width}x{height} pixels is over the {MAX_PIXELS:,}-pixel limit")
    return img


def decode_oriented_rgb(data: bytes, min_size: int) -> tuple[Image.Image, tuple[int, int]]:
    """Decode ``data`` to an upright RGB image whose shorter side is reduced towards ``min_size``.

    JPEGs are decoded at 1/2, 1/4 or 1/8 scale by libjpeg itself when that still leaves at least
    ``min_size`` pixels on each side. Returns the image and the full-resolution upright (width, height).
    """
    img = open_image(data)
    width, height = img.size
    orientation = exif_orientation(img)
    full_size = (height, width) if orientation in _TRANSPOSED else (width, height)
    if isinstance(img, JpegImagePlugin.JpegImageFile):  # JPEG and MPO (camera JPEGs with extra frames)
        img.draft("RGB", (min_size, min_size))
    try:
        img.load()
    except OSError as exc:
        kind = "truncated" if "truncated" in str(exc) or "broken data stream" in str(exc) else "decode-error"
        raise DecodeError(kind, f"cannot decode: {exc}") from None
    except Exception as exc:  # Pillow raises many types on corrupt data
        raise DecodeError("decode-error", f"cannot decode: {type(exc).__name__}: {exc}") from None
    if orientation != 1:
        with contextlib.suppress(Exception):  # an unusable orientation tag: keep the stored orientation
            img = ImageOps.exif_transpose(img)
    return to_rgb(img, min_size), full_size


def exif_orientation(img: Image.Image) -> int:
    """The image's EXIF orientation, 1 to 8 (1 when absent, broken or out of range)."""
    try:
        orientation = int(img.getexif().get(EXIF_ORIENTATION, 1))
    except Exception:  # a broken EXIF block must not lose the picture
        return 1
    return orientation if 1 <= orientation <= 8 else 1


def to_rgb(img: Image.Image, min_size: int | None = None) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB: 16-bit and float scaled, alpha flattened onto white.

    16-bit, 32-bit and float pixels go to 8-bit gray in row blocks (never a float64 copy of the frame), and with
    ``min_size`` are then reduced (by at most 8, keeping ``min_size`` on each side) as libjpeg does for JPEGs.
    """
    if img.mode == "RGB":
        return img
    if img.mode.startswith("I") or img.mode == "F":
        gray = Image.fromarray(_high_bit_to_gray(img), "L")
        factor = min(8, min(gray.size) // min_size) if min_size else 1
        return (gray.reduce(factor) if factor > 1 else gray).convert("RGB")
    has_alpha = img.mode in ("RGBA", "LA", "La", "RGBa", "PA") or "transparency" in img.info
    if has_alpha:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def _row_blocks(img: Image.Image):
    """The image's pixels as float64 row blocks of about a million pixels (8 MB) each, with their first row."""
    width, height = img.size
    rows = max(1, (1 << 20) // max(1, width))
    for top in range(0, height, rows):
        yield top, np.array(img.crop((0, top, width, min(top + rows, height))), dtype=np.float64)


def _finite_extrema(img: Image.Image) -> tuple[float, float]:
    """The lowest and highest finite pixel values (0, 1 when there are none): NaN and infinities left out."""
    lo, hi = img.getextrema()
    if math.isfinite(lo) and math.isfinite(hi):
        return lo, hi
    lo, hi = math.inf, -math.inf
    for _, block in _row_blocks(img):
        finite = block[np.isfinite(block)]
        if finite.size:
            lo, hi = min(lo, float(finite.min())), max(hi, float(finite.max()))
    return (lo, hi) if lo <= hi else (0.0, 1.0)


def _high_bit_to_gray(img: Image.Image) -> np.ndarray:
    """Integer (16-bit, or 32-bit over 255) pixels scaled from 0..65535, float ones stretched over their finite
    range (NaN shown as the lowest value, infinities as the ends), to uint8."""
    if img.mode == "F":  # no fixed range: stretch what is there
        lo, hi = _finite_extrema(img)
        lo, hi = min(lo, 0.0), max(hi, 1.0)
        offset, scale = lo, 255.0 / max(hi - lo, 1e-12)
    elif img.mode.startswith("I;16") or img.getextrema()[1] > 255:
        offset, scale = 0.0, 255.0 / 65535.0
    else:
        offset, scale = 0.0, 1.0
    width, height = img.size
    out = np.empty((height, width), np.uint8)
    for top, block in _row_blocks(img):
        if img.mode == "F":
            np.nan_to_num(block, copy=False, nan=lo, posinf=hi, neginf=lo)
        block -= offset
        block *= scale
        block += 0.5
        out[top : top + len(block)] = np.clip(block, 0, 255, out=block)
    return out


def squash_to_square(img: Image.Image, size: int) -> np.ndarray:
    """Resize the whole frame (no crop) to ``size`` x ``size`` RGB uint8, as the encoder sees it."""
    return np.asarray(img.resize((size, size), Image.Resampling.BICUBIC, reducing_gap=3.0), dtype=np.uint8)
