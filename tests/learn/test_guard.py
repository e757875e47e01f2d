"""The guard: the learner keeps to the photographer's habit until held-out decisions show the network does better."""

from __future__ import annotations

import numpy as np
import pytest

from cropkit.decisions import Suggestion
from cropkit.features.cues import compute_cues
from cropkit.features.store import Features
from cropkit.geometry import denormalise, iou, normalise
from cropkit.learn.calibration import Calibration
from cropkit.learn.dataset import Example, ImageData
from cropkit.learn.guard import Guard, blend, choose_guard
from cropkit.learn.metrics import ACCEPT_IOU
from cropkit.learn.proposer import CropProposer
from cropkit.learn.train import fit_proposer
from tests.libgen import square_on_subject, subject_photo

HABIT = (0.1, 0.2, 0.7, 0.9)  # a content-blind photographer: the same box of every frame


def library(n: int, taste, seed: int = 0) -> tuple[list[Example], dict[str, ImageData]]:
    rng = np.random.default_rng(seed)
    examples, data = [], {}
    for i in range(n):
        img, subject = subject_photo(seed * 1000 + i)
        w, h = img.size
        examples.append(Example(f"img{i}.jpg", w, h, [taste(w, h, subject)]))
        feats = Features(rng.standard_normal(32).astype(np.float32), rng.standard_normal((4, 4, 32)).astype(np.float32))
        data[f"img{i}.jpg"] = ImageData(feats, compute_cues(img))
    return examples, data


def top(proposer: CropProposer, e: Example, d: ImageData):
    return proposer.propose(e.width, e.height, d.cues, d.features, k=3)[0].box


def test_where_the_mean_box_is_optimal_the_learner_returns_it():
    examples, data = library(70, lambda w, h, s: HABIT)
    proposer = fit_proposer(examples[:50], data)
    guard = proposer.guard()
    assert guard is not None and guard.habit == "mean-box"
    for e in examples[50:]:
        assert iou(top(proposer, e, data[e.image]), denormalise(HABIT, e.width, e.height)) >= 0.98


def test_where_a_planted_subject_decides_the_crop_it_moves_to_the_network():
    def taste(w, h, s):
        return normalise(square_on_subject(w, h, s), w, h)

    examples, data = library(90, taste, seed=1)
    proposer = fit_proposer(examples[:70], data)
    guard = proposer.guard()
    assert guard.blend > 0, guard.evidence
    assert guard.describe().startswith(f"moves {guard.blend:.0%} of the way from your habit")
    ours = [iou(top(proposer, e, data[e.image]), denormalise(e.positives[0], e.width, e.height)) for e in examples[70:]]
    habit = guard.baseline()
    theirs = [iou(habit.propose(e.width, e.height, None)[0].box, denormalise(e.positives[0], e.width, e.height))
              for e in examples[70:]]
    assert np.mean(ours) > np.mean(theirs) + 0.05
    # the score shown is the probability of acceptance, calibrated on held-out decisions: on new pictures it
    # matches how often the suggestion is in fact accepted (IoU >= 0.85)
    scores = [proposer.propose(e.width, e.height, data[e.image].cues, data[e.image].features, k=1)[0].score
              for e in examples[70:]]
    assert min(scores) > 0.0 and max(scores) < 1.0
    assert abs(np.mean(scores) - np.mean([v >= ACCEPT_IOU for v in ours])) < 0.2
    assert guard.calibration.n == guard.evidence["images"]


def test_thin_evidence_keeps_to_the_habit():
    examples, _ = library(5, lambda w, h, s: HABIT)
    calls = []
    guard = choose_guard(examples,
                         lambda train: calls.append(len(train)) or (lambda e: Suggestion((0, 0, 10, 10), 0.5)))
    assert guard.blend == 0.0 and not calls  # too few held-out crops to trust a network at all
    assert "5 cropped images are too few to trust a network" in guard.describe()


