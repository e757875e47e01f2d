"""``cropkit evaluate``: the proposer against every baseline on held-out images, the learning curve against the
number of decisions, and the logged suggestions' acceptance over time and by model version. Writes a JSON report
and PNG figures, and says in words whether the proposer is above its best baseline."""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cropkit.decisions import SuggestionDecision
from cropkit.errors import CropkitError
from cropkit.evaluate import plots
from cropkit.evaluate.curves import LEARNING_CURVE_FILES, curve_summary, learning_curve_figures
from cropkit.extract.options import ExtractOptions
from cropkit.features.encoder_id import parse_encoder_id
from cropkit.geometry import denormalise
from cropkit.layout import Layout
from cropkit.learn.dataset import Example, load_logged_data
from cropkit.learn.heldout import HeldOutScores, compare_with_baselines, decisions_in, method_lines, plural, verdict
from cropkit.learn.metrics import EXPLAINED
from cropkit.learn.proposer import CropProposer, latest_proposer
from cropkit.learn.threads import on_one_thread


@dataclass
class EvaluateOptions:
    root: str | Path = "."
    proposer: str | Path | None = None  # a proposer file; default: the latest version
    holdout: float = 0.2
    window: int = 50
    device: str = "auto"
    progress: bool = True
    out_dir: str | Path | None = None  # default: data/ai_data/reports/evaluation_<time>
    learning_curve: bool = True  # also refit on the first 10, 30, 100, ... decisions and plot quality against them
    steps: int | None = None  # training steps of each learning-curve fit; None: as cropkit train


def suggestion_stats(suggestions: list[SuggestionDecision], window: int) -> dict:
    """Acceptance (approved share) by model version, and each version's rolling rate over decision order."""
    ordered = sorted(suggestions, key=lambda s: s.ts)
    by_proposer: dict[str, Counter] = defaultdict(Counter)
    series: dict[str, list[tuple[float, float]]] = defaultdict(list)
    recent: dict[str, list[bool]] = defaultdict(list)
    retrains, last = [], None
    for i, s in enumerate(ordered, start=1):
        by_proposer[s.proposer][s.decision] += 1
        mine = recent[s.proposer] = (recent[s.proposer] + [s.decision == "approved"])[-window:]
        series[s.proposer].append((i, sum(mine) / len(mine)))
        if last is not None and s.proposer != last:
            retrains.append(i)
        last = s.proposer
    return {
        "n": len(ordered),
        "by_model": {m: {**c, "acceptance_rate": c["approved"] / sum(c.values())} for m, c in by_proposer.items()},
        "rolling": dict(series),
        "retrains": retrains,
    }


def worst_examples(layout: Layout, scores: HeldOutScores, examples: dict[str, Example], n: int = 8) -> list[dict]:
    """The ``n`` held-out images where the proposer's top suggestion was furthest from the photographer's crop."""
    ranked = sorted(zip(scores.images, scores.top1, scores.ious), key=lambda r: r[2])[:n]
    return [{"path": layout.image_path(image), "width": examples[image].width, "height": examples[image].height,
             "suggested": top1, "finals": [denormalise(b, examples[image].width, examples[image].height)
                                           for b in examples[image].positives], "iou": value}
            for image, top1, value in ranked]


FIGURES = ("iou_by_method", "acceptance_over_time", "decisions_by_model", "examples_worst_first")


def report_folder(layout: Layout, out_dir: str | Path | None, curve: bool = True) -> dict[str, Path]:
    """The files of the new report: in ``out_dir`` (refused if any is taken or it lies in the library), or in a
    fresh data/ai_data/reports/evaluation_<time>[-N] folder."""
    names = ("report.json", *(f"{name}.png" for name in FIGURES), *(LEARNING_CURVE_FILES if curve else ()))
    if out_dir:
        return plots.report_paths(Path(out_dir), names, layout)
    base = layout.ai_data / "reports" / f"evaluation_{time.strftime('%Y%m%d-%H%M%S')}"
    folder, n = base, 1
    while folder.exists() or folder.is_symlink():
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    return plots.report_paths(folder, names, layout)


