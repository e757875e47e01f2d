"""Opening the reviewer on a root: the suggester, the queue of pending images, the session, the retraining and
the widget, put together."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from cropkit.features.encoder_id import parse_encoder_id
from cropkit.layout import Layout
from cropkit.learn.proposer import CropProposer
from cropkit.learn.suggest import Suggester
from cropkit.learn.train import TrainOptions, run_train
from cropkit.review.others import log_sizes
from cropkit.review.queue import order_queue, pending_images
from cropkit.review.session import ASPECT_CHOICES, ReviewSession
from cropkit.review.widget import CropReviewer


def open_reviewer(root: str | Path = ".", proposer: str | Path | None = None, images: str | Path | None = None,
                  order: str = "file", aspect: str = "free", aspect_choices: list[str] | None = None,
                  retrain_every: int = 0, device: str = "auto") -> CropReviewer:
    """A reviewer over the library's images that have no decision yet, suggesting with the latest proposer (or
    the ``proposer`` file given); Retrain trains the next version on every decision logged so far, with the same
    features."""
    layout = Layout.from_args(root, images)
    suggester = replace(Suggester.open(layout.root, proposer, device), layout=layout)  # names images as the logs do
    marks = log_sizes(layout.logs)  # before the pending list: a decision logged elsewhere from now on is caught
    queue = order_queue(pending_images(layout), order, suggester)
    session = ReviewSession(suggester, queue, aspect_name=aspect, log_marks=marks)
    meta = suggester.proposer.meta

    def retrain() -> CropProposer:
        opts = TrainOptions(root=layout.root, images=layout.images, arch=parse_encoder_id(suggester.encoder_id)[0],
                            weights=meta.get("pretrained"), device=device, progress=False, workers=0)
        return run_train(opts, log=lambda _m: None).proposer

    reviewer = CropReviewer(session, retrain=retrain, retrain_every=retrain_every)
    if aspect_choices:
        reviewer.aspect.options = [a for a in ASPECT_CHOICES if a in aspect_choices or a == aspect]
    return reviewer
