"""The score shown with a suggestion: the probability that the photographer accepts it (IoU >= 0.85 with the crop
they make), calibrated on held-out decisions during training.

A logistic curve on the log of the network's own score (Platt scaling), with a weak pull towards the plain
acceptance rate, so a network whose score says nothing about acceptance gives that rate for every picture. The
curve never falls: a suggestion the network is surer of is never shown as less likely to be accepted, and the
ranking stays the network's.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from cropkit.decisions import brief
from cropkit.geometry import is_finite_number

MIN_POINTS = 10  # held-out decisions below which only the acceptance rate is used
RIDGE = 1.0  # pull of the slope towards 0 (in units of one held-out decision)


@dataclass(frozen=True)
class Calibration:
    """P(accepted) = sigmoid(intercept + slope * (log(raw score) - centre)), from ``n`` held-out decisions of which
    ``accepted`` were accepted."""

    intercept: float
    slope: float
    centre: float
    n: int
    accepted: int

    @classmethod
    def fit(cls, accepted: list[bool], raw: list[float] | None = None) -> Calibration:
        """Fit on held-out outcomes and, when the network made those suggestions, its raw scores for them."""
        n, k = len(accepted), int(sum(accepted))
        prior = _logit((k + 0.5) / (n + 1.0))  # smoothed: 0 of 3 accepted is not a probability of 0
        if raw is None or n < MIN_POINTS or len(raw) != n:
            return cls(prior, 0.0, 0.0, n, k)
        x = np.log(np.clip(np.asarray(raw, np.float64), 1e-9, 1.0))
        centre = float(x.mean())
        x = x - centre
        y = np.asarray(accepted, np.float64)
        a, b = prior, 0.0
        for _ in range(25):  # Newton's method on the penalised log-likelihood
            p = 1.0 / (1.0 + np.exp(-(a + b * x)))
            w = p * (1 - p)
            grad = np.array([(y - p).sum(), ((y - p) * x).sum() - RIDGE * b])
            hess = np.array([[w.sum() + 1e-6, (w * x).sum()], [(w * x).sum(), (w * x * x).sum() + RIDGE]])
            step = np.linalg.solve(hess, grad)
            a, b = a + step[0], b + step[1]
            if np.abs(step).max() < 1e-8:
                break
        if not (math.isfinite(a) and math.isfinite(b)) or b < 0:  # a surer network is never less likely accepted
            return cls(prior, 0.0, 0.0, n, k)
        return cls(float(a), float(b), centre, n, k)

    def probability(self, raw: float) -> float:
        """The calibrated probability of acceptance for a suggestion whose network score is ``raw``."""
        z = self.intercept + self.slope * (math.log(min(max(raw, 1e-9), 1.0)) - self.centre)
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def describe(self) -> str:
        rate = self.accepted / self.n if self.n else 0.0
        return (f"scores are calibrated acceptance probabilities ({self.accepted} of {self.n} held-out suggestions "
                f"accepted, {rate:.0%})")

    def to_meta(self) -> dict:
        return asdict(self)

    @classmethod
    def from_meta(cls, meta: object) -> Calibration:
        """Checked: finite numbers in range, a slope that never falls, and whole counts with 0 <= accepted <= n;
        ValueError (saying which) otherwise."""
        if not isinstance(meta, dict):
            raise ValueError("its 'calibration' is not a mapping")
        values = {key: meta.get(key) for key in cls.__dataclass_fields__}
        for key, (low, high) in _RANGES.items():
            v = values[key]
            if not is_finite_number(v) or not low <= v <= high or (key in _COUNTS and not float(v).is_integer()):
                kind = "a whole number" if key in _COUNTS else "a number"
                raise ValueError(f"its 'calibration' {key} must be {kind} from {low:g} to {high:g}, not {brief(v)}")
        if values["slope"] < 0:
            raise ValueError("its 'calibration' slope is negative: surer suggestions would be shown as less likely "
                             "to be accepted, which a calibration never does")
        if values["accepted"] > values["n"]:
            raise ValueError(f"its 'calibration' counts {int(values['accepted'])} accepted of {int(values['n'])}")
        return cls(float(values["intercept"]), float(values["slope"]), float(values["centre"]), int(values["n"]),
                   int(values["accepted"]))


_COUNTS = ("n", "accepted")
_RANGES = {  # wide enough for any fit, narrow enough that no sum in ``probability`` overflows
    "intercept": (-1e6, 1e6), "slope": (-1e6, 1e6), "centre": (-21.0, 0.0),  # the mean log of a score >= 1e-9
    "n": (0, 1e12), "accepted": (0, 1e12)}


def _logit(p: float) -> float:
    return math.log(p / (1 - p))
