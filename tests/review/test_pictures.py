"""Reading pictures and companions for the reviewer: preview sizes, the cache, prefetch, the full-resolution
visible part, and unreadable files as errors, never a crash."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from cropkit.errors import CropkitError
from cropkit.extract.decode import DecodeError
from cropkit.review.pictures import KEEP_PREVIEWS, Pictures, read_companion
from cropkit.review.viewport import Viewport
from tests.libgen import save_photo


def test_previews_are_compressed_display_size_jpegs(library):
    pictures = Pictures(900, 600)
    for path in sorted((library / "data/training_data").glob("*.jpg"))[:4]:
        jpeg, w, h = pictures.preview(path)
        assert jpeg[:2] == b"\xff\xd8" and w <= 900 and h <= 600
        assert len(jpeg) < w * h  # compressed, not raw pixels
        assert Image.open(io.BytesIO(jpeg)).size == (w, h)


def test_a_large_photo_is_fitted_to_the_canvas_keeping_its_aspect(tmp_path):
    path = save_photo(tmp_path / "wide.jpg", 2000, 1000, quality=90)
    jpeg, w, h = Pictures(900, 600).preview(path)
    assert (w, h) == (900, 450) and Image.open(io.BytesIO(jpeg)).size == (900, 450)
    _, w, h = Pictures(300, 600).preview(path)
    assert (w, h) == (300, 150)


def test_the_cache_keeps_the_last_previews_and_serves_them_without_reading_again(tmp_path):
    paths = [save_photo(tmp_path / f"p{i}.jpg", 320, 240, seed=i) for i in range(5)]
    pictures = Pictures(900, 600)
    made = {p: pictures.preview(p) for p in paths}
    assert pictures.cached() == paths[-KEEP_PREVIEWS:]
    paths[-1].unlink()  # gone from disk: the cached preview is still there
    assert pictures.preview(paths[-1]) == made[paths[-1]]
    assert pictures.preview(paths[0]) == made[paths[0]] and pictures.cached()[-1] == paths[0]


def test_prefetch_prepares_the_preview_in_the_background(tmp_path):
    path = save_photo(tmp_path / "next.jpg", 640, 480)
    pictures = Pictures(900, 600)
    thread = pictures.prefetch(path)
    thread.join(60)
    assert not thread.is_alive() and pictures.cached() == [path]
    expected = pictures.preview(path)
    path.unlink()
    assert pictures.preview(path) == expected


@pytest.mark.parametrize("bad", ["truncated", "missing", "not an image"])
def test_an_unreadable_image_is_an_error_not_a_crash(tmp_path, bad):
    path = save_photo(tmp_path / "bad.jpg", 640, 480)
    if bad == "truncated":
        path.write_bytes(path.read_bytes()[:2000])
    elif bad == "missing":
        path.unlink()
    else:
        path.write_text("rating: 5\n")
    pictures = Pictures(900, 600)
    thread = pictures.prefetch(path)
    thread.join(60)
    assert not thread.is_alive() and pictures.cached() == []  # the prefetch gave up quietly
    with pytest.raises((DecodeError, CropkitError)):  # the widget shows it as "can't be read: ..."
        pictures.preview(path)


def test_zoomed_past_the_preview_the_visible_part_comes_from_the_full_image(tmp_path):
    path = save_photo(tmp_path / "big.jpg", 2000, 1000, quality=95)
    pictures, view = Pictures(900, 600), Viewport(900, 600, 2000, 1000)
    jpeg, box = pictures.for_view(path, view)
    assert box == (0, 0, 2000, 1000) and jpeg == pictures.preview(path)[0] and pictures.full is None
    view.zoom_by(4, (100, 300))
    jpeg, (x0, y0, x1, y1) = pictures.for_view(path, view)
    assert (x0, y0, x1, y1) == view.visible() and pictures.full[1].size == (2000, 1000)
    shown = Image.open(io.BytesIO(jpeg))
    assert shown.size == (round((x1 - x0) * view.scale), round((y1 - y0) * view.scale))
    original = Image.open(path).convert("RGB").crop((x0, y0, x1, y1)).resize(shown.size)
    assert np.abs(np.asarray(shown, float) - np.asarray(original, float)).mean() < 8  # the same place
    view.pan_by(10_000, 0)  # panned off the canvas: nothing to draw, not an error
    assert pictures.for_view(path, view) is None


def test_companions_are_shown_as_text_with_a_note_when_they_are_no_plain_yaml(tmp_path):
    image = tmp_path / "a.jpg"
    assert read_companion(image) == "(no companion .yaml)"
    (tmp_path / "a.yml").write_text("rating: 3\n")
    assert read_companion(image) == "rating: 3\n"
    (tmp_path / "a.yaml").write_text("!!python/object/apply:os.system ['touch pwned']\n")
    text = read_companion(image)
    assert text.startswith("(companion a.yaml is not valid YAML: ") and text.endswith("['touch pwned']\n")
    assert not (tmp_path / "pwned").exists()
