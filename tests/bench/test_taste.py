"""The taste benchmarks: on real photographs with judged subjects (views, tastes, the split, an end-to-end run
through the CLI), and the saliency-peak sanity check."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from cropkit.bench.taste import (
    TASTES,
    TasteRun,
    beats_baselines_from,
    decisions,
    load_subject_maps,
    make_views,
    mass_box,
    read_subjects,
    real_markdown,
    rule_on_cue,
    run_real_benchmark,
    run_sanity_check,
    sanity_markdown,
    split_by_photo,
    write_reports,
)
from cropkit.demo.photographer import TASTES as SALIENCY_TASTES
from cropkit.errors import CropkitError
from cropkit.features.subject import MAP_SIDE, SubjectMap
from cropkit.geometry import iou
from cropkit.remembered import read_remembered
from tests.conftest import TINY, TINY_CONFIG
from tests.features.test_subject import tiny_isnet

SUBJECT_COLOUR = (250, 30, 200)


def judged_photos(folder, n: int = 12, seed: int = 0, background: int = 110) -> dict[str, tuple]:
    """``n`` photos with one magenta rectangle each (the subject) at a random place on a noisy grey of mean
    ``background``, and their subject boxes."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    subjects = {}
    for i in range(n):
        w, h = (int(v) for v in rng.integers(320, 520, 2))
        img = Image.fromarray(rng.normal(background, 15, (h, w, 3)).clip(0, 255).astype(np.uint8))
        fw, fh = rng.uniform(0.15, 0.4, 2)
        x0, y0 = rng.uniform(0, 1 - fw), rng.uniform(0, 1 - fh)
        box = (x0, y0, x0 + fw, y0 + fh)
        ImageDraw.Draw(img).rectangle((x0 * w, y0 * h, (x0 + fw) * w - 1, (y0 + fh) * h - 1), fill=SUBJECT_COLOUR)
        img.save(folder / f"photo{i:02d}.jpg", quality=95)
        subjects[f"photo{i:02d}.jpg"] = box
    return subjects


def write_subjects(path, subjects: dict) -> None:
    path.write_text(json.dumps({"subjects": {k: list(v) for k, v in subjects.items()}}))


def test_views_keep_the_judged_subject_where_it_is_in_the_pixels(tmp_path):
    subjects = judged_photos(tmp_path / "photos", n=4)
    views = make_views(tmp_path / "photos", subjects, tmp_path / "views", {n: 6 for n in subjects})
    assert len(views) == 24 and any(v.width != views[0].width for v in views)
    for v in views:
        x0, y0, x1, y1 = v.subject
        assert 0 <= x0 < x1 <= v.width and 0 <= y0 < y1 <= v.height
        pixels = np.asarray(Image.open(v.path).convert("RGB"), np.float64)
        inside = pixels[int(y0) + 3:int(y1) - 3, int(x0) + 3:int(x1) - 3].reshape(-1, 3).mean(0)
        assert np.abs(inside - SUBJECT_COLOUR).max() < 30, v.path.name  # mirrors and windows moved it right


def test_the_split_is_by_photo_and_subjects_are_checked(tmp_path):
    train, test = split_by_photo([f"p{i}.jpg" for i in range(20)], 0.3)
    assert len(test) == 6 and not set(train) & set(test) and len(train) + len(test) == 20
    bad = tmp_path / "subjects.json"
    for subjects in ({"a.jpg": [0.5, 0.1, 0.4, 0.9]}, {"a.jpg": [0, 0, 1]}, {"../a.jpg": [0, 0, 1, 1]}):
        write_subjects(bad, subjects)
        with pytest.raises(CropkitError, match="subject"):
            read_subjects(bad)
    write_subjects(bad, {"a.jpg": [0.1, 0.2, 0.3, 0.4]})
    assert read_subjects(bad) == {"a.jpg": (0.1, 0.2, 0.3, 0.4)}


@pytest.mark.parametrize("taste", list(TASTES))
def test_tastes_are_rules_on_the_judged_subject_inside_the_frame(taste):
    rng = np.random.default_rng(0)
    for w, h, subject in ((600, 400, (100, 80, 220, 200)), (400, 600, (300, 450, 390, 590)),
                          (500, 500, (200, 200, 300, 300))):
        x0, y0, x1, y1 = TASTES[taste](w, h, subject, rng)
        assert -1e-6 <= x0 < x1 <= w + 1e-6 and -1e-6 <= y0 < y1 <= h + 1e-6
    rule = TASTES[taste]
    moved = [rule(600, 400, s, np.random.default_rng(1)) for s in ((50, 50, 150, 150), (400, 200, 500, 300))]
    if taste == "habit-3:2":
        assert moved[0] == moved[1]  # content-blind
    else:
        assert iou(*moved) < 0.9  # follows the subject


