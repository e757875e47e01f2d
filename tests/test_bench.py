"""The learning benchmark runs end to end at a small size and reports every figure (no time is asserted)."""

from __future__ import annotations

import json

from cropkit.bench import format_report, run_bench, write_report


def test_bench_reports_train_and_suggest_timings(tmp_path, monkeypatch):
    monkeypatch.setattr("cropkit.bench.camera_jpeg", _small_jpeg)  # a 24 MP JPEG per run is slow for a test
    report = run_bench(tmp_path / "root", n_decisions=40, n_new=2, log=lambda _m: None)
    assert report["train"]["decisions"] == 40 and report["train"]["seconds"] > 0
    assert report["suggest_cached"]["n"] == 40 and report["suggest_cached"]["p95_ms"] >= report["suggest_cached"][
        "p50_ms"] > 0
    assert report["suggest_new_24mp"]["n"] == 2
    text = format_report(report)
    assert "train on 40 decisions" in text and "suggest, new 24 MP JPEG" in text
    write_report(report, tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["train"]["target_s"] == 60
    assert (tmp_path / "root/data/ai_data/models/crop_proposer_v1.pth").is_file()
    assert not list((tmp_path / "root/new").iterdir())  # the timed new images are not left behind


def _small_jpeg(path, seed):
    from tests.libgen import save_photo

    return save_photo(path, 640, 480, seed=seed)
