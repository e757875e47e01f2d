"""Opening the reviewer on a root with no proposer yet: it suggests at once, logs the first decisions, and trains
the first proposer in the background."""

from __future__ import annotations

import pytest

from cropkit.geometry import largest_centred_box
from cropkit.learn.suggest import STARTING_PROPOSER
from cropkit.review.start import open_reviewer
from tests.conftest import TINY
from tests.libgen import changed_entries, snapshot, subject_photo
from tests.review.conftest import key, lines


def test_with_no_proposer_the_reviewer_starts_at_once_and_trains_the_first_in_the_background(tmp_path):
    images = tmp_path / "data/training_data"
    images.mkdir(parents=True)
    for i in range(7):
        subject_photo(900 + i)[0].save(images / f"c{i}.jpg", quality=90)
    before = snapshot(images)
    rv = open_reviewer(tmp_path, aspect="4:5", train_after=3, arch=TINY, weights="none")
    try:
        s = rv.session
        assert s.proposer_name == STARTING_PROPOSER and "no estimate yet" in rv.panel.value
        assert s.boxes[0].box == pytest.approx(largest_centred_box(0.8, s.width, s.height))
        x0, y0, x1, y1 = s.boxes[0].box
        key(rv, "ArrowLeft", shift=True)  # the first crop adjusted: modified
        for _ in range(3):
            key(rv, "Enter")
        assert [ln["decision"] for ln in lines(tmp_path)] == ["modified", "approved", "approved"]
        assert {ln["model"] for ln in lines(tmp_path)} == {STARTING_PROPOSER}
        rv.wait_for_retrain()
        assert (tmp_path / "data/ai_data/models/crop_proposer_v1.pth").is_file()
        # one held-out picture proves nothing: the starting crop stays, and the message says so in one sentence
        assert rv.status.value.startswith("crop_proposer_v1 trained, but ") and "too few to compare" in rv.status.value
        assert rv.session.suggester.proposer is None
        key(rv, "Enter")
        assert lines(tmp_path)[-1]["model"] == STARTING_PROPOSER
        rv.wait_for_retrain()  # the next try comes after train_after more decisions, not after each one
        assert not (tmp_path / "data/ai_data/models/crop_proposer_v2.pth").exists()
        for _ in range(2):
            key(rv, "Enter")
        rv.wait_for_retrain()
        assert (tmp_path / "data/ai_data/models/crop_proposer_v2.pth").is_file()
    finally:
        rv.wait_for_retrain()
        rv.close()
    assert changed_entries(before, snapshot(images)) == {}


def test_a_retrained_version_takes_over_exactly_when_its_message_says_it_is_better(tmp_path, monkeypatch):
    from cropkit.review import start

    monkeypatch.setattr(start, "MIN_COMPARE", 1)  # a tiny library: compare on whatever is held out
    images = tmp_path / "data/training_data"
    images.mkdir(parents=True)
    for i in range(12):
        subject_photo(950 + i)[0].save(images / f"d{i:02d}.jpg", quality=90)
    rv = open_reviewer(tmp_path, aspect="4:5", train_after=100, arch=TINY, weights="none")
    try:
        for i in range(10):
            if i % 2:  # half of them moved off the centre
                key(rv, "ArrowLeft", shift=True)
            key(rv, "Enter")
        outcomes = []
        for _ in range(2):
            before = rv.session.suggester.proposer
            rv.retrain()
            rv.wait_for_retrain()
            message, after = rv.status.value, rv.session.suggester.proposer
            outcomes.append(message)
            assert (" now suggests: mean IoU " in message) == (after is not before)
            assert ("still suggesting with " in message) == (after is before)
            assert message.count(":") == 1 and "trained:" not in message  # one sentence, one verdict
        assert "the starting centred crop" in outcomes[0]  # the first try is compared with the starting crop
    finally:
        rv.wait_for_retrain()
        rv.close()
