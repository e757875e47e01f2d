"""The reviewer widget driven by synthetic canvas events: exact boxes and exact log lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cropkit.cli import main
from cropkit.decisions import CropDecision, append_decision, read_crops, read_suggestions
from cropkit.layout import Layout
from cropkit.learn.suggest import Suggester
from cropkit.learn.train import TrainOptions, run_train
from cropkit.review.session import ReviewSession, order_queue, pending_images, resize_box
from cropkit.review.widget import CropReviewer
from tests.conftest import TINY, TINY_CONFIG
from tests.libgen import changed_entries, snapshot, square_on_subject, subject_photo

FEATURES = ["--arch", TINY, "--weights", "none", "--arch-config", str(TINY_CONFIG)]


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """16 photos, 10 already cropped by the photographer, a proposer v1 trained on them."""
    root = tmp_path_factory.mktemp("review")
    images = root / "data/training_data"
    images.mkdir(parents=True)
    for i in range(16):
        img, subject = subject_photo(300 + i)
        img.save(images / f"r{i:02d}.jpg", quality=90)
        if i < 10:
            append_decision(root / "data/ai_data/logs", CropDecision(
                f"data/training_data/r{i:02d}.jpg", *img.size, square_on_subject(*img.size, subject), float(i)))
    (images / "r12.yaml").write_text("rating: 4\ntags: [harbour, dusk]\n")
    (images / "r13.yaml").write_text("!!python/object/apply:os.system ['touch pwned']\n")
    assert main(["train", "--root", str(root), *FEATURES, "--steps", "60", "--no-progress", "--workers", "0"]) == 0
    before = snapshot(images)
    yield root
    assert changed_entries(before, snapshot(images)) == {}
    assert not (images / "pwned").exists() and not Path("pwned").exists()


@pytest.fixture
def reviewer(library):
    logs = library / "data/ai_data/logs"
    backup = {p.name: p.read_bytes() for p in logs.glob("*.jsonl")}
    layout = Layout.from_args(library)
    suggester = Suggester.open(library)
    session = ReviewSession(suggester, order_queue(pending_images(layout), "file"))
    rv = CropReviewer(session, retrain=lambda: run_train(TrainOptions(
        root=library, arch=TINY, weights="none", steps=40, progress=False, workers=0), log=lambda _m: None
    ).proposer)
    yield rv
    for p in logs.glob("*.jsonl"):  # each test starts from the module's logs
        p.write_bytes(backup.get(p.name, b""))
    for p in (library / "data/ai_data/models").glob("crop_proposer_v*.pth"):
        if p.name != "crop_proposer_v1.pth":
            p.unlink()


def send(rv: CropReviewer, event: str, **content) -> None:
    rv.canvas[-1]._handle_frontend_event(None, {"event": event, **content}, [])


def key(rv: CropReviewer, name: str) -> None:
    send(rv, "key_down", key=name, shift_key=False, ctrl_key=False, meta_key=False)


def drag(rv: CropReviewer, start: tuple[float, float], end: tuple[float, float], steps: int = 3) -> None:
    """Press at image point ``start``, move in steps, release at image point ``end`` (canvas events)."""
    (sx, sy), (ex, ey) = rv.to_canvas(*start), rv.to_canvas(*end)
    send(rv, "mouse_down", x=sx, y=sy)
    for i in range(1, steps + 1):
        send(rv, "mouse_move", x=sx + (ex - sx) * i / steps, y=sy + (ey - sy) * i / steps)
    send(rv, "mouse_up", x=ex, y=ey)


def lines(root: Path, name: str = "suggestions.jsonl") -> list[dict]:
    path = root / "data/ai_data/logs" / name
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_enter_accepts_an_unchanged_suggestion_and_shows_the_next_image(reviewer, library):
    s = reviewer.session
    suggested, image = s.boxes[0].box, s.image
    assert s.model_name == "crop_proposer_v1" and "1 of 6" in reviewer.panel.value
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


def test_resize_is_clamped_to_the_image():
    assert resize_box((10, 10, 50, 50), "se", 500, 500, None, 100, 80) == (10, 10, 100, 80)
    x0, y0, x1, y1 = resize_box((10, 10, 50, 50), "se", 500, 500, 1.0, 100, 80)
    assert (x0, y0) == (10, 10) and x1 - x0 == pytest.approx(y1 - y0) and y1 == pytest.approx(80)
    assert resize_box((10, 10, 50, 50), "w", 60, 30, None, 100, 80) == (42, 10, 50, 50)  # at least MIN_SIDE wide


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
    assert len(s.boxes) == 2 and s.active == 1
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
    before = reviewer.scale
    key(reviewer, "+")
    assert reviewer.scale == pytest.approx(before * 1.6)
    x0, y0, x1, y1 = s.boxes[0].box
    drag(reviewer, (x1, (y0 + y1) / 2), (x1 - 7.5, (y0 + y1) / 2))  # the east edge, at zoom
    assert s.boxes[0].box == pytest.approx((x0, y0, x1 - 7.5, y1), abs=1e-6)
    for _ in range(4):
        key(reviewer, "+")  # past the preview's resolution: the visible part comes from the full image
    jpeg, (x0, y0, x1, y1) = reviewer._visible_region()
    assert reviewer._full[1].size == (s.width, s.height) and jpeg[:2] == b"\xff\xd8"
    assert 0 <= x0 < x1 <= s.width and (x1 - x0) * reviewer.scale >= reviewer.cw * 0.9 or x1 - x0 == s.width
    key(reviewer, "0")
    assert reviewer.scale == pytest.approx(before)


def test_panel_shows_companion_yaml_read_only_and_never_runs_tags(reviewer):
    s = reviewer.session
    while not s.image.endswith("r12.jpg"):
        key(reviewer, "s")
    assert yaml.safe_load(reviewer.companion.value) == {"rating": 4, "tags": ["harbour", "dusk"]}
    assert reviewer.companion.disabled
    key(reviewer, "s")
    assert s.image.endswith("r13.jpg") and "not valid YAML" in reviewer.companion.value


def test_previews_are_compressed_display_size_jpegs(reviewer):
    s = reviewer.session
    jpeg, w, h = reviewer._preview(s.queue[s.index])
    assert jpeg[:2] == b"\xff\xd8" and w <= reviewer.cw and h <= reviewer.ch
    assert len(jpeg) < w * h  # compressed, not raw pixels


def test_retrain_in_the_background_switches_the_model(reviewer, library):
    key(reviewer, "Enter")
    reviewer.buttons["retrain"].click()
    assert reviewer.status.value.startswith("retraining")
    reviewer.wait_for_retrain()
    assert "crop_proposer_v2" in reviewer.status.value
    key(reviewer, "Enter")
    assert lines(library)[-1]["model"] == "crop_proposer_v1"  # the image on screen was suggested by v1
    assert reviewer.session.model_name == "crop_proposer_v2" and "now suggesting with crop_proposer_v2" in \
        reviewer.panel.value


def test_queue_orders(library):
    layout = Layout.from_args(library)
    suggester = Suggester.open(library)
    pending = pending_images(layout)
    assert [p.name for p in pending] == [f"r{i:02d}.jpg" for i in range(10, 16)]
    assert order_queue(pending, "file") == sorted(pending)
    scores = {p: suggester.suggest(p, k=1).suggestions[0].score for p in pending}
    uncertain = order_queue(pending, "uncertain", suggester)
    assert [scores[p] for p in uncertain] == sorted(scores.values())
    with pytest.raises(ValueError, match="queue order"):
        order_queue(pending, "random")
    assert read_crops(layout.logs)[1] == []


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
