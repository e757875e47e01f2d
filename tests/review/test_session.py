"""The review session without any widget: decisions and their log lines, undo, skip, multi-crop, the aspect
lock, unreadable images and decisions another reviewer logged meanwhile."""

from __future__ import annotations

import time

import pytest

from cropkit.decisions import CropDecision, SuggestionDecision, append_decision, read_suggestions
from cropkit.extract.decode import DecodeError
from cropkit.learn.suggest import Suggester
from cropkit.review.session import ReviewSession
from tests.review.conftest import lines


def test_accept_logs_an_unchanged_suggestion_as_approved_and_goes_on(session, library):
    s = session
    suggested, image, proposer = s.boxes[0].box, s.image, s.proposer_name
    assert proposer == "crop_proposer_v1" and s.boxes[0].suggested == suggested and not s.boxes[0].changed
    (record,) = s.accept()
    assert isinstance(record, SuggestionDecision) and record.decision == "approved"
    (line,) = lines(library)
    assert line["decision"] == "approved" and line["image"] == image and line["model"] == proposer
    assert line["suggested"] == line["final"] == [round(v, 1) for v in suggested]
    assert s.index == 1 and s.image != image and s.decided == 1 and s.acceptance_rate == 1.0


def test_accept_after_a_move_logs_modified_with_both_boxes(session, library):
    s = session
    x0, y0, x1, y1 = s.boxes[0].box
    dx = -min(20.0, x0) if x0 > 1 else min(20.0, s.width - x1)
    assert s.editor.press((x0 + x1) / 2, (y0 + y1) / 2)
    s.editor.move((x0 + x1) / 2 + dx, (y0 + y1) / 2)
    s.editor.release()
    s.accept()
    (line,) = lines(library)
    assert line["decision"] == "modified"
    assert line["final"] == [round(v, 1) for v in (x0 + dx, y0, x1 + dx, y1)]
    assert line["suggested"] == [round(v, 1) for v in (x0, y0, x1, y1)]
    assert s.acceptance_rate == 0.0  # modified is not accepted as suggested


def test_reject_logs_the_suggestion_without_a_final_box(session, library):
    session.reject()
    session.reject()
    first, second = lines(library)
    assert first["decision"] == second["decision"] == "rejected"
    assert first["final"] is None and first["image"] != second["image"]
    assert session.decided == 2 and session.acceptance_rate == 0.0


def test_undo_cancels_the_decision_and_restores_the_image_its_crops_and_proposer(session, library):
    s = session
    assert s.undo() is None and lines(library) == []  # nothing to undo yet
    x0, y0, x1, y1 = s.boxes[0].box
    s.editor.press(x1, y1, tolerance=1)
    s.editor.move(x1 - 10, y1 - 10)
    s.editor.release()
    edited, suggested, image = s.boxes[0].box, s.boxes[0].suggested, s.image
    s.accept()
    s.proposer_name = "crop_proposer_v9"  # as if the next image came from a retrained proposer
    undone = s.undo()
    assert undone.index == 0 and [r.decision for r in undone.records] == ["modified"]
    undo = lines(library)[-1]
    assert undo["image"] == image and undo["undo"] == lines(library)[0]["ts"] and len(lines(library)) == 2
    assert s.index == 0 and s.image == image and s.decided == 0 and s.approved == 0
    assert s.boxes[0].box == edited and s.boxes[0].suggested == suggested  # the crops as they were
    assert s.proposer_name == "crop_proposer_v1"
    assert read_suggestions(library / "data/ai_data/logs")[0] == []  # the decision no longer counts
    s.accept()
    assert lines(library)[-1]["decision"] == "modified" and lines(library)[-1]["final"] == [round(v, 1) for v in edited]


def test_skip_and_previous_log_nothing_and_stay_in_the_queue(session, library):
    s = session
    s.skip()
    s.skip()
    assert s.index == 2
    s.previous()
    assert s.index == 1
    for _ in range(3):
        s.previous()
    assert s.index == 0
    for _ in range(len(s.queue) + 2):
        s.skip()
    assert s.done and s.index == len(s.queue) and not s.boxes
    assert s.accept() == [] and s.reject() == [] and lines(library) == []


def test_multi_crop_logs_the_suggestion_and_the_added_crop(session, library):
    s = session
    s.add_box()
    assert len(s.boxes) == 2 and s.editor.active == 1 and s.boxes[1].suggested is None
    added = s.boxes[1].box
    records = s.accept()
    assert [type(r) for r in records] == [SuggestionDecision, CropDecision]
    (suggestion,) = lines(library)
    assert suggestion["decision"] == "approved"
    crops = [c for c in lines(library, "training_log.jsonl") if c.get("source") == "cropkit-review"]
    assert len(crops) == 1 and crops[0]["crop"] == [round(v, 1) for v in added]


def test_the_aspect_lock_refits_the_crop_and_holds_for_the_next_images(session):
    s = session
    s.set_aspect("4:5")
    b = s.boxes[0].box
    assert (b[2] - b[0]) / (b[3] - b[1]) == pytest.approx(0.8)
    s.skip()
    b = s.boxes[0].box
    assert s.aspect_name == "4:5" and (b[2] - b[0]) / (b[3] - b[1]) == pytest.approx(0.8, abs=0.01)
    s.add_box()
    b = s.boxes[1].box
    assert (b[2] - b[0]) / (b[3] - b[1]) == pytest.approx(0.8)
    s.set_aspect("original")
    assert s.aspect == pytest.approx(s.width / s.height)
    with pytest.raises(ValueError, match="choose one of"):
        s.set_aspect("7:5")


def test_an_unreadable_image_has_nothing_to_decide_and_the_review_goes_on(library, fresh_logs):
    s = ReviewSession(Suggester.open(library), [library / "data/training_data/gone.jpg",
                                                library / "data/training_data/r10.jpg"])
    try:
        s.go_to(0)
        assert s.problem.startswith("can't be read") and str(library) not in s.problem and not s.boxes
        s.add_box()
        assert not s.boxes and s.accept() == [] and lines(library) == []
        s.skip()
        assert not s.problem and s.boxes
        s.cannot_show(DecodeError("truncated", "the file is cut short"))  # found while drawing it
        assert s.problem == "can't be read: the file is cut short" and not s.boxes and s.width
        assert s.reject() == [] and lines(library) == []
    finally:
        s.close()


def test_a_decision_logged_elsewhere_meanwhile_is_shown_before_logging_again(session, library):
    s = session
    theirs = SuggestionDecision(s.image, s.width, s.height, s.boxes[0].box, None, "rejected", "crop_proposer_v1",
                                time.time())
    append_decision(library / "data/ai_data/logs", theirs)  # what another reviewer on this root logged
    assert s.accept() == [] and s.index == 0
    assert s.notice.startswith(f"another reviewer decided {s.image} meanwhile (rejected at ")
    s.accept()  # the same key again: logged as well
    assert [ln["decision"] for ln in lines(library)] == ["rejected", "approved"] and s.index == 1
    assert s.notice == ""
    s.accept()
    s.undo()
    assert s.index == 1
    s.accept()  # this session's own line and its undo are not another reviewer's decision
    assert s.notice == "" and s.index == 2
    assert [ln.get("decision", "undo") for ln in lines(library)] == ["rejected", "approved", "approved", "undo",
                                                                      "approved"]
