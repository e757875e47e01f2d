"""Opening the reviewer on a root: the suggester (a starting one while no proposer exists), the queue of pending
images, the session, the background retraining and the widget, put together."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from cropkit.errors import CropkitError
from cropkit.features.encoder_id import parse_encoder_id
from cropkit.geometry import largest_centred_box
from cropkit.layout import Layout
from cropkit.learn.dataset import even_sample
from cropkit.learn.heldout import evaluate_methods, plural, proposer_method
from cropkit.learn.proposer import latest_proposer
from cropkit.learn.suggest import StartingSuggester, Suggester
from cropkit.learn.train import MAX_REPORT_IMAGES, TrainOptions, run_train
from cropkit.review.others import log_sizes
from cropkit.review.queue import order_queue, pending_images
from cropkit.review.session import ASPECT_CHOICES, ReviewSession, aspect_of
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


MIN_COMPARE = 5  # held-out pictures below which two versions are not compared: what suggests now stays


def retrainer(session: ReviewSession, opts: TrainOptions) -> Callable[[WidgetBar], Retrained]:
    """Train the next proposer on every decision logged so far (``opts``) and let it take over only when it beats
    what suggests now (the current proposer, or the starting centred crop) on the same held-out pictures, at least
    MIN_COMPARE of them; the message says what happened in one sentence."""

    def retrain(bar: WidgetBar) -> Retrained:
        result = run_train(replace(opts, bar=bar), log=lambda _m: None)
        new, current = result.proposer, session.suggester.proposer
        now = current.name if current is not None else "the starting centred crop"
        scored = [e for e in even_sample(result.test, MAX_REPORT_IMAGES) if e.positives and e.image in result.data]
        if len(scored) < MIN_COMPARE:
            return Retrained(None, f"{new.name} trained, but {plural(len(scored), 'held-out picture')} "
                                   f"{'is' if len(scored) == 1 else 'are'} too few to compare it with {now} "
                                   f"({MIN_COMPARE} needed): still suggesting with {now}")
        scores = {"new": new.meta["heldout"]["proposer"]["mean_iou"]}  # train scored it on these same pictures
        try:
            now_method = proposer_method(current) if current is not None else _starting_method(session.aspect_name)
            scores["now"] = evaluate_methods({"now": now_method}, scored, result.data)["now"].scores.mean_iou
        except Exception:  # the current proposer reads another encoder's or cue version's features
            return Retrained(new, f"{new.name} now suggests (mean IoU {scores['new']:.3f} on "
                                  f"{plural(len(scored), 'held-out picture')}): {now} cannot be scored on these "
                                  "features")
        where = f"on the same {len(scored)} held-out pictures"
        if scores["new"] > scores["now"]:
            return Retrained(new, f"{new.name} now suggests: mean IoU {scores['new']:.3f} against "
                                  f"{scores['now']:.3f} for {now} {where}")
        return Retrained(None, f"{new.name} is not better than {now} {where} (mean IoU {scores['new']:.3f} against "
                               f"{scores['now']:.3f}): still suggesting with {now}")

    return retrain


def _starting_method(aspect_name: str):
    """The starting suggester as a scored method: the largest centred crop at the reviewer's aspect lock."""
    def run(e, _data) -> list:
        return [largest_centred_box(aspect_of(aspect_name, e.width, e.height), e.width, e.height)]
    return run
