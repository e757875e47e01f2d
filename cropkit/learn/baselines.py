"""Baselines every proposer must beat, run through the same evaluation as the proposer."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from cropkit.decisions import Suggestion
from cropkit.features.cues import Cues
from cropkit.geometry import (
    STANDARD_ASPECTS,
    Box,
    clamp_box,
    denormalise,
    fit_box_to_aspect,
    is_finite_number,
    largest_centred_box,
    nearest_standard_aspect,
    nms_top_k,
    normalise,
)
from cropkit.learn.candidates import CueTables, candidate_set


@dataclass(frozen=True)
class Target:
    """One crop the photographer made, with the size of its image."""

    width: int
    height: int
    crop: Box


def most_common_aspect(targets: list[Target]) -> float | None:
    """The standard aspect (1:1, 4:5, 3:2, ...) the photographer crops to most often; None without data."""
    if not targets:
        return None
    name, _ = Counter(nearest_standard_aspect(t.crop) for t in targets).most_common(1)[0]
    return STANDARD_ASPECTS[name]


class Baseline:
    name = "baseline"
    learned: tuple[str, ...] = ()  # the attributes fit() sets: a fitted baseline is these values

    def fit(self, targets: list[Target]) -> None:
        """Learn what the baseline needs from training crops (most learn nothing)."""

    def state(self) -> dict:
        """What fit() learned, as plain JSON data."""
        values = {k: getattr(self, k) for k in self.learned}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items() if v is not None}

    @classmethod
    def from_state(cls, state: dict) -> Baseline:
        """A fitted baseline back from ``state()``; ValueError when a value is not a finite number (list)."""
        b = cls()
        for key in cls.learned:
            value = state.get(key)
            numbers = value if isinstance(value, list) else [value]
            if value is not None and not all(is_finite_number(v) and v > -1e-6 for v in numbers):
                raise ValueError(f"the {cls.name} baseline's {key!r} is not a non-negative finite number")
            if value is not None:
                setattr(b, key, tuple(float(v) for v in value) if isinstance(value, list) else float(value))
        return b

    def propose(self, width: int, height: int, cues: Cues | None, aspect: float | None = None,
                k: int = 1) -> list[Suggestion]:
        raise NotImplementedError


class FullFrame(Baseline):
    """Propose no crop at all (the whole frame, or the largest centred box of a requested aspect)."""

    name = "full-frame"

    def propose(self, width, height, cues, aspect=None, k=1):
        return [Suggestion(largest_centred_box(aspect, width, height), 1.0)]


def fitted_shape(targets: list[Target]) -> tuple[float | None, float]:
    """The photographer's usual crop shape: the most common aspect, and the median scale of the crops of that
    aspect against the largest box of that aspect the frame holds (1.0 without data)."""
    aspect = most_common_aspect(targets)
    scales = []
    for t in targets:
        full = largest_centred_box(aspect, t.width, t.height)
        area = (t.crop[2] - t.crop[0]) * (t.crop[3] - t.crop[1])
        scales.append(min(1.0, math.sqrt(area / ((full[2] - full[0]) * (full[3] - full[1])))))
    return aspect, float(np.median(scales)) if scales else 1.0


def centred_box(aspect: float | None, scale: float, width: int, height: int) -> Box:
    """The largest centred box of ``aspect`` (None: the frame's own) scaled by ``scale`` about the centre."""
    x0, y0, x1, y1 = largest_centred_box(aspect, width, height)
    cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * scale, (y1 - y0) * scale
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


class CentreCrop(Baseline):
    """A centred crop at the photographer's most common aspect and usual scale."""

    name = "centre-crop"
    learned = ("aspect", "scale")
    aspect: float | None = None
    scale: float = 1.0

    def fit(self, targets):
        self.aspect, self.scale = fitted_shape(targets)

    def propose(self, width, height, cues, aspect=None, k=1):
        return [Suggestion(centred_box(aspect or self.aspect, self.scale, width, height), 1.0)]


class UsualBox(Baseline):
    """The photographer's usual crop: their most common aspect at their usual scale, placed where their crops'
    centres sit on average (a content-blind habit such as "3:2, a little above the middle")."""

    name = "usual-box"
    learned = ("aspect", "scale", "centre")
    aspect: float | None = None
    scale: float = 1.0
    centre: tuple[float, float] = (0.5, 0.5)

    def fit(self, targets):
        self.aspect, self.scale = fitted_shape(targets)
        if targets:
            self.centre = (float(np.mean([(t.crop[0] + t.crop[2]) / 2 / t.width for t in targets])),
                           float(np.mean([(t.crop[1] + t.crop[3]) / 2 / t.height for t in targets])))

    def propose(self, width, height, cues, aspect=None, k=1):
        x0, y0, x1, y1 = centred_box(aspect or self.aspect, self.scale, width, height)
        dx, dy = self.centre[0] * width - (x0 + x1) / 2, self.centre[1] * height - (y0 + y1) / 2
        return [Suggestion(clamp_box((x0 + dx, y0 + dy, x1 + dx, y1 + dy), width, height), 1.0)]


class MeanBox(Baseline):
    """The mean of the training crops in normalised coordinates."""

    name = "mean-box"
    learned = ("mean",)
    mean: Box = (0.0, 0.0, 1.0, 1.0)

    def fit(self, targets):
        if targets:
            boxes = [normalise(t.crop, t.width, t.height) for t in targets]
            self.mean = tuple(sum(b[i] for b in boxes) / len(boxes) for i in range(4))  # type: ignore[assignment]

    def propose(self, width, height, cues, aspect=None, k=1):
        return [Suggestion(fit_box_to_aspect(denormalise(self.mean, width, height), aspect, width, height), 1.0)]


class SaliencyCrop(Baseline):
    """smartcrop-style: the window at the usual aspect that keeps the most saliency for its size and cuts
    through the fewest edges."""

    name = "saliency"
    learned = ("aspect",)
    aspect: float | None = None

    def fit(self, targets):
        self.aspect = most_common_aspect(targets)

    def propose(self, width, height, cues, aspect=None, k=1):
        if cues is None:
            raise ValueError("the saliency baseline needs composition cues")
        boxes = candidate_set(width, height, [aspect or self.aspect])
        tables = CueTables(cues)
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        score = tables.saliency_inside(boxes) - 0.5 * area - 0.05 * tables.border_edges(boxes)
        return [Suggestion(denormalise(tuple(float(v) for v in boxes[i]), width, height), float(score[i]))
                for i in nms_top_k(boxes, score, k)]


BASELINES = (FullFrame, CentreCrop, UsualBox, MeanBox, SaliencyCrop)
BY_NAME = {cls.name: cls for cls in BASELINES}


def fitted(kinds: tuple[type[Baseline], ...], targets: list[Target]) -> dict[str, Baseline]:
    """One baseline of each kind, fitted on the same crops, by name."""
    out = {}
    for cls in kinds:
        out[cls.name] = baseline = cls()
        baseline.fit(targets)
    return out
