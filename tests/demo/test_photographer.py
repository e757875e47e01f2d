"""The demo's simulated photographer: its tastes are exact rules."""

from __future__ import annotations

import pytest

from cropkit.demo.photographer import TASTES


@pytest.mark.parametrize(("taste", "aspect"), [("thirds-4:5", 0.8), ("tight-square", 1.0), ("wide-3:2", 1.5)])
def test_tastes_give_their_aspect_inside_the_frame(taste, aspect):
    for w, h, subject in ((600, 400, (0.2, 0.3)), (400, 600, (0.9, 0.9)), (500, 500, (0.5, 0.5))):
        x0, y0, x1, y1 = TASTES[taste](w, h, subject)
        assert (x1 - x0) / (y1 - y0) == pytest.approx(aspect)
        assert 0 <= x0 < x1 <= w + 1e-9 and 0 <= y0 < y1 <= h + 1e-9


def test_thirds_taste_puts_the_subject_on_a_thirds_line_when_there_is_room():
    x0, y0, x1, y1 = TASTES["thirds-4:5"](1000, 1000, (0.4, 0.4))
    assert (400 - x0) / (x1 - x0) == pytest.approx(1 / 3) and (400 - y0) / (y1 - y0) == pytest.approx(1 / 3)
    x0, _, x1, _ = TASTES["thirds-4:5"](1000, 1000, (0.6, 0.5))
    assert (600 - x0) / (x1 - x0) == pytest.approx(2 / 3)