def test_a_blend_must_beat_the_habit_by_more_than_its_noise():
    examples, _ = library(40, lambda w, h, s: HABIT)

    def noisy_net(train):
        rng = np.random.default_rng(len(train))
        return lambda e: Suggestion(denormalise(tuple(np.clip(np.array(HABIT) + rng.normal(0, 0.02, 4), 0, 1)),
                                                e.width, e.height), 0.5)

    assert choose_guard(examples, noisy_net).blend == 0.0  # no better than the habit: not trusted


def test_calibration_follows_what_the_score_says_about_acceptance():
    rng = np.random.default_rng(4)
    raw = rng.uniform(0.01, 0.5, 400)
    accepted = list(rng.uniform(size=400) < raw * 1.6)  # a higher network score: more often accepted
    cal = Calibration.fit(accepted, list(raw))
    low, high = cal.probability(0.05), cal.probability(0.45)
    assert low < 0.2 < 0.6 < high
    assert np.mean([cal.probability(r) for r in raw]) == pytest.approx(np.mean(accepted), abs=0.02)
    blind = Calibration.fit(accepted, list(rng.uniform(0.01, 0.5, 400)))  # a score that says nothing
    assert abs(blind.probability(0.05) - blind.probability(0.45)) < 0.1
    contrary = Calibration.fit(accepted, list(0.51 - raw))  # surer, less often accepted: never shown falling
    assert contrary.slope == 0 and contrary.probability(0.45) == contrary.probability(0.05)
    thin = Calibration.fit([True, False, True])  # too few: the smoothed acceptance rate, whatever the score
    assert thin.probability(0.9) == thin.probability(0.01) == pytest.approx(2.5 / 4)
    assert Calibration.from_meta(cal.to_meta()) == cal
    for bad in ({"intercept": "x"}, {**cal.to_meta(), "slope": float("nan")}, {**cal.to_meta(), "accepted": 999}):
        with pytest.raises(ValueError):
            Calibration.from_meta(bad)


def test_guard_round_trips_and_refuses_forged_metadata():
    guard = Guard("centre-crop", {"aspect": 0.8, "scale": 0.9}, 0.5, {"images": 12}, Calibration(0.1, 0.5, -2, 12, 7))
    assert Guard.from_meta(guard.to_meta()) == guard
    assert blend((0, 0, 10, 10), (10, 10, 20, 20), 0.5) == (5, 5, 15, 15)
    for bad in ({"habit": "os.system", "state": {}, "blend": 0.5}, {"habit": "mean-box", "state": {}, "blend": 2},
                {"habit": "centre-crop", "state": {"scale": float("nan")}, "blend": 0.0}, "mean-box",
                {"habit": "mean-box", "state": {"mean": [0.5]}, "blend": 0.0},  # forged: not a box
                {"habit": "mean-box", "state": {"mean": [0.6, 0.2, 0.1, 0.9]}, "blend": 0.0},  # x1 < x0
                {"habit": "centre-crop", "state": {"scale": 0.0}, "blend": 0.0}):  # an empty crop
        with pytest.raises(ValueError):
            Guard.from_meta(bad)


def test_near_duplicates_are_held_out_together_so_memorising_them_earns_no_trust():
    """Bursts (IMG_0042a, IMG_0042b, ...) share their crop; a network that recognises a sibling it was trained on
    would look perfect under folds by single image and know nothing about a new photo."""
    rng = np.random.default_rng(3)
    examples = []
    for burst in range(30):
        x0, y0 = rng.uniform(0, 0.4, 2)
        crop = (x0, y0, x0 + 0.5, y0 + 0.5)
        examples += [Example(f"IMG_{burst:04d}{s}.jpg", 600, 400, [crop]) for s in "abcd"]

    def memoriser(train):  # recalls a sibling's crop; a photo it has not seen gets a guess as good as any
        known = {e.image[:8]: e.positives[0] for e in train}

        def predict(e):
            x0, y0 = np.random.default_rng(sum(e.image.encode())).uniform(0, 0.4, 2)
            return Suggestion(denormalise(known.get(e.image[:8], (x0, y0, x0 + 0.5, y0 + 0.5)), e.width, e.height), 0.5)
        return predict

    guard = choose_guard(examples, memoriser)
    assert guard.blend == 0.0, guard.evidence