def run_evaluate(opts: EvaluateOptions, log: Callable[[str], None] = print) -> tuple[dict, Path]:
    with on_one_thread():
        return _evaluate(opts, log)


def _evaluate(opts: EvaluateOptions, log: Callable[[str], None]) -> tuple[dict, Path]:
    layout = Layout.from_args(opts.root)
    files = report_folder(layout, opts.out_dir, opts.learning_curve)  # refused before any work if it would overwrite
    out = files["report.json"].parent
    path = Path(opts.proposer) if opts.proposer else latest_proposer(layout.models)
    proposer = CropProposer.load(path)
    arch, _ = parse_encoder_id(proposer.encoder_id)
    extract = ExtractOptions(root=layout.root, arch=arch, weights=proposer.meta.get("pretrained", "none"),
                             device=opts.device, progress=opts.progress)
    logged = load_logged_data(layout, extract, opts.holdout, log)  # the same split as training
    if logged.encoder_id != proposer.encoder_id:
        raise CropkitError(f"{path.name} needs features of {proposer.encoder_id}, got {logged.encoder_id}")
    train, test, data = logged.train, logged.test, logged.data
    held_out = compare_with_baselines(proposer, train, test, data)
    methods = {name: s.to_json() for name, s in held_out.items()}
    stats = suggestion_stats(logged.suggestions, opts.window)
    figures = {name: files[f"{name}.png"] for name in FIGURES}
    report = {
        "proposer": path.name, "feature_model": logged.encoder_id, "held_out_images": len(test),
        "methods": methods, "verdict": verdict(methods), "suggestions": stats,
        "figures": {k: str(v) for k, v in figures.items()},
        "skipped_log_lines": [str(b) for b in logged.problems], "skipped_images": logged.skipped,
    }
    missing = [p for p in (out, *out.parents) if not p.exists()]
    new_folder = missing[-1] if missing else None  # the outermost folder this report creates
    try:
        plots.iou_by_method(methods, figures["iou_by_method"])
        plots.acceptance_over_time(stats["rolling"], stats["retrains"], figures["acceptance_over_time"])
        plots.decisions_by_model({m: dict(c) for m, c in stats["by_model"].items()}, figures["decisions_by_model"])
        plots.example_grid(worst_examples(layout, held_out["proposer"], {e.image: e for e in test}),
                           figures["examples_worst_first"])
        if opts.learning_curve and not held_out["proposer"].images:
            report["learning_curve"] = {"skipped": "no held-out images with a crop: log more decisions"}
        elif opts.learning_curve:
            log(f"learning curve: refitting on the first 10, 30, 100, ... of {decisions_in(train)} decisions")
            curve = learning_curve_figures(train, test, data, files, opts.steps)
            report["learning_curve"] = {"decisions": list(curve), "summary": curve_summary(curve)}
            for name in ("learning_curve_iou", "learning_curve_acceptance"):
                report["figures"][name] = str(files[f"{name}.png"])
        plots.write_new(files["report.json"], json.dumps(report, indent=1).encode())
    except BaseException:
        if new_folder:  # a report cut short (a full disk, an interrupt) leaves no half-filled folder
            shutil.rmtree(new_folder, ignore_errors=True)
        raise
    return report, out


def report_lines(report: dict, out: Path) -> list[str]:
    """The human summary of an evaluation report, as the CLI and the notebook print it."""
    lines = [f"proposer {report['proposer']} on {plural(report['held_out_images'], 'held-out image')}:"]
    lines += method_lines(report["methods"])
    if "verdict" in report:
        lines.append(f"verdict: {report['verdict']}")
    curve = report.get("learning_curve", {})
    if curve:
        lines.append(f"with more decisions: {curve.get('summary') or 'no learning curve: ' + curve['skipped']}")
    lines += [f"  {name}: {text}" for name, text in EXPLAINED.items()]
    for proposer, c in report["suggestions"]["by_model"].items():
        lines.append(f"  logged suggestions of {proposer}: {c['acceptance_rate']:.1%} approved")
    lines.append(f"report:  {out / 'report.json'}")
    lines += [f"figure:  {path}" for path in report["figures"].values()]
    return lines