def test_tastes_have_their_shapes():
    rng = np.random.default_rng(0)
    x0, y0, x1, y1 = TASTES["portrait-4:5"](1000, 800, (400, 300, 500, 450), rng)
    assert (x1 - x0) / (y1 - y0) == pytest.approx(0.8) and x0 < 400 and x1 > 500 and y0 < 300 and y1 > 450
    x0, y0, x1, y1 = TASTES["tight-square"](1000, 800, (400, 300, 500, 450), rng)
    assert (x1 - x0) == pytest.approx(y1 - y0) and x0 <= 400 and x1 >= 500 and y0 <= 300 and y1 >= 450
    x0, y0, x1, y1 = TASTES["thirds"](1200, 900, (380, 280, 420, 320), rng)  # centre (400, 300): upper-left third
    assert (400 - x0) / (x1 - x0) == pytest.approx(1 / 3) and (300 - y0) / (y1 - y0) == pytest.approx(1 / 3)
    boxes = {TASTES["mixed"](1200, 800, (500, 300, 700, 500), rng) for _ in range(20)}
    assert len(boxes) > 10  # jitter: a human is never exactly consistent


def test_a_small_real_benchmark_runs_through_the_cli_and_reports_every_peer(tmp_path, tiny_model):
    subjects = judged_photos(tmp_path / "photos", n=10)
    write_subjects(tmp_path / "subjects.json", subjects)
    report = run_real_benchmark(tmp_path / "photos", tmp_path / "subjects.json", tmp_path / "root", arch=TINY,
                                weights="none", steps=20, budgets=(5, 10), tastes=("habit-3:2", "tight-square"),
                                test_share=0.3, test_views=2, extra=["--arch-config", str(TINY_CONFIG)],
                                log=lambda _m: None)
    assert report["meta"]["test_photos"] == 3 and report["meta"]["test_views"] == 6
    for taste in ("habit-3:2", "tight-square"):
        for n in (5, 10):
            r = report["tastes"][taste][n]
            assert set(r["methods"]) == {"proposer", "full-frame", "centre-crop", "usual-box", "mean-box", "saliency",
                                         "smartcrop"}
            assert all(m["n"] == 6 for m in r["methods"].values())
            best = max(v["mean_iou"] for k, v in r["methods"].items() if k != "proposer")
            assert r["margin"] == pytest.approx(r["methods"]["proposer"]["mean_iou"] - best)
    assert list((tmp_path / "root/data/ai_data/models").glob("crop_proposer_v*.pth"))  # trained by the CLI
    md = real_markdown(report)
    assert "UNTRAINED" in md and "| 10 |" in md and "smartcrop" in md


def test_the_mass_box_of_a_rectangle_is_the_rectangle_and_no_subject_is_none():
    mass = np.zeros((MAP_SIDE, MAP_SIDE))
    mass[8:16, 20:28] = 1.0  # rows 8..16 and columns 20..28 of 32
    box = mass_box(SubjectMap(mass / mass.sum()), 320, 640)
    assert box == pytest.approx((200, 160, 280, 320))
    assert mass_box(SubjectMap(np.zeros((MAP_SIDE, MAP_SIDE))), 320, 640) is None


def test_a_ceiling_on_the_judged_box_is_the_truth_itself_and_falls_back_where_no_subject(tmp_path):
    subjects = judged_photos(tmp_path / "photos", n=3)
    views = make_views(tmp_path / "photos", subjects, tmp_path / "views", {n: 8 for n in subjects})
    fallback = [(0.0, 0.0, 10.0, 10.0)] * len(views)
    for taste in TASTES:  # "mixed" draws jitter and habits: the ceiling must use the truths' own draws
        truth = [d.crop for d in decisions(taste, views, tmp_path, seed=1)]
        ruled = rule_on_cue(taste, views, [v.subject for v in views], fallback, tmp_path, seed=1)
        assert [b[0] for b in ruled] == truth
    cues = [v.subject if i % 2 else None for i, v in enumerate(views)]
    ruled = rule_on_cue("mixed", views, cues, fallback, tmp_path, seed=1)
    assert [b[0] for b in ruled[::2]] == fallback[::2]
    assert [b[0] for b in ruled[1::2]] == truth[1::2]


