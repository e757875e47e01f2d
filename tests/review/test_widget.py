"""The widget driven by synthetic canvas events: keys, buttons and drags do what the session calls do, exact
boxes and exact log lines, retraining in the background, and the library never touched."""

from __future__ import annotations

import pytest
import yaml

from cropkit.decisions import read_suggestions
from cropkit.review.widget import CropReviewer
from tests.libgen import changed_entries, snapshot
from tests.review.conftest import drag, drag_canvas, key, lines, new_session


def test_enter_accepts_an_unchanged_suggestion_and_shows_the_next_image(reviewer, library):
    s = reviewer.session
    suggested, image = s.boxes[0].box, s.image
    assert s.proposer_name == "crop_proposer_v1" and "1 of 6" in reviewer.panel.value
    key(reviewer, "Enter")
    (line,) = lines(library)
    assert line["decision"] == "approved" and line["image"] == image and line["model"] == "crop_proposer_v1"
    assert line["suggested"] == line["final"] == [round(v, 1) for v in suggested]
    assert s.index == 1 and "2 of 6" in reviewer.panel.value and "1 decision, 100% accepted" in reviewer.panel.value
    assert reviewer.latency_ms is not None


def test_dragging_inside_moves_the_crop_exactly_and_enter_logs_modified(reviewer, library):
    s = reviewer.session
    x0, y0, x1, y1 = s.boxes[0].box
    dx = -min(20.0, x0) if x0 > 1 else min(20.0, s.width - x1)  # a move that stays inside the image
    drag(reviewer, ((x0 + x1) / 2, (y0 + y1) / 2), ((x0 + x1) / 2 + dx, (y0 + y1) / 2))
    assert s.boxes[0].box == pytest.approx((x0 + dx, y0, x1 + dx, y1), abs=1e-6)
    key(reviewer, "Enter")
    (line,) = lines(library)
    assert line["decision"] == "modified"
    assert line["final"] == [round(v, 1) for v in (x0 + dx, y0, x1 + dx, y1)]
    assert line["suggested"] == [round(v, 1) for v in (x0, y0, x1, y1)]


def test_corner_resize_free_and_with_aspect_lock(reviewer):
    s = reviewer.session
    x0, y0, x1, y1 = s.boxes[0].box
    drag(reviewer, (x1, y1), (x1 - 30, y1 - 10))
    assert s.boxes[0].box == pytest.approx((x0, y0, x1 - 30, y1 - 10), abs=1e-6)
    reviewer.aspect.value = "4:5"  # the dropdown, as a click would set it
    bx0, by0, bx1, by1 = s.boxes[0].box
    assert (bx1 - bx0) / (by1 - by0) == pytest.approx(0.8)
    drag(reviewer, (bx0, by0), (bx0 + 12, by0 + 3))  # the top-left corner; the bottom-right stays put
    nx0, ny0, nx1, ny1 = s.boxes[0].box
    assert (nx1, ny1) == pytest.approx((bx1, by1)) and (nx1 - nx0) / (ny1 - ny0) == pytest.approx(0.8)
    assert nx0 == pytest.approx(bx0 + 12)
    key(reviewer, "s")
    assert s.aspect_name == "4:5"  # chosen once, remembered for the next image
    b = s.boxes[0].box
    assert (b[2] - b[0]) / (b[3] - b[1]) == pytest.approx(0.8, abs=0.01)


def test_delete_and_backspace_reject(reviewer, library):
    key(reviewer, "Delete")
    key(reviewer, "Backspace")
    first, second = lines(library)
    assert first["decision"] == second["decision"] == "rejected"
    assert first["final"] is None and first["image"] != second["image"]
    assert reviewer.session.decided == 2 and reviewer.session.acceptance_rate == 0.0


def test_undo_appends_a_compensating_line_and_goes_back(reviewer, library):
    s = reviewer.session
    key(reviewer, "Enter")
    image = lines(library)[0]["image"]
    key(reviewer, "u")
    undo = lines(library)[-1]
    assert undo["image"] == image and undo["undo"] == lines(library)[0]["ts"] and len(lines(library)) == 2
    assert s.index == 0 and s.image == image and s.decided == 0
    assert read_suggestions(library / "data/ai_data/logs")[0] == []  # the decision no longer counts
    key(reviewer, "Delete")
    assert read_suggestions(library / "data/ai_data/logs")[0][0].decision == "rejected"


