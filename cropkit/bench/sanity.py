"""The sanity check: tastes on cropkit's own saliency peak (plumbing only, not evidence)."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cropkit.decisions import CropDecision
from cropkit.layout import Layout, claim_generated_root
from cropkit.learn.dataset import examples_from_decisions
from cropkit.learn.heldout import learning_curve as evaluation_curve

BUDGETS = (10, 30, 100, 300)


@dataclass
class TasteRun:
    taste: str
    curve: dict[int, dict[str, dict]]  # decisions -> method -> scores




def learning_curve(taste: str, train_decisions: list[CropDecision], test_decisions: list[CropDecision],
                   data: dict, fit: Callable, points=BUDGETS) -> TasteRun:
    """Proposer and baselines trained on the first N decisions, all scored on the same held-out pictures."""
    train = list(examples_from_decisions(train_decisions, []).values())
    test = list(examples_from_decisions(test_decisions, []).values())
    return TasteRun(taste, evaluation_curve(train, test, data, fit, points))


def beats_baselines_from(run: TasteRun) -> int | None:
    """The fewest decisions from which the proposer beats every baseline in mean IoU and acceptance, at every
    later point of the curve; None if it never does."""
    since = None
    for n in sorted(run.curve):
        methods = run.curve[n]
        ours = methods["proposer"]
        wins = all(ours["mean_iou"] > s["mean_iou"] and ours["acceptance_rate"] > s["acceptance_rate"]
                   for name, s in methods.items() if name != "proposer")
        since = (since or n) if wins else None
    return since


def run_sanity_check(root: Path, n_train: int = 300, n_test: int = 120, arch: str = "auto",
                        weights: str = "auto", steps: int | None = None, log: Callable[[str], None] = print,
                        progress: bool = True, points: tuple[int, ...] = BUDGETS) -> tuple[list[TasteRun], dict]:
    """Build the variant library under ``root`` (a new or empty folder, one generated before, or one under this
    checkout's data/), extract features, and run every saliency-peak taste's learning curve."""
    from cropkit.demo.photographer import TASTES as SALIENCY_TASTES
    from cropkit.demo.photographer import decisions_for, make_variants
    from cropkit.demo.samples import build_sample_library
    from cropkit.extract.options import ExtractOptions
    from cropkit.learn.dataset import load_image_data
    from cropkit.learn.train import fit_proposer

    started = time.perf_counter()
    root = claim_generated_root(root, "benchmark")
    layout = Layout(root, root / "data" / "training_data")
    photos, _missing = build_sample_library(root / "data" / "sample_library")
    paths = make_variants(photos, layout.images / "variants", n_train + n_test)
    rel = [layout.relative_name(p) for p in paths]
    opts = ExtractOptions(root=root, arch=arch, weights=weights, progress=progress, workers=1)
    data, skipped, encoder_id = load_image_data(layout, rel, opts, log)
    if skipped:
        raise RuntimeError(f"benchmark pictures could not be extracted: {skipped}")
    runs = []
    for taste in SALIENCY_TASTES:
        decisions = decisions_for(taste, layout.root, paths)
        log(f"taste {taste}: learning curve at {', '.join(map(str, points))} decisions")
        runs.append(learning_curve(taste, decisions[:n_train], decisions[n_train:], data,
                                   lambda train, d: fit_proposer(train, d, steps=steps), points))
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores, CPU",
            "n_train": n_train, "n_test": n_test, "n_photos": len(photos), "feature_model": encoder_id,
            "steps": steps, "seconds": time.perf_counter() - started}
    return runs, meta
