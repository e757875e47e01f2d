"""Baselines and composition cues on generated pictures with a known subject."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from cropkit.decisions import Suggestion
from cropkit.features.cues import compute_cues
from cropkit.geometry import candidate_boxes, iou, nms_top_k
from cropkit.learn.baselines import CentreCrop, FullFrame, MeanBox, SaliencyCrop, Target, most_common_aspect
from cropkit.learn.candidates import CueTables


def subject_picture(cx: float, cy: float, w: int = 400, h: int = 300) -> Image.Image:
    img = Image.new("RGB", (w, h), (110, 120, 130))
    d = ImageDraw.Draw(img)
    r = 0.1 * min(w, h)
    d.ellipse((cx * w - r, cy * h - r, cx * w + r, cy * h + r), fill=(240, 40, 30))
    return img


def test_saliency_finds_the_subject():
    cues = compute_cues(subject_picture(0.8, 0.25))
    assert cues.saliency.sum() == pytest.approx(1.0)
    tables = CueTables(cues)
    inside = tables.saliency_inside(np.array([[0.6, 0.0, 1.0, 0.5], [0.0, 0.5, 0.4, 1.0], [0, 0, 1, 1]]))
    assert inside[0] > 0.5 > inside[1]  # the part holding the subject is 1/5 of the frame
    assert inside[2] == pytest.approx(1.0)
    assert abs(tables.peak[0] - 0.8) < 0.1 and abs(tables.peak[1] - 0.25) < 0.1
    edges = tables.border_edges(np.array([[0.7, 0.15, 0.9, 0.35], [0.05, 0.6, 0.25, 0.9]]))
    assert edges[0] > 3 * edges[1]  # a box whose border runs through the disc's outline


def test_most_common_aspect_snaps_to_standard_ratios():
    targets = [Target(400, 300, (0, 0, 160, 200)), Target(400, 300, (10, 10, 170, 211)),
               Target(400, 300, (0, 0, 300, 300))]
    assert most_common_aspect(targets) == pytest.approx(0.8)
    assert most_common_aspect([]) is None


def test_simple_baselines():
    targets = [Target(400, 300, (100, 50, 300, 250)), Target(200, 100, (0, 0, 100, 50))]
    assert FullFrame().propose(400, 300, None) == [Suggestion((0.0, 0.0, 400.0, 300.0), 1.0)]
    mean = MeanBox()
    mean.fit(targets)  # normalised means: x0 (0.25 + 0) / 2, y0 (1/6 + 0) / 2, x1 (0.75 + 0.5) / 2, y1 (5/6 + 0.5) / 2
    (top,) = mean.propose(600, 600, None)
    assert top.box == pytest.approx((75, 50, 375, 400))
    centre = CentreCrop()
    centre.fit([Target(400, 300, (0, 0, 240, 300))] * 2)  # 4:5
    (top,) = centre.propose(400, 300, None)
    assert top.box == pytest.approx((80, 0, 320, 300))
    (top,) = centre.propose(400, 300, None, aspect=1.0)
    assert top.box == pytest.approx((50, 0, 350, 300))


def test_saliency_baseline_keeps_the_subject_and_ranks_distinct_boxes():
    img = subject_picture(0.8, 0.3)
    base = SaliencyCrop()
    base.fit([Target(400, 300, (0, 0, 200, 200))])  # 1:1
    ranked = base.propose(400, 300, compute_cues(img), k=3)
    assert len(ranked) == 3 and ranked[0].score >= ranked[1].score >= ranked[2].score
    x0, y0, x1, y1 = ranked[0].box
    assert x0 <= 0.8 * 400 <= x1 and y0 <= 0.3 * 300 <= y1
    assert (x1 - x0) == pytest.approx(y1 - y0)
    assert all(iou(a.box, b.box) <= 0.7 for i, a in enumerate(ranked) for b in ranked[i + 1:])


def test_candidates_cover_the_frame_at_one_aspect():
    boxes = candidate_boxes(400, 300, 0.8)
    assert all(abs((b[2] - b[0]) / (b[3] - b[1]) - 0.8) < 1e-9 for b in boxes)
    assert all(b[0] >= 0 and b[2] <= 400 + 1e-9 and b[1] >= 0 and b[3] <= 300 + 1e-9 for b in boxes)
    assert min(b[0] for b in boxes) == 0 and max(b[2] for b in boxes) == pytest.approx(400)
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 9], [20, 20, 30, 30]], dtype=float)
    assert nms_top_k(boxes, np.array([1.0, 0.9, 0.5]), 2) == [0, 2]
    assert nms_top_k(boxes, np.array([1.0, 0.9, 0.5]), 5) == [0, 2]
