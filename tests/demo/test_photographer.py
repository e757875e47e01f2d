"""The simulated photographer: tastes are exact rules, and the benchmark runs end to end at a small size."""

from __future__ import annotations

import json

import pytest

from cropkit.demo.photographer import TASTES, TasteRun, beats_baselines_from, run_taste_benchmark, write_reports
from cropkit.errors import CropkitError
from tests.conftest import TINY


@pytest.mark.parametrize(("taste", "aspect"), [("thirds-4:5", 0.8), ("tight-square", 1.0), ("wide-3:2", 1.5)])
def test_tastes_give_their_aspect_inside_the_frame(taste, aspect):
    for w, h, subject in ((600, 400, (0.2, 0.3)), (400, 600, (0.9, 0.9)), (500, 500, (0.5, 0.5))):
        x0, y0, x1, y1 = TASTES[taste](w, h, subject)
        assert (x1 - x0) / (y1 - y0) == pytest.approx(aspect)
        assert 0 <= x0 < x1 <= w + 1e-9 and 0 <= y0 < y1 <= h + 1e-9


def test_thirds_taste_puts_the_subject_on_a_thirds_line_when_there_is_room():
    x0, y0, x1, y1 = TASTES["thirds-4:5"](1000, 1000, (0.4, 0.4))
    assert (400 - x0) / (x1 - x0) == pytest.approx(1 / 3) and (400 - y0) / (y1 - y0) == pytest.approx(1 / 3)
    x0, _, x1, _ = TASTES["thirds-4:5"](1000, 1000, (0.6, 0.5))
    assert (600 - x0) / (x1 - x0) == pytest.approx(2 / 3)


def test_verdict_needs_wins_at_every_later_point():
    def curve(*wins):
        return TasteRun("t", {n: {"proposer": {"mean_iou": 0.6 if w else 0.4, "acceptance_rate": 0.2},
                                  "base": {"mean_iou": 0.5, "acceptance_rate": 0.1}}
                              for n, w in zip((10, 30, 100, 300), wins)})
    assert beats_baselines_from(curve(False, True, True, True)) == 30
    assert beats_baselines_from(curve(True, False, True, True)) == 100
    assert beats_baselines_from(curve(True, True, True, False)) is None


def test_small_benchmark_runs_and_writes_reports(tmp_path, tiny_model):
    runs, meta = run_taste_benchmark(tmp_path / "root", n_train=30, n_test=12, arch=TINY, steps=60,
                                     points=(10, 30), log=lambda _m: None, progress=False)
    assert [r.taste for r in runs] == list(TASTES)
    for r in runs:
        assert sorted(r.curve) == [10, 30]
        assert set(r.curve[30]) == {"proposer", "full-frame", "centre-crop", "mean-box", "saliency"}
        assert all(s["n"] == 12 for s in r.curve[30].values())
    assert meta["feature_model"] == f"{TINY}/random-init-seed0" and meta["n_photos"] >= 12
    write_reports(runs, meta, tmp_path / "b.md", tmp_path / "b.json")
    md = (tmp_path / "b.md").read_text()
    assert "## Verdict" in md and "UNTRAINED" in md and "| 30 | proposer |" in md
    assert json.loads((tmp_path / "b.json").read_text())["tastes"]["wide-3:2"]["30"]["proposer"]["n"] == 12
    write_reports(runs, meta, tmp_path / "b.md", tmp_path / "b.json")  # an earlier report is replaced
    (tmp_path / "notes.md").write_text("# my notes\n")
    with pytest.raises(CropkitError, match="left alone"):  # any other file is not (issue 11, write-path audit)
        write_reports(runs, meta, tmp_path / "notes.md", tmp_path / "notes.json")
    assert (tmp_path / "notes.md").read_text() == "# my notes\n" and not (tmp_path / "notes.json").exists()