def test_skip_and_arrows_log_nothing(reviewer, library):
    s = reviewer.session
    key(reviewer, "s")
    key(reviewer, "ArrowRight")
    assert s.index == 2
    key(reviewer, "ArrowLeft")
    assert s.index == 1 and lines(library) == []


def test_multi_crop_logs_the_suggestion_and_the_added_crop(reviewer, library):
    s = reviewer.session
    key(reviewer, "a")
    assert len(s.boxes) == 2 and s.editor.active == 1
    added = s.boxes[1].box
    key(reviewer, "Enter")
    (suggestion,) = lines(library)
    assert suggestion["decision"] == "approved"
    crops = [c for c in lines(library, "training_log.jsonl") if c.get("source") == "cropkit-review"]
    assert len(crops) == 1 and crops[0]["crop"] == [round(v, 1) for v in added]


def test_buttons_do_what_the_keys_do(reviewer, library):
    reviewer.buttons["accept"].click()
    reviewer.buttons["reject"].click()
    reviewer.buttons["undo"].click()
    reviewer.buttons["skip"].click()
    assert [ln.get("decision", "undo") for ln in lines(library)] == ["approved", "rejected", "undo"]
    assert reviewer.session.index == 2


def test_zoom_and_pan_keep_boxes_in_image_coordinates(reviewer):
    s = reviewer.session
    view = reviewer.view
    before = view.scale
    key(reviewer, "+")
    assert view.scale == pytest.approx(before * 1.6)
    x0, y0, x1, y1 = s.boxes[0].box
    drag(reviewer, (x1, (y0 + y1) / 2), (x1 - 7.5, (y0 + y1) / 2))  # the east edge, at zoom
    assert s.boxes[0].box == pytest.approx((x0, y0, x1 - 7.5, y1), abs=1e-6)
    for _ in range(4):
        key(reviewer, "+")  # past the preview's resolution: the visible part comes from the full image
    jpeg, (x0, y0, x1, y1) = reviewer.pictures.visible_region(s.queue[s.index], view)
    assert reviewer.pictures.full[1].size == (s.width, s.height) and jpeg[:2] == b"\xff\xd8"
    assert 0 <= x0 < x1 <= s.width and (x1 - x0) * view.scale >= view.canvas_width * 0.9 or x1 - x0 == s.width
    key(reviewer, "0")
    assert view.scale == pytest.approx(before)


def test_panel_shows_companion_yaml_read_only_and_never_runs_tags(reviewer):
    s = reviewer.session
    while not s.image.endswith("r12.jpg"):
        key(reviewer, "s")
    assert yaml.safe_load(reviewer.companion.value) == {"rating": 4, "tags": ["harbour", "dusk"]}
    assert reviewer.companion.disabled
    key(reviewer, "s")
    assert s.image.endswith("r13.jpg") and "not valid YAML" in reviewer.companion.value


def test_retrain_in_the_background_switches_the_proposer(reviewer, library):
    key(reviewer, "Enter")
    reviewer.buttons["retrain"].click()
    assert reviewer.status.value.startswith("retraining")
    reviewer.wait_for_retrain()
    assert "crop_proposer_v2" in reviewer.status.value
    key(reviewer, "Enter")
    assert lines(library)[-1]["model"] == "crop_proposer_v1"  # the image on screen was suggested by v1
    assert reviewer.session.proposer_name == "crop_proposer_v2" and "now suggesting with crop_proposer_v2" in \
        reviewer.panel.value


