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
        assert "crop_proposer_v1 trained: mean IoU" in rv.status.value
        assert rv.session.suggester.proposer.name == "crop_proposer_v1"
        key(rv, "s")  # the image on screen was suggested before; the next one comes from v1
        assert s.proposer_name == "crop_proposer_v1"
        key(rv, "Enter")
        assert lines(tmp_path)[-1]["model"] == "crop_proposer_v1"
    finally:
        rv.wait_for_retrain()
        rv.close()
    assert changed_entries(before, snapshot(images)) == {}
