"""Keeping to the photographer's habit until their own decisions show that moving away from it pays.

The habits every learner has for free (the mean box; a centred crop at the usual aspect and scale; the usual crop
placed where the photographer usually places it; the full frame) compete with the network by cross-validation
over the photographer's decisions, in folds of contiguous image names (so that near-duplicates are held out
together). The mean box is the habit kept unless another habit beats it on the same held-out crops by more than
its noise (one standard error of the paired difference; the best such habit then), and the network's crop is
blended in (a weight from 0 to 1) only as far as held-out decisions show a gain over that habit larger than its
noise. The mean box comes first because it is the least that a few crops can mislead: the other habits fit a
most common aspect and a median scale, which a few noisy crops can get wrong, and a plain best-of-four on a few
held-out crops picks such a habit by chance.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from cropkit.decisions import Suggestion
from cropkit.geometry import Box, denormalise, fit_box_to_aspect, iou, is_valid_box
from cropkit.learn.baselines import BY_NAME, Baseline, CentreCrop, FullFrame, MeanBox, UsualBox, fitted
from cropkit.learn.calibration import Calibration
from cropkit.learn.dataset import Example, even_sample
from cropkit.learn.metrics import ACCEPT_IOU

HABITS = (MeanBox, CentreCrop, UsualBox, FullFrame)  # in this order when they tie
BLENDS = (0.0, 0.25, 0.5, 0.75, 1.0)
MIN_EVIDENCE = 20  # cropped images below which the network is not trusted at all (habits alone are compared)
LARGE_LIBRARY = 1000  # cropped images from which cross-validation has evidence to spare and is made cheaper
MAX_CV_IMAGES = 400  # cross-validation scores at most this many held-out images (more add little evidence)
Predictor = Callable[[Example], Suggestion]  # an image -> the network's top crop, in pixels, and its raw score


@dataclass(frozen=True)
class Guard:
    """The habit to keep (a fitted baseline) and how far to move towards the network's crop."""

    habit: str
    state: dict
    blend: float
    evidence: dict = field(default_factory=dict)  # cross-validated mean IoU per option, and the images behind it
    calibration: Calibration | None = None  # raw network score -> probability of acceptance (None: older files)

    def baseline(self) -> Baseline:
        return BY_NAME[self.habit].from_state(self.state)

    def apply(self, net_box: Box, width: int, height: int, aspect: float | None) -> Box:
        """The crop to suggest first: the habit's, moved ``blend`` of the way to the network's."""
        habit = self.baseline().propose(width, height, None, aspect=aspect)[0].box
        box = blend(habit, net_box, self.blend)
        return fit_box_to_aspect(box, aspect, width, height) if aspect else box

    def describe(self) -> str:
        """What the guard decided, in words for the photographer."""
        n = self.evidence.get("images", 0)
        if self.blend > 0:
            return (f"moves {self.blend:.0%} of the way from your habit ({self.habit}) to the network's crop: it did "
                    f"better on {n} held-out crops")
        if n < MIN_EVIDENCE:
            return (f"keeps to your habit ({self.habit}): {n} cropped images are too few to trust a network "
                    f"({MIN_EVIDENCE} needed)")
        return f"keeps to your habit ({self.habit}): on {n} held-out crops the network did not do clearly better"

    def to_meta(self) -> dict:
        out = {"habit": self.habit, "state": self.state, "blend": self.blend, "evidence": self.evidence}
        return out | ({"calibration": self.calibration.to_meta()} if self.calibration else {})

    @classmethod
    def from_meta(cls, meta: object) -> Guard:
        """Checked: a known habit with finite parameters and a blend weight in [0, 1]; ValueError otherwise."""
        if not isinstance(meta, dict) or meta.get("habit") not in {h.name for h in HABITS}:
            raise ValueError("its 'guard' does not name a known habit")
        blend_weight, state = meta.get("blend"), meta.get("state")
        if not isinstance(blend_weight, (int, float)) or not 0.0 <= blend_weight <= 1.0 or not isinstance(state, dict):
            raise ValueError("its 'guard' blend weight or habit state is not usable")
        calibration = Calibration.from_meta(meta["calibration"]) if "calibration" in meta else None
        guard = cls(meta["habit"], state, float(blend_weight),
                    meta.get("evidence") if isinstance(meta.get("evidence"), dict) else {}, calibration)
        try:  # the state must give a crop inside a frame, whatever file it came from
            probe = guard.baseline().propose(400, 300, None)[0].box
        except (TypeError, ValueError, ZeroDivisionError, IndexError):
            probe = None
        if probe is None or not is_valid_box(probe, 400 + 1e-6, 300 + 1e-6):
            raise ValueError(f"its 'guard' habit ({meta['habit']}) does not give a crop inside the frame")
        return guard


