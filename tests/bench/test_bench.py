"""The learning benchmark runs end to end at a small size and reports every figure (no time is asserted)."""

from __future__ import annotations

import json

import pytest

from cropkit.bench.learning import format_report, run_bench, write_report


def test_bench_reports_train_and_suggest_timings(tmp_path, monkeypatch):
    monkeypatch.setattr("cropkit.bench.extract.camera_library", _small_camera_library)  # 24 MP files are slow
    report = run_bench(tmp_path / "root", n_decisions=40, n_new=2, log=lambda _m: None)
    assert report["train"]["decisions"] == 40 and report["train"]["seconds"] > 0
    assert report["cached_rerun"]["entries"] == 40 and report["cached_rerun"]["seconds"] > 0
    assert report["suggest_cached"]["n"] == 40 and report["suggest_cached"]["p95_ms"] >= report["suggest_cached"][
        "p50_ms"] > 0
    assert report["suggest_new_24mp"]["n"] == 2
    text = format_report(report)
    assert "train on 40 decisions" in text and "suggest, new 24 MP JPEG" in text
    write_report(report, tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["train"]["target_s"] == 60
    assert (tmp_path / "root/data/ai_data/models/crop_proposer_v1.pth").is_file()
    assert not list((tmp_path / "root/new").iterdir())  # the timed new images are not left behind


def _small_camera_library(dest, n, log):
    """The camera library's contract at a size a test can afford: n distinct JPEGs, made once."""
    from tests.libgen import save_photo

    dest.mkdir(parents=True, exist_ok=True)
    return [save_photo(dest / f"camera_{i:03d}.jpg", 800, 600, seed=i, quality=92) for i in range(n)]


def test_extract_bench_reports_ratios_memory_and_cached_rerun(tmp_path, monkeypatch):
    from cropkit.bench import extract as bench_extract
    from tests.conftest import TINY, TINY_CONFIG

    monkeypatch.setattr(bench_extract, "camera_library", _small_camera_library)
    monkeypatch.setattr(bench_extract, "measure_naive", lambda paths, model, device: 1.0)  # no preprocess for TINY
    r = bench_extract.run_extract_bench(tmp_path, n_images=4, arch=TINY, batch_size=2, log=lambda _m: None,
                                        extra=["--arch-config", str(TINY_CONFIG)])
    assert r["images"] == 4 and r["ceiling_images_per_s"] > 0 and r["cropkit_images_per_s"] > 0
    assert r["ratio_cropkit_naive"] == r["cropkit_images_per_s"]
    assert r["peak_rss_bytes"] > 50 * 2**20 and r["peak_rss_checkpoint_bytes"] > 50 * 2**20  # real processes
    assert (tmp_path / f"weights/{TINY}_random-seed0.pt").is_file()
    assert r["batch_size"] == 2 and r["device"] == "cpu"
    assert r["encoder_cpu_ms_per_image"] > 0 and r["prepare_cpu_ms_per_image"] > 0
    assert 0 < r["attainable_images_per_s"] <= r["ceiling_images_per_s"]
    assert r["ratio_cropkit_attainable"] == r["cropkit_images_per_s"] / r["attainable_images_per_s"]
    assert 0 < r["feature_bytes_per_image"] <= 65536 and r["cached_rerun_s"] > 0
    assert "cropkit/ceiling" in bench_extract.format_extract_report(r)


def test_the_engine_bench_runs_both_engines_on_the_same_files(tmp_path, monkeypatch):
    import pytest

    pytest.importorskip("ray", reason="the ray extra (make installs it)")
    from cropkit.bench import extract as bench_extract
    from tests.conftest import TINY, TINY_CONFIG

    monkeypatch.setattr(bench_extract, "camera_library", _small_camera_library)
    r = bench_extract.run_engine_bench(tmp_path, n_images=3, arch=TINY, log=lambda _m: None,
                                       extra=["--arch-config", str(TINY_CONFIG)])
    assert r["local"]["images_per_s"] > 0 and r["ray"]["images_per_s"] > 0
    assert r["ratio_ray_local"] == r["ray"]["images_per_s"] / r["local"]["images_per_s"]
    features = {e: sorted(p.read_bytes() for p in (tmp_path / f"engine-{e}/data/ai_data/embeddings").rglob("*.npy"))
                for e in ("local", "ray")}
    assert len(features["local"]) == 3 and features["local"] == features["ray"]
    assert "ray/local" in bench_extract.format_engine_report(r)


def test_bench_times_the_subject_model_alone_inside_extract_and_for_train_and_suggest(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime", reason="the subject extra (make installs it)")
    from cropkit.bench import extract as bench_extract
    from tests.conftest import TINY, TINY_CONFIG
    from tests.features.test_subject import tiny_isnet

    model = str(tiny_isnet(tmp_path / "tiny.onnx"))
    monkeypatch.setattr(bench_extract, "camera_library", _small_camera_library)
    monkeypatch.setattr(bench_extract, "measure_naive", lambda paths, model, device: 1.0)
    r = bench_extract.run_extract_bench(tmp_path / "x", n_images=3, arch=TINY, batch_size=2, log=lambda _m: None,
                                        extra=["--arch-config", str(TINY_CONFIG)], subject_model=model)
    s = r["subject"]
    assert s["images"] == 3 and s["side"] == 512 and s["wall_ms_per_image"] > 0 and s["cpu_ms_per_image"] > 0
    assert s["subject_id"].startswith("tiny-")
    assert len(list((tmp_path / f"x/data/ai_data/cues/subject/{s['subject_id']}").rglob("*.npy"))) == 3  # in extract
    assert "subject map (tiny.onnx at 512 px" in bench_extract.format_extract_report(r)

    report = run_bench(tmp_path / "l", n_decisions=30, n_new=2, log=lambda _m: None, subject_model=model)
    assert report["subject_id"] == s["subject_id"]  # train read the maps, so the proposer needs them
    assert f"subject maps: {s['subject_id']}" in format_report(report)
    again = run_bench(tmp_path / "l", n_decisions=30, n_new=2, log=lambda _m: None)  # the same root, turned off
    assert again["subject_id"] is None


def test_bench_refuses_a_missing_subject_model_before_any_work(tmp_path, capsys):
    from cropkit.cli import main

    assert main(["bench", "--subject-model", str(tmp_path / "nope.onnx"), "--root", str(tmp_path / "r"),
                 "--out", str(tmp_path / "r.json")]) == 2
    assert "nope.onnx': no such file" in capsys.readouterr().err
    assert not (tmp_path / "r").exists() and not (tmp_path / "r.json").exists()
