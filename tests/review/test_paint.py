"""Drawing without a browser: the layers' calls recorded on a fake canvas, and the panel's HTML from the state of
a real session (with a suggester that is never asked)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from cropkit.decisions import SuggestionDecision
from cropkit.layout import Layout
from cropkit.review.editor import CropBox, CropEditor, handle_points
from cropkit.review.paint import (
    ADDED,
    GREEN,
    HANDLE_PX,
    OUTLINE,
    OVERLAYS,
    keys_html,
    overlay_lines,
    paint_crops,
    paint_photo,
    panel_html,
    view_text,
)
from cropkit.review.session import Decided, ReviewSession
from cropkit.review.viewport import Viewport


class RecordingLayer:
    """A canvas layer that records every call and every style set, in order."""

    def __init__(self):
        object.__setattr__(self, "calls", [])

    def __setattr__(self, name, value):
        self.calls.append((name, value))

    def __getattr__(self, name):
        return lambda *args: self.calls.append((name, *args))

    def named(self, name: str) -> list[tuple]:
        return [c[1:] for c in self.calls if c[0] == name]


def decided(index: int, kind: str) -> Decided:
    final = None if kind == "rejected" else (1, 1, 9, 9)
    return Decided(index, [SuggestionDecision("a.jpg", 10, 10, (1, 1, 9, 9), final, kind, "v1", 1e9)], [], "v1")


@pytest.fixture
def session(tmp_path):
    """A session on 3 images, showing the second, 2 decided and 1 approved, the crop from proposer v3."""
    s = ReviewSession(SimpleNamespace(layout=Layout.from_args(tmp_path)), [tmp_path / f"{i}.jpg" for i in range(3)])
    s.index, s.image, s.proposer_name, s.aspect_name = 1, "a.jpg", "crop_proposer_v3", "4:5"
    s.history = [decided(0, "approved"), decided(2, "rejected")]
    s.editor = CropEditor(400, 300, [CropBox((10, 20, 90, 120), (10, 20, 90, 120), 0.12345)])
    yield s
    s.close()


def test_the_panel_says_where_the_review_is_and_who_suggested_the_crop(session):
    html = panel_html(session, retrained="now suggesting with crop_proposer_v4")
    assert html == ("<b>2 of 3</b> · 2 decided: 1 kept as suggested (50%), 0 adjusted, 1 rejected<br>"
                    "<code>a.jpg</code> (400×300)<br>suggested by <b>crop_proposer_v3</b>: <b>12%</b> chance you keep "
                    "it (the proposer's estimate from your held-out decisions)<br>aspect lock: 4:5<br>crop 80×100 "
                    "(4:5)<br><i>now suggesting with crop_proposer_v4</i>")
    session.history.append(decided(1, "modified"))  # the image shown was decided before: it says so
    assert "decided earlier: modified at " in panel_html(session) and "a new decision replaces it" in panel_html(
        session)


def test_the_panel_for_an_image_that_cannot_be_read_says_so_and_offers_no_decision(session):
    session.problem, session.editor = "can't be read: the file is cut short", CropEditor()
    session.unreadable = {1: session.problem}
    html = panel_html(session)
    assert html == ("<b>2 of 3</b> · 2 decided: 1 kept as suggested (50%), 0 adjusted, 1 rejected · 1 can't be read"
                    "<br><code>a.jpg</code><br><b style='color:#c62828'>can&#x27;t be read: the file is cut short</b>"
                    "<br>nothing to accept or reject: Enter, s or → goes on")
    assert "suggested by" not in html
    session.index = 3
    assert "1 image skipped, 1 can't be read: <b>Review skipped (r)</b>" in panel_html(session)


def test_the_panel_at_the_end_counts_decisions_and_skipped_images_and_keeps_the_warnings(session):
    session.index, session.history = 3, [decided(1, "approved")]
    session.others, session.notice = ["another reviewer (pid 7) is open"], "nothing logged"
    html = panel_html(session, retrained="now suggesting with crop_proposer_v4")
    assert html == ("<b>End of the queue (3 images).</b><br>1 decided: 1 kept as suggested (100%), 0 adjusted, "
                    "0 rejected<br>2 images skipped: <b>Review skipped (r)</b> to go through them"
                    "<br><i>now suggesting with crop_proposer_v4</i>"
                    "<br><b style='color:#c62828'>another reviewer (pid 7) is open</b>"
                    "<br><b style='color:#c62828'>nothing logged</b>")


def test_names_in_the_panel_are_escaped(session):
    session.image, session.proposer_name = "<script>alert(1)</script>&.jpg", "<img src=x onerror=alert(2)>"
    session.notice = "decided <b>meanwhile</b>"
    html = panel_html(session, retrained="<i>v5</i>")
    assert "<script>" not in html and "<img" not in html and "<b>meanwhile" not in html and "<i>v5" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&amp;.jpg" in html and "&lt;img src=x onerror=alert(2)&gt;" in html
    assert "&lt;i&gt;v5&lt;/i&gt;" in html and "decided &lt;b&gt;meanwhile&lt;/b&gt;" in html


def test_the_crops_layer_draws_each_crop_outlined_with_handles_dims_the_rest_and_thirds_the_active_one():
    view = Viewport(800, 600, 400, 300)  # scale 2, no margin
    editor = CropEditor(400, 300, [CropBox((10, 20, 90, 120), (10, 20, 90, 120)), CropBox((200, 100, 300, 250))],
                        active=1)
    layer = RecordingLayer()
    paint_crops(layer, view, editor)
    assert layer.calls[0] == ("clear",)
    # each crop twice: a dark outline, then the dashes (the suggestion green, the added crop amber)
    assert layer.named("stroke_rect") == [(20, 40, 160, 200)] * 2 + [(400, 200, 200, 300)] * 2
    assert layer.named("line_width") == [(1,), (5,), (2,), (6,), (3,)]  # thirds, then the active is bolder
    assert layer.named("stroke_style") == [("rgba(255, 255, 255, 0.6)",), (OUTLINE,), (GREEN,), (OUTLINE,),
                                           (ADDED,)]
    assert layer.named("set_line_dash").count(([6, 4],)) == 2  # every crop dashed
    rects = layer.named("fill_rect")
    dims, handles = rects[:4], rects[4:]
    assert sum(w * h for _, _, w, h in dims) == 800 * 600 - 200 * 300  # everything but the active crop
    centres = [(x + HANDLE_PX / 2, y + HANDLE_PX / 2) for x, y, w, _ in handles if w == HANDLE_PX]
    expected = [*handle_points((20, 40, 180, 240)).values(), *handle_points((400, 200, 600, 500)).values()]
    assert centres == expected
    thirds = [v for line in sorted(layer.named("stroke_line")) for v in line]
    assert thirds == pytest.approx([400, 300, 600, 300, 400, 400, 600, 400, 400 + 200 / 3, 200, 400 + 200 / 3, 500,
                                    400 + 400 / 3, 200, 400 + 400 / 3, 500])
    assert layer.named("fill_text") == []  # the size readout only while editing
    assert view_text(view, editor, "thirds") == "fit 200% · overlay: thirds"
    editor.angle, view.zoom = -2.5, 2
    assert view_text(view, editor, "grid") == "zoom 400% · straightened -2.5° · overlay: grid"
    empty = RecordingLayer()
    paint_crops(empty, view, CropEditor())
    assert empty.calls == [("clear",)]


def test_overlays_a_finer_grid_while_dragging_the_size_readout_and_the_keys_list():
    assert len(overlay_lines("golden ratio", (0, 0, 100, 50))) == 4
    assert overlay_lines("golden ratio", (0, 0, 100, 50))[1][0] == pytest.approx(61.8, abs=0.1)
    assert len(overlay_lines("diagonals", (0, 0, 100, 50))) == 6 and len(overlay_lines("grid", (0, 0, 8, 8))) == 14
    assert overlay_lines("none", (0, 0, 1, 1)) == [] and OVERLAYS[0] == "thirds"
    view = Viewport(800, 600, 400, 300)
    editor = CropEditor(400, 300, [CropBox((100, 100, 250, 200), (100, 100, 250, 200))])
    editor.press(175, 150)
    layer = RecordingLayer()
    paint_crops(layer, view, editor, overlay="grid", held=True)
    assert len(layer.named("stroke_line")) == 14 + 30  # the grid and, while dragging, the finer one
    texts = [t[0] for t in layer.named("fill_text")]
    assert "150 × 100 px · 3:2" in texts
    listed = keys_html((("Enter", "accept"), ("<x>", "a & b")))
    assert "<b>Enter</b>" in listed and "&lt;x&gt;" in listed and "a &amp; b" in listed
    assert layer.named("stroke_rect")[0] == (1.5, 1.5, 797, 597)  # the frame that says keys go here


def test_the_photo_layer_draws_the_picture_where_the_view_puts_it_or_the_reason_it_cannot():
    view = Viewport(900, 600, 400, 300)  # scale 2, 50 px margins left and right
    view.zoom_by(2, (50, 0))
    layer = RecordingLayer()
    paint_photo(layer, view, (b"\xff\xd8jpeg", (100, 50, 200, 150)))
    assert layer.named("fill_rect") == [(0, 0, 900, 600)]
    ((image, *where),) = layer.named("draw_image")
    assert image.value == b"\xff\xd8jpeg"
    assert where == pytest.approx([*view.to_canvas(100, 50), 400, 400])
    layer = RecordingLayer()
    paint_photo(layer, view, None, problem="can't be read: gone")
    assert layer.named("draw_image") == [] and layer.named("fill_text")[0] == ("can't be read: gone", 20, 300)


def test_a_straightened_photo_is_drawn_turned_about_the_image_centre():
    view = Viewport(800, 600, 400, 300)
    layer = RecordingLayer()
    paint_photo(layer, view, (b"jpeg", (0, 0, 400, 300)), angle=10)
    assert [c[0] for c in layer.calls if c[0] in ("save", "translate", "rotate", "draw_image", "restore")] == [
        "save", "translate", "rotate", "draw_image", "restore"]
    assert layer.named("translate") == [(400, 300)] and layer.named("rotate")[0][0] == pytest.approx(0.17453, 1e-4)
    assert layer.named("draw_image")[0][1:] == (-400, -300, 800, 600)
