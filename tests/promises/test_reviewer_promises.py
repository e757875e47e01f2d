"""Issue 11, the reviewer: one bad file never stops it, a decision is logged once for the image shown, decisions
on a library outside the root reach `train`, companions are read without a trace, and a second reviewer on the
same root is noticed. Driven with synthetic canvas events, as tests/review/test_widget.py does."""

from __future__ import annotations

import html
import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from cropkit.cli import main
from cropkit.decisions import CropDecision, append_decision
from cropkit.layout import Layout
from cropkit.learn.suggest import Suggester
from cropkit.learn.train import TrainOptions, run_train
from cropkit.review.pictures import read_companion
from cropkit.review.queue import order_queue, pending_images
from cropkit.review.session import ReviewSession
from cropkit.review.start import open_reviewer
from cropkit.review.widget import CropReviewer, Retrained
from tests.conftest import TINY, TINY_CONFIG
from tests.helpers.small_disk import tmpfs
from tests.libgen import square_on_subject, subject_photo
from tests.review.conftest import key

FEATURES = ["--arch", TINY, "--weights", "none", "--arch-config", str(TINY_CONFIG)]
DEEP_YAML = "[" * 3000 + "]" * 3000  # 6 KB of nesting: RecursionError for a recursive YAML composer


@pytest.fixture(scope="module")
def proposer(tmp_path_factory) -> Path:
    """A tiny proposer v1 trained on 8 cropped photos of another root (copied into each test's root)."""
    seed = tmp_path_factory.mktemp("seed")
    images = _mkdir(seed / "data/training_data")
    for i in range(8):
        img, subject = subject_photo(900 + i)
        img.save(images / f"s{i}.jpg", quality=90)
        append_decision(seed / "data/ai_data/logs", CropDecision(
            f"data/training_data/s{i}.jpg", *img.size, square_on_subject(*img.size, subject), float(i)))
    assert main(["train", "--root", str(seed), *FEATURES, "--steps", "30", "--no-progress", "--workers", "0"]) == 0
    return seed / "data/ai_data/models/crop_proposer_v1.pth"


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def make_root(root: Path, proposer: Path, pending: int, images: Path | None = None, decided: int = 0) -> Path:
    """A root with proposer v1 and ``pending`` photos p0.. (plus ``decided`` cropped ones d0..) in ``images``;
    names in the logs are relative to the root, or to a library outside it."""
    images = _mkdir(images or root / "data/training_data")
    for i in range(pending):
        subject_photo(950 + i)[0].save(images / f"p{i}.jpg", quality=90)
    layout = Layout.from_args(root, images)
    for i in range(decided):
        img, subject = subject_photo(980 + i)
        img.save(images / f"d{i}.jpg", quality=90)
        name = f"d{i}.jpg" if images != root / "data/training_data" else f"data/training_data/d{i}.jpg"
        append_decision(layout.logs, CropDecision(name, *img.size, square_on_subject(*img.size, subject), float(i)))
    shutil.copy(proposer, _mkdir(layout.models) / proposer.name)
    return root


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def panel(rv: CropReviewer) -> str:
    return html.unescape(rv.panel.value)


def lines(root: Path, name: str = "suggestions.jsonl") -> list[dict]:
    path = root / "data/ai_data/logs" / name
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


# 5: one bad file never stops the reviewer, and a decision is never logged twice ---------------------------------

@pytest.mark.parametrize("bad", ["truncated", "deleted after queueing"])
def test_double_enter_before_an_unreadable_image_logs_once(tmp_path, proposer, bad):
    root = make_root(tmp_path, proposer, pending=3)
    p1 = root / "data/training_data/p1.jpg"
    if bad == "truncated":
        truncate(p1)
    rv = open_reviewer(root)
    if bad == "deleted after queueing":
        p1.unlink()
    s = rv.session
    assert s.image == "data/training_data/p0.jpg" and s.boxes
    key(rv, "Enter")  # p0 logged; p1 cannot be read: passed over, with its reason (issue 22, finding 28)
    assert [ln["image"] for ln in lines(root)] == ["data/training_data/p0.jpg"]
    assert s.image == "data/training_data/p2.jpg" and s.boxes and 1 in s.skipped
    assert "passed over an image that can't be read (data/training_data/p1.jpg: can't be read" in panel(rv)
    assert "truncated" in s.unreadable[1] if bad == "truncated" else s.unreadable[1]
    key(rv, "ArrowLeft", alt=True)  # going back shows it, with nothing to decide
    assert s.image == "data/training_data/p1.jpg" and s.problem.startswith("can't be read") and not s.boxes
    assert "can't be read" in panel(rv)
    key(rv, "Enter")  # on the unreadable image: nothing logged, on to the next
    assert len(lines(root)) == 1 and s.image == "data/training_data/p2.jpg"
    key(rv, "Enter")
    assert [ln["image"] for ln in lines(root)] == ["data/training_data/p0.jpg", "data/training_data/p2.jpg"]
    assert s.done and "2 decided" in panel(rv) and "1 image skipped, 1 can't be read" in panel(rv)