def blend(a: Box, b: Box, weight: float) -> Box:
    """The box ``weight`` of the way from ``a`` to ``b`` (edge by edge)."""
    return tuple(float(x + weight * (y - x)) for x, y in zip(a, b))  # type: ignore[return-value]


def name_blocks(examples: list[Example], folds: int) -> list[list[Example]]:
    """The examples in ``folds`` contiguous runs of image names: bursts and near-duplicates, which sit side by
    side in a library (IMG_0042, IMG_0043, ...), are held out together, so cross-validation cannot reward a network
    for recognising a picture it has seen a sibling of."""
    ordered = sorted(examples, key=lambda e: e.image)
    cuts = [round(i * len(ordered) / folds) for i in range(folds + 1)]
    return [ordered[cuts[i]:cuts[i + 1]] for i in range(folds)]


def fitted_habits(examples: list[Example]) -> dict[str, Baseline]:
    return fitted(HABITS, [t for e in examples for t in e.targets()])


def beats_its_noise(diff: np.ndarray) -> bool:
    """Whether a paired held-out gain is larger than one standard error of itself (never on fewer than two)."""
    return len(diff) > 1 and float(diff.mean() - diff.std(ddof=1) / math.sqrt(len(diff))) > 0


def habit_to_keep(ious: dict[str, np.ndarray]) -> str:
    """The mean box, unless other habits beat it on the same held-out crops by more than their noise: then the
    best of those (``ious``: each habit's held-out IoU per crop, in the same order)."""
    base = ious[MeanBox.name]
    clear = [h.name for h in HABITS if h is not MeanBox and beats_its_noise(ious[h.name] - base)]
    return max(clear, key=lambda name: float(ious[name].mean()), default=MeanBox.name)


def choose_guard(examples: list[Example], fit_net: Callable[[list[Example]], Predictor], folds: int = 3) -> Guard:
    """Cross-validate every habit and every blend towards the network over the photographer's decisions; keep
    the mean box unless another habit beats it on held-out crops by more than one standard error, and that habit
    unless a blend beats it by more than one standard error. The held-out outcomes of the choice also calibrate
    the score shown with a suggestion (see cropkit.learn.calibration)."""
    final = fitted_habits(examples)
    scored = [e for e in examples if e.positives]
    ious: dict[tuple[str, float], list[float]] = {(h.name, w): [] for h in HABITS for w in BLENDS}
    raw: list[float] = []  # the network's score of its top crop, per held-out image it saw
    folds = 2 if len(scored) > LARGE_LIBRARY else folds
    blocks = name_blocks(examples, max(2, min(folds, len(scored)))) if len(scored) >= 2 else []
    for block in blocks:
        names = {e.image for e in block}
        held = [e for e in block if e.positives]
        held = even_sample(held, MAX_CV_IMAGES // len(blocks))  # a large library: a sample
        train = [e for e in examples if e.image not in names]
        if not held or not [e for e in train if e.positives]:
            continue
        habits = fitted_habits(train)
        predict = fit_net(train) if len(scored) >= MIN_EVIDENCE else None
        for e in held:
            truths = [denormalise(b, e.width, e.height) for b in e.positives]
            top = predict(e) if predict else None
            net_box = top.box if top else None
            if top:
                raw.append(top.score)
            for name, habit in habits.items():
                box = habit.propose(e.width, e.height, None)[0].box
                for w in BLENDS if net_box else (0.0,):
                    ious[(name, w)].append(max(iou(blend(box, net_box, w) if w else box, t) for t in truths))
    means = {opt: float(np.mean(v)) for opt, v in ious.items() if v}
    if not means:  # nothing held out: the mean box is the habit
        return Guard(MeanBox.name, final[MeanBox.name].state(), 0.0, {"images": 0}, Calibration.fit([]))
    habit = habit_to_keep({name: np.array(ious[(name, 0.0)]) for name in final})
    base = np.array(ious[(habit, 0.0)])
    choice = (habit, 0.0)
    for opt, values in ious.items():
        if opt[1] == 0.0 or len(values) != len(base) or means[opt] <= means[choice]:
            continue
        if beats_its_noise(np.array(values) - base):
            choice = opt
    evidence = {"images": len(base), **{f"{name} x{w:g}": round(m, 4) for (name, w), m in means.items()}}
    accepted = [v >= ACCEPT_IOU for v in ious[choice]]
    calibration = Calibration.fit(accepted, raw if len(raw) == len(accepted) else None)
    return Guard(choice[0], final[choice[0]].state(), choice[1], evidence, calibration)
