"""Generated libraries (benchmarks, the demo) are built only where no user data lives: a benchmark pointed at a
user's root refuses before writing anything, and a report never replaces a file it did not write (the write-path
audit of issue 11, beside finding 4)."""

from __future__ import annotations

import json

import pytest

from cropkit.bench.learning import write_report
from cropkit.cli import main
from cropkit.errors import CropkitError
from cropkit.layout import GENERATED_MARK, claim_generated_root
from tests.libgen import changed_entries, make_library, snapshot


@pytest.mark.parametrize("only", ["learning", "extract"])
def test_bench_refuses_a_root_that_holds_a_library(tmp_path, capsys, only):
    make_library(tmp_path / "data/training_data", n=3)
    (tmp_path / "data/ai_data/logs").mkdir(parents=True)
    (tmp_path / "data/ai_data/logs/training_log.jsonl").write_text("")
    sub = "learning" if only == "learning" else "extract"
    (tmp_path / sub).mkdir()
    (tmp_path / sub / "notes.txt").write_text("mine")  # the benchmark's own folder name, already in use
    before = snapshot(tmp_path)
    code = main(["bench", "--root", str(tmp_path), "--only", only, "--decisions", "5", "--camera-images", "2",
                 "--out", str(tmp_path / "report.json")])
    assert code == 2 and "did not generate" in capsys.readouterr().err
    assert changed_entries(before, snapshot(tmp_path)) == {}


def test_a_generated_root_is_claimed_once_and_reused(tmp_path):
    root = claim_generated_root(tmp_path / "new", "benchmark")
    assert (root / GENERATED_MARK).is_file()
    (root / "data").mkdir()
    assert claim_generated_root(root, "benchmark") == root  # its own: reused
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine/IMG_0001.jpg").write_bytes(b"photo")
    with pytest.raises(CropkitError, match="did not generate"):
        claim_generated_root(tmp_path / "mine", "demo")


def test_a_report_replaces_only_an_earlier_report(tmp_path):
    photo = tmp_path / "IMG_0001.jpg"
    photo.write_bytes(b"\xff\xd8 a photo")
    with pytest.raises(CropkitError, match="left alone"):
        write_report({"train": {}}, photo)
    assert photo.read_bytes() == b"\xff\xd8 a photo"
    out = tmp_path / "report.json"
    write_report({"n": 1}, out)
    write_report({"n": 2}, out)
    assert json.loads(out.read_text())["n"] == 2


def test_bench_checks_its_report_file_before_it_runs(tmp_path, capsys):
    photo = tmp_path / "IMG_0001.jpg"
    photo.write_bytes(b"\xff\xd8 a photo")
    assert main(["bench", "--root", str(tmp_path / "bench"), "--out", str(photo)]) == 2
    assert "left alone" in capsys.readouterr().err and not (tmp_path / "bench").exists()
