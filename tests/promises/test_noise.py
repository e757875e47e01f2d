"""Noise (issue 22, finding 24): what cropkit already reports, or can say in one clear line, never reaches the
user as a library's raw warning or log line, and an echoed value is cut to 80 characters."""

from __future__ import annotations

import io
import logging
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from cropkit.cli import main


def _huge_header_jpeg(path: Path, width: int = 16_000, height: int = 12_500) -> Path:
    """A small JPEG whose header claims width x height pixels (200 MP: over the limit, under Pillow's error)."""
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (90, 120, 60)).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(data))
    return path


def test_a_float_tiff_with_nan_and_infinities_decodes_without_numpy_warnings():
    from cropkit.extract.decode import decode_oriented_rgb

    pixels = np.tile(np.linspace(0.0, 1.0, 400, dtype=np.float32), (300, 1))
    pixels[10:20], pixels[50], pixels[60] = np.nan, np.inf, -np.inf
    buf = io.BytesIO()
    Image.fromarray(pixels, "F").save(buf, "TIFF")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "invalid value encountered" is a RuntimeWarning
        img, size = decode_oriented_rgb(buf.getvalue(), 64)
    gray = np.asarray(img)[..., 0].astype(int)
    assert size == (400, 300)
    assert gray[0, 0] < 10 and gray[0, -1] > 245  # the finite range is stretched, not crushed to black by inf


def test_a_picture_over_the_pixel_limit_gives_no_raw_pillow_warning_on_import(tmp_path: Path):
    images = tmp_path / "root" / "data" / "training_data"
    _huge_header_jpeg(images / "big.jpg")
    with warnings.catch_warnings(record=True) as caught:  # outside pytest these print to stderr
        warnings.simplefilter("always")
        assert main(["import", "xmp", "--root", str(tmp_path / "root")]) == 0
    assert [w.message for w in caught if issubclass(w.category, Image.DecompressionBombWarning)] == []


def test_a_5000_digit_parameter_is_echoed_cut_to_80_characters(tmp_path: Path, capfd):
    for name, value in [("steps", "1" * 5000), ("x" * 5000, "1"), ("device", "{" + "a" * 5000 + ": 1}")]:
        assert main(["notebooks", "--root", str(tmp_path / "root"), "-p", name, value]) == 2
        err = capfd.readouterr().err
        assert "1" * 81 not in err and "x" * 81 not in err and "a" * 81 not in err and len(err) < 600, err[:300]


def test_bench_builds_its_random_encoder_without_open_clips_warning(tmp_path: Path, caplog):
    from cropkit.bench.extract import checkpoint_file
    from cropkit.features.encoders.open_clip import register_arch_configs
    from tests.conftest import TINY, TINY_CONFIG

    register_arch_configs(TINY_CONFIG)
    with caplog.at_level(logging.WARNING):
        assert checkpoint_file(tmp_path, TINY).is_file()
    assert "No pretrained weights loaded" not in caplog.text
