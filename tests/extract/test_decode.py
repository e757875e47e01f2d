"""Decoding hostile and unusual files: reason codes, odd pixel modes, EXIF orientation, reduced JPEG decoding."""

from __future__ import annotations

import hashlib
import io
import os
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cropkit.extract import prepare as prepare_mod
from cropkit.extract.decode import MAX_PIXELS, DecodeError, decode_oriented_rgb, squash_to_square, to_rgb
from cropkit.extract.prepare import Failed, Prepared, prepare_image
from tests.libgen import changed_entries, photo_like, save_photo, snapshot

GREY = (128, 128, 128)
RED = (230, 20, 20)
GREEN = (20, 200, 40)
BLUE = (20, 40, 220)
YELLOW = (240, 230, 20)
FULL_SIZE = 1 << 16  # a min_size no test image reaches: decoded without reduction


def encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def decode_kind(data: bytes, min_size: int = 64) -> str:
    with pytest.raises(DecodeError) as info:
        decode_oriented_rgb(data, min_size)
    return info.value.kind


def marked(width: int, height: int, corner: str = "tl", colour=RED, frac: float = 0.25) -> Image.Image:
    """A flat grey picture with a coloured patch covering ``frac`` of each side in one corner."""
    img = Image.new("RGB", (width, height), GREY)
    pw, ph = max(1, int(width * frac)), max(1, int(height * frac))
    x = 0 if corner[1] == "l" else width - pw
    y = 0 if corner[0] == "t" else height - ph
    img.paste(Image.new("RGB", (pw, ph), colour), (x, y))
    return img


def four_corners(width: int, height: int) -> Image.Image:
    """Grey with a different colour patch in each corner: tl red, tr green, bl blue, br yellow."""
    img = Image.new("RGB", (width, height), GREY)
    pw, ph = width // 4, height // 4
    for colour, (x, y) in [(RED, (0, 0)), (GREEN, (width - pw, 0)), (BLUE, (0, height - ph)),
                           (YELLOW, (width - pw, height - ph))]:
        img.paste(Image.new("RGB", (pw, ph), colour), (x, y))
    return img


def corner_means(arr: np.ndarray, frac: float = 0.1) -> dict[str, np.ndarray]:
    """Mean colour of a small square well inside each corner patch."""
    h, w = arr.shape[:2]
    ch, cw = max(1, int(h * frac)), max(1, int(w * frac))
    a = arr.astype(np.float64)
    return {
        "tl": a[:ch, :cw].reshape(-1, 3).mean(0),
        "tr": a[:ch, -cw:].reshape(-1, 3).mean(0),
        "bl": a[-ch:, :cw].reshape(-1, 3).mean(0),
        "br": a[-ch:, -cw:].reshape(-1, 3).mean(0),
        "centre": a[h // 2 - ch // 2 : h // 2 + ch // 2 + 1, w // 2 - cw // 2 : w // 2 + cw // 2 + 1]
        .reshape(-1, 3)
        .mean(0),
    }


def close_to(value, colour, tol: float = 25.0) -> bool:
    return bool(np.abs(np.asarray(value, np.float64) - np.asarray(colour, np.float64)).max() <= tol)


def jpeg_with_orientation(img: Image.Image, orientation: int, **kwargs) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(img, "JPEG", exif=exif, quality=95, **kwargs)


def png_header_only(width: int, height: int, bit_depth: int = 1, colour_type: int = 0) -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height`` with a token IDAT: tiny on disk, huge when decoded."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


# --- hostile and broken files -------------------------------------------------------------------


def test_zero_byte_file_is_empty_file(tmp_path: Path):
    assert decode_kind(b"") == "empty-file"
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    result = prepare_image(path, 64)
    assert isinstance(result, Failed)
    assert result.kind == "empty-file"
    assert result.size == 0
    assert result.mtime_ns == path.stat().st_mtime_ns


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.9])
def test_truncated_jpeg_is_truncated(fraction: float):
    data = encode(photo_like(320, 240, 1), "JPEG", quality=90)
    assert decode_kind(data[: int(len(data) * fraction)]) == "truncated"


