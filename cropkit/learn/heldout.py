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


def decisions_in(examples: list[Example]) -> int:
    """Logged decisions behind the examples (an example built by hand counts as one)."""
    return sum(max(e.decisions, 1) for e in examples)


def first_decisions(train: list[Example], n: int) -> list[Example]:
    """The shortest run of training images, in order, that holds at least ``n`` decisions."""
    total = 0
    for i, e in enumerate(train):
        total += max(e.decisions, 1)
        if total >= n:
            return train[: i + 1]
    return list(train)


def learning_curve(train: list[Example], test: list[Example], data: dict[str, ImageData],
                   fit: Callable[[list[Example], dict[str, ImageData]], CropProposer],
                   points: tuple[int, ...]) -> dict[int, dict[str, dict]]:
    """Proposer and baselines trained on the first N decisions, all scored on the same held-out images."""
    curve = {}
    for n in points:
        subset = first_decisions(train, n)
        report = compare_with_baselines(fit(subset, data), subset, test, data)
        curve[n] = {name: s.scores.to_json() for name, s in report.items()}
    return curve


def curve_points(n_decisions: int, points: tuple[int, ...] = (10, 30, 100, 300, 1000, 3000)) -> tuple[int, ...]:
    """The standard curve points below the number of training decisions, and that number itself."""
    return tuple(p for p in points if p < n_decisions) + (n_decisions,)


CLOSE = 0.005  # mean IoU differences this small are a tie


def verdict(methods: dict[str, dict]) -> str:
    """In words: is the proposer above its best baseline on the held-out pictures, and by how much."""
    ours = methods.get("proposer")
    others = {name: s for name, s in methods.items() if name != "proposer"}
    if not ours or not others or not ours.get("n"):
        return "no held-out pictures with a crop: log more decisions to measure the proposer"
    best = max(others, key=lambda name: others[name]["mean_iou"])
    gap = ours["mean_iou"] - others[best]["mean_iou"]
    numbers = (f"mean IoU {ours['mean_iou']:.3f} against {others[best]['mean_iou']:.3f} ({gap:+.3f}) on "
               f"{plural(ours['n'], 'held-out picture')}")
    rough = "; few pictures, so a rough estimate" if ours["n"] < 20 else ""
    if gap > CLOSE:
        return f"the proposer is above its best baseline ({best}): {numbers}{rough}"
    if gap >= -CLOSE:
        return (f"the proposer matches its best baseline ({best}): {numbers}; it keeps to your habit until your "
                f"decisions show a better crop{rough}")
    return f"the proposer is below its best baseline ({best}): {numbers}; retrain with more decisions{rough}"


def method_lines(methods: dict[str, dict]) -> list[str]:
    """One line per method: the numbers a photographer compares."""
    return [f"  {name:12} mean IoU {s['mean_iou']:.3f}  acceptance {s['acceptance_rate']:.1%}  "
            f"BDE {s['mean_bde']:.3f}  best-of-{TOP_K} IoU {s['best_of_k_iou']:.3f}" for name, s in methods.items()]


def plural(n: int, noun: str) -> str:
    """'1 decision', '2 decisions': a count with its noun (regular plurals only)."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