def test_with_a_subject_model_the_report_has_the_subject_box_peer_and_the_ceilings(tmp_path, tiny_model):
    subjects = judged_photos(tmp_path / "photos", n=10, background=60)  # the tiny model finds what is bright
    write_subjects(tmp_path / "subjects.json", subjects)
    model = tiny_isnet(tmp_path / "tiny-isnet.onnx")
    report = run_real_benchmark(tmp_path / "photos", tmp_path / "subjects.json", tmp_path / "root", arch=TINY,
                                weights="none", steps=20, budgets=(10,), tastes=("tight-square",),
                                test_share=0.3, test_views=2, extra=["--arch-config", str(TINY_CONFIG)],
                                log=lambda _m: None, subject_model=str(model))
    meta = report["meta"]
    subject_id = read_remembered(tmp_path / "root/data/ai_data").subject_id
    assert meta["subject_model"] == "tiny-isnet.onnx" and meta["subject_id"] == subject_id
    assert meta["no_subject_views"] == 0 and meta["untrained"]
    r = report["tastes"]["tight-square"][10]
    assert {"subject-box", "centre-crop", "saliency"} <= set(r["methods"])
    assert set(r["ceilings"]) == {"subject map", "saliency box"}
    # the maps find the bright subject: the peer beats the centre crop by far, the ceiling is near the truth
    assert r["methods"]["subject-box"]["mean_iou"] > r["methods"]["centre-crop"]["mean_iou"] + 0.2
    assert r["ceilings"]["subject map"]["mean_iou"] > 0.8
    best = max(v["mean_iou"] for k, v in r["methods"].items() if k != "proposer")
    assert r["margin"] == pytest.approx(r["methods"]["proposer"]["mean_iou"] - best)  # ceilings are no peers
    # the peer's boxes come from the stored maps: each view's map box lies on its judged subject
    views = make_views(tmp_path / "photos", subjects, tmp_path / "root/data/training_data/views",
                       {n: 2 for n in subjects})  # the benchmark's own views (2 per photo at this size), as stored
    maps = load_subject_maps(tmp_path / "root", views, subject_id)
    assert min(iou(mass_box(maps[v.path.name], v.width, v.height), v.subject) for v in views) > 0.7
    md = real_markdown(report)
    assert "tiny-isnet.onnx" in md and subject_id in md and "UNTRAINED" in md
    assert "ceiling: subject map" in md and "subject-box" in md and "Ceilings (not peers)" in md


def test_verdict_needs_wins_at_every_later_point():
    def curve(*wins):
        return TasteRun("t", {n: {"proposer": {"mean_iou": 0.6 if w else 0.4, "acceptance_rate": 0.2},
                                  "base": {"mean_iou": 0.5, "acceptance_rate": 0.1}}
                              for n, w in zip((10, 30, 100, 300), wins)})
    assert beats_baselines_from(curve(False, True, True, True)) == 30
    assert beats_baselines_from(curve(True, False, True, True)) == 100
    assert beats_baselines_from(curve(True, True, True, False)) is None


def test_small_sanity_check_runs_and_writes_reports(tmp_path, tiny_model):
    runs, meta = run_sanity_check(tmp_path / "root", n_train=30, n_test=12, arch=TINY, weights="none", steps=60,
                                     points=(10, 30), log=lambda _m: None, progress=False)
    assert [r.taste for r in runs] == list(SALIENCY_TASTES)
    for r in runs:
        assert sorted(r.curve) == [10, 30]
        assert set(r.curve[30]) == {"proposer", "full-frame", "centre-crop", "usual-box", "mean-box", "saliency"}
        assert all(s["n"] == 12 for s in r.curve[30].values())
    assert meta["feature_model"] == f"{TINY}/random-init-seed0" and meta["n_photos"] >= 12
    report = {"meta": meta, "tastes": {r.taste: r.curve for r in runs}}
    write_reports(sanity_markdown(runs, meta), report, tmp_path / "b.md", tmp_path / "b.json")
    md = (tmp_path / "b.md").read_text()
    assert "not evidence" in md and "## Verdict" in md and "UNTRAINED" in md and "| 30 | proposer |" in md
    assert json.loads((tmp_path / "b.json").read_text())["tastes"]["wide-3:2"]["30"]["proposer"]["n"] == 12
    write_reports(sanity_markdown(runs, meta), report, tmp_path / "b.md", tmp_path / "b.json")  # replaced
    (tmp_path / "notes.md").write_text("# my notes\n")
    with pytest.raises(CropkitError, match="left alone"):  # any other file is not (issue 11, write-path audit)
        write_reports(sanity_markdown(runs, meta), report, tmp_path / "notes.md", tmp_path / "notes.json")
    assert (tmp_path / "notes.md").read_text() == "# my notes\n" and not (tmp_path / "notes.json").exists()


def test_benchmark_taste_asks_for_photos_and_subjects_or_the_sanity_check(tmp_path, capsys):
    from cropkit.cli import main

    for args in ([], ["--photos", str(tmp_path)], ["--sanity-check", "--subjects", str(tmp_path / "s.json")]):
        assert main(["benchmark-taste", "--out", str(tmp_path / "r.md"), *args]) == 2
        assert "--photos DIR and --subjects FILE" in capsys.readouterr().err
    assert not (tmp_path / "r.md").exists()
