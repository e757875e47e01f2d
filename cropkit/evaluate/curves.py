"""Learning curves on the photographer's own library: quality against the number of decisions learned from."""

from __future__ import annotations

import json
from pathlib import Path

from cropkit.errors import CropkitError
from cropkit.evaluate import plots
from cropkit.layout import Layout
from cropkit.learn.dataset import Example, ImageData
from cropkit.learn.heldout import CLOSE, curve_points, decisions_in, learning_curve
from cropkit.learn.train import fit_proposer

LEARNING_CURVE_FILES = ("learning_curve_iou.png", "learning_curve_acceptance.png", "learning_curve.json")


def learning_curve_paths(out_dir: str | Path, layout: Layout) -> dict[str, Path]:
    """The learning-curve files in ``out_dir``; refused (before any work) when one exists already or the folder
    lies in the photo library."""
    return plots.report_paths(Path(out_dir), LEARNING_CURVE_FILES, layout)


def learning_curve_figures(train: list[Example], test: list[Example], data: dict[str, ImageData],
                           files: dict[str, Path], steps: int | None = None) -> dict[int, dict[str, dict]]:
    """Quality against the number of decisions: proposer and baselines refitted on the first 10, 30, 100, ...
    training decisions, scored on the same held-out images. Saves two PNGs and the numbers as JSON (new files
    only, ``files`` from ``learning_curve_paths``) and returns the curve."""
    if not [e for e in test if e.positives]:
        raise CropkitError("no held-out images with a crop to draw a learning curve on; log more decisions")
    curve = learning_curve(train, test, data, lambda subset, d: fit_proposer(subset, d, steps=steps),
                           curve_points(decisions_in(train)))
    plots.learning_curves(curve, files["learning_curve_iou.png"], metric="mean_iou")
    plots.learning_curves(curve, files["learning_curve_acceptance.png"], metric="acceptance_rate")
    plots.write_new(files["learning_curve.json"], json.dumps(curve, indent=1).encode())
    return curve


def curve_summary(curve: dict[int, dict[str, dict]]) -> str:
    """In words: how the proposer's mean IoU moved with more decisions, against its best baseline at each point."""
    parts = []
    for n, methods in curve.items():
        ours = methods["proposer"]["mean_iou"]
        best = max(s["mean_iou"] for name, s in methods.items() if name != "proposer")
        mark = "above" if ours > best + CLOSE else "level with" if ours >= best - CLOSE else "below"
        parts.append(f"{ours:.3f} after {n} ({mark} the best baseline, {best:.3f})")
    return "proposer's mean IoU: " + ", ".join(parts)
