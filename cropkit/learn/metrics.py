"""Crop quality as the cropping literature measures it: IoU, BDE, acceptance rate and best-of-top-K IoU."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from cropkit.geometry import Box, bde, iou

ACCEPT_IOU = 0.85  # a suggestion this close to the photographer's crop counts as accepted
EXPLAINED = {  # one sentence each, for reports
    "mean IoU": "how much the suggested box and your crop overlap (intersection over union, averaged over "
                "pictures): 1 is your crop exactly, 0.5 is visibly different.",
    "BDE": "boundary displacement error: how far the suggested box's edges are from your crop's, as a share of "
           "the picture's width or height (0 is your crop exactly).",
    "acceptance": f"the share of pictures where the suggestion overlaps your crop with IoU >= {ACCEPT_IOU}, close "
                  "enough to accept as it is.",
}


@dataclass(frozen=True)
class CropScores:
    n: int
    mean_iou: float
    mean_bde: float
    acceptance_rate: float
    best_of_k_iou: float

    def to_json(self) -> dict:
        return asdict(self)


def score_proposals(proposals: Sequence[Sequence[Box]], truths: Sequence[Sequence[Box]],
                    sizes: Sequence[tuple[int, int]]) -> CropScores:
    """Score ranked proposals per image against that image's crops (multi-crop: the best-matching one)."""
    if not (len(proposals) == len(truths) == len(sizes)):
        raise ValueError("proposals, truths and sizes must have one entry per image")
    if not proposals:
        return CropScores(0, 0.0, 0.0, 0.0, 0.0)
    ious, bdes, best = [], [], []
    for ranked, crops, (w, h) in zip(proposals, truths, sizes):
        top = ranked[0]
        match = max(crops, key=lambda c: iou(top, c))
        ious.append(iou(top, match))
        bdes.append(bde(top, match, w, h))
        best.append(max(iou(p, c) for p in ranked for c in crops))
    n = len(ious)
    return CropScores(n, sum(ious) / n, sum(bdes) / n, sum(v >= ACCEPT_IOU for v in ious) / n, sum(best) / n)
