"""Crop metrics against hand-computed values."""

from __future__ import annotations

import pytest

from cropkit.learn.metrics import ACCEPT_IOU, score_proposals


def test_scores_hand_computed():
    proposals = [
        [(0, 0, 100, 100)],  # exact: IoU 1, BDE 0
        [(0, 0, 50, 100), (50, 0, 100, 100)],  # top-1 IoU 0.5, second exact -> best-of-K 1
    ]
    truths = [[(0, 0, 100, 100)], [(50, 0, 100, 100), (0, 0, 40, 100)]]  # image 2 has two crops
    s = score_proposals(proposals, truths, [(100, 100), (100, 100)])
    # image 2's top-1 best matches (0, 0, 40, 100): IoU 40/50 = 0.8; BDE = (0 + 10/100 + 0 + 0) / 4
    assert s.n == 2
    assert s.mean_iou == pytest.approx((1.0 + 0.8) / 2)
    assert s.mean_bde == pytest.approx((0 + 0.025) / 2)
    assert s.acceptance_rate == pytest.approx(0.5)  # 0.8 < 0.85
    assert s.best_of_k_iou == pytest.approx(1.0)


def test_acceptance_threshold_is_inclusive():
    box = (0, 0, 100, 100)
    just = (0, 0, 100, 100 * ACCEPT_IOU)
    assert score_proposals([[just]], [[box]], [(100, 100)]).acceptance_rate == 1.0


def test_mismatched_inputs_and_empty():
    with pytest.raises(ValueError):
        score_proposals([[(0, 0, 1, 1)]], [], [])
    assert score_proposals([], [], []).n == 0
