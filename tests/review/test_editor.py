"""Editing the crops of one image, without widgets or a proposer: hits, moves, resizes and the aspect lock."""

from __future__ import annotations

import pytest

from cropkit.review.editor import MIN_SIDE, CropBox, CropEditor, handle_points, resize_box


def editor(*boxes, aspect=None, width=400, height=300) -> CropEditor:
    return CropEditor(width, height, [CropBox(b, b) for b in boxes], aspect)


def test_resize_is_clamped_to_the_image():
    assert resize_box((10, 10, 50, 50), "se", 500, 500, None, 100, 80) == (10, 10, 100, 80)
    x0, y0, x1, y1 = resize_box((10, 10, 50, 50), "se", 500, 500, 1.0, 100, 80)
    assert (x0, y0) == (10, 10) and x1 - x0 == pytest.approx(y1 - y0) and y1 == pytest.approx(80)
    assert resize_box((10, 10, 50, 50), "w", 60, 30, None, 100, 80) == (42, 10, 50, 50)  # at least MIN_SIDE wide


@pytest.mark.parametrize("handle", ["n", "e", "s", "w", "ne", "se", "sw", "nw"])
def test_every_handle_keeps_a_locked_aspect_and_its_opposite_side(handle):
    start = (100.0, 80.0, 180.0, 180.0)  # 4:5
    x, y = handle_points(start)[handle]
    out = resize_box(start, handle, x + 13, y + 7, 0.8, 400, 300)
    assert (out[2] - out[0]) / (out[3] - out[1]) == pytest.approx(0.8)
    opposite = {"n": "s", "s": "n", "e": "w", "w": "e", "ne": "sw", "sw": "ne", "se": "nw", "nw": "se"}[handle]
    assert handle_points(out)[opposite] == pytest.approx(handle_points(start)[opposite])
    assert 0 <= out[0] < out[2] <= 400 and 0 <= out[1] < out[3] <= 300


def test_hit_finds_handles_before_insides_and_the_active_crop_wins():
    e = editor((50, 50, 150, 150), (100, 100, 200, 200))
    assert e.hit(150, 150, tolerance=5) == (0, "se")  # also inside crop 1: the handle of the active crop first
    assert e.hit(100, 100, tolerance=5) == (1, "nw")  # inside crop 0, but any crop's handle comes first
    assert e.hit(125, 125, tolerance=5) == (0, "move")
    e.active = 1
    assert e.hit(125, 125, tolerance=5) == (1, "move")
    assert e.hit(200, 150, tolerance=5) == (1, "e")
    assert e.hit(300, 280, tolerance=5) is None


def test_moving_a_crop_keeps_its_size_and_stops_at_the_edge():
    e = editor((50, 50, 150, 130))
    assert e.press(100, 90) and e.dragging
    e.move(110, 95)
    assert e.boxes[0].box == pytest.approx((60, 55, 160, 135))
    e.move(1000, -1000)  # far outside: the crop stops at the image's edge, same size
    assert e.boxes[0].box == pytest.approx((300, 0, 400, 80))
    e.release()
    e.move(100, 90)
    assert not e.dragging and e.boxes[0].box == pytest.approx((300, 0, 400, 80))
    assert e.boxes[0].changed and not CropBox((1, 2, 3, 4), (1.3, 2, 3, 4)).changed


def test_press_on_nothing_starts_no_drag_and_a_resize_keeps_the_minimum_side():
    e = editor((50, 50, 150, 150))
    assert not e.press(300, 250) and not e.dragging
    assert e.press(150, 150)  # the south-east corner
    e.move(0, 0)
    assert e.boxes[0].box == pytest.approx((50, 50, 50 + MIN_SIDE, 50 + MIN_SIDE))


def test_set_aspect_refits_only_the_active_crop_about_its_centre():
    e = editor((40, 40, 200, 120), (10, 10, 60, 60))
    e.set_aspect(1.0)
    x0, y0, x1, y1 = e.boxes[0].box
    assert x1 - x0 == pytest.approx(y1 - y0) and ((x0 + x1) / 2, (y0 + y1) / 2) == pytest.approx((120, 80))
    assert e.boxes[1].box == (10, 10, 60, 60)
    e.set_aspect(None)
    assert e.aspect is None and e.boxes[0].box == (x0, y0, x1, y1)  # free: nothing to refit
    assert e.press(x1, y1, tolerance=1)
    e.move(x1 + 30, y1)  # free again: only the width changes
    assert e.boxes[0].box == pytest.approx((x0, y0, x1 + 30, y1))


def test_add_box_is_centred_at_the_locked_aspect_and_becomes_active():
    e = editor((10, 10, 60, 60), aspect=16 / 9)
    e.add_box()
    assert e.active == 1 and e.boxes[1].suggested is None and e.boxes[1].changed
    x0, y0, x1, y1 = e.boxes[1].box
    assert (x1 - x0) / (y1 - y0) == pytest.approx(16 / 9) and x1 - x0 == pytest.approx(0.6 * 400)
    assert ((x0 + x1) / 2, (y0 + y1) / 2) == pytest.approx((200, 150))
