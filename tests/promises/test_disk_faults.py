"""A full disk and a read-only data/ai_data, for real (a small tmpfs): every command says what to do,
nothing already written is lost, and the source library is never touched."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from cropkit.cli import main
from cropkit.decisions import read_crops, read_suggestions
from cropkit.features.cache import ProcessedCache
from cropkit.features.cues import CueStore
from cropkit.features.store import FeatureStore
from cropkit.fileio import BadLine, append_jsonl, read_jsonl
from cropkit.layout import Layout
from cropkit.learn.proposer import CropProposer
from cropkit.learn.suggest import Suggester
from cropkit.review.queue import order_queue, pending_images
from cropkit.review.session import ReviewSession
from cropkit.review.widget import CropReviewer
from tests.conftest import TINY, TINY_CONFIG
from tests.helpers.small_disk import fill, remount, tmpfs
from tests.libgen import changed_entries, log_crops, save_photo, snapshot, subject_library

FEATURES = ["--arch", TINY, "--weights", "none", "--arch-config", str(TINY_CONFIG)]
MODEL_ID = f"{TINY}/random-init-seed0"
FULL = "the disk is full"
READ_ONLY = "make that folder writable"


@pytest.fixture
def root(tmp_path: Path):
    """12 photos with companions and 8 logged crops; data/ai_data is a 16 MiB tmpfs of its own."""
    images = tmp_path / "data/training_data"
    with tmpfs(tmp_path / "data/ai_data"):
        log_crops(tmp_path, subject_library(tmp_path, 12, seed=500, prefix="s", companions=True, quality=75)[:8])
        before = snapshot(images)
        yield tmp_path
        assert changed_entries(before, snapshot(images)) == {}, "the source library was modified"


def ai_data_state(root: Path) -> dict:
    """Every file under data/ai_data (bytes, size, mtime, mode) and every folder, the filler aside: a failed
    command must leave it as it was. (A folder's own mtime may move: a temp file was made and removed.)"""
    state = snapshot(root / "data/ai_data")
    return {k: v if v[0] == "file" else v[0] for k, v in state.items() if k != "filler.bin"}


def assert_whole(root: Path) -> None:
    """No temp file anywhere, every JSONL line parses, every cached feature and cue file loads."""
    ai = root / "data/ai_data"
    assert not [p for p in ai.rglob("*") if ".cropkit-tmp-" in p.name]
    for log in ai.rglob("*.jsonl"):
        assert not [x for _, x in read_jsonl(log) if isinstance(x, BadLine)], log
    cache = ProcessedCache(Layout.from_args(root).processed_files, MODEL_ID)
    for entry in cache.entries.values():
        if entry.ok:
            FeatureStore(ai / "embeddings", MODEL_ID).load(entry.hash)
            CueStore(ai / "cues").load(entry.hash)


def run(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def extract(root: Path, *extra: str) -> list[str]:
    return ["extract", "--root", str(root), *FEATURES, "--no-progress", "--workers", "0", *extra]


def train(root: Path) -> list[str]:
    return ["train", "--root", str(root), *FEATURES, "--steps", "30", "--no-progress", "--workers", "0"]


def test_extract_on_a_full_disk_stops_clearly_keeps_its_work_and_goes_on_when_there_is_room(root, capsys):
    filler = fill(root / "data/ai_data", leave_pages=7)  # room for about two images' files
    code, _, err = run(extract(root), capsys)
    assert code == 1 and FULL in err and "run the command again" in err and "Traceback" not in err
    assert_whole(root)
    done = [e for e in ProcessedCache(Layout.from_args(root).processed_files, MODEL_ID).entries.values() if e.ok]
    assert 1 <= len(done) < 12
    filler.unlink()
    code, out, _ = run(extract(root), capsys)
    assert code == 0 and f"cached:     {len(done)} " in out and f"processed:  {12 - len(done)} " in out
    assert_whole(root)


def test_train_and_evaluate_on_a_full_disk_keep_the_last_model(root, capsys):
    assert run(train(root), capsys)[0] == 0
    models = root / "data/ai_data/models"
    v1 = (models / "crop_proposer_v1.pth").read_bytes()
    filler = fill(root / "data/ai_data")
    state = ai_data_state(root)
    code, _, err = run(train(root), capsys)
    assert code == 1 and FULL in err and "Traceback" not in err
    code, _, err = run(["evaluate", "--root", str(root), "--no-progress", "--arch-config", str(TINY_CONFIG)], capsys)
    assert code == 1 and FULL in err
    assert ai_data_state(root) == state  # nothing lost, nothing half-written
    assert_whole(root)
    assert (models / "crop_proposer_v1.pth").read_bytes() == v1 and CropProposer.load(models / "crop_proposer_v1.pth")
    filler.unlink()
    assert run(train(root), capsys)[0] == 0 and (models / "crop_proposer_v2.pth").is_file()


def test_suggest_on_a_full_disk_still_suggests_and_says_what_was_not_stored(root, capsys, tmp_path_factory):
    assert run(train(root), capsys)[0] == 0
    new = save_photo(tmp_path_factory.mktemp("elsewhere") / "new.jpg", 400, 300, seed=3)
    fill(root / "data/ai_data")
    state = ai_data_state(root)
    code, out, err = run(["suggest", "--root", str(root), "--json", "--arch-config", str(TINY_CONFIG),
                          str(root / "data/training_data/s01.jpg"), str(new)], capsys)
    assert code == 0 and len(out.splitlines()) == 2
    assert "features not stored" in err and "new.jpg" in err and FULL in err
    assert ai_data_state(root) == state
    assert_whole(root)


def test_a_decision_log_that_fills_the_disk_takes_back_its_partial_line(root):
    logs = root / "data/ai_data/logs"
    filler = fill(root / "data/ai_data")
    record = {"image": "data/training_data/s01.jpg", "note": "x" * 300}
    with pytest.raises(OSError) as caught:
        for _ in range(40):  # the log file's last page has some room: fill it, then one line straddles
            append_jsonl(logs / "training_log.jsonl", record)
    assert caught.value.errno == errno.ENOSPC
    raw = (logs / "training_log.jsonl").read_bytes()
    assert raw.endswith(b"\n") and not [x for _, x in read_jsonl(logs / "training_log.jsonl")
                                        if isinstance(x, BadLine)]
    filler.unlink()
    append_jsonl(logs / "training_log.jsonl", record)
    assert (logs / "training_log.jsonl").read_bytes() == raw + raw.splitlines(keepends=True)[-1]


def reviewer(root: Path) -> CropReviewer:
    layout = Layout.from_args(root)
    return CropReviewer(ReviewSession(Suggester.open(root), order_queue(pending_images(layout), "file")))


def logged(root: Path) -> tuple[int, int]:
    logs = root / "data/ai_data/logs"
    return len(read_crops(logs)[0]), len(read_suggestions(logs)[0])


def test_the_reviewer_on_a_full_disk_keeps_the_image_and_logs_once_when_there_is_room(root, capsys):
    assert run(train(root), capsys)[0] == 0
    rv = reviewer(root)
    rv.session.add_box()  # two records for this image: a suggestion outcome and an added crop
    image, before = rv.session.image, logged(root)
    filler = fill(root / "data/ai_data")
    rv.accept()
    assert "Not logged" in rv.status.value and FULL in rv.status.value and "press the key again" in rv.status.value
    assert rv.session.image == image and rv.session.decided == 0
    assert_whole(root)
    filler.unlink()
    rv.accept()
    assert rv.session.image != image and rv.session.decided == 1 and "Not logged" not in rv.status.value
    assert logged(root) == (before[0] + 1, before[1] + 1)  # each record exactly once


def test_read_only_ai_data_every_command_says_what_to_do_and_changes_nothing(root, capsys, tmp_path_factory):
    assert run(extract(root), capsys)[0] == 0 and run(train(root), capsys)[0] == 0
    new = save_photo(tmp_path_factory.mktemp("elsewhere") / "new.jpg", 400, 300, seed=4)
    rv = reviewer(root)
    remount(root / "data/ai_data", "ro")
    state = ai_data_state(root)
    for args in (extract(root, "--force"), train(root),
                 ["evaluate", "--root", str(root), "--no-progress", "--arch-config", str(TINY_CONFIG)],
                 ["notebooks", "--root", str(root), "-p", "model_config", str(TINY_CONFIG)]):
        code, _, err = run(args, capsys)
        assert code == 1 and READ_ONLY in err and "Read-only file system" in err, (args[0], err)
    code, out, err = run(["suggest", "--root", str(root), "--arch-config", str(TINY_CONFIG),
                          str(root / "data/training_data/s02.jpg"), str(new)], capsys)
    assert code == 0 and out.count("likely to be accepted") >= 2 and "features not stored" in err
    rv.reject()
    assert "Not logged" in rv.status.value and READ_ONLY in rv.status.value and rv.session.decided == 0
    assert ai_data_state(root) == state
    remount(root / "data/ai_data", "rw")
    rv.reject()
    assert rv.session.decided == 1
    assert_whole(root)


def test_sidecars_on_a_full_library_disk_are_refused_and_the_run_finishes(tmp_path, capsys):
    with tmpfs(tmp_path / "data/training_data", size="2m") as images:
        for i in range(4):
            save_photo(images / f"p{i}.jpg", 320, 240, seed=i)
        fill(images)
        before = snapshot(images)
        code, out, err = run(extract(tmp_path, "--sidecars"), capsys)
        assert code == 0 and "processed:  4 " in out
        assert "refused: 16" in out and "No space left on device" in err  # 4 sidecars of each of 4 photos
        assert changed_entries(before, snapshot(images)) == {}
