"""Run the proposer and every baseline through one evaluation on held-out images."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cropkit.geometry import Box, denormalise, iou
from cropkit.learn.baselines import BASELINES, Baseline, fitted
from cropkit.learn.dataset import Example, ImageData
from cropkit.learn.metrics import CropScores, score_proposals
from cropkit.learn.proposer import CropProposer

Method = Callable[[Example, ImageData], list[Box]]
TOP_K = 3


@dataclass(frozen=True)
class HeldOutScores:
    """One method on the held-out images: the aggregate scores and, per image, its top-1 box and IoU."""

    scores: CropScores
    images: tuple[str, ...]
    top1: tuple[Box, ...]
    ious: tuple[float, ...]

    def to_json(self) -> dict:
        """The scores with the per-image lists, as report.json keeps them."""
        return {**self.scores.to_json(), "ious": list(self.ious), "top1": [[round(v, 1) for v in b] for b in self.top1],
                "images": list(self.images)}


def proposer_method(proposer: CropProposer, k: int = TOP_K) -> Method:
    def run(e: Example, d: ImageData) -> list[Box]:
        return [s.box for s in proposer.propose(e.width, e.height, d.cues, d.features, k=k)]
    return run


def baseline_method(baseline: Baseline, k: int = TOP_K) -> Method:
    def run(e: Example, d: ImageData) -> list[Box]:
        return [s.box for s in baseline.propose(e.width, e.height, d.cues, k=k)]
    return run


def fitted_baselines(train: list[Example]) -> dict[str, Method]:
    """Each baseline, fitted on the training crops."""
    return {name: baseline_method(b) for name, b in fitted(BASELINES, [t for e in train for t in e.targets()]).items()}


def evaluate_methods(methods: dict[str, Method], test: list[Example],
                     data: dict[str, ImageData]) -> dict[str, HeldOutScores]:
    """Scores per method on the images with at least one positive crop, plus each image's top-1 IoU."""
    scored = [e for e in test if e.positives and e.image in data]
    truths = [[denormalise(b, e.width, e.height) for b in e.positives] for e in scored]
    sizes = [(e.width, e.height) for e in scored]
    report = {}
    for name, method in methods.items():
        proposals = [method(e, data[e.image]) for e in scored]
        report[name] = HeldOutScores(score_proposals(proposals, truths, sizes), tuple(e.image for e in scored),
                                     tuple(p[0] for p in proposals),
                                     tuple(max(iou(p[0], t) for t in ts) for p, ts in zip(proposals, truths)))
    return report


def compare_with_baselines(proposer: CropProposer, train: list[Example], test: list[Example],
                           data: dict[str, ImageData]) -> dict[str, HeldOutScores]:
    """The proposer and every baseline fitted on the same training crops, scored on the same held-out images."""
    return evaluate_methods({"proposer": proposer_method(proposer), **fitted_baselines(train)}, test, data)


def learning_curve(train: list[Example], test: list[Example], data: dict[str, ImageData],
                   fit: Callable[[list[Example], dict[str, ImageData]], CropProposer],
                   points: tuple[int, ...]) -> dict[int, dict[str, dict]]:
    """Proposer and baselines trained on the first N training images, all scored on the same held-out images."""
    curve = {}
    for n in points:
        subset = train[:n]
        report = compare_with_baselines(fit(subset, data), subset, test, data)
        curve[n] = {name: s.scores.to_json() for name, s in report.items()}
    return curve


def curve_points(n_train: int, points: tuple[int, ...] = (10, 30, 100, 300, 1000, 3000)) -> tuple[int, ...]:
    """The standard curve points below the number of training images, and that number itself."""
    return tuple(p for p in points if p < n_train) + (n_train,)


def plural(n: int, noun: str) -> str:
    """'1 decision', '2 decisions': a count with its noun (regular plurals only)."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
