"""pHash: stable under resizing and recompression, far apart for different pictures."""

from __future__ import annotations

import io
import itertools
import re

import numpy as np
import pytest
from PIL import Image

from cropkit.extract.phash import hamming, phash64
from tests.libgen import photo_like

SEEDS = range(8)


def jpeg_roundtrip(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    buf.seek(0)
    out = Image.open(buf)
    out.load()
    return out


@pytest.fixture(scope="module")
def originals() -> dict[int, Image.Image]:
    return {seed: photo_like(480, 360, seed) for seed in SEEDS}


def test_format_is_16_lowercase_hex_digits(originals):
    for img in originals.values():
        h = phash64(img)
        assert re.fullmatch(r"[0-9a-f]{16}", h), h


def test_uses_all_64_bits_and_keeps_leading_zeros():
    """Bits are balanced around the median, so a hash has ~32 ones; leading zero bits keep the length at 16."""
    for seed in SEEDS:
        h = phash64(photo_like(128, 96, seed))
        assert len(h) == 16
        assert 16 <= int(h, 16).bit_count() <= 48


def test_deterministic(originals):
    for img in originals.values():
        assert phash64(img) == phash64(img.copy())


def test_flat_image_still_gives_a_hash():
    h = phash64(Image.new("RGB", (50, 40), (90, 90, 90)))
    assert re.fullmatch(r"[0-9a-f]{16}", h)


@pytest.mark.parametrize("seed", SEEDS)
def test_stable_under_resize(originals, seed: int):
    img = originals[seed]
    h = phash64(img)
    for size in [(160, 120), (240, 180), (960, 720), (1200, 900)]:
        for method in (Image.Resampling.BILINEAR, Image.Resampling.LANCZOS):
            assert hamming(h, phash64(img.resize(size, method))) <= 6, (size, method)


@pytest.mark.parametrize("seed", SEEDS)
def test_stable_under_jpeg_recompression(originals, seed: int):
    img = originals[seed]
    h = phash64(img)
    for quality in (95, 75, 40):
        assert hamming(h, phash64(jpeg_roundtrip(img, quality))) <= 6, quality
    twice = jpeg_roundtrip(jpeg_roundtrip(img.resize((200, 150), Image.Resampling.BICUBIC), 70), 50)
    assert hamming(h, phash64(twice)) <= 6


def test_stable_under_mode_changes(originals):
    img = originals[0]
    h = phash64(img)
    assert hamming(h, phash64(img.convert("L"))) <= 2
    assert hamming(h, phash64(img.convert("RGBA"))) <= 2


def test_different_pictures_are_far_apart(originals):
    hashes = {seed: phash64(img) for seed, img in originals.items()}
    distances = [hamming(hashes[a], hashes[b]) for a, b in itertools.combinations(SEEDS, 2)]
    assert len(set(hashes.values())) == len(hashes)
    assert min(distances) >= 16, distances
    assert np.mean(distances) >= 24, distances


def test_different_pictures_stay_apart_after_recompression(originals):
    """A near-duplicate is always closer to its original than any other picture is."""
    hashes = {seed: phash64(img) for seed, img in originals.items()}
    for seed, img in originals.items():
        h = phash64(jpeg_roundtrip(img.resize((200, 150), Image.Resampling.BILINEAR), 60))
        own = hamming(h, hashes[seed])
        others = [hamming(h, hashes[s]) for s in SEEDS if s != seed]
        assert own + 8 <= min(others), (own, others)


def test_mirror_image_is_a_different_hash(originals):
    for img in list(originals.values())[:4]:
        assert hamming(phash64(img), phash64(img.transpose(Image.Transpose.FLIP_LEFT_RIGHT))) >= 8


def test_hamming():
    assert hamming("0" * 16, "0" * 16) == 0
    assert hamming("0" * 16, "f" * 16) == 64
    assert hamming("8000000000000000", "0000000000000001") == 2
    assert hamming("00000000000000ff", "000000000000000f") == 4
    a, b = "98a46bbb67c46499", "dc273858e738e255"
    assert hamming(a, b) == hamming(b, a) == bin(int(a, 16) ^ int(b, 16)).count("1")
