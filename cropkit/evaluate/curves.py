"""Learning curves on the photographer's own library: quality against the number of decisions learned from."""

from __future__ import annotations

import json
from pathlib import Path

from cropkit.errors import CropkitError
from cropkit.evaluate import plots
from cropkit.layout import Layout
from cropkit.learn.heldout import curve_points, learning_curve
from cropkit.learn.train import TrainResult, fit_proposer

LEARNING_CURVE_FILES = ("learning_curve_iou.png", "learning_curve_acceptance.png", "learning_curve.json")


def learning_curve_paths(out_dir: str | Path, layout: Layout) -> dict[str, Path]:
    """The learning-curve files in ``out_dir``; refused (before any work) when one exists already or the folder
    lies in the photo library."""
    return plots.report_paths(Path(out_dir), LEARNING_CURVE_FILES, layout)


def learning_curve_figures(result: TrainResult, out_dir: Path, steps: int | None = None) -> dict[str, Path]:
    """Quality against number of decisions on this library: proposer and baselines refitted on the first N
    training images, scored on the same held-out images. Saves two PNGs and the numbers as JSON (new files only)."""
    files = learning_curve_paths(out_dir, result.layout)
    if not result.test:
        raise CropkitError("no held-out images to draw a learning curve on; log more decisions")
    curve = learning_curve(result.train, result.test, result.data,
                           lambda train, data: fit_proposer(train, data, steps=steps), curve_points(len(result.train)))
    out = {"learning_curve_iou": files["learning_curve_iou.png"],
           "learning_curve_acceptance": files["learning_curve_acceptance.png"]}
    plots.learning_curves(curve, out["learning_curve_iou"], metric="mean_iou")
    plots.learning_curves(curve, out["learning_curve_acceptance"], metric="acceptance_rate")
    plots.write_new(files["learning_curve.json"], json.dumps(curve, indent=1).encode())
    return out
