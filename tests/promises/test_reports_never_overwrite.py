"""Reports never overwrite a file and never land in the photo library (issue 11, finding 16)."""

from __future__ import annotations

import json

import pytest

from cropkit.cli import main
from tests.conftest import TINY_CONFIG
from tests.libgen import changed_entries, snapshot
from tests.promises.learning_root import FEATURES, make_trained_root


@pytest.fixture(scope="module")
def trained_root(tmp_path_factory):
    return make_trained_root(tmp_path_factory.mktemp("reports"))


def _evaluate(root, *extra: str) -> int:
    return main(["evaluate", "--root", str(root), "--arch-config", str(TINY_CONFIG), "--no-progress", *extra])


def test_evaluate_refuses_a_folder_that_holds_a_report(trained_root, tmp_path, capsys):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "report.json").write_text('{"my": "own report"}')
    (folder / "iou_by_method.png").write_bytes(b"my figure")
    before = snapshot(folder)
    assert _evaluate(trained_root, "--out", str(folder)) == 2
    err = capsys.readouterr().err
    assert "already holds report.json, iou_by_method.png" in err and "never overwrites" in err
    assert changed_entries(before, snapshot(folder)) == {}


def test_evaluate_refuses_a_folder_in_the_photo_library(trained_root, capsys):
    library = trained_root / "data/training_data"
    before = snapshot(library)
    for out in (library / "reports", library):
        assert _evaluate(trained_root, "--out", str(out)) == 2
        assert "inside the photo library" in capsys.readouterr().err
    assert changed_entries(before, snapshot(library)) == {}


def test_evaluate_writes_into_a_folder_with_other_files(trained_root, tmp_path, capsys):
    folder = tmp_path / "run_figures"  # a batch run's folder: another notebook's figures are already there
    folder.mkdir()
    (folder / "extract_summary.png").write_bytes(b"from another notebook")
    assert _evaluate(trained_root, "--out", str(folder)) == 0
    assert (folder / "extract_summary.png").read_bytes() == b"from another notebook"
    assert json.loads((folder / "report.json").read_text())["proposer"].startswith("crop_proposer_v")


def test_two_default_evaluations_get_two_folders(trained_root, capsys):
    assert _evaluate(trained_root) == 0 and _evaluate(trained_root) == 0
    reports = [line.split("report:  ")[1] for line in capsys.readouterr().out.splitlines() if "report:  " in line]
    assert len(reports) == 2 and reports[0] != reports[1]


def test_a_learning_curve_never_overwrites_and_stays_out_of_the_library(trained_root, tmp_path, capsys):
    folder = tmp_path / "curves"
    folder.mkdir()
    (folder / "learning_curve_iou.png").write_bytes(b"my figure")
    library = trained_root / "data/training_data"
    before, before_library = snapshot(folder), snapshot(library)
    for out in (folder, library / "curves"):
        args = ["train", "--root", str(trained_root), *FEATURES, "--steps", "5", "--no-progress", "--workers", "0",
                "--learning-curve", str(out)]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert "never overwrites" in err or "inside the photo library" in err
    assert changed_entries(before, snapshot(folder)) == {}
    assert changed_entries(before_library, snapshot(library)) == {}
