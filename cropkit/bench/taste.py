"""The taste benchmark on real photographs whose subjects a person judged.

Simulated photographers crop views of those photographs by rules defined on the *judged* subject box and the
frame (never on anything cropkit computes); cropkit learns from their decisions through ``cropkit train`` and
answers through ``cropkit suggest --json``, run as subprocesses exactly as a user runs them. Peers (full frame,
centre crop at the learned aspect and scale, the mean box, the saliency crop, smartcrop) are fitted on the same
decisions and scored on the same held-out views; with a subject model, so is the subject map's box at the learned
aspect and scale. Ceilings show what each cue allows on its own: each taste's rule applied to the cue's subject
box instead of the judged one. Views of one photo never straddle the split.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cropkit.bench.peers import (
    load_cues,
    load_subject_maps,
    mass_box,
    peer_boxes,
    rule_on_cue,
    smartcrop_boxes,
    subject_box_peer,
)
from cropkit.bench.sanity import BUDGETS, TasteRun, beats_baselines_from, learning_curve, run_sanity_check
from cropkit.bench.taste_report import (
    OLD_TITLE,
    REAL_TITLE,
    SANITY_TITLE,
    check_report_targets,
    real_markdown,
    sanity_markdown,
    write_reports,
)
from cropkit.bench.tastes import (
    CONTENT_BLIND,
    TASTES,
    Taste,
    View,
    decisions,
    habit,
    make_views,
    mixed,
    portrait_around,
    read_subjects,
    split_by_photo,
    thirds,
    tight_square,
)
from cropkit.decisions import TRAINING_LOG, CropDecision
from cropkit.errors import CropkitError
from cropkit.features.encoder_id import concrete_encoder, encoder_id, is_untrained
from cropkit.features.subject import model_file
from cropkit.fileio import atomic_write_bytes
from cropkit.geometry import Box
from cropkit.layout import Layout, claim_generated_root
from cropkit.learn.metrics import score_proposals
from cropkit.remembered import read_remembered

__all__ = ["BUDGETS", "CONTENT_BLIND", "OLD_TITLE", "REAL_TITLE", "SANITY_TITLE", "TASTES", "Taste", "TasteRun",
           "View", "beats_baselines_from", "check_report_targets", "cropkit_command", "decisions", "habit",
           "learning_curve", "load_cues", "load_subject_maps", "make_views", "mass_box", "mixed", "peer_boxes",
           "portrait_around", "read_subjects", "real_markdown", "rule_on_cue", "run_real_benchmark",
           "run_sanity_check", "sanity_markdown", "smartcrop_boxes", "split_by_photo", "subject_box_peer", "thirds",
           "tight_square", "train_and_suggest", "write_reports"]


def cropkit_command(args: list[str]) -> str:
    """Run ``cropkit ARGS`` in a subprocess; its stdout, or a RuntimeError with its stderr."""
    done = subprocess.run([sys.executable, "-m", "cropkit", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"cropkit {' '.join(args[:1])} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def train_and_suggest(root: Path, train: list[CropDecision], test: list[View], steps: int | None,
                      extra: list[str]) -> dict[str, list[Box]]:
    """Log ``train`` as the root's only decisions, ``cropkit train`` on them, then ``cropkit suggest --json`` on
    every test view: the ranked boxes per view name."""
    layout = Layout.from_args(root)
    lines = "".join(json.dumps(d.to_json()) + "\n" for d in train)
    atomic_write_bytes(layout.logs / TRAINING_LOG, lines.encode())
    effort = ["--steps", str(steps)] if steps else []
    out = cropkit_command(["train", "--root", str(root), "--holdout", "0", *effort, "--no-progress", "--workers", "0",
                           *extra])
    proposer = next(line.split(None, 1)[1] for line in out.splitlines() if line.startswith("proposer:"))
    out = cropkit_command(["suggest", "--root", str(root), "--proposer", proposer, "--json", "--top-k", "3",
                           *extra, *(str(v.path) for v in test)])
    return {obj["image"]: [tuple(s["box"]) for s in obj["suggestions"]]
            for obj in map(json.loads, out.splitlines())}


def score(boxes: list[list[Box]], truth: list[CropDecision], test: list[View]) -> dict:
    return score_proposals(boxes, [[d.crop] for d in truth], [(v.width, v.height) for v in test]).to_json()


TRUTH_SEED = 1  # the held-out truths' random draws (the training decisions use 0)


def run_real_benchmark(photos: Path, subjects_file: Path, root: Path, arch: str = "auto",
                       weights: str = "auto", steps: int | None = None, budgets: tuple[int, ...] = BUDGETS,
                       tastes: tuple[str, ...] = tuple(TASTES), test_share: float = 0.3, test_views: int = 7,
                       extra: list[str] = (), log: Callable[[str], None] = print,
                       subject_model: str = "none") -> dict:
    """Every taste at every budget: the proposer (through the CLI) and every peer on the same held-out views, and
    the ceilings of the cues. ``auto``: the encoder ``cropkit extract`` would choose (cached CLIP, else
    EfficientNet-Lite0), never random. ``subject_model`` (FILE.onnx, rembg:NAME or none) goes to ``cropkit
    extract``, so the proposer trains with subject maps, and adds the subject-box peer and its ceiling."""
    started = time.perf_counter()
    arch, weights = concrete_encoder(arch, weights)
    # a name that finds no file is refused before any work; the report names the file (or rembg:NAME)
    model_name = subject_model if subject_model in ("none", "") or subject_model.startswith("rembg:") else None
    if subject_model != "none":
        found = model_file(subject_model)
        model_name = model_name or found.name
    subjects = read_subjects(subjects_file)
    missing = [n for n in subjects if not (photos / n).is_file()]
    if missing:
        raise CropkitError(f"{len(missing)} photos of {subjects_file} are not in {photos} (first: {missing[0]})")
    root = claim_generated_root(root, "benchmark")
    train_photos, test_photos = split_by_photo(list(subjects), test_share)
    per_train = math.ceil(max(budgets) / len(train_photos))
    per_photo = {**{n: per_train for n in train_photos}, **{n: test_views for n in test_photos}}
    log(f"views: {per_train} per training photo ({len(train_photos)}), {test_views} per held-out photo "
        f"({len(test_photos)})")
    views = make_views(photos, subjects, root / "data" / "training_data" / "views", per_photo)
    train_views = [v for v in views if v.photo in set(train_photos)]
    np.random.default_rng(1).shuffle(train_views)  # any first N decisions cover many photos
    test = [v for v in views if v.photo in set(test_photos)]
    cropkit_command(["extract", "--root", str(root), "--arch", arch, "--weights", weights, "--no-progress",
                     "--workers", "1", "--subject-model", subject_model, *extra])
    cues = load_cues(root, views)
    subject_id = read_remembered(Layout.from_args(root).ai_data).subject_id if subject_model != "none" else None
    maps = load_subject_maps(root, test, subject_id) if subject_id else {}
    subject_cue = [mass_box(maps[v.path.name], v.width, v.height) for v in test] if maps else []
    results: dict[str, dict] = {}
    for taste in tastes:
        train_all = decisions(taste, train_views, root)
        truth = decisions(taste, test, root, seed=TRUTH_SEED)
        results[taste] = {}
        for n in budgets:
            log(f"{taste}: {n} decisions")
            train = train_all[:n]
            answered = train_and_suggest(root, train, test, steps, extra)
            peers = peer_boxes(train, test, cues)
            if maps:
                peers["subject-box"] = subject_box_peer(train, test, maps)
            methods = {"proposer": score([answered[d.image] for d in truth], truth, test)}
            methods.update({name: score(b, truth, test) for name, b in peers.items()})
            best = max((name for name in methods if name != "proposer"), key=lambda k: methods[k]["mean_iou"])
            centre = [b[0] for b in peers["centre-crop"]]
            cue_boxes = {"saliency box": [b[0] for b in peers["saliency"]]}
            if maps:
                cue_boxes = {"subject map": subject_cue, **cue_boxes}
            ceilings = {cue: score(rule_on_cue(taste, test, boxes, centre, root, TRUTH_SEED), truth, test)
                        for cue, boxes in cue_boxes.items()}
            results[taste][n] = {"methods": methods, "best_peer": best,
                                 "margin": methods["proposer"]["mean_iou"] - methods[best]["mean_iou"],
                                 "ceilings": ceilings}
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "arch": arch, "weights": weights, "encoder": encoder_id(arch, weights),
            "untrained": is_untrained(encoder_id(arch, weights)), "subject_model": model_name,
            "subject_id": subject_id, "no_subject_views": sum(b is None for b in subject_cue) if maps else None,
            "steps": steps, "train_photos": len(train_photos), "test_photos": len(test_photos),
            "test_views": len(test), "seconds": time.perf_counter() - started}
    return {"meta": meta, "tastes": results}