def test_every_reviewer_action_leaves_the_library_untouched(reviewer, library):
    """The library snapshot (bytes, size, mtime, mode, listing) after each key, button, drag and retrain."""
    images = library / "data/training_data"
    before = snapshot(images)
    s = reviewer.session

    def centre_drag():
        x0, y0, x1, y1 = s.boxes[0].box
        drag(reviewer, ((x0 + x1) / 2, (y0 + y1) / 2), ((x0 + x1) / 2 + 3, (y0 + y1) / 2))

    def corner_drag():
        x0, y0, x1, y1 = s.boxes[0].box
        drag(reviewer, (x1, y1), (x1 - 10, y1 - 8))

    actions = {f"key {k}": (lambda k=k: key(reviewer, k)) for k in CropReviewer.KEYS}
    actions |= {f"button {name}": b.click for name, b in reviewer.buttons.items() if name != "retrain"}
    actions |= {"move": centre_drag, "resize": corner_drag, "aspect 4:5": lambda: reviewer.set_aspect("4:5"),
                "retrain": lambda: (reviewer.buttons["retrain"].click(), reviewer.wait_for_retrain())}
    for name, action in actions.items():
        if s.done:
            key(reviewer, "u")
        action()
        assert changed_entries(before, snapshot(images)) == {}, f"after {name}"
    assert len(actions) >= 25 and lines(library)  # decisions were logged along the way


SESSION_CALLS = {"Enter": "accept", "Delete": "reject", "Backspace": "reject", "ArrowRight": "skip",
                 "ArrowLeft": "previous", "s": "skip", "u": "undo", "a": "add_box"}
BUTTON_CALLS = {"accept": "accept", "reject": "reject", "previous": "previous", "next": "skip", "skip": "skip",
                "undo": "undo", "add": "add_box"}


def _record_session_calls(rv: CropReviewer, monkeypatch) -> list[str]:
    calls = []
    for name in ("accept", "reject", "skip", "previous", "undo", "add_box", "set_aspect"):
        monkeypatch.setattr(rv.session, name, lambda *args, name=name: calls.append(name) or [])
    return calls


def test_keys_and_buttons_call_the_session_and_zoom_keys_only_the_view(reviewer, monkeypatch):
    calls = _record_session_calls(reviewer, monkeypatch)
    for name, expected in SESSION_CALLS.items():
        key(reviewer, name)
        assert calls == [expected], name
        calls.clear()
    for name, expected in BUTTON_CALLS.items():
        reviewer.buttons[name].click()
        assert calls == [expected], name
        calls.clear()
    view = reviewer.view
    for name, zoom in (("+", 1.6), ("=", 1.6 ** 2), ("-", 1.6), ("0", 1.0)):
        key(reviewer, name)
        assert view.zoom == pytest.approx(zoom) and calls == [], name
    reviewer.aspect.value = "1:1"
    assert calls == ["set_aspect"]


def test_dragging_outside_the_crops_pans_only_when_zoomed_in(reviewer):
    s, view = reviewer.session, reviewer.view
    box = s.boxes[0].box
    empty = next((cx, cy) for cx in range(5, view.canvas_width, 20) for cy in range(5, view.canvas_height, 20)
                 if s.editor.hit(*view.to_image(cx, cy), tolerance=12 / view.scale) is None)
    drag_canvas(reviewer, empty, (empty[0] + 30, empty[1] + 20))
    assert view.pan == (0.0, 0.0) and s.boxes[0].box == box
    key(reviewer, "+")
    key(reviewer, "+")
    empty = next((cx, cy) for cx in range(5, view.canvas_width, 20) for cy in range(5, view.canvas_height, 20)
                 if s.editor.hit(*view.to_image(cx, cy), tolerance=12 / view.scale) is None)
    pan, corner = view.pan, view.to_canvas(0, 0)
    drag_canvas(reviewer, empty, (empty[0] + 30, empty[1] - 20))
    assert view.pan == pytest.approx((pan[0] + 30, pan[1] - 20))
    assert view.to_canvas(0, 0) == pytest.approx((corner[0] + 30, corner[1] - 20))
    assert s.boxes[0].box == box  # the crops stay where they are in the image


def test_retrain_every_n_decisions_and_a_failed_retrain_is_shown(library, fresh_logs):
    trained = []

    def retrain():
        trained.append(rv.session.decided)
        if len(trained) == 2:
            raise RuntimeError("no <room>")
        return rv.session.suggester.proposer

    rv = CropReviewer(new_session(library), retrain=retrain, retrain_every=2)
    try:
        for _ in range(4):
            rv.accept()
            rv.wait_for_retrain()
        assert trained == [2, 4]
        assert rv.status.value == ("retraining failed (RuntimeError): no &lt;room&gt;; "
                                   "still suggesting with crop_proposer_v1")
    finally:
        rv.close()