def test_the_reviewer_opens_past_a_truncated_first_image_and_in_uncertain_order(tmp_path, proposer):
    root = make_root(tmp_path, proposer, pending=3)
    truncate(root / "data/training_data/p0.jpg")
    rv = open_reviewer(root)  # file order: the bad image comes first, and is passed over with its reason
    assert rv.session.image == "data/training_data/p1.jpg" and not rv.session.problem and rv.session.boxes
    assert "truncated" in rv.session.unreadable[0] and "data/training_data/p0.jpg" in panel(rv)
    key(rv, "Enter")
    assert [ln["image"] for ln in lines(root)] == ["data/training_data/p1.jpg"]
    rv = open_reviewer(root, order="uncertain")
    assert [p.name for p in rv.session.queue][-1] == "p0.jpg"  # unreadable images go last
    assert not rv.session.problem and rv.session.boxes
    key(rv, "Enter")
    assert len(lines(root)) == 2


def test_a_deeply_nested_companion_is_a_note_and_the_image_still_reviews(tmp_path, proposer):
    root = make_root(tmp_path, proposer, pending=2)
    (root / "data/training_data/p0.yaml").write_text(DEEP_YAML)
    rv = open_reviewer(root)
    assert rv.session.image.endswith("p0.jpg") and not rv.session.problem
    assert "p0.yaml is nested more than" in rv.companion.value
    key(rv, "Enter")
    assert [ln["image"] for ln in lines(root)] == ["data/training_data/p0.jpg"]


def test_the_original_aspect_lock_fits_each_image_to_its_own_frame(tmp_path, proposer):
    root = make_root(tmp_path, proposer, pending=3)  # photos of different aspects
    rv = open_reviewer(root, aspect="original")
    s = rv.session
    for _ in range(3):
        x0, y0, x1, y1 = s.boxes[0].box
        assert not s.problem and (x1 - x0) / (y1 - y0) == pytest.approx(s.width / s.height, rel=0.02)
        key(rv, "Enter")
    assert s.done and len(lines(root)) == 3


# 6: decisions on a library outside the root reach train --------------------------------------------------------

def test_decisions_on_an_external_library_are_used_by_train_and_not_pending_again(tmp_path, proposer):
    root, library = tmp_path / "root", tmp_path / "library"
    make_root(root, proposer, pending=3, images=library, decided=4)
    rv = open_reviewer(root, images=library)
    key(rv, "Enter")
    key(rv, "Delete")
    assert [ln["image"] for ln in lines(root)] == ["p0.jpg", "p1.jpg"]  # relative to the library, as readers want
    assert len(rv.session.queue) == 3  # the four decided before were not pending
    result = run_train(TrainOptions(root=root, images=library, arch=TINY, weights="none", steps=40,
                                    progress=False, workers=0), log=lambda _m: None)
    assert result.problems == [] and result.proposer.meta["n_decisions"] == 4 + 2
    assert [p.name for p in pending_images(Layout.from_args(root, library))] == ["p2.jpg"]
    assert [p.name for p in open_reviewer(root, images=library).session.queue] == ["p2.jpg"]


# 7 and 11: companions are read without touching them, bounded, and a pipe does not hang -------------------------

