"""Fitting the proposer network: candidates sampled per image with their features and targets, then training.

Positives pull probability onto candidates that overlap them and teach refinements towards them; negatives push
probability away from candidates that overlap them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from cropkit.geometry import STANDARD_ASPECTS, denormalise, iou_matrix, nearest_standard_aspect
from cropkit.learn.candidates import ImageContext, candidate_features, candidate_set
from cropkit.learn.dataset import Example, ImageData
from cropkit.learn.guard import LARGE_LIBRARY
from cropkit.learn.proposer import ProposerNet
from cropkit.learn.threads import on_one_thread

CANDIDATES_PER_IMAGE = 96
BATCH_IMAGES = 32
TEMPERATURE = 0.08


@dataclass
class TrainingArrays:
    feats: torch.Tensor  # (N, M, F)
    emb: torch.Tensor  # (N, D)
    target: torch.Tensor  # (N, M) distribution to match
    negative: torch.Tensor  # (N, M) 1 where a candidate overlaps a rejected or replaced box
    deltas: torch.Tensor  # (N, M, 4) refinement towards the best-matching positive
    regress: torch.Tensor  # (N, M) 1 where that refinement is taught

    def rows(self, index: list[int]) -> TrainingArrays:
        """The arrays of some images only (by their position in the examples they were built from)."""
        i = torch.tensor(index, dtype=torch.long)
        return TrainingArrays(self.feats[i], self.emb[i], self.target[i], self.negative[i], self.deltas[i],
                              self.regress[i])


def steps_for(n_images: int, cross_validation: bool = False) -> int:
    """Training effort that grows with the decisions: 6 steps per image, at least 150 and at most 1500 (a few
    passes over thousands of images are plenty). A cross-validation network of a large library gets 400: its
    held-out images are plenty, and an under-trained one only makes the guard more careful."""
    if cross_validation and n_images > LARGE_LIBRARY:
        return 400
    return min(1500, max(150, 6 * n_images))


def training_arrays(examples: list[Example], data: dict[str, ImageData], aspects: list[float],
                    seed: int = 0) -> TrainingArrays:
    """Sample candidates per image and compute their features and targets."""
    rng = np.random.default_rng(seed)
    m = CANDIDATES_PER_IMAGE
    rows = []
    for e in examples:
        d = data[e.image]
        own = [STANDARD_ASPECTS[nearest_standard_aspect(denormalise(b, e.width, e.height))] for b in e.positives]
        boxes = candidate_set(e.width, e.height, [*aspects, *own])
        pos = np.array(e.positives, dtype=np.float64).reshape(-1, 4)
        neg = np.array(e.negatives, dtype=np.float64).reshape(-1, 4)
        iou_pos_all = iou_matrix(boxes, pos)
        iou_pos = iou_pos_all.max(axis=1) if len(pos) else np.zeros(len(boxes))
        iou_neg = iou_matrix(boxes, neg).max(axis=1) if len(neg) else np.zeros(len(boxes))
        chosen = list(np.argsort(-iou_pos)[: m // 4]) if len(pos) else []
        chosen += [i for i in np.argsort(-iou_neg)[: m // 8] if len(neg) and i not in chosen]
        rest = np.setdiff1d(np.arange(len(boxes)), chosen)
        chosen += list(rng.choice(rest, size=min(m - len(chosen), len(rest)), replace=False))
        idx = np.array(chosen[:m])
        if len(idx) < m:
            idx = np.concatenate([idx, rng.choice(idx, m - len(idx))])
        cand = boxes[idx]
        if len(pos):
            target = np.exp((iou_pos[idx] - iou_pos[idx].max()) / TEMPERATURE)
            best = pos[iou_pos_all[idx].argmax(axis=1)]
        else:
            target = (iou_neg[idx] < 0.3).astype(np.float64) + 1e-6
            best = cand
        wh = np.concatenate([cand[:, 2:] - cand[:, :2]] * 2, axis=1)
        rows.append((
            candidate_features(ImageContext(e.width, e.height, d.cues, d.features), cand),
            d.features.global_emb,
            target / target.sum(),
            (iou_neg[idx] > 0.6).astype(np.float32),
            (best - cand) / wh,
            (iou_pos[idx] > 0.4).astype(np.float32),
        ))
    cols = list(zip(*rows))
    return TrainingArrays(*(torch.from_numpy(np.stack(c).astype(np.float32)) for c in cols))


def fit_network(arrays: TrainingArrays, steps: int = 600, batch: int = BATCH_IMAGES, seed: int = 0,
                progress=None) -> ProposerNet:
    """Train a fresh network on the arrays: match the target distribution, avoid negatives, learn refinements.
    On one thread: the network is so small that more threads only add synchronisation (docs/benchmarks.md)."""
    with on_one_thread():
        return _fit(arrays, steps, batch, seed, progress)


_SEEDING = threading.Lock()  # initial weights come from torch's global generator: one network at a time


def _fit(arrays: TrainingArrays, steps: int, batch: int, seed: int, progress) -> ProposerNet:
    n, _, nf = arrays.feats.shape
    with _SEEDING:  # the same seed gives the same network whatever else trains beside it
        torch.manual_seed(seed)
        net = ProposerNet(nf, arrays.emb.shape[1])
    flat = arrays.feats.reshape(-1, nf)
    net.mean.copy_(flat.mean(0))
    net.std.copy_(flat.std(0).clamp_min(1e-4))
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-4)
    # a warm-up of 10% (at least 1.5 steps: torch's OneCycleLR divides by zero when it rounds to one step)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps,
                                                pct_start=min(0.9, max(0.1, 1.5 / steps)))
    gen = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(steps):
        i = torch.randint(0, n, (min(batch, n),), generator=gen)
        scores, deltas = net(arrays.feats[i], arrays.emb[i])
        logp = F.log_softmax(scores, dim=1)
        ce = -(arrays.target[i] * logp).sum(1).mean()
        avoid = (logp.exp() * arrays.negative[i]).sum(1).mean()
        mask = arrays.regress[i].bool()
        reg = F.smooth_l1_loss(deltas[mask], arrays.deltas[i][mask].clamp(-0.25, 0.25), beta=0.02) \
            if mask.any() else scores.sum() * 0
        loss = ce + avoid + 4.0 * reg
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if progress is not None:
            progress.update(1)
    return net.eval()
