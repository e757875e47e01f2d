"""Box geometry and crop metrics against hand-computed values, plus properties over random boxes."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cropkit.geometry import (
    area,
    bde,
    clamp_box,
    denormalise,
    fit_box_to_aspect,
    iou,
    is_valid_box,
    normalise,
    parse_aspect,
)


def test_iou_hand_computed():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (5, 5, 15, 15)) == pytest.approx(25 / 175)
    assert iou((0, 0, 10, 10), (10, 0, 20, 10)) == 0.0  # touching edges share no area
    assert iou((0, 0, 4, 4), (1, 1, 3, 3)) == pytest.approx(4 / 16)


def test_bde_hand_computed():
    # edges move by 10 and 30 px horizontally on a 100 px wide image, 0 and 20 px vertically on 200 px
    assert bde((0, 0, 50, 100), (10, 0, 80, 120), 100, 200) == pytest.approx((0.1 + 0.3 + 0 + 0.1) / 4)
    assert bde((1, 2, 3, 4), (1, 2, 3, 4), 10, 10) == 0.0
    assert bde((0, 0, 100, 100), (50, 50, 100, 100), 100, 100) == pytest.approx(0.25)


def test_clamp_moves_inside_and_shrinks_only_when_too_big():
    assert clamp_box((-10, 5, 40, 25), 100, 100) == (0, 5, 50, 25)
    assert clamp_box((80, 90, 130, 120), 100, 100) == (50, 70, 100, 100)
    assert clamp_box((-5, -5, 300, 50), 100, 100) == (0, 0, 100, 55)


def test_parse_aspect():
    assert parse_aspect("4:5") == pytest.approx(0.8)
    assert parse_aspect("16:9") == pytest.approx(16 / 9)
    assert parse_aspect("1.5") == 1.5
    assert parse_aspect("free") is None and parse_aspect(None) is None
    assert parse_aspect("1:20") == 0.05 and parse_aspect("20:1") == 20.0
    for bad in ("4:0", "a:b", "-1:2", "0", "1e-20:1", "21:1", "1:21", "nan:1", "inf:1"):
        with pytest.raises(ValueError, match="aspect"):
            parse_aspect(bad)


def test_fit_box_to_aspect_keeps_centre_and_area():
    box = fit_box_to_aspect((20, 20, 80, 60), 1.0, 200, 200)  # 60x40 = 2400 px, centre (50, 40)
    w, h = box[2] - box[0], box[3] - box[1]
    assert w == pytest.approx(h) and w * h == pytest.approx(2400)
    assert ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2) == pytest.approx((50, 40))


def test_fit_box_to_aspect_shrinks_to_the_image():
    box = fit_box_to_aspect((0, 0, 100, 100), 16 / 9, 100, 100)  # a square image cannot hold 100x100 at 16:9
    assert box[0] >= 0 and box[2] <= 100 and (box[2] - box[0]) / (box[3] - box[1]) == pytest.approx(16 / 9)


def test_is_valid_box_rejects_every_malformed_box():
    assert is_valid_box([0, 0, 10, 10], 10, 10)
    for bad in ([0, 0, 11, 10], [-1, 0, 5, 5], [5, 0, 5, 5], [6, 0, 5, 5], [0, 0, 5], "0,0,5,5", None,
                [0, 0, float("nan"), 5], [0, 0, float("inf"), 5], [True, 0, 5, 5], ["0", 0, 5, 5]):
        assert not is_valid_box(bad, 10, 10), bad


boxes = st.tuples(st.floats(0, 90), st.floats(0, 90), st.floats(1, 100), st.floats(1, 100)).map(
    lambda t: (t[0], t[1], t[0] + t[2], t[1] + t[3]))


@given(boxes, boxes)
def test_iou_is_symmetric_and_bounded(a, b):
    assert iou(a, b) == pytest.approx(iou(b, a))
    assert 0.0 <= iou(a, b) <= 1.0 + 1e-12
    assert iou(a, a) == pytest.approx(1.0)


@given(boxes, st.sampled_from([None, 1.0, 0.8, 1.5, 16 / 9, 9 / 16]), st.integers(50, 400), st.integers(50, 400))
def test_fitted_boxes_are_inside_the_image_with_the_aspect(box, aspect, width, height):
    out = fit_box_to_aspect(box, aspect, width, height)
    assert -1e-6 <= out[0] < out[2] <= width + 1e-6 and -1e-6 <= out[1] < out[3] <= height + 1e-6
    if aspect is not None:
        assert (out[2] - out[0]) / (out[3] - out[1]) == pytest.approx(aspect, rel=1e-6)
        assert area(out) <= max(area(box), 1e-9) * (1 + 1e-6)


@given(boxes)
def test_normalise_round_trips(box):
    back = denormalise(normalise(box, 200, 150), 200, 150)
    assert all(math.isclose(a, b, abs_tol=1e-9) for a, b in zip(back, box))
