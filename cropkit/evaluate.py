"""``cropkit evaluate``: the proposer against every baseline on held-out images, and the logged suggestions'
acceptance over time and by model version. Writes a JSON report and PNG figures."""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cropkit import plots
from cropkit.decisions import SuggestionDecision, read_crops, read_suggestions
from cropkit.errors import CropkitError
from cropkit.evaluation import evaluate_methods, fitted_baselines, proposer_method
from cropkit.extract import ExtractOptions
from cropkit.fileio import atomic_write_bytes
from cropkit.layout import Layout
from cropkit.learning import examples_from_decisions, split_by_image
from cropkit.proposer import CropProposer, latest_proposer
from cropkit.train import load_image_data


@dataclass
class EvaluateOptions:
    root: str | Path = "."
    model: str | Path | None = None  # a proposer file; default: the latest version
    holdout: float = 0.2
    window: int = 50
    device: str = "auto"
    progress: bool = True


def suggestion_stats(suggestions: list[SuggestionDecision], window: int) -> dict:
    """Acceptance (approved share) by model version and as a rolling rate over decision order."""
    ordered = sorted(suggestions, key=lambda s: s.ts)
    by_model: dict[str, Counter] = defaultdict(Counter)
    series: dict[str, list[tuple[float, float]]] = defaultdict(list)
    recent: list[int] = []
    retrains, last_model = [], None
    for i, s in enumerate(ordered, start=1):
        by_model[s.model][s.decision] += 1
        recent = (recent + [s.decision == "approved"])[-window:]
        series[s.model].append((i, sum(recent) / len(recent)))
        if last_model is not None and s.model != last_model:
            retrains.append(i)
        last_model = s.model
    return {
        "n": len(ordered),
        "by_model": {m: {**c, "acceptance_rate": c["approved"] / sum(c.values())} for m, c in by_model.items()},
        "rolling": dict(series),
        "retrains": retrains,
    }


def run_evaluate(opts: EvaluateOptions, log: Callable[[str], None] = print) -> tuple[dict, Path]:
    layout = Layout.from_args(opts.root)
    path = Path(opts.model) if opts.model else latest_proposer(layout.models)
    proposer = CropProposer.load(path)
    crops, bad_c = read_crops(layout.logs)
    suggestions, bad_s = read_suggestions(layout.logs)
    examples = examples_from_decisions(crops, suggestions)
    if not examples:
        raise CropkitError(f"no usable decisions in {layout.logs}; nothing to evaluate")
    arch = proposer.feature_model.split("/", 1)[0]
    extract = ExtractOptions(root=layout.root, model=arch, pretrained=proposer.meta.get("pretrained", "none"),
                             device=opts.device, progress=opts.progress)
    data, skipped, feature_model = load_image_data(layout, sorted(examples), extract, log)
    if feature_model != proposer.feature_model:
        raise CropkitError(f"{path.name} needs features of {proposer.feature_model}, got {feature_model}")
    usable = [examples[i] for i in sorted(examples) if i in data]
    train_names, test_names = split_by_image([e.image for e in usable], opts.holdout)
    train = [e for e in usable if e.image in set(train_names)]
    test = [e for e in usable if e.image in set(test_names)]
    methods = evaluate_methods({"proposer": proposer_method(proposer), **fitted_baselines(train)}, test, data)
    stats = suggestion_stats(suggestions, opts.window)
    out = layout.ai_data / "reports" / f"evaluation_{time.strftime('%Y%m%d-%H%M%S')}"
    figures = {name: out / f"{name}.png" for name in ("iou_by_method", "acceptance_over_time", "decisions_by_model")}
    plots.iou_by_method(methods, figures["iou_by_method"])
    plots.acceptance_over_time(stats["rolling"], stats["retrains"], figures["acceptance_over_time"])
    plots.decisions_by_model({m: dict(c) for m, c in stats["by_model"].items()}, figures["decisions_by_model"])
    report = {
        "proposer": path.name, "feature_model": feature_model, "held_out_images": len(test),
        "methods": methods, "suggestions": stats, "figures": {k: str(v) for k, v in figures.items()},
        "skipped_log_lines": [str(b) for b in bad_c + bad_s], "skipped_images": skipped,
    }
    atomic_write_bytes(out / "report.json", json.dumps(report, indent=1).encode())
    return report, out
