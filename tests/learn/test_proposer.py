"""The crop proposer: it learns a content-dependent taste, honours aspects, ranks, saves safely."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cropkit.decisions import CropDecision, SuggestionDecision
from cropkit.errors import CropkitError
from cropkit.features.cues import Cues, compute_cues
from cropkit.features.store import Features
from cropkit.geometry import iou, normalise
from cropkit.learn.dataset import Example, ImageData, examples_from_decisions, preferred_aspects, split_by_image
from cropkit.learn.heldout import compare_with_baselines
from cropkit.learn.proposer import CropProposer, latest_proposer
from cropkit.learn.train import fit_proposer
from tests.libgen import square_on_subject, subject_photo


@pytest.fixture(scope="module")
def taste_data():
    rng = np.random.default_rng(0)
    examples, data = [], {}
    for i in range(80):
        img, subject = subject_photo(i)
        name = f"img{i}.jpg"
        w, h = img.size
        examples.append(Example(name, w, h, [normalise(square_on_subject(w, h, subject), w, h)]))
        feats = Features(rng.standard_normal(32).astype(np.float32), rng.standard_normal((4, 4, 32)).astype(np.float32))
        data[name] = ImageData(feats, compute_cues(img))
    return examples, data


@pytest.fixture(scope="module")
def proposer(taste_data):
    examples, data = taste_data
    p = fit_proposer(examples[:60], data, steps=300)
    p.meta.update(feature_model="cropkit-tiny/random-init-seed0", pretrained="none")
    return p


def test_proposer_learns_a_content_dependent_taste_better_than_every_baseline(taste_data, proposer):
    examples, data = taste_data
    report = compare_with_baselines(proposer, examples[:60], examples[60:], data)
    ours = report.pop("proposer").scores
    assert ours.n == 20
    for name, held_out in report.items():
        assert ours.mean_iou > held_out.scores.mean_iou + 0.05, (name, ours.mean_iou, held_out.scores.mean_iou)
    assert ours.mean_iou > 0.6


def test_requested_aspect_is_honoured_and_boxes_stay_inside(taste_data, proposer):
    examples, data = taste_data
    e = examples[61]
    for aspect in (1.0, 0.8, 16 / 9, 2 / 3):
        ranked = proposer.propose(e.width, e.height, data[e.image].cues, data[e.image].features, aspect=aspect, k=3)
        assert len(ranked) == 3
        for x0, y0, x1, y1 in (s.box for s in ranked):
            assert (x1 - x0) / (y1 - y0) == pytest.approx(aspect, rel=1e-6)
            assert -1e-6 <= x0 < x1 <= e.width + 1e-6 and -1e-6 <= y0 < y1 <= e.height + 1e-6


def test_top_k_is_ranked_and_distinct(taste_data, proposer):
    examples, data = taste_data
    e = examples[62]
    ranked = proposer.propose(e.width, e.height, data[e.image].cues, data[e.image].features, k=5)
    scores = [s.score for s in ranked]
    assert scores == sorted(scores, reverse=True) and len(ranked) == 5
    assert all(0 < s < 1 for s in scores)  # each the probability that this crop is accepted
    assert all(iou(a.box, b.box) <= 0.7 for i, a in enumerate(ranked) for b in ranked[i + 1:])


def test_learned_default_aspect_is_the_photographers(taste_data, proposer):
    examples, _ = taste_data
    assert preferred_aspects(examples) == [1.0] and proposer.default_aspects() == [1.0]


def test_versions_are_never_overwritten(tmp_path, proposer):
    models = tmp_path / "models"
    models.mkdir()
    (models / "crop_proposer_v2.pth").write_bytes(b"someone else's file")
    first = proposer.save(models)
    second = proposer.save(models)
    assert (first.name, second.name) == ("crop_proposer_v3.pth", "crop_proposer_v4.pth")
    assert (models / "crop_proposer_v2.pth").read_bytes() == b"someone else's file"
    assert latest_proposer(models) == second
    assert first.stat().st_size < 10 * 1024 * 1024
    loaded = CropProposer.load(first, encoder_id="cropkit-tiny/random-init-seed0")
    assert loaded.name == "crop_proposer_v3" and loaded.meta["version"] == 3


def test_loaded_proposer_proposes_the_same_crops(tmp_path, taste_data, proposer):
    examples, data = taste_data
    loaded = CropProposer.load(proposer.save(tmp_path))
    e = examples[63]
    d = data[e.image]
    assert loaded.propose(e.width, e.height, d.cues, d.features) == proposer.propose(e.width, e.height, d.cues,
                                                                                    d.features)


def test_a_proposer_of_another_feature_model_is_refused(tmp_path, proposer):
    path = proposer.save(tmp_path)
    with pytest.raises(CropkitError, match="trained on features of 'cropkit-tiny/random-init-seed0'"):
        CropProposer.load(path, encoder_id="ViT-B-32/openai")


class _RunsCode:
    marker = None

    def __reduce__(self):
        import os

        return (os.system, (f"touch {_RunsCode.marker}",))


def test_unsafe_or_foreign_files_are_refused(tmp_path):
    _RunsCode.marker = tmp_path / "pwned"
    evil = tmp_path / "crop_proposer_v1.pth"
    torch.save({"format": "cropkit-crop-proposer", "meta": _RunsCode()}, evil)
    with pytest.raises(CropkitError, match="Only plain tensors"):
        CropProposer.load(evil)
    assert not _RunsCode.marker.exists()
    other = tmp_path / "other.pth"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(CropkitError, match="not a cropkit crop proposer"):
        CropProposer.load(other)
    with pytest.raises(CropkitError, match="no trained proposer"):
        latest_proposer(tmp_path / "empty")


def test_decisions_teach_positives_and_negatives():
    crops = [CropDecision("a.jpg", 100, 100, (0, 0, 50, 50), 1.0),
             CropDecision("a.jpg", 100, 100, (50, 50, 100, 100), 2.0)]
    sugg = [
        SuggestionDecision("b.jpg", 200, 100, (0, 0, 100, 100), (0, 0, 100, 100), "approved", "v1", 3.0),
        SuggestionDecision("c.jpg", 200, 100, (0, 0, 100, 100), (100, 0, 200, 100), "modified", "v1", 4.0),
        SuggestionDecision("d.jpg", 200, 100, (0, 0, 100, 100), None, "rejected", "v1", 5.0),
    ]
    ex = examples_from_decisions(crops, sugg)
    assert ex["a.jpg"].positives == [(0, 0, 0.5, 0.5), (0.5, 0.5, 1, 1)] and ex["a.jpg"].negatives == []
    assert ex["b.jpg"].positives == [(0, 0, 0.5, 1)] and ex["b.jpg"].negatives == []
    assert ex["c.jpg"].positives == [(0.5, 0, 1, 1)] and ex["c.jpg"].negatives == [(0, 0, 0.5, 1)]
    assert ex["d.jpg"].positives == [] and ex["d.jpg"].negatives == [(0, 0, 0.5, 1)]


def test_split_is_by_image_and_stable():
    names = [f"img{i}.jpg" for i in range(200)]
    train, test = split_by_image(names, 0.2)
    assert set(train) | set(test) == set(names) and not set(train) & set(test)
    assert 20 <= len(test) <= 60
    assert split_by_image(list(reversed(names)), 0.2)[1] == list(reversed(test))


def test_a_proposer_refuses_cues_of_another_version(tmp_path, taste_data, proposer, monkeypatch):
    assert proposer.meta["cues"] == "v2"
    path = proposer.save(tmp_path)
    examples, data = taste_data
    e, d = examples[0], data[examples[0].image]
    lite = Cues(d.cues.maps, (), "v2-nopeople")
    with pytest.raises(CropkitError, match="trained on cues v2, not v2-nopeople: it needs MediaPipe"):
        proposer.propose(e.width, e.height, lite, d.features)
    monkeypatch.setattr("cropkit.learn.proposer.cue_version", lambda: "v2-nopeople")
    with pytest.raises(CropkitError, match=r"trained on cues v2, and this installation computes cues v2-nopeople: "
                                           r"it needs MediaPipe's people cues: pip install 'cropkit\[people\]'"):
        CropProposer.load(path)
    monkeypatch.setattr("cropkit.learn.proposer.cue_version", lambda: "v3")
    with pytest.raises(CropkitError, match="computes cues v3: train again with cropkit train"):
        CropProposer.load(path)


def test_a_cue_never_seen_in_training_cannot_swamp_the_scores():
    from cropkit.learn.proposer import ProposerNet

    net = ProposerNet(3, 4)
    net.std.copy_(torch.tensor([1.0, 1.0, 1e-4]))  # the third feature never varied in training
    emb = torch.zeros(1, 4)
    seen = net(torch.tensor([[[0.1, 0.2, 6e-4]]]), emb)[0]
    unseen = net(torch.tensor([[[0.1, 0.2, 0.9]]]), emb)[0]  # 9000 standard deviations away
    assert torch.allclose(seen, unseen)


def test_the_same_decisions_give_the_same_proposer(taste_data):
    """The main fit runs beside the guard's fits; seeding keeps every run identical."""
    examples, data = taste_data
    a, b = (fit_proposer(examples[:40], data, steps=60) for _ in range(2))
    assert a.meta == b.meta
    assert all(torch.equal(x, y) for x, y in zip(a.net.state_dict().values(), b.net.state_dict().values()))
