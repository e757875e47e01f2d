"""A root remembers its encoder and its library: a choice made once at extract holds for every later command,
and decisions made on a library outside the root are read back by train (issue 11, findings 6, 13 and 17)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cropkit.cli import main
from cropkit.decisions import CropDecision, append_decision
from cropkit.layout import Layout
from tests.conftest import TINY, TINY_CONFIG
from tests.libgen import changed_entries, snapshot, square_on_subject, subject_photo


def _photos(folder: Path, n: int, seed: int = 300) -> list[tuple[Path, tuple]]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        img, subject = subject_photo(seed + i)
        path = folder / f"p{i:02d}.jpg"
        img.save(path, quality=90)
        out.append((path, (*img.size, square_on_subject(*img.size, subject))))
    return out


def _log_crops(root: Path, layout: Layout, photos: list[tuple[Path, tuple]]) -> None:
    for i, (path, (w, h, box)) in enumerate(photos):
        append_decision(layout.logs, CropDecision(layout.relative_name(path), w, h, box, float(i)))


def test_train_uses_the_encoder_extract_used(tmp_path, capsys):
    """Finding 13: after `extract --pretrained none`, a plain `train` used to ask for the openai weights."""
    photos = _photos(tmp_path / "data/training_data", 8)
    _log_crops(tmp_path, Layout.from_args(tmp_path), photos)
    r = ["--root", str(tmp_path), "--arch-config", str(TINY_CONFIG)]
    assert main(["extract", *r, "--arch", TINY, "--weights", "none", "--no-progress", "--workers", "0"]) == 0
    capsys.readouterr()
    assert main(["train", *r, "--steps", "20", "--no-progress", "--workers", "0"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert f"features of {TINY}/random-init-seed0" in out and "trained on: 8 decisions" in out
    settings = json.loads((tmp_path / "data/ai_data/settings.json").read_text())
    assert settings == {"images": None, "model": TINY, "pretrained": "none", "subject_model": None, "subject_id": None}


def test_a_named_encoder_still_wins_over_the_remembered_one(tmp_path, capsys):
    _photos(tmp_path / "data/training_data", 2)
    r = ["--root", str(tmp_path), "--arch-config", str(TINY_CONFIG), "--no-progress", "--workers", "0"]
    assert main(["extract", *r, "--arch", TINY, "--weights", "none"]) == 0
    capsys.readouterr()
    assert main(["extract", *r, "--weights", "no-such-tag"]) == 2  # named: tried, refused, not remembered
    assert "no-such-tag" in capsys.readouterr().err
    assert json.loads((tmp_path / "data/ai_data/settings.json").read_text())["pretrained"] == "none"


def test_decisions_on_a_library_outside_the_root_are_trained_on(tmp_path, capsys):
    """Finding 6: a library outside the root gave absolute log paths that every reader rejected."""
    library, root = tmp_path / "mnt/library", tmp_path / "project"
    photos = _photos(library / "trip", 8)
    before = snapshot(library)
    layout = Layout.from_args(root, library)
    _log_crops(root, layout, photos)
    names = [json.loads(line)["image"] for line in (layout.logs / "training_log.jsonl").read_text().splitlines()]
    assert names[0] == "trip/p00.jpg"  # relative to the library: a reader accepts it, it cannot escape
    r = ["--root", str(root), "--arch-config", str(TINY_CONFIG), "--no-progress", "--workers", "0"]
    assert main(["extract", *r, "--images", str(library), "--arch", TINY, "--weights", "none"]) == 0
    capsys.readouterr()
    assert main(["train", *r, "--steps", "20"]) == 0, capsys.readouterr().err  # library and encoder remembered
    out = capsys.readouterr().out
    assert "trained on: 8 decisions" in out and "skipped" not in out
    assert changed_entries(before, snapshot(library)) == {}


@pytest.mark.parametrize("value", ["-1", "-5"])
def test_negative_workers_are_refused(tmp_path, capsys, value):
    """Finding 17: negative --workers were accepted."""
    with pytest.raises(SystemExit) as exc:
        main(["extract", "--root", str(tmp_path), "--workers", value])
    assert exc.value.code == 2 and "must be 0" in capsys.readouterr().err


def test_a_library_inside_the_root_but_elsewhere_is_remembered_relative_to_the_root(tmp_path, capsys):
    photos = _photos(tmp_path / "project/lib/trip", 6)
    root = tmp_path / "project"
    r = ["--root", str(root), "--arch-config", str(TINY_CONFIG), "--no-progress", "--workers", "0"]
    assert main(["extract", *r, "--images", str(root / "lib"), "--arch", TINY, "--weights", "none"]) == 0
    assert json.loads((root / "data/ai_data/settings.json").read_text())["images"] == "lib"
    moved = tmp_path / "moved"
    root.rename(moved)  # a root that moves keeps its library
    layout = Layout.from_args(moved)
    assert layout.images == moved / "lib"
    _log_crops(moved, layout, [(moved / p.relative_to(root), size) for p, size in photos])
    assert layout.relative_name(moved / "lib/trip/p00.jpg") == "lib/trip/p00.jpg"
    capsys.readouterr()
    assert main(["train", "--root", str(moved), "--steps", "20", "--no-progress", "--workers", "0",
                 "--arch-config", str(TINY_CONFIG)]) == 0, capsys.readouterr().err
    assert "trained on: 6 decisions" in capsys.readouterr().out
