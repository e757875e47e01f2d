"""``cropkit train``: join decisions with features (extracting what is missing), fit, evaluate, save a new version."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from cropkit import __version__
from cropkit.cache import ProcessedCache
from cropkit.composition import Cues
from cropkit.decisions import read_crops, read_suggestions
from cropkit.errors import CropkitError
from cropkit.evaluation import evaluate_methods, fitted_baselines, plural, proposer_method, summary_only
from cropkit.extract import ExtractOptions, run_extract
from cropkit.fileio import BadLine, remove_stale_temp_files
from cropkit.layout import Layout
from cropkit.learning import (
    BATCH_IMAGES,
    Example,
    ImageData,
    examples_from_decisions,
    fingerprint,
    fit_network,
    preferred_aspects,
    split_by_image,
    training_arrays,
)
from cropkit.proposer import CropProposer
from cropkit.remembered import pretrained_spec, resolve_encoder
from cropkit.store import FeatureStore, NpyStore


@dataclass
class TrainOptions:
    """What ``cropkit train`` can be told; the feature options match ``cropkit extract``."""

    root: str | Path = "."
    images: str | Path | None = None
    model: str | None = None  # None: the encoder the root's features came from (cropkit.remembered)
    pretrained: str | None = None
    device: str = "auto"
    precision: str = "auto"
    workers: int = -1
    steps: int = 600
    epochs: int | None = None  # if given, overrides steps: passes over the training images
    holdout: float = 0.2
    seed: int = 0
    progress: bool = True


@dataclass
class TrainResult:
    """The saved proposer, what was skipped, and the split and data it was trained and scored on."""

    path: Path
    proposer: CropProposer
    layout: Layout  # where it was trained: a learning-curve report must stay out of its library
    problems: list[BadLine] = field(default_factory=list)
    skipped_images: dict[str, str] = field(default_factory=dict)
    train: list[Example] = field(default_factory=list)
    test: list[Example] = field(default_factory=list)
    data: dict[str, ImageData] = field(default_factory=dict)

    def lines(self) -> list[str]:
        m = self.proposer.meta
        out = [f"model:      {self.path}",
               f"trained on: {plural(m['n_decisions'], 'decision')}, {plural(m['n_train_images'], 'image')} "
               f"({m['n_test_images']} held out) with features of {m['feature_model']}"]
        for name, s in m["heldout"].items():
            out.append(f"  {name:12} mean IoU {s['mean_iou']:.3f}  acceptance {s['acceptance_rate']:.1%}  "
                       f"BDE {s['mean_bde']:.3f}  best-of-{3} IoU {s['best_of_k_iou']:.3f}")
        if self.problems:
            out.append(f"skipped log lines: {len(self.problems)} (first: {self.problems[0]})")
        if self.skipped_images:
            first = next(iter(self.skipped_images.items()))
            out.append(f"skipped images: {len(self.skipped_images)} (first: {first[0]}: {first[1]})")
        return out


def load_image_data(layout: Layout, images: list[str], opts: ExtractOptions,
                    log: Callable[[str], None]) -> tuple[dict[str, ImageData], dict[str, str], str]:
    """Features and cues for each image (paths relative to the root), extracting what is missing, read-only."""
    paths = [layout.image_path(rel) for rel in images]
    summary = run_extract(ExtractOptions(**{**opts.__dict__, "paths": paths}), log=log)
    cache = ProcessedCache(layout.processed_files, summary.model_id)
    store, cues = FeatureStore(layout.embeddings, summary.model_id), NpyStore(layout.cues)
    data, skipped = {}, {}
    for rel, path in zip(images, paths):
        entry = cache.get(layout.relative_name(path))
        if entry is None or not entry.ok:
            skipped[rel] = (entry.error or {}).get("message", "not extracted") if entry else "not extracted"
            continue
        try:
            data[rel] = ImageData(store.load(entry.hash), Cues.from_array(cues.load_array(entry.hash)))
        except ValueError as exc:
            skipped[rel] = str(exc)
    return data, skipped, summary.model_id


@dataclass
class LoggedData:
    """The decisions of a root joined with their features, split by image into training and held-out examples."""

    crops: list
    suggestions: list
    problems: list[BadLine]
    train: list[Example]
    test: list[Example]
    data: dict[str, ImageData]
    skipped: dict[str, str]
    feature_model: str


def load_logged_data(layout: Layout, extract_opts: ExtractOptions, holdout: float,
                     log: Callable[[str], None]) -> LoggedData:
    """Read both logs, extract (read-only) features that are missing, and split by image name, the same way for
    training and for evaluation."""
    if not 0.0 <= holdout < 1.0:
        raise CropkitError(f"holdout {holdout}: the held-out share must be at least 0 and below 1 (default 0.2)")
    crops, bad_crops = read_crops(layout.logs)
    suggestions, bad_suggestions = read_suggestions(layout.logs)
    problems = bad_crops + bad_suggestions
    for p in problems[:20]:
        log(f"skipped: {p}")
    examples = examples_from_decisions(crops, suggestions)
    if not examples:
        raise CropkitError(f"no usable decisions in {layout.logs} (training_log.jsonl or suggestions.jsonl); "
                           "log some crops first (the README documents both formats)")
    data, skipped, feature_model = load_image_data(layout, sorted(examples), extract_opts, log)
    usable = [examples[i] for i in sorted(examples) if i in data]
    if not usable:
        raise CropkitError("none of the logged images could be read; see the skipped images above")
    _, test_names = split_by_image([e.image for e in usable], holdout)
    held_out = set(test_names)
    train = [e for e in usable if e.image not in held_out]
    test = [e for e in usable if e.image in held_out]
    return LoggedData(crops, suggestions, problems, train, test, data, skipped, feature_model)


def run_train(opts: TrainOptions, log: Callable[[str], None] = print) -> TrainResult:
    layout = Layout.from_args(opts.root, opts.images)
    remove_stale_temp_files(layout.models)  # what a killed save left behind
    model, pretrained = resolve_encoder(layout.ai_data, opts.model, opts.pretrained)
    extract_opts = ExtractOptions(root=layout.root, images=layout.images, model=model, pretrained=pretrained,
                                  device=opts.device, precision=opts.precision, workers=opts.workers,
                                  progress=opts.progress)
    logged = load_logged_data(layout, extract_opts, opts.holdout, log)
    train, test, data = logged.train, logged.test, logged.data
    steps = opts.steps if opts.epochs is None else max(1, opts.epochs * math.ceil(len(train) / BATCH_IMAGES))
    proposer = fit_proposer(train, data, steps, opts.seed, opts.progress)
    heldout = evaluate_methods({"proposer": proposer_method(proposer), **fitted_baselines(train)}, test, data)
    proposer.meta.update(
        feature_model=logged.feature_model, pretrained=pretrained_spec(pretrained),
        fingerprint=fingerprint(logged.crops, logged.suggestions),
        n_decisions=len(logged.crops) + len(logged.suggestions), n_train_images=len(train), n_test_images=len(test),
        heldout={k: summary_only(s) for k, s in heldout.items()},
        cropkit_version=__version__, created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
    path = proposer.save(layout.models)
    return TrainResult(path, proposer, layout, logged.problems, logged.skipped, train, test, data)


def fit_proposer(train: list[Example], data: dict[str, ImageData], steps: int = 600, seed: int = 0,
                 progress: bool = False) -> CropProposer:
    """Fit a proposer on training examples (the benchmark calls this too)."""
    aspects = preferred_aspects(train)
    arrays = training_arrays(train, data, aspects, seed=seed)
    with tqdm(total=steps, desc="train", unit="step", disable=not progress) as bar:
        net = fit_network(arrays, steps=steps, seed=seed, progress=bar)
    return CropProposer(net, {"aspects": aspects})


LEARNING_CURVE_FILES = ("learning_curve_iou.png", "learning_curve_acceptance.png", "learning_curve.json")


def learning_curve_paths(out_dir: str | Path, layout: Layout) -> dict[str, Path]:
    """The learning-curve files in ``out_dir``; refused (before any work) when one exists already or the folder
    lies in the photo library."""
    from cropkit import plots

    return plots.report_paths(Path(out_dir), LEARNING_CURVE_FILES, layout)


def learning_curve_figures(result: TrainResult, out_dir: Path, steps: int = 600) -> dict[str, Path]:
    """Quality against number of decisions on this library: proposer and baselines refitted on the first N
    training images, scored on the same held-out images. Saves two PNGs and the numbers as JSON (new files only)."""
    import json

    from cropkit import plots
    from cropkit.evaluation import curve_points, learning_curve

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
