"""The demo's simulated photographer: deterministic crop tastes on variants of the sample library's photographs,
the demo library it crops, and its simulated review of suggestions.

Variants (random sub-frames and mirrors) of real photographs stand in for a photo library; each taste crops them
by a fixed rule around the peak of a saliency map. That subject comes from cropkit's own cues, so these tastes
make a demo and a plumbing check (``benchmark-taste --sanity-check``), never evidence of taste learning: that is
``cropkit.bench.taste`` on photos whose subjects a person judged.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from cropkit.decisions import CropDecision
from cropkit.errors import CropkitError
from cropkit.features.cues import spectral_residual_saliency
from cropkit.fileio import atomic_write_bytes
from cropkit.geometry import Box, clamp_box, largest_centred_box
from cropkit.layout import GENERATED_MARK, Layout, claim_generated_root


def subject_point(img: Image.Image) -> tuple[float, float]:
    """Where a photographer would see the subject: the peak of a fine, smoothed saliency map (normalised)."""
    gray = np.asarray(img.convert("L").resize((96, 96), Image.Resampling.BILINEAR), np.float64) / 255.0
    sal = spectral_residual_saliency(gray)
    k = np.ones(9) / 9
    sal = np.apply_along_axis(lambda r: np.convolve(r, k, "same"), 0, sal)
    sal = np.apply_along_axis(lambda r: np.convolve(r, k, "same"), 1, sal)
    y, x = np.unravel_index(np.argmax(sal), sal.shape)
    return (x + 0.5) / 96, (y + 0.5) / 96


def _place(w: float, h: float, fx: float, fy: float, sx: float, sy: float, width: int, height: int) -> Box:
    """A w x h box with the subject at fraction (fx, fy) of it, kept inside the image."""
    x0, y0 = sx * width - fx * w, sy * height - fy * h
    return clamp_box((x0, y0, x0 + w, y0 + h), width, height)


def thirds_4x5(width: int, height: int, subject: tuple[float, float]) -> Box:
    """Portrait 4:5, subject on the nearer vertical thirds line and on the upper third."""
    full = largest_centred_box(0.8, width, height)
    w, h = 0.85 * (full[2] - full[0]), 0.85 * (full[3] - full[1])
    sx, sy = subject
    return _place(w, h, 1 / 3 if sx < 0.5 else 2 / 3, 1 / 3, sx, sy, width, height)


def tight_square(width: int, height: int, subject: tuple[float, float]) -> Box:
    """A square of 60% of the short side, centred on the subject."""
    side = 0.6 * min(width, height)
    return _place(side, side, 0.5, 0.5, *subject, width, height)


def wide_3x2(width: int, height: int, subject: tuple[float, float]) -> Box:
    """Landscape 3:2 at 90% of the widest fit, subject centred left-right and a little above the middle."""
    full = largest_centred_box(1.5, width, height)
    w, h = 0.9 * (full[2] - full[0]), 0.9 * (full[3] - full[1])
    return _place(w, h, 0.5, 0.45, *subject, width, height)


TASTES: dict[str, Callable[[int, int, tuple[float, float]], Box]] = {
    "thirds-4:5": thirds_4x5, "tight-square": tight_square, "wide-3:2": wide_3x2}


DEMO_BUILT = "demo.json"  # in data/ai_data of a demo root, written once the demo is complete


def make_variants(photos: list[Path], dest: Path, n: int, seed: int = 0, long_side: int = 768) -> list[Path]:
    """``n`` distinct pictures cut from real photos: random sub-frames (55-100% per side) and mirrors."""
    rng = np.random.default_rng(seed)
    dest.mkdir(parents=True, exist_ok=True)
    sources = [ImageOps.exif_transpose(Image.open(p)).convert("RGB") for p in photos]
    out = []
    for i in range(n):
        src = sources[i % len(sources)]
        w, h = src.size
        fw, fh = rng.uniform(0.55, 1.0, 2)
        x0, y0 = rng.uniform(0, 1 - fw) * w, rng.uniform(0, 1 - fh) * h
        img = src.crop((int(x0), int(y0), int(x0 + fw * w), int(y0 + fh * h)))
        if rng.random() < 0.5:
            img = ImageOps.mirror(img)
        img.thumbnail((long_side, long_side), Image.Resampling.LANCZOS)
        path = dest / f"variant_{i:04d}.jpg"
        if not path.exists():  # whole or not at all, never over a file: a killed run leaves no half picture
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=90)
            atomic_write_bytes(path, buf.getvalue(), replace=False)
        out.append(path)
    return out


def decisions_for(taste: str, root: Path, paths: list[Path]) -> list[CropDecision]:
    """What the simulated photographer crops, one decision per picture."""
    rule = TASTES[taste]
    out = []
    for i, p in enumerate(paths):
        with Image.open(p) as img:
            img.load()
            box = rule(img.width, img.height, subject_point(img))
            out.append(CropDecision(p.relative_to(root).as_posix(), img.width, img.height, box, float(i)))
    return out


def simulated_review(root: Path, taste: str, images: list[Path], suggester) -> dict[str, int]:
    """The simulated photographer reviews the proposer's suggestion for each image, as in the review widget:
    approved when it would accept it (IoU >= 0.85 to its own crop), rejected when it is far off (IoU < 0.3),
    modified to its own crop otherwise. Every decision is appended to suggestions.jsonl, of a demo root only."""
    from cropkit.decisions import SuggestionDecision, append_decision
    from cropkit.geometry import iou
    from cropkit.learn.metrics import ACCEPT_IOU

    if not (Path(root) / GENERATED_MARK).is_file():
        raise CropkitError(f"{root} was not generated by cropkit: simulated decisions are only logged in a demo root")

    counts = {"approved": 0, "modified": 0, "rejected": 0}
    rule = TASTES[taste]
    for path in images:
        result = suggester.suggest(path, k=1)
        with Image.open(path) as img:
            img.load()
            wanted = rule(img.width, img.height, subject_point(img))
        suggested = tuple(round(v, 1) for v in result.suggestions[0].box)
        overlap = iou(suggested, wanted)
        decision = "approved" if overlap >= ACCEPT_IOU else "rejected" if overlap < 0.3 else "modified"
        final = suggested if decision == "approved" else None if decision == "rejected" else wanted
        append_decision(root / "data" / "ai_data" / "logs", SuggestionDecision(
            result.image, result.width, result.height, suggested, final, decision, result.proposer,
            time.time()))
        counts[decision] += 1
    return counts


def build_demo_root(root: Path, n_crops: int = 100, n_review: int = 30, taste: str = "thirds-4:5",
                    arch: str | None = None, weights: str | None = None,
                    log: Callable[[str], None] = print) -> bool:
    """A demo library whose simulated photographer has cropped ``n_crops`` pictures, then reviewed two rounds of
    ``n_review`` suggestions, each from a proposer retrained on everything logged before.

    Builds only where ``layout.claim_generated_root`` allows (a new or empty folder, one generated before, or one
    under this checkout's data/; CropkitError otherwise); returns False when the demo is built there already.
    ``arch``/``weights`` None: as for ``cropkit extract``.
    """
    from cropkit.decisions import append_decision
    from cropkit.demo.samples import build_sample_library
    from cropkit.extract.options import ExtractOptions
    from cropkit.extract.pipeline import run_extract
    from cropkit.learn.suggest import Suggester
    from cropkit.learn.train import TrainOptions, run_train

    root = claim_generated_root(root, "demo")
    layout = Layout(root, root / "data" / "training_data")
    if (layout.ai_data / DEMO_BUILT).is_file():
        return False
    if layout.logs.is_dir() and any(layout.logs.iterdir()):
        raise CropkitError(f"the demo in {root} is incomplete (an earlier build stopped, or an older cropkit made "
                           f"it): delete {root} and run again")
    n_pictures = n_crops + 2 * n_review
    log(f"building the demo library in {root}: {n_pictures} pictures cut from the sample photos")
    photos, _ = build_sample_library(root / "data" / "sample_library")
    paths = make_variants(photos, layout.images / "variants", n_pictures)
    crops, first, second = paths[:n_crops], paths[n_crops:n_crops + n_review], paths[n_crops + n_review:]
    for decision in decisions_for(taste, root, crops):
        append_decision(layout.logs, decision)
    quiet = dict(arch=arch, weights=weights, progress=False)
    run_extract(ExtractOptions(root=root, **quiet), log=lambda _m: None)
    for batch in (first, second):
        trained = run_train(TrainOptions(root=root, **quiet), log=lambda _m: None)
        counts = simulated_review(root, taste, batch, Suggester(layout, trained.proposer))
        log(f"simulated review of {len(batch)} suggestions of {trained.proposer.name}: {counts}")
    atomic_write_bytes(layout.ai_data / DEMO_BUILT, json.dumps({"built": time.time()}).encode())
    return True