def test_truncated_png_is_truncated():
    data = encode(photo_like(160, 120, 2), "PNG")
    assert decode_kind(data[: len(data) // 2]) == "truncated"


@pytest.mark.parametrize("keep", [3, 40, 120, 400])
def test_jpeg_cut_inside_its_header_raises_decode_error_not_oserror(keep: int):
    """However short the cut, decoding fails with a DecodeError reason code, never a raw Pillow exception."""
    data = encode(photo_like(320, 240, 1), "JPEG", quality=90)
    assert decode_kind(data[:keep]) in {"truncated", "not-an-image"}


def test_jpeg_cut_inside_its_header_fails_cleanly_in_prepare(tmp_path: Path):
    path = tmp_path / "cut.jpg"
    path.write_bytes(encode(photo_like(320, 240, 1), "JPEG")[:40])
    result = prepare_image(path, 64)
    assert isinstance(result, Failed)
    assert result.kind in {"truncated", "not-an-image"}


def test_text_file_named_jpg_is_not_an_image(tmp_path: Path):
    assert decode_kind(b"these are my holiday notes\nnot a picture at all\n") == "not-an-image"
    path = tmp_path / "notes.jpg"
    path.write_text("these are my holiday notes\n")
    result = prepare_image(path, 64)
    assert isinstance(result, Failed)
    assert result.kind == "not-an-image"
    assert result.size == path.stat().st_size


def test_random_bytes_are_not_an_image():
    rng = np.random.default_rng(7)
    assert decode_kind(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes()) == "not-an-image"


@pytest.mark.parametrize("side", [14_000, 20_000, 60_000])
def test_decompression_bomb_png_is_refused_as_too_large(side: int):
    assert side * side > MAX_PIXELS
    data = png_header_only(side, side)
    assert len(data) < 200  # a few bytes on disk claiming hundreds of megapixels
    assert decode_kind(data) == "too-large"


def test_decompression_bomb_is_refused_through_prepare(tmp_path: Path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(20_000, 20_000))
    result = prepare_image(path, 64)
    assert isinstance(result, Failed)
    assert result.kind == "too-large"


def test_file_over_the_byte_limit_is_refused_before_reading(tmp_path: Path, monkeypatch):
    path = save_photo(tmp_path / "a.jpg", 64, 48)
    monkeypatch.setattr(prepare_mod, "MAX_FILE_BYTES", path.stat().st_size - 1)
    result = prepare_image(path, 32)
    assert isinstance(result, Failed)
    assert result.kind == "too-large"


def test_fifo_or_folder_given_to_prepare_fails_as_not_a_file_without_blocking(tmp_path: Path):
    """A pipe swapped in under an image's name after the scan must not hang a decode worker."""
    from tests.helpers.deadline import deadline

    os.mkfifo(tmp_path / "pipe.jpg")
    (tmp_path / "folder.jpg").mkdir()
    with deadline(10):
        results = [prepare_image(tmp_path / "pipe.jpg", 64), prepare_image(tmp_path / "folder.jpg", 64)]
    for result in results:
        assert isinstance(result, Failed)
        assert result.kind == "not-a-file"
        assert result.message


def test_missing_file_is_unreadable(tmp_path: Path):
    result = prepare_image(tmp_path / "gone.jpg", 64, size=10, mtime_ns=5)
    assert isinstance(result, Failed)
    assert result.kind == "unreadable"


# --- pixel modes ----------------------------------------------------------------------------------


def test_cmyk_jpeg_decodes_to_matching_rgb():
    src = photo_like(96, 64, 3)
    data = encode(src.convert("CMYK"), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    img, full = decode_oriented_rgb(data, 64)
    assert img.mode == "RGB"
    assert full == (96, 64)
    assert img.size == (96, 64)
    diff = np.abs(np.asarray(img, np.int16) - np.asarray(src, np.int16))
    assert diff.mean() < 6  # colours survive, not inverted (an inverted CMYK would differ by ~100)


def test_16bit_grayscale_png_is_scaled_not_clipped():
    values = np.array([[0, 256, 32768, 65535], [65535, 32768, 256, 0]], dtype=np.uint16)
    data = encode(Image.fromarray(values), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    img, full = decode_oriented_rgb(data, FULL_SIZE)
    assert img.mode == "RGB"
    assert full == (4, 2)
    arr = np.asarray(img)
    assert arr.dtype == np.uint8
    assert (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all()
    gray = arr[..., 0].astype(int)
    assert gray[0, 0] == 0
    assert gray[0, 1] <= 2  # 256/65535 of full scale is dark, not clipped to white
    assert abs(gray[0, 2] - 128) <= 1
    assert gray[0, 3] == 255
    assert gray[1].tolist() == gray[0][::-1].tolist()


def test_16bit_grayscale_tiff_is_scaled():
    values = np.array([[0, 32768, 65535]], dtype=np.uint16)
    img, _ = decode_oriented_rgb(encode(Image.fromarray(values), "TIFF"), FULL_SIZE)
    gray = np.asarray(img)[..., 0].astype(int)
    assert gray[0, 0] == 0 and abs(gray[0, 1] - 128) <= 1 and gray[0, 2] == 255


def test_16bit_gradient_keeps_its_order_and_range():
    ramp = np.linspace(0, 65535, 256).astype(np.uint16)[None, :].repeat(4, axis=0)
    img, _ = decode_oriented_rgb(encode(Image.fromarray(ramp), "PNG"), FULL_SIZE)
    gray = np.asarray(img)[0, :, 0].astype(int)
    assert gray[0] == 0 and gray[-1] == 255
    assert (np.diff(gray) >= 0).all()
    assert len(set(gray.tolist())) > 200  # a real ramp, not a few clipped levels


def test_16bit_values_map_to_the_nearest_8bit_level_exactly():
    every = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    gray = np.asarray(to_rgb(Image.fromarray(every)))[..., 0]
    expected = np.clip(np.round(every.astype(np.float64) * 255 / 65535), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(gray, expected)


@pytest.mark.parametrize("mode, values, expected", [
    ("I", [[-5, 0, 100, 255]], [[0, 0, 100, 255]]),  # 32-bit values within 0..255 are taken as they are
    ("I", [[0, 300, 65535, 70000]], [[0, 1, 255, 255]]),  # over 255: a 16-bit range
    ("F", [[-1.0, 0.0, 1.0, 3.0]], [[0, 64, 128, 255]]),  # float: stretched over what is there
])
def test_32bit_and_float_pixels_are_scaled_like_before(mode, values, expected):
    arr = np.array(values, dtype=np.float32 if mode == "F" else np.int32)
    gray = np.asarray(to_rgb(Image.fromarray(arr, mode)))[..., 0]
    np.testing.assert_array_equal(gray, np.array(expected, np.uint8))


def test_16bit_image_is_converted_in_blocks_and_reduced_towards_the_input_size():
    ramp = np.linspace(0, 65535, 3000).astype(np.uint16)[None, :].repeat(1000, axis=0)  # 3 M pixels: 3 blocks
    img, full = decode_oriented_rgb(encode(Image.fromarray(ramp), "TIFF"), 224)
    assert full == (3000, 1000)
    assert img.mode == "RGB" and img.size == (750, 250)  # reduced by 4, each side still over 224
    gray = np.asarray(img)[..., 0].astype(int)
    assert (gray == gray[0]).all()  # every row the same: no block seam
    expected = np.round(ramp[0].astype(np.float64) * 255 / 65535).reshape(750, 4).mean(axis=1)
    assert np.abs(gray[0] - expected).max() <= 1


def test_8bit_grayscale_becomes_equal_rgb_channels():
    values = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (8, 1))
    img, full = decode_oriented_rgb(encode(Image.fromarray(values, "L"), "PNG"), 1)
    arr = np.asarray(img)
    assert img.mode == "RGB" and full == (64, 8)
    for c in range(3):
        assert (arr[..., c] == values).all()


def test_palette_png_with_transparency_is_flattened_onto_white():
    pal = Image.new("P", (40, 20), 0)
    pal.putpalette([0, 0, 0, 200, 30, 30, 30, 30, 200] + [0] * (256 * 3 - 9))
    pal.paste(1, (0, 0, 20, 20))  # left half red
    pal.paste(2, (20, 0, 40, 10))  # top right blue
    # bottom right stays index 0 (black) and index 0 is fully transparent
    data = encode(pal, "PNG", transparency=0)
    assert Image.open(io.BytesIO(data)).mode == "P"
    img, _ = decode_oriented_rgb(data, 1)
    arr = np.asarray(img)
    assert img.mode == "RGB"
    assert tuple(arr[5, 5]) == (200, 30, 30)
    assert tuple(arr[5, 30]) == (30, 30, 200)
    assert tuple(arr[15, 30]) == (255, 255, 255)  # transparent black becomes white, not black


def test_palette_png_with_per_entry_alpha_is_flattened_onto_white():
    pal = Image.new("P", (10, 10), 0)
    pal.putpalette([0, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 6))
    pal.paste(1, (0, 0, 5, 10))
    data = encode(pal, "PNG", transparency=bytes([0, 255]))
    arr = np.asarray(decode_oriented_rgb(data, 1)[0])
    assert tuple(arr[0, 0]) == (0, 0, 255)
    assert tuple(arr[0, 9]) == (255, 255, 255)


def test_rgba_alpha_is_composited_onto_white():
    rgba = np.zeros((10, 30, 4), np.uint8)
    rgba[:, :10] = (0, 0, 0, 0)  # transparent black -> white
    rgba[:, 10:20] = (0, 0, 255, 255)  # opaque blue stays blue
    rgba[:, 20:] = (0, 0, 0, 128)  # half transparent black -> mid grey
    img, full = decode_oriented_rgb(encode(Image.fromarray(rgba, "RGBA"), "PNG"), 1)
    arr = np.asarray(img).astype(int)
    assert img.mode == "RGB" and full == (30, 10)
    assert (arr[:, :10] == 255).all()
    assert (arr[:, 10:20] == (0, 0, 255)).all()
    assert (np.abs(arr[:, 20:] - 127) <= 2).all()


def test_la_mode_alpha_is_composited_onto_white():
    la = Image.merge("LA", (Image.new("L", (8, 8), 0), Image.new("L", (8, 8), 0)))
    la.paste(Image.merge("LA", (Image.new("L", (4, 8), 50), Image.new("L", (4, 8), 255))), (0, 0))
    arr = np.asarray(decode_oriented_rgb(encode(la, "PNG"), 1)[0])
    assert (arr[:, :4] == 50).all()
    assert (arr[:, 4:] == 255).all()


def test_to_rgb_leaves_rgb_alone_and_handles_float_mode():
    rgb = photo_like(20, 10, 4)
    assert to_rgb(rgb) is rgb
    f = Image.fromarray(np.linspace(-1.0, 3.0, 50, dtype=np.float32).reshape(5, 10), "F")
    arr = np.asarray(to_rgb(f))[..., 0].astype(int)
    assert arr.min() == 0 and arr.max() == 255


# --- EXIF orientation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "orientation, expected_corner, swapped",
    [
        (1, "tl", False),
        (3, "br", False),  # rotated 180
        (6, "tr", True),  # stored sideways, shown rotated 90 degrees clockwise
        (8, "bl", True),  # stored sideways, shown rotated 90 degrees counter-clockwise
    ],
)
def test_exif_orientation_is_applied(orientation: int, expected_corner: str, swapped: bool):
    width, height = 240, 160
    data = jpeg_with_orientation(marked(width, height, "tl"), orientation)
    img, full = decode_oriented_rgb(data, 64)
    expected_size = (height, width) if swapped else (width, height)
    assert full == expected_size
    assert (img.size[0] > img.size[1]) == (expected_size[0] > expected_size[1])
    means = corner_means(np.asarray(img))
    assert close_to(means[expected_corner], RED), means
    for corner in {"tl", "tr", "bl", "br"} - {expected_corner}:
        assert close_to(means[corner], GREY), (corner, means)


@pytest.mark.parametrize("orientation, expected", [(6, ("tr", "br", "tl", "bl")), (8, ("bl", "tl", "br", "tr"))])
def test_exif_rotation_moves_every_corner(orientation: int, expected: tuple[str, str, str, str]):
    """Stored tl red, tr green, bl blue, br yellow land in the rotated corners (not a mirror image)."""
    data = jpeg_with_orientation(four_corners(200, 120), orientation)
    img, full = decode_oriented_rgb(data, 32)
    assert full == (120, 200)
    means = corner_means(np.asarray(img))
    for colour, corner in zip((RED, GREEN, BLUE, YELLOW), expected):
        assert close_to(means[corner], colour), (corner, means)


def test_broken_orientation_value_keeps_stored_orientation():
    data = jpeg_with_orientation(marked(120, 80, "tl"), 42)
    img, full = decode_oriented_rgb(data, 16)
    assert full == (120, 80)
    assert close_to(corner_means(np.asarray(img))["tl"], RED)


# --- reduced decoding -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_jpeg() -> bytes:
    return encode(four_corners(4000, 3000), "JPEG", quality=85)


@pytest.mark.parametrize("min_size", [64, 224, 300, 500, 1000])
def test_large_jpeg_is_decoded_reduced(big_jpeg: bytes, min_size: int):
    img, full = decode_oriented_rgb(big_jpeg, min_size)
    assert full == (4000, 3000)
    w, h = img.size
    assert w >= min_size and h >= min_size
    assert w <= 2000 and h <= 1500  # at most half of each side
    assert abs(w / h - 4 / 3) < 0.01
    # as reduced as libjpeg allows: another halving would go under min_size, or 1/8 is reached
    assert min(w, h) < 2 * min_size or w <= 500
    means = corner_means(np.asarray(img))
    for colour, corner in zip((RED, GREEN, BLUE, YELLOW), ("tl", "tr", "bl", "br")):
        assert close_to(means[corner], colour)


def test_reduction_never_goes_under_min_size_on_the_short_side():
    data = encode(Image.new("RGB", (4000, 500), GREY), "JPEG")
    img, full = decode_oriented_rgb(data, 224)
    assert full == (4000, 500)
    assert img.size[1] >= 224 and img.size[0] >= 224
    assert img.size == (2000, 250)


def test_large_rotated_jpeg_is_reduced_and_rotated():
    data = jpeg_with_orientation(marked(4000, 3000, "tl"), 6)
    img, full = decode_oriented_rgb(data, 224)
    assert full == (3000, 4000)
    w, h = img.size
    assert h > w
    assert 224 <= w <= 1500 and 224 <= h <= 2000
    assert close_to(corner_means(np.asarray(img))["tr"], RED)


def test_mpo_camera_jpeg_is_decoded_reduced():
    """Many cameras write MPO files (a JPEG with extra frames); they must get the fast reduced decode too."""
    first = four_corners(4000, 3000)
    data = encode(first, "MPO", save_all=True, append_images=[Image.new("RGB", (400, 300), GREY)], quality=85)
    assert Image.open(io.BytesIO(data)).format == "MPO"
    img, full = decode_oriented_rgb(data, 224)
    assert full == (4000, 3000)
    assert min(img.size) >= 224 and img.size[0] <= 2000 and img.size[1] <= 1500
    assert close_to(corner_means(np.asarray(img))["tl"], RED)


def test_small_image_is_not_reduced_below_min_size():
    data = encode(photo_like(300, 200, 5), "JPEG")
    img, full = decode_oriented_rgb(data, 224)
    assert full == (300, 200)
    assert img.size == (300, 200)


# --- formats --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fmt, kwargs, tol",
    [("WEBP", {"quality": 95}, 8.0), ("WEBP", {"lossless": True}, 0.0), ("TIFF", {}, 0.0),
     ("TIFF", {"compression": "tiff_lzw"}, 0.0), ("PNG", {}, 0.0), ("JPEG", {"quality": 95}, 6.0)],
)
def test_formats_decode_to_the_same_picture(fmt: str, kwargs: dict, tol: float):
    src = photo_like(160, 120, 6)
    img, full = decode_oriented_rgb(encode(src, fmt, **kwargs), 64)
    assert img.mode == "RGB" and full == (160, 120) and img.size == (160, 120)
    assert np.abs(np.asarray(img, np.int16) - np.asarray(src, np.int16)).mean() <= tol


# --- prepare_image --------------------------------------------------------------------------------


def test_prepare_image_hashes_file_bytes_and_squashes_whole_frame(tmp_path: Path):
    path = tmp_path / "corners.png"
    four_corners(400, 200).save(path)
    result = prepare_image(path, 64)
    assert isinstance(result, Prepared), result
    data = path.read_bytes()
    st = path.stat()
    assert result.hash == hashlib.sha256(data).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{16}", result.phash)
    assert (result.width, result.height) == (400, 200)
    assert (result.size, result.mtime_ns) == (st.st_size, st.st_mtime_ns)
    assert result.path == path
    assert result.pixels.shape == (64, 64, 3) and result.pixels.dtype == np.uint8
    means = corner_means(result.pixels)
    # squashed, not cropped: every corner patch is still in its corner and the centre is grey
    for colour, corner in zip((RED, GREEN, BLUE, YELLOW), ("tl", "tr", "bl", "br")):
        assert close_to(means[corner], colour, tol=5), (corner, means)
    assert close_to(means["centre"], GREY, tol=5)


@pytest.mark.parametrize("input_size", [32, 224])
def test_prepare_image_pixels_have_the_input_size(tmp_path: Path, input_size: int):
    path = save_photo(tmp_path / "p.jpg", 320, 240, seed=8)
    result = prepare_image(path, input_size)
    assert isinstance(result, Prepared)
    assert result.pixels.shape == (input_size, input_size, 3)
    assert result.pixels.dtype == np.uint8


def test_prepare_image_with_non_ascii_name(tmp_path: Path):
    folder = tmp_path / "Été 2023 — 旅行"
    path = save_photo(folder / "café 写真.jpg", 200, 150, seed=9)
    result = prepare_image(path, 48)
    assert isinstance(result, Prepared), result
    assert result.path == path
    assert result.hash == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (result.width, result.height) == (200, 150)


def test_prepare_image_on_rotated_jpeg_reports_upright_size_and_pixels(tmp_path: Path):
    path = tmp_path / "rot.jpg"
    path.write_bytes(jpeg_with_orientation(marked(300, 200, "tl"), 6))
    result = prepare_image(path, 64)
    assert isinstance(result, Prepared)
    assert (result.width, result.height) == (200, 300)
    assert close_to(corner_means(result.pixels)["tr"], RED)
    assert close_to(corner_means(result.pixels)["tl"], GREY)


def test_prepare_image_phash_ignores_reduced_decoding(tmp_path: Path):
    """The same picture as a big JPEG (decoded at 1/8) and a small PNG gets nearly the same pHash."""
    from cropkit.extract.phash import hamming

    src = photo_like(1600, 1200, 10)
    big = tmp_path / "big.jpg"
    src.save(big, quality=90)
    small = tmp_path / "small.png"
    src.resize((200, 150), Image.Resampling.LANCZOS).save(small)
    a, b = prepare_image(big, 64), prepare_image(small, 64)
    assert isinstance(a, Prepared) and isinstance(b, Prepared)
    assert hamming(a.phash, b.phash) <= 6
    assert a.hash != b.hash


def test_prepare_image_leaves_the_source_untouched(tmp_path: Path):
    folder = tmp_path / "lib"
    paths = [save_photo(folder / "a.jpg", seed=1), save_photo(folder / "b.png", seed=2),
             save_photo(folder / "c.webp", seed=3), save_photo(folder / "d.tif", seed=4)]
    before = snapshot(folder)
    for path in paths:
        assert isinstance(prepare_image(path, 32), Prepared)
    assert changed_entries(before, snapshot(folder)) == {}


def test_squash_to_square_keeps_the_whole_frame():
    arr = squash_to_square(four_corners(300, 100), 40)
    assert arr.shape == (40, 40, 3) and arr.dtype == np.uint8
    means = corner_means(arr)
    assert close_to(means["tl"], RED, 5) and close_to(means["br"], YELLOW, 5)
