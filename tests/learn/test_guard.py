"""The guard: the learner keeps to the photographer's habit until held-out decisions show the network does better."""

from __future__ import annotations

import numpy as np
import pytest

from cropkit.bench.taste import habit as usual_3_2
from cropkit.decisions import Suggestion
from cropkit.features.cues import compute_cues
from cropkit.features.store import Features
from cropkit.geometry import denormalise, iou, normalise
from cropkit.learn.baselines import MeanBox
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


def noisy_habit_views(n: int, rng: np.random.Generator, sd: float) -> list[tuple[int, int, tuple]]:
    """Frames of varied sizes and aspects (240-480 px a side) cropped by a content-blind photographer: the HABIT box
    of each frame, each edge off by a normal error of ``sd`` of the frame."""
    out = []
    for _ in range(n):
        w, h = (int(v) for v in rng.integers(240, 481, 2))
        box = tuple(np.clip(np.array(HABIT) + rng.normal(0, sd, 4), 0, 1))
        out.append((w, h, denormalise(box, w, h)))
    return out


def no_network(train):
    return lambda e: None


def held_out_iou(habit, views) -> float:
    return float(np.mean([iou(habit.propose(w, h, None)[0].box, b) for w, h, b in views]))


def test_ten_crops_of_a_content_blind_habit_keep_to_the_mean_box():
    """Issue 23: with ten crops, a best-of-four on three folds of three held-out crops chose a habit (a usual box
    or centre crop fitted to an aspect and scale that ten noisy crops get wrong) that the mean box beats on new
    pictures. Fresh views of the same habit: the chosen guard must do as well as the mean box fitted on the same
    ten crops. Measured over these 20 seeds: mean box 0.684, the guard 0.682, worst seed -0.042 and one seed below
    -0.01 (seed 5: ten nearly square frames on which a 4:5 usual box really did better, by 1.4 standard errors);
    the best-of-four it replaces: 0.674, worst -0.063, four seeds below -0.01."""
    gaps = []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        crops = noisy_habit_views(10, rng, sd=0.08)
        examples = [Example(f"img{i:02d}.jpg", w, h, [normalise(b, w, h)]) for i, (w, h, b) in enumerate(crops)]
        fresh = noisy_habit_views(200, rng, sd=0.08)
        mean_box = MeanBox()
        mean_box.fit([t for e in examples for t in e.targets()])
        guard = choose_guard(examples, no_network)
        assert guard.blend == 0.0
        gaps.append(held_out_iou(guard.baseline(), fresh) - held_out_iou(mean_box, fresh))
    gaps = np.array(gaps)
    # a one-standard-error bar lets a habit through on ten unrepresentative frames now and then (about one draw in
    # six when there is truly no gain, fewer when the mean box is truly better): at most one seed in twenty, and a
    # mean that the mean box does not beat beyond the noise of 20 x 200 fresh views
    assert gaps.mean() >= -0.005, gaps
    assert np.sum(gaps < -0.01) <= 1 and gaps.min() >= -0.05, gaps


@pytest.mark.parametrize("n", [10, 100, 300])
def test_a_strong_usual_crop_is_still_kept_at_every_budget(n):
    """A photographer whose usual crop (3:2 at 90% of the widest fit, a little above the middle) varies a little:
    the mean box, fitted in fractions of frames of varied aspects, is clearly worse, and the usual box is kept."""
    for seed in range(3):
        rng = np.random.default_rng(seed)
        examples = []
        for i in range(n):
            w, h = (int(v) for v in rng.integers(240, 481, 2))
            x0, y0, x1, y1 = usual_3_2(w, h, (0, 0, w, h), rng)
            dx, dy = rng.normal(0, 0.02, 2) * (w, h)
            examples.append(Example(f"img{i:03d}.jpg", w, h, [normalise((x0 + dx, y0 + dy, x1 + dx, y1 + dy), w, h)]))
        guard = choose_guard(examples, lambda train: (lambda e: Suggestion((0, 0, e.width / 3, e.height / 3), 0.5)))
        assert guard.habit == "usual-box" and guard.blend == 0.0, guard.evidence
