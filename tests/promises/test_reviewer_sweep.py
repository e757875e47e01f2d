"""Issue 22, the reviewer: a photo in a linked folder is named as the scan names it, undo of a revisit's decision
restores the decision before it, files over extract's size limit are refused before reading, no box readers
reject is ever logged, and unreadable images never hold up the queue. Driven as test_reviewer_promises.py does."""

from __future__ import annotations

import json
import math
import os

import pytest

from cropkit.cli import main
from cropkit.decisions import read_crops, read_suggestions
from cropkit.extract.prepare import MAX_FILE_BYTES
from cropkit.layout import Layout
from cropkit.learn.suggest import StartingSuggester
from cropkit.review.pictures import Pictures
from cropkit.review.queue import pending_images
from cropkit.review.session import ReviewSession
from cropkit.review.start import open_reviewer
from tests.conftest import TINY
from tests.libgen import changed_entries, snapshot, subject_photo
from tests.promises import test_reviewer_promises as promises
from tests.promises.test_reviewer_promises import FEATURES, lines, make_root, panel, truncate
from tests.review.conftest import key

proposer = promises.proposer  # the fixture: a tiny proposer v1 trained once for the module


def effective(root, library=None) -> dict[str, list[str]]:
    """Each image's effective suggestion decisions, as every reader sees them."""
    found: dict[str, list[str]] = {}
    for d in read_suggestions(Layout.from_args(root, library).logs)[0]:
        found.setdefault(d.image, []).append(d.decision)
    return found


# 1: a photo in a linked folder inside the library --------------------------------------------------------------

@pytest.mark.parametrize("outside", [True, False], ids=["library outside the root", "library inside the root"])
def test_a_linked_folders_photo_is_logged_under_the_scans_name_and_is_then_decided(tmp_path, proposer, outside):
    root = tmp_path / "root"
    library = tmp_path / "library" if outside else root / "data/training_data"
    make_root(root, proposer, pending=1, images=library)
    elsewhere = tmp_path / "elsewhere" / "trip"
    elsewhere.mkdir(parents=True)
    subject_photo(970)[0].save(elsewhere / "linked.jpg", quality=90)
    (library / "trip").symlink_to(elsewhere, target_is_directory=True)
    before = snapshot(elsewhere)
    assert main(["extract", "--root", str(root), "--images", str(library), *FEATURES, "--no-progress",
                 "--workers", "0"]) == 0
    cached = {json.loads(x)["path"] for x in (root / "data/ai_data/cache/processed_files.jsonl").read_text().split()}
    name = "trip/linked.jpg" if outside else "data/training_data/trip/linked.jpg"
    assert name in cached
    rv = open_reviewer(root, images=library)
    s = rv.session
    while not s.done and s.image != name:
        key(rv, "s")
    assert s.image == name and not s.problem and s.boxes
    key(rv, "Enter")
    assert lines(root)[-1]["image"] == name and effective(root, library) == {name: ["approved"]}
    assert "linked.jpg" not in [p.name for p in pending_images(Layout.from_args(root, library))]
    assert "linked.jpg" not in [p.name for p in open_reviewer(root, images=library).session.queue]
    assert changed_entries(before, snapshot(elsewhere)) == {}


# 5: undo of a revisit's decision restores the decision before it ---------------------------------------------

def test_undo_of_a_revisits_decision_brings_back_the_decision_before_it(tmp_path, proposer):
    root = make_root(tmp_path, proposer, pending=3)
    rv = open_reviewer(root)
    s = rv.session
    key(rv, "Enter")  # p0 approved
    key(rv, "Enter")  # p1 approved
    key(rv, "ArrowLeft", alt=True)
    key(rv, "ArrowLeft", alt=True)
    assert s.image.endswith("p0.jpg") and s.revisiting.kind == "approved"
    key(rv, "]")  # straightened: modified
    key(rv, "Enter")  # p0 modified: the approval is undone
    assert effective(root)["data/training_data/p0.jpg"] == ["modified"]
    key(rv, "u")  # takes the modification back: p0 is approved again, as before the revisit
    p0 = "data/training_data/p0.jpg"
    assert effective(root) == {p0: ["approved"], "data/training_data/p1.jpg": ["approved"]}
    assert s.image == p0 and s.revisiting is not None and s.revisiting.kind == "approved"
    restored = [ln for ln in lines(root) if ln.get("decision") == "approved" and ln["image"] == p0]
    assert restored[0]["final"] == restored[-1]["final"] and restored[0]["model"] == restored[-1]["model"]
    assert s.decided == 2 and s.approved == 2
    key(rv, "u")  # the next undo takes back p1, the last decision before the revisit
    assert effective(root) == {p0: ["approved"]} and s.image.endswith("p1.jpg")
    key(rv, "u")
    assert effective(root) == {} and s.image == p0 and s.decided == 0
    assert [ln.get("decision", "undo") for ln in lines(root)] == [
        "approved", "approved", "undo", "modified", "undo", "approved", "undo", "undo"]
    assert s.undo() is None and len(lines(root)) == 8  # nothing left: no line


