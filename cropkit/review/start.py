"""Opening the reviewer on a root: the suggester (a starting one while no proposer exists), the queue of pending
images, the session, the background retraining and the widget, put together."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from cropkit.errors import CropkitError
from cropkit.features.encoder_id import parse_encoder_id
from cropkit.layout import Layout
from cropkit.learn.dataset import even_sample
from cropkit.learn.heldout import evaluate_methods, plural, proposer_method
from cropkit.learn.proposer import latest_proposer
from cropkit.learn.suggest import StartingSuggester, Suggester
from cropkit.learn.train import MAX_REPORT_IMAGES, TrainOptions, run_train
from cropkit.review.others import log_sizes
from cropkit.review.queue import order_queue, pending_images
from cropkit.review.session import ASPECT_CHOICES, ReviewSession
from cropkit.review.widget import CropReviewer, Retrained, WidgetBar


def open_reviewer(root: str | Path = ".", proposer: str | Path | None = None, images: str | Path | None = None,
                  order: str = "file", aspect: str = "free", aspect_choices: list[str] | None = None,
                  retrain_every: int = 0, train_after: int = 10, device: str = "auto", arch: str | None = None,
                  weights: str | None = None) -> CropReviewer:
    """A reviewer over the library's images that have no decision yet, suggesting with the latest proposer (or
    the ``proposer`` file given). With no proposer yet it opens all the same and suggests the largest centred crop
    at the locked aspect (the whole frame when free), and trains the first proposer in the background after
    ``train_after`` decisions (``arch``/``weights``: its encoder; None: what the root remembers, else the
    default). Retrain trains the next version on every decision logged so far."""
    layout = Layout.from_args(root, images)
    if proposer is None and not _has_proposer(layout):
        suggester = StartingSuggester(layout, device)
    else:
        suggester = replace(Suggester.open(layout.root, proposer, device), layout=layout)  # names images as logs do
    marks = log_sizes(layout.logs)  # before the pending list: a decision logged elsewhere from now on is caught
    queue = order_queue(pending_images(layout), order, suggester if suggester.proposer else None)
    session = ReviewSession(suggester, queue, aspect_name=aspect, log_marks=marks)
    if suggester.proposer is not None:
        meta = suggester.proposer.meta
        arch, weights = parse_encoder_id(suggester.encoder_id)[0], meta.get("pretrained")
    reviewer = CropReviewer(session, retrain=retrainer(session, TrainOptions(
        root=layout.root, images=layout.images, arch=arch, weights=weights, device=device, progress=False,
        workers=0)), retrain_every=retrain_every, train_after=train_after)
    if aspect_choices:
        reviewer.aspect.options = [a for a in ASPECT_CHOICES if a in aspect_choices or a == aspect]
    return reviewer


def _has_proposer(layout: Layout) -> bool:
    try:
        latest_proposer(layout.models)
    except CropkitError:  # none yet: the starting suggester, and the first training
        return False
    return True


def retrainer(session: ReviewSession, opts: TrainOptions) -> Callable[[WidgetBar], Retrained]:
    """Train the next proposer on every decision logged so far (``opts``), score the proposer suggesting now on the
    new version's held-out images, and keep the better one suggesting; the message says how each did and how the
    best baseline did, from train's own held-out scores."""

    def retrain(bar: WidgetBar) -> Retrained:
        result = run_train(replace(opts, bar=bar), log=lambda _m: None)
        new = result.proposer
        heldout = new.meta["heldout"]
        mine = heldout["proposer"]
        name, best = max(((k, v) for k, v in heldout.items() if k != "proposer"), key=lambda kv: kv[1]["mean_iou"])
        where = f"on {plural(mine['n'], 'held-out picture')}"
        against = f"best baseline {name} {best['mean_iou']:.3f}"
        current = session.suggester.proposer
        if current is None:
            return Retrained(new, f"{new.name} trained: mean IoU {mine['mean_iou']:.3f} {where} ({against}); "
                                  f"now suggesting with {new.name}")
        scored = even_sample(result.test, MAX_REPORT_IMAGES)
        try:
            before = evaluate_methods({"current": proposer_method(current)}, scored, result.data)["current"]
            before_iou = before.scores.mean_iou
        except Exception:  # another encoder or cue version: it cannot be scored on these features
            before_iou = None
        if before_iou is not None and before_iou > mine["mean_iou"]:
            return Retrained(None, f"{new.name}: mean IoU {mine['mean_iou']:.3f} {where}, below {current.name} "
                                   f"{before_iou:.3f} ({against}); still suggesting with {current.name}")
        was = f"{current.name} {before_iou:.3f}" if before_iou is not None else f"{current.name} not comparable"
        return Retrained(new, f"{new.name}: mean IoU {mine['mean_iou']:.3f} {where} ({was}; {against}); "
                              f"now suggesting with {new.name}")

    return retrain
