"""The peers a proposer is scored beside on the taste benchmark, fitted on the same decisions: cropkit's baselines
(full frame, centre crop at the learned aspect and scale, usual box, mean box, saliency), smartcrop, and the subject
map's box at the learned aspect and scale; and the ceilings of the cues: each taste's rule applied to a cue's
subject box instead of the judged one."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from cropkit.bench.tastes import View, decisions
from cropkit.decisions import CropDecision
from cropkit.features.subject import SubjectMap, SubjectStore
from cropkit.geometry import Box, clamp_box, denormalise, largest_centred_box
from cropkit.layout import Layout
from cropkit.learn.baselines import Target, centred_box, fitted_shape


def peer_boxes(train: list[CropDecision], test: list[View], cues: dict[str, object]) -> dict[str, list[list[Box]]]:
    """Every peer fitted on the training crops, its top-3 boxes per test view."""
    from cropkit.learn.baselines import BASELINES, Target, fitted_shape

    targets = [Target(d.width, d.height, d.crop) for d in train]
    out = {}
    for cls in BASELINES:
        peer = cls()
        peer.fit(targets)
        out[peer.name] = [[s.box for s in peer.propose(v.width, v.height, cues.get(v.path.name), k=3)]
                          for v in test]
    smart = smartcrop_boxes(test, fitted_shape(targets))
    if smart is not None:
        out["smartcrop"] = smart
    return out


def smartcrop_boxes(test: list[View], shape: tuple[float | None, float]) -> list[list[Box]] | None:
    """smartcrop (PyPI) at the learned aspect and scale; None when it is not installed."""
    try:
        import smartcrop
    except ImportError:
        return None
    aspect, scale = shape
    cropper = smartcrop.SmartCrop()
    out = []
    for v in test:
        full = largest_centred_box(aspect, v.width, v.height)
        w, h = max(1, int((full[2] - full[0]) * scale)), max(1, int((full[3] - full[1]) * scale))
        with Image.open(v.path) as img:
            top = cropper.crop(img.convert("RGB"), w, h)["top_crop"]
        x, y = float(top["x"]), float(top["y"])
        out.append([(x, y, x + top["width"], y + top["height"])])
    return out


def stored_hashes(layout: Layout, views: list[View]) -> dict[str, str]:
    """The content hash of each view extracted whole (by file name), from the root's processed-files log."""
    wanted, hashes = {v.path.name for v in views}, {}
    for line in layout.processed_files.read_text().splitlines():
        obj = json.loads(line)
        if obj.get("status") == "ok" and Path(obj["path"]).name in wanted:
            hashes[Path(obj["path"]).name] = obj["hash"]
    return hashes


def load_cues(root: Path, views: list[View]) -> dict[str, object]:
    """The stored composition cues of each view (by file name), for the saliency peer."""
    from cropkit.features.cues import CueStore

    layout = Layout.from_args(root)
    store = CueStore(layout.cues)
    return {name: store.load(h) for name, h in stored_hashes(layout, views).items() if store.is_whole(h)}


def load_subject_maps(root: Path, views: list[View], subject_id: str) -> dict[str, SubjectMap]:
    """The subject map ``cropkit extract --subject-model`` stored for each view (by file name); every view must
    have one (an image where the model found nothing has an empty map, "none")."""
    layout = Layout.from_args(root)
    store, hashes = SubjectStore(layout.cues, subject_id), stored_hashes(layout, views)
    missing = [v.path.name for v in views if v.path.name not in hashes or not store.has_valid(hashes[v.path.name])]
    if missing:
        raise RuntimeError(f"{len(missing)} views have no subject map of {subject_id} (first: {missing[0]})")
    return {name: store.load(h) for name, h in hashes.items()}


def mass_box(found: SubjectMap, width: int, height: int) -> Box | None:
    """The box of a map's mass in pixels of a ``width`` x ``height`` image: its centroid +- sqrt(3) standard
    deviations per axis (each cell's mass spread evenly over the cell), which is exactly the box of a uniform
    rectangle; None when the map found no subject."""
    if not found.found:
        return None
    mass = found.mass / found.mass.sum()
    edges = []
    for axis, cells in ((0, mass.shape[1]), (1, mass.shape[0])):
        share = mass.sum(axis)
        centres = (np.arange(cells) + 0.5) / cells
        mean = float(share @ centres)
        spread = math.sqrt(float(share @ (centres - mean) ** 2) + 1 / (12 * cells**2))
        edges.append((max(0.0, mean - math.sqrt(3) * spread), min(1.0, mean + math.sqrt(3) * spread)))
    (x0, x1), (y0, y1) = edges
    return denormalise((x0, y0, x1, y1), width, height)


def subject_box_peer(train: list[CropDecision], test: list[View], maps: dict[str, SubjectMap]) -> list[list[Box]]:
    """The centre-crop peer's box (the learned aspect and scale) moved onto the centre of the subject map's box,
    kept inside the frame; the centre crop itself where the map found no subject."""
    aspect, scale = fitted_shape([Target(d.width, d.height, d.crop) for d in train])
    out = []
    for v in test:
        x0, y0, x1, y1 = centred_box(aspect, scale, v.width, v.height)
        subject = mass_box(maps[v.path.name], v.width, v.height)
        if subject is not None:
            dx, dy = (subject[0] + subject[2] - x0 - x1) / 2, (subject[1] + subject[3] - y0 - y1) / 2
            x0, y0, x1, y1 = clamp_box((x0 + dx, y0 + dy, x1 + dx, y1 + dy), v.width, v.height)
        out.append([(x0, y0, x1, y1)])
    return out


def rule_on_cue(taste: str, test: list[View], cue_boxes: list[Box | None], fallback: list[Box], root: Path,
                seed: int) -> list[list[Box]]:
    """A ceiling: the taste's own rule applied to a cue's subject box instead of the judged one, with the same
    random draws as the held-out truths (``seed``), so only the cue's error separates the two; ``fallback`` where
    the cue found no subject."""
    seen = [replace(v, subject=cue) if cue is not None else v for v, cue in zip(test, cue_boxes, strict=True)]
    ruled = decisions(taste, seen, root, seed=seed)
    return [[d.crop] if cue is not None else [other]
            for d, cue, other in zip(ruled, cue_boxes, fallback, strict=True)]
