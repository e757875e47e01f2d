"""``cropkit train``: join decisions with features (extracting what is missing), fit, evaluate, save a new version."""

from __future__ import annotations

import contextlib
import datetime as dt
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from cropkit import __version__
from cropkit.extract.options import ExtractOptions
from cropkit.features.encoder_id import concrete_encoder
from cropkit.fileio import BadLine, remove_stale_temp_files
from cropkit.layout import Layout
from cropkit.learn.dataset import (
    Example,
    ImageData,
    even_sample,
    fingerprint,
    load_logged_data,
    preferred_aspects,
)
from cropkit.learn.fit import BATCH_IMAGES, fit_network, steps_for, training_arrays
from cropkit.learn.guard import choose_guard
from cropkit.learn.heldout import compare_with_baselines, method_lines, plural, verdict
from cropkit.learn.proposer import CropProposer
from cropkit.learn.threads import on_one_thread
from cropkit.remembered import resolve_encoder, weights_spec

MAX_REPORT_IMAGES = 600  # held-out images train scores for its summary (more add little precision)
MAX_NETWORK_IMAGES = 4000  # images the network is taught from: its 1500 steps of 32 images see each a dozen times


@dataclass
class TrainOptions:
    """What ``cropkit train`` can be told; the feature options match ``cropkit extract``."""

    root: str | Path = "."
    images: str | Path | None = None
    arch: str | None = None  # None: the encoder the root's features came from (cropkit.remembered)
    weights: str | None = None
    device: str = "auto"
    precision: str = "auto"
    workers: int = -1
    subject_model: str | None = None  # FILE.onnx, rembg:NAME or none; None: the root's remembered one (as extract)
    steps: int | None = None  # None: scaled to the number of decisions (learn.fit.steps_for)
    epochs: int | None = None  # if given, overrides steps: passes over the training images
    holdout: float = 0.2
    seed: int = 0
    progress: bool = True
    bar: object | None = None  # a tqdm-like bar (total, update(n)) that the network's fit advances, e.g. a widget's


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
        out = [f"proposer:   {self.path}",
               f"trained on: {plural(m['n_decisions'], 'decision')}, {plural(m['n_train_images'], 'image')} "
               f"({m['n_test_images']} held out) with features of {m['feature_model']}"]
        if m.get("n_scored_images", m["n_test_images"]) < m["n_test_images"]:
            out.append(f"scored on:  {m['n_scored_images']} of the held-out images (cropkit evaluate scores all)")
        taught = len(even_sample(self.train, MAX_NETWORK_IMAGES))
        if taught < len(self.train):
            out.append(f"network:    taught from {taught} of the {len(self.train)} training images (an even sample); "
                       "the habits and the guard see them all")
        guard = self.proposer.guard()
        if guard is not None:
            out.append(f"suggests:   {guard.describe()}")
        out += method_lines(m["heldout"])
        out.append(f"verdict:    {verdict(m['heldout'])}")
        if self.problems:
            out.append(f"skipped log lines: {len(self.problems)} (first: {self.problems[0]})")
        if self.skipped_images:
            first = next(iter(self.skipped_images.items()))
            out.append(f"skipped images: {len(self.skipped_images)} (first: {first[0]}: {first[1]})")
        return out


def run_train(opts: TrainOptions, log: Callable[[str], None] = print) -> TrainResult:
    with on_one_thread():
        return _train(opts, log)


def _train(opts: TrainOptions, log: Callable[[str], None]) -> TrainResult:
    layout = Layout.from_args(opts.root, opts.images)
    remove_stale_temp_files(layout.models)  # what a killed save left behind
    arch, weights = concrete_encoder(*resolve_encoder(layout.ai_data, opts.arch, opts.weights))
    extract_opts = ExtractOptions(root=layout.root, images=layout.images, arch=arch, weights=weights,
                                  device=opts.device, precision=opts.precision, workers=opts.workers,
                                  progress=opts.progress, subject_model=opts.subject_model)
    logged = load_logged_data(layout, extract_opts, opts.holdout, log)
    train, test, data = logged.train, logged.test, logged.data
    steps = opts.steps if opts.epochs is None else max(1, opts.epochs * math.ceil(len(train) / BATCH_IMAGES))
    proposer = fit_proposer(train, data, steps, opts.seed, opts.bar or opts.progress)
    scored = even_sample(test, MAX_REPORT_IMAGES)  # evaluate scores them all
    heldout = compare_with_baselines(proposer, train, scored, data)
    proposer.meta.update(  # "feature_model" and "pretrained": the encoder id and weights, as the format names them
        feature_model=logged.encoder_id, pretrained=weights_spec(weights),
        fingerprint=fingerprint(logged.crops, logged.suggestions),
        n_decisions=len(logged.crops) + len(logged.suggestions), n_train_images=len(train), n_test_images=len(test),
        n_scored_images=len(scored),
        heldout={k: s.scores.to_json() for k, s in heldout.items()},
        cropkit_version=__version__, created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
    path = proposer.save(layout.models)
    return TrainResult(path, proposer, layout, logged.problems, logged.skipped, train, test, data)


def fit_proposer(train: list[Example], data: dict[str, ImageData], steps: int | None = None, seed: int = 0,
                 progress: bool | object = False) -> CropProposer:
    """Fit a proposer on training examples: the network, and the guard that keeps to the photographer's habit
    until cross-validation shows the network's crops do better (``steps`` None: scaled to the decisions).
    ``progress``: a terminal bar (True), none (False), or a tqdm-like bar of the caller's to advance."""
    with on_one_thread():  # each fit on one thread, and two fits at once (the main one beside the guard's)
        return _fit_proposer(train, data, steps, seed, progress)


def _fit_proposer(train: list[Example], data: dict[str, ImageData], steps: int | None, seed: int,
                  progress: bool | object) -> CropProposer:
    aspects = preferred_aspects(train)
    taught = even_sample(train, MAX_NETWORK_IMAGES)
    arrays = training_arrays(taught, data, aspects, seed=seed)
    row = {e.image: i for i, e in enumerate(taught)}
    subjects = {data[e.image].cues.subject_id for e in train}
    if len(subjects) != 1:
        raise ValueError(f"training pictures have subject maps of several models ({sorted(map(str, subjects))})")
    subject = {"subject": s} if (s := subjects.pop()) else {}

    def fit_fold(subset: list[Example]):
        fold_net = fit_network(arrays.rows([row[e.image] for e in subset if e.image in row]),
                               steps=steps or steps_for(len(subset), cross_validation=True), seed=seed)
        fold = CropProposer(fold_net, {"aspects": aspects, **subject})

        def predict(e: Example):
            d = data[e.image]
            return fold.propose(e.width, e.height, d.cues, d.features, k=1)[0]
        return predict

    total = steps or steps_for(len(train))
    given = progress if not isinstance(progress, bool) else None
    if given is not None:
        given.total = total
    with (contextlib.nullcontext(given) if given is not None
          else tqdm(total=total, desc="train", unit="step", disable=not progress)) as bar, \
            ThreadPoolExecutor(max_workers=1) as beside:
        main = beside.submit(fit_network, arrays, steps=total, seed=seed, progress=bar)
        guard = choose_guard(train, fit_fold)
        net = main.result()
    versions = {data[e.image].cues.version for e in train}
    if len(versions) != 1:
        raise ValueError(f"training pictures have cues of several versions ({sorted(versions)})")
    return CropProposer(net, {"aspects": aspects, "guard": guard.to_meta(), "cues": versions.pop(), **subject})
