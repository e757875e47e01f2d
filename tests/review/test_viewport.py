"""Canvas <-> image coordinates: fitting, zoom about a point, pan, reset and the visible part."""

from __future__ import annotations

import itertools

import pytest

from cropkit.review.viewport import MAX_ZOOM, Viewport

POINTS = [(0, 0), (1200, 800), (37.5, 611.25), (600, 400), (-50, 900)]


def test_the_whole_image_fits_centred():
    wide = Viewport(900, 600, 1200, 600)
    assert wide.scale == pytest.approx(0.75) and wide.origin() == pytest.approx((0, 75))
    tall = Viewport(900, 600, 400, 600)
    assert tall.scale == pytest.approx(1.0) and tall.origin() == pytest.approx((250, 0))
    assert tall.to_canvas(400, 600) == pytest.approx((650, 600))
    assert Viewport(900, 600).scale == 1.0  # no image (yet): nothing to divide by


@pytest.mark.parametrize(("zoom", "pan"), list(itertools.product([1.0, 1.6, 4.0, 16.0],
                                                            [(0.0, 0.0), (120.0, -35.5), (-900.0, 400.0)])))
def test_canvas_and_image_points_round_trip(zoom, pan):
    view = Viewport(900, 600, 1200, 800, zoom=zoom, pan=pan)
    for x, y in POINTS:
        assert view.to_image(*view.to_canvas(x, y)) == pytest.approx((x, y))
        assert view.to_canvas(*view.to_image(x, y)) == pytest.approx((x, y))
    (ax, ay), (bx, by) = view.to_canvas(0, 0), view.to_canvas(100, 50)
    assert (bx - ax, by - ay) == pytest.approx((100 * view.scale, 50 * view.scale))
    assert view.scale == pytest.approx(0.75 * zoom)


@pytest.mark.parametrize("around", [None, (0.0, 0.0), (812.0, 77.0), (450.0, 599.0)])
def test_zoom_keeps_the_point_it_is_about_where_it_is(around):
    view = Viewport(900, 600, 1200, 800)
    fixed = around or (450.0, 300.0)
    for factor in (1.6, 2.5, 0.7, 3.0):
        under = view.to_image(*fixed)
        view.zoom_by(factor, around)
        assert view.to_canvas(*under) == pytest.approx(fixed)


def test_zoom_stays_between_one_and_the_maximum_and_back_at_one_is_centred():
    view = Viewport(900, 600, 1200, 800)
    view.zoom_by(1000, (10, 10))
    assert view.zoom == MAX_ZOOM
    view.pan_by(30, -20)
    view.zoom_by(1 / 1000, (10, 10))
    assert view.zoom == 1.0 and view.pan == (0.0, 0.0) and view.origin() == pytest.approx((0, 0))


def test_pan_moves_the_image_by_canvas_pixels_and_reset_fits_it_again():
    view = Viewport(900, 600, 1200, 800)
    view.zoom_by(2)
    before = view.to_canvas(300, 200)
    view.pan_by(25, -10)
    view.pan_by(5, 0)
    assert view.to_canvas(300, 200) == pytest.approx((before[0] + 30, before[1] - 10))
    view.reset()
    assert view.zoom == 1.0 and view.pan == (0.0, 0.0) and view.scale == pytest.approx(0.75)
    view.zoom_by(3)
    view.show(400, 600)  # another image: fitted, unzoomed
    assert view.zoom == 1.0 and view.scale == pytest.approx(1.0) and view.origin() == pytest.approx((250, 0))


def test_the_visible_part_is_what_lies_under_the_canvas():
    view = Viewport(900, 600, 1200, 800)
    assert view.visible() == (0, 0, 1200, 800)
    view.zoom_by(2)  # about the centre: the middle half of each side
    assert view.visible() == (300, 200, 901, 601)
    view.pan_by(150, 0)  # the image moves right: 100 image pixels more on the left are shown
    assert view.visible() == (200, 200, 801, 601)
    view.pan_by(10_000, 10_000)  # panned off the canvas: nothing visible, and still within the image
    assert view.visible() == (0, 0, 0, 0)
    view.pan_by(-30_000, -30_000)
    assert view.visible() == (1200, 800, 1200, 800)
