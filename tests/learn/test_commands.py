"""End to end on a small generated library: extract, train, suggest, evaluate, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from cropkit.cli import main
from cropkit.decisions import CropDecision, SuggestionDecision, append_decision
from cropkit.learn.dataset import Example
from cropkit.learn.heldout import curve_points, decisions_in, first_decisions, verdict
from tests.conftest import TINY, TINY_CONFIG
from tests.libgen import changed_entries, snapshot, subject_library, subject_photo

FEATURES = ["--arch", TINY, "--weights", "none", "--arch-config", str(TINY_CONFIG)]


@pytest.fixture(scope="module")
def trained_root(tmp_path_factory):
    """30 photos with crops and suggestions logged, extracted and trained once (v1)."""
    root = tmp_path_factory.mktemp("lib")
    images, logs = root / "data/training_data", root / "data/ai_data/logs"
    for i, p in enumerate(subject_library(root, 30, seed=100, quality=92)):
        if i % 5 == 4:
            wrong = (0.0, 0.0, p.width / 3, p.height / 3)
            kind = ("approved", "modified", "rejected")[i % 3]
            final = {"approved": wrong, "modified": p.crop, "rejected": None}[kind]
            append_decision(logs, SuggestionDecision(p.name, p.width, p.height, wrong, final, kind,
                                                     "crop_proposer_v0" if i < 15 else "crop_proposer_v1", i))
        else:
            append_decision(logs, CropDecision(p.name, p.width, p.height, p.crop, float(i)))
    with open(logs / "training_log.jsonl", "a") as f:
        f.write('{"image": "../outside.jpg", "width": 10, "height": 10, "crop": [0, 0, 5, 5], "ts": 1}\n')
    before = snapshot(images)
    assert main(["extract", "--root", str(root), *FEATURES, "--no-progress", "--workers", "0"]) == 0
    assert main(["train", "--root", str(root), *FEATURES, "--steps", "150", "--no-progress", "--workers", "0"]) == 0
    yield root
    assert changed_entries(before, snapshot(images)) == {}


def test_train_writes_a_versioned_proposer_with_metadata(trained_root, capsys):
    path = trained_root / "data/ai_data/models/crop_proposer_v1.pth"
    payload = torch.load(path, weights_only=True)
    meta = payload["meta"]
    assert meta["feature_model"] == f"{TINY}/random-init-seed0" and meta["pretrained"] == "none"
    assert len(meta["fingerprint"]) == 64 and meta["cropkit_version"] and meta["created"].startswith("20")
    assert meta["n_decisions"] == 30 and meta["n_train_images"] + meta["n_test_images"] == 30
    assert set(meta["heldout"]) == {"proposer", "full-frame", "centre-crop", "usual-box", "mean-box", "saliency"}
    assert path.stat().st_size < 10 * 1024 * 1024


def test_train_reports_skipped_lines_and_a_rerun_adds_a_version(trained_root, capsys):
    v1 = (trained_root / "data/ai_data/models/crop_proposer_v1.pth").read_bytes()
    assert main(["train", "--root", str(trained_root), *FEATURES, "--steps", "20", "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "crop_proposer_v2.pth" in captured.out and "skipped log lines: 1" in captured.out
    assert "escapes the library root" in captured.err and "UNTRAINED" in captured.err
    assert (trained_root / "data/ai_data/models/crop_proposer_v1.pth").read_bytes() == v1


def test_suggest_json_from_cached_features_and_for_a_new_image(trained_root, capsys, tmp_path):
    new = tmp_path / "new photo.jpg"
    subject_photo(999)[0].save(new)
    args = ["suggest", "--root", str(trained_root), "--json", "--top-k", "2", "--aspect", "4:5",
            "--arch-config", str(TINY_CONFIG), str(trained_root / "data/training_data/p03.jpg"), str(new)]
    assert main(args) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["image"] for r in lines] == ["data/training_data/p03.jpg", new.as_posix()]
    for r in lines:
        assert set(r) == {"image", "width", "height", "model", "suggestions"}
        with Image.open(trained_root / r["image"] if not r["image"].startswith("/") else r["image"]) as img:
            assert (r["width"], r["height"]) == img.size
        assert r["model"].startswith("crop_proposer_v") and len(r["suggestions"]) == 2
        scores = [s["score"] for s in r["suggestions"]]
        assert scores == sorted(scores, reverse=True)
        for s in r["suggestions"]:
            x0, y0, x1, y1 = s["box"]
            assert 0 <= x0 < x1 <= r["width"] and 0 <= y0 < y1 <= r["height"]
            assert (x1 - x0) / (y1 - y0) == pytest.approx(0.8, abs=0.01)


def test_suggest_text_output_and_a_bad_image(trained_root, capsys, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a photo")
    args = ["suggest", "--root", str(trained_root), "--arch-config", str(TINY_CONFIG),
            str(trained_root / "data/training_data/p05.jpg"), str(bad)]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert "1. [" in captured.out and "p05.jpg" in captured.out
    assert "broken.jpg" in captured.err


def test_evaluate_writes_report_and_figures(trained_root, capsys):
    args = ["evaluate", "--root", str(trained_root), "--arch-config", str(TINY_CONFIG), "--no-progress",
            "--proposer", str(trained_root / "data/ai_data/models/crop_proposer_v1.pth")]
    assert main(args) == 0
    out = capsys.readouterr().out
    report_path = Path(out.split("report:  ")[1].splitlines()[0])
    report = json.loads(report_path.read_text())
    assert report["proposer"] == "crop_proposer_v1.pth"
    assert set(report["methods"]) == {"proposer", "full-frame", "centre-crop", "usual-box", "mean-box", "saliency"}
    for scores in report["methods"].values():
        assert 0 <= scores["mean_iou"] <= 1 and 0 <= scores["acceptance_rate"] <= 1
        assert 0 < scores["n"] == len(scores["ious"]) <= report["held_out_images"]  # rejected-only images: no truth
    by_model = report["suggestions"]["by_model"]
    assert by_model["crop_proposer_v0"]["approved"] + by_model["crop_proposer_v0"].get("modified", 0) \
        + by_model["crop_proposer_v0"].get("rejected", 0) == 3
    assert report["suggestions"]["retrains"] == [4]
    for fig in report["figures"].values():
        with Image.open(fig) as img:
            assert img.format == "PNG" and img.width > 300
    # the learning curve is against decisions, with every baseline, and the report says where the proposer stands
    assert {"learning_curve_iou", "learning_curve_acceptance"} <= set(report["figures"])
    curve = json.loads((report_path.parent / "learning_curve.json").read_text())
    assert [int(n) for n in curve] == report["learning_curve"]["decisions"] and int(list(curve)[0]) == 10
    assert all(set(methods) == set(report["methods"]) for methods in curve.values())
    assert report["verdict"].startswith("the proposer is ") and f"verdict: {report['verdict']}" in out
    assert "with more decisions: proposer's mean IoU: " in out and "after 10 (" in out
    assert "BDE: boundary displacement error" in out and "acceptance: the share of pictures" in out


def test_the_verdict_names_the_best_baseline_and_the_gap():
    def scores(v: float, n: int = 40) -> dict:
        return {"mean_iou": v, "n": n}

    assert verdict({"proposer": scores(0.80), "mean-box": scores(0.70), "full-frame": scores(0.6)}) == (
        "the proposer is above its best baseline (mean-box): mean IoU 0.800 against 0.700 (+0.100) on 40 held-out "
        "pictures")
    assert verdict({"proposer": scores(0.702), "centre-crop": scores(0.70)}).startswith(
        "the proposer matches its best baseline (centre-crop)")
    low = verdict({"proposer": scores(0.5, 8), "centre-crop": scores(0.70, 8)})
    assert low.startswith("the proposer is below its best baseline (centre-crop)") and "rough estimate" in low
    assert "log more decisions" in verdict({"proposer": scores(0.0, 0), "centre-crop": scores(0.0, 0)})


def test_learning_curve_points_count_decisions_not_images():
    examples = [Example(f"i{k}.jpg", 40, 30, decisions=d) for k, d in enumerate((3, 1, 4, 2, 5))]
    assert decisions_in(examples) == 15 and curve_points(15) == (10, 15)
    assert [e.image for e in first_decisions(examples, 4)] == ["i0.jpg", "i1.jpg"]
    assert first_decisions(examples, 99) == examples


def test_suggest_recomputes_a_corrupt_cached_feature_file(trained_root, capsys):
    from cropkit.fileio import read_jsonl

    entries = [e for _, e in read_jsonl(trained_root / "data/ai_data/cache/processed_files.jsonl")
               if e.get("path") == "data/training_data/p07.jpg" and e.get("status") == "ok"]
    feature = next((trained_root / "data/ai_data/embeddings").rglob(f"{entries[-1]['hash']}.npy"))
    feature.write_bytes(b"\x93NUMPY garbage")  # a disk error or a half-copied backup
    args = ["suggest", "--root", str(trained_root), "--json", "--arch-config", str(TINY_CONFIG),
            str(trained_root / "data/training_data/p07.jpg")]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["suggestions"]
    import numpy as np

    assert np.load(feature).shape == (17, 32)  # replaced by whole features


@pytest.mark.parametrize("steps", ["1", "10"])
def test_train_with_very_few_steps(trained_root, capsys, steps):
    """--steps 10 used to die in torch's OneCycleLR with ZeroDivisionError (a warm-up rounded to one step)."""
    assert main(["train", "--root", str(trained_root), *FEATURES, "--steps", steps, "--no-progress"]) == 0
    assert "crop_proposer_v" in capsys.readouterr().out


def test_a_large_library_is_sampled_evenly_and_a_small_one_whole():
    from cropkit.learn.dataset import even_sample

    assert even_sample(list(range(10)), 20) == list(range(10))
    big = even_sample(list(range(14_000)), 6000)
    assert len(big) <= 6000 and big[:3] == [0, 3, 6] and big[-1] >= 13_990  # spread over all of them