def test_companions_are_read_without_moving_their_access_time_and_a_pipe_is_not_opened(tmp_path, proposer):
    root = tmp_path / "root"
    with tmpfs(tmp_path / "library", size="16m", options="strictatime") as library:
        make_root(root, proposer, pending=2, images=library)
        companion = library / "p0.yaml"
        companion.write_text("rating: 5\n")
        os.utime(companion, ns=(10**18, companion.stat().st_mtime_ns))
        os.mkfifo(library / "p1.yaml")
        result = {}
        worker = threading.Thread(target=lambda: result.update(p1=read_companion(library / "p1.jpg")), daemon=True)
        worker.start()
        worker.join(60)  # a hang guard, not a timing: a blocking open would never return
        assert "p1" in result and "p1.yaml is not a regular file" in result["p1"]
        rv = open_reviewer(root, images=library)
        assert rv.companion.value == "rating: 5\n"
        assert companion.stat().st_atime_ns == 10**18
        key(rv, "s")
        assert "not a regular file" in rv.companion.value and rv.session.boxes  # the image still reviews


def test_an_oversized_companion_is_a_note(tmp_path):
    (tmp_path / "x.yaml").write_text("a: " + "b" * (1 << 20))
    assert "cannot be read" in read_companion(tmp_path / "x.jpg") and "limit" in read_companion(tmp_path / "x.jpg")


# 15: a second reviewer on the same root is noticed, and so is its decision for the image shown -------------------

OTHER_REVIEWER = textwrap.dedent("""
    import sys, time
    from cropkit.features.encoders.open_clip import register_arch_configs
    from cropkit.review.start import open_reviewer
    register_arch_configs(sys.argv[2])
    rv = open_reviewer(sys.argv[1])
    rv.accept()
    print("decided", flush=True)
    time.sleep(300)
""")


def test_a_second_reviewer_is_shown_and_its_decision_is_not_silently_contradicted(tmp_path, proposer):
    root = make_root(tmp_path, proposer, pending=3)
    rv = open_reviewer(root)
    s = rv.session
    assert s.image == "data/training_data/p0.jpg" and "another reviewer" not in panel(rv)
    other = subprocess.Popen([sys.executable, "-c", OTHER_REVIEWER, str(root), str(TINY_CONFIG)],
                             stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    try:
        assert other.stdout.readline().strip() == "decided"
        assert [ln["image"] for ln in lines(root)] == ["data/training_data/p0.jpg"]  # the other one approved p0
        key(rv, "Delete")  # this one would reject it: told first, nothing logged
        assert len(lines(root)) == 1 and s.image.endswith("p0.jpg")
        assert "another reviewer decided data/training_data/p0.jpg meanwhile (approved at" in panel(rv)
        key(rv, "Delete")  # the user insists: logged once, on to the next image
        assert [ln["decision"] for ln in lines(root)] == ["approved", "rejected"] and s.image.endswith("p1.jpg")
        assert f"another reviewer (pid {other.pid}) is open on this root since" in panel(rv)
        assert "decisions from both are logged" in panel(rv)
    finally:
        other.kill()
        other.wait()
    key(rv, "s")
    assert s.others == [] and "another reviewer" not in panel(rv)  # a dead process's registration is stale
    key(rv, "Enter")
    assert len(lines(root)) == 3  # no warning for an image nobody else decided


def test_undo_after_retrain_logs_the_restored_box_under_the_proposer_that_suggested_it(tmp_path, proposer):
    root = make_root(tmp_path, proposer, pending=2, decided=4)
    layout = Layout.from_args(root)
    session = ReviewSession(Suggester.open(root), order_queue(pending_images(layout), "file"))
    rv = CropReviewer(session, retrain=lambda _bar: Retrained(run_train(TrainOptions(
        root=root, arch=TINY, weights="none", steps=40, progress=False, workers=0), log=lambda _m: None).proposer,
        "v2 suggests"))
    suggested = [round(v, 1) for v in session.boxes[0].box]
    key(rv, "Enter")
    rv.buttons["retrain"].click()
    rv.wait_for_retrain()
    assert session.suggester.proposer.name == "crop_proposer_v2"
    key(rv, "u")
    assert session.proposer_name == "crop_proposer_v1" and "suggested by <b>crop_proposer_v1</b>" in panel(rv)
    key(rv, "Enter")
    last = lines(root)[-1]
    assert last["model"] == "crop_proposer_v1" and last["suggested"] == suggested
