"""Editing the crops of one image, without widgets or a proposer: hits, moves, resizes and the aspect lock."""

from __future__ import annotations

import pytest

from cropkit.geometry import inside_turned
from cropkit.review.editor import MIN_SIDE, CropBox, CropEditor, handle_points, ratio_name, resize_box


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


def test_a_click_outside_every_crop_adds_none_and_a_resize_keeps_the_minimum_side():
    e = editor((50, 50, 150, 150))
    assert e.press(300, 250) == "draw"
    e.move(301, 251)  # under the drawing threshold: no crop yet
    e.release()
    assert len(e.boxes) == 1 and not e.dragging
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


def test_an_edge_is_grabbed_anywhere_along_it_not_only_at_its_handle():
    e = editor((100, 50, 300, 250))
    assert e.hit(300, 71, tolerance=6) == (0, "e")  # 21 px from the e handle's neighbour corner, 79 from "e"
    assert e.press(302, 71, tolerance=6) == "e"
    e.move(262, 90)  # dragged left (and a little down): only the right edge moves
    e.release()
    assert e.boxes[0].box == pytest.approx((100, 50, 260, 250))
    assert e.hit(180, 248, tolerance=6) == (0, "s") and e.hit(103, 247, tolerance=6) == (0, "sw")
    assert e.cursor(180, 248, 6) == "ns-resize" and e.cursor(150, 150, 6) == "move"
    assert e.cursor(350, 280, 6) == "crosshair"


def test_a_crop_drawn_outside_replaces_the_active_one_and_the_suggestion_is_then_modified():
    e = editor((10, 10, 60, 60))
    assert e.press(100, 100) == "draw"
    e.move(200, 150)
    e.release()
    assert len(e.boxes) == 1 and e.boxes[0].box == pytest.approx((100, 100, 200, 150))
    assert e.boxes[0].suggested == (10, 10, 60, 60) and e.boxes[0].changed  # logged as the suggestion, modified


def test_a_full_frame_crop_is_redrawn_by_dragging_inside_it():
    e = editor((0, 0, 400, 300))
    assert e.cursor(200, 150, 12) == "crosshair"  # nowhere to move it: a press inside draws
    assert e.press(200, 150) == "draw"
    e.move(300, 250)
    e.release()
    assert len(e.boxes) == 1 and e.boxes[0].box == pytest.approx((200, 150, 300, 250)) and e.boxes[0].changed
    assert e.press(250, 200) == "move"  # the drawn crop is smaller: inside moves it again


def test_dragging_outside_the_crops_with_add_draws_another_at_the_locked_aspect():
    e = editor((10, 10, 60, 60), aspect=1.5)
    assert e.press(100, 100, add=True) == "draw"
    e.move(160, 110)
    e.move(220, 130)  # 120 wide: the wider drag decides, 80 high at 3:2
    assert e.drawing and len(e.boxes) == 2 and e.active == 1
    e.release()
    assert e.boxes[1].box == pytest.approx((100, 100, 220, 180)) and e.boxes[1].added
    assert e.boxes[0].box == (10, 10, 60, 60)  # the suggestion is left as it was
    e.press(390, 290, add=True)  # drawn up and left from near the corner, beyond the image: kept inside at 3:2
    e.move(-500, 200)
    e.release()
    x0, y0, x1, y1 = e.boxes[2].box
    assert x0 >= 0 and (x1, y1) == pytest.approx((390, 290)) and (x1 - x0) / (y1 - y0) == pytest.approx(1.5)
    assert ratio_name(e.boxes[2].box) == "3:2" and ratio_name((0, 0, 110, 100)) == "1.10:1"


def test_nudge_remove_next_and_esc_back_to_the_suggestion():
    e = editor((50, 50, 150, 150))
    e.nudge(1, 0)
    e.nudge(0, -10)
    assert e.boxes[0].box == pytest.approx((51, 40, 151, 140)) and e.changed
    e.nudge(-1000, 0)
    assert e.boxes[0].box[0] == 0
    assert not e.remove_active()  # the suggestion is rejected, not removed
    e.add_box()
    assert e.active == 1 and e.remove_active() and len(e.boxes) == 1
    e.add_box()
    e.next_active()
    assert e.active == 0
    e.set_angle(4)
    e.reset()
    assert e.boxes[0].box == (50, 50, 150, 150) and len(e.boxes) == 1 and e.angle == 0 and not e.changed


def test_swap_orientation_keeps_the_centre_and_area():
    e = editor((100, 100, 200, 180))  # 100 x 80, free
    e.swap_orientation()
    x0, y0, x1, y1 = e.boxes[0].box
    assert (x1 - x0) / (y1 - y0) == pytest.approx(0.8) and (x1 - x0) * (y1 - y0) == pytest.approx(8000)
    assert ((x0 + x1) / 2, (y0 + y1) / 2) == pytest.approx((150, 140))


@pytest.mark.parametrize("angle", [-45, -12.5, 3, 30])
def test_straightening_keeps_every_crop_on_the_turned_image(angle):
    e = editor((0, 0, 400, 300), (300, 200, 390, 290), aspect=None)
    e.set_angle(angle)
    for b in e.boxes:
        assert inside_turned(b.box, angle, 400, 300)
    assert e.boxes[0].box[2] - e.boxes[0].box[0] < 400  # the full frame had to shrink
    x0, y0, x1, y1 = e.boxes[0].box
    assert ((x0 + x1) / 2, (y0 + y1) / 2) == pytest.approx((200, 150))  # about the centre
    before = e.boxes[0].box
    e.press((x0 + x1) / 2, (y0 + y1) / 2)  # dragging it towards a corner stops where the turned image ends
    e.move(2000, 2000)
    e.release()
    assert inside_turned(e.boxes[0].box, angle, 400, 300) and e.boxes[0].box != before
    e.set_angle(90)
    assert e.angle == 45


def test_shift_keeps_the_crops_own_ratio_while_resizing_a_corner_or_an_edge():
    e = editor((100, 100, 220, 190))  # 4:3, no aspect locked
    e.press(220, 190, keep_ratio=True)  # the south-east corner
    e.move(300, 200)  # dragged much wider than higher
    e.release()
    x0, y0, x1, y1 = e.boxes[0].box
    assert (x0, y0) == pytest.approx((100, 100)) and (x1 - x0) / (y1 - y0) == pytest.approx(120 / 90, rel=0.005)
    e.press(x1, (y0 + y1) / 2, keep_ratio=True)  # the east edge: the height follows
    e.move(x1 - 40, (y0 + y1) / 2)
    e.release()
    a, b, c, d = e.boxes[0].box
    assert (c - a) / (d - b) == pytest.approx(120 / 90, rel=0.005) and c == pytest.approx(x1 - 40)
    e.press(c, d)  # without Shift the corner resizes freely again
    e.move(c + 30, d)
    e.release()
    a, b, c2, d2 = e.boxes[0].box
    assert (c2 - a) / (d2 - b) != pytest.approx(120 / 90, rel=0.05)