# 13: files over extract's 1 GiB limit are refused before reading ----------------------------------------------

def test_the_starting_suggester_and_the_preview_refuse_a_file_over_extracts_limit(tmp_path):
    images = tmp_path / "data/training_data"
    images.mkdir(parents=True)
    big = images / "scan.jpg"
    subject_photo(960)[0].save(big, quality=90)  # a real JPEG, then sparse zeros past the limit: it decodes
    os.truncate(big, MAX_FILE_BYTES + 1)
    subject_photo(961)[0].save(images / "small.jpg", quality=90)
    layout = Layout.from_args(tmp_path)
    with pytest.raises(Exception, match="over the 1,073,741,824-byte limit"):
        StartingSuggester(layout).suggest(big)
    with pytest.raises(Exception, match="over the 1,073,741,824-byte limit"):
        Pictures(400, 300).preview(big)
    rv = open_reviewer(tmp_path, arch=TINY, weights="none")
    try:
        assert rv.session.image == "data/training_data/small.jpg" and "1,073,741,824-byte limit" in panel(rv)
    finally:
        rv.close()


# 23: never a box readers reject; a non-finite angle is ignored ------------------------------------------------

@pytest.mark.parametrize("size", [(1, 300), (300, 2), (2, 2)])
def test_a_thin_image_straightened_logs_nothing_readers_reject(tmp_path, size):
    images = tmp_path / "data/training_data"
    images.mkdir(parents=True)
    subject_photo(962)[0].resize(size).save(images / "thin.png")
    s = ReviewSession(StartingSuggester(Layout.from_args(tmp_path)), [images / "thin.png"])
    try:
        s.go_to(0)
        assert not s.problem and s.boxes
        s.editor.set_angle(30)
        logs = Layout.from_args(tmp_path).logs
        if not s.accept():  # nothing loggable at this angle: said so, and the image stays
            assert s.index == 0 and s.notice.startswith("nothing logged: 'final'") and "readers" in s.notice
            assert not os.path.exists(logs / "suggestions.jsonl")
            s.reject()
        (_, bad_crops), (suggestions, bad) = read_crops(logs), read_suggestions(logs)
        assert bad == [] and bad_crops == [] and len(suggestions) == 1  # every reader takes what was logged
    finally:
        s.close()


def test_a_non_finite_angle_is_ignored_not_turned_into_45_degrees(tmp_path):
    images = tmp_path / "data/training_data"
    images.mkdir(parents=True)
    subject_photo(963)[0].save(images / "a.jpg", quality=90)
    s = ReviewSession(StartingSuggester(Layout.from_args(tmp_path)), [images / "a.jpg"])
    try:
        s.go_to(0)
        s.editor.set_angle(3.0)
        for bad in (math.nan, math.inf, -math.inf):
            s.editor.set_angle(bad)
            assert s.editor.angle == 3.0
        s.accept()
        assert lines(tmp_path)[-1]["angle"] == 3.0
    finally:
        s.close()


# 28: unreadable images never hold up the queue, in any order --------------------------------------------------

@pytest.mark.parametrize("order", ["file", "newest", "uncertain"])
def test_unreadable_images_are_skipped_with_their_reason_in_any_order(tmp_path, proposer, order):
    root = make_root(tmp_path, proposer, pending=4)
    images = root / "data/training_data"
    for i, p in enumerate(sorted(images.glob("p*.jpg"))):
        os.utime(p, ns=(10**18, 10**18 - i * 10**9))  # newest first is file order too
    truncate(images / "p0.jpg")
    truncate(images / "p2.jpg")
    rv = open_reviewer(root, order=order)
    s = rv.session
    shown = []
    for _ in range(len(s.queue)):
        if not s.done:
            assert not s.problem and s.boxes  # the reviewer never stops on an unreadable image
            shown.append(s.image)
            key(rv, "Enter")
    assert s.done
    assert sorted(shown) == ["data/training_data/p1.jpg", "data/training_data/p3.jpg"]
    assert sorted(ln["image"] for ln in lines(root)) == sorted(shown)
    assert sorted(s.queue[i].name for i in s.unreadable) == ["p0.jpg", "p2.jpg"]
    assert all("truncated" in why or "cut short" in why for why in s.unreadable.values())
    assert "2 can't be read" in panel(rv)
