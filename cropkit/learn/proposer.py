"""The crop proposer: a small network that scores candidate crops and refines the best ones.

Saved as ``crop_proposer_vN.pth``: plain tensors and metadata only, loaded with ``weights_only=True``.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cropkit.decisions import Suggestion
from cropkit.errors import CropkitError
from cropkit.features.cues import Cues, cue_version
from cropkit.features.encoder_id import load_failure_reason
from cropkit.features.people import INSTALL_HINT
from cropkit.features.store import Features
from cropkit.features.subject import SUBJECT_VERSION, subject_version_of
from cropkit.fileio import atomic_write_bytes, read_source_bytes
from cropkit.geometry import MAX_ASPECT, check_aspect, fit_boxes_to_aspect, iou, is_finite_number, nms_top_k
from cropkit.learn.candidates import (
    FEATURE_NAMES,
    SUBJECT_FEATURE_NAMES,
    ImageContext,
    candidate_features,
    candidate_set,
    feature_names,
)
from cropkit.learn.guard import Guard

FORMAT = "cropkit-crop-proposer"
DELTA_SCALE = 0.25  # refinements are at most about a quarter of the candidate's size
CLIP_SD = 6.0  # inputs further than this many standard deviations from training are held there: a cue that
# never varied in training (no face in any picture) must not swamp the score when it appears
MAX_BYTES = 10 * 1024 * 1024
_VERSION_RE = re.compile(r"^crop_proposer_v(\d+)\.pth$")


class ProposerNet(nn.Module):
    """Scores (and refines) every candidate of an image from its features and the image's CLIP embedding."""

    def __init__(self, n_features: int, emb_dim: int, hidden: int = 96, emb_out: int = 8):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        self.emb = nn.Linear(emb_dim, emb_out)
        self.body = nn.Sequential(
            nn.Linear(n_features + emb_out, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU())
        self.head = nn.Linear(hidden, 5)

    def forward(self, feats: torch.Tensor, emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """feats (B, C, F), emb (B, D) -> scores (B, C) and box deltas (B, C, 4) in candidate-size units."""
        x = ((feats - self.mean) / self.std).clamp(-CLIP_SD, CLIP_SD)
        e = self.emb(emb)[:, None, :].expand(-1, feats.shape[1], -1)
        out = self.head(self.body(torch.cat([x, e], dim=-1)))
        return out[..., 0], torch.tanh(out[..., 1:]) * DELTA_SCALE


def refine(boxes: np.ndarray, deltas: np.ndarray) -> np.ndarray:
    """Apply deltas (in units of each box's width and height) and keep boxes inside the frame and non-empty."""
    wh = np.concatenate([boxes[:, 2:] - boxes[:, :2]] * 2, axis=1)
    out = np.clip(boxes + deltas * wh, 0.0, 1.0)
    out[:, 2] = np.maximum(out[:, 2], out[:, 0] + 1e-3)
    out[:, 3] = np.maximum(out[:, 3], out[:, 1] + 1e-3)
    return np.clip(out, 0.0, 1.0)


@dataclass
class CropProposer:
    """A trained proposer with the metadata needed to check and explain it."""

    net: ProposerNet
    meta: dict

    @property
    def name(self) -> str:
        return self.meta.get("name", "crop_proposer")

    @property
    def encoder_id(self) -> str:
        """The encoder whose features it was trained on ("feature_model" in its metadata)."""
        return self.meta["feature_model"]

    @property
    def subject_id(self) -> str | None:
        """The subject model whose maps it reads ("subject" in its metadata); None when it reads none."""
        return self.meta.get("subject")

    def default_aspects(self) -> list[float | None]:
        aspects = [a if a > 0 else None for a in self.meta.get("aspects", [])]
        return aspects or [None]

    @torch.inference_mode()
    def propose(self, width: int, height: int, cues: Cues, features: Features, aspect: float | None = None,
                k: int = 3) -> list[Suggestion]:
        """Up to ``k`` ranked crops in pixels with scores (the probability the model gives each); never a
        non-finite box."""
        if features.global_emb.shape[-1] != self.net.emb.in_features:
            raise CropkitError(
                f"{self.name} was trained on {self.net.emb.in_features}-dimensional features of "
                f"{self.meta.get('feature_model')}, but these features have {features.global_emb.shape[-1]}: "
                "use the encoder it was trained with, or retrain with cropkit train on these features")
        if "cues" in self.meta and cues.version != self.meta["cues"]:
            raise CropkitError(f"{self.name} was trained on cues {self.meta['cues']}, not {cues.version}: "
                               + _cue_advice(self.meta["cues"], cues.version))
        if self.subject_id is None:
            cues = replace(cues, subject=None, subject_id=None)  # trained without a subject model: not read
        elif cues.subject_id != self.subject_id or cues.subject is None:
            raise CropkitError(f"{self.name} was trained with subject maps of {self.subject_id}, and this image has "
                               + (f"maps of {cues.subject_id}" if cues.subject_id else "none")
                               + ": " + subject_advice(self.subject_id))
        aspects = [check_aspect(aspect)] if aspect else self.default_aspects()
        boxes = candidate_set(width, height, aspects)
        ctx = ImageContext(width, height, cues, features)
        feats = torch.from_numpy(candidate_features(ctx, boxes))[None]
        emb = torch.from_numpy(features.global_emb.astype(np.float32))[None]
        scores, deltas = self.net(feats, emb)
        probs = torch.softmax(scores[0], dim=0).numpy()
        px = refine(boxes, deltas[0].numpy().astype(np.float64)) * np.array([width, height, width, height])
        if aspect:
            px = fit_boxes_to_aspect(px, aspect, width, height)
        if not (np.isfinite(px).all() and np.isfinite(probs).all()):
            raise CropkitError(f"{self.name} gave no usable crop for this {width}x{height} image (its output is "
                               "not finite): check the image's features, or retrain with cropkit train")
        ranked = [Suggestion(tuple(float(v) for v in px[i]), float(probs[i])) for i in nms_top_k(px, probs, k)]
        guard = self.guard()
        if guard is None:
            return ranked
        if guard.calibration is not None:  # the probability of acceptance, not the network's raw score
            ranked = [Suggestion(s.box, guard.calibration.probability(s.score)) for s in ranked]
        first = Suggestion(guard.apply(ranked[0].box, width, height, aspect), ranked[0].score)
        return [first, *[s for s in ranked if iou(s.box, first.box) < 0.7]][:k]

    def guard(self) -> Guard | None:
        """The habit this proposer keeps to (None for proposers trained before guards existed)."""
        return Guard.from_meta(self.meta["guard"]) if "guard" in self.meta else None

    def save(self, models_dir: Path) -> Path:
        """Write as the next free ``crop_proposer_vN.pth``; never overwrites an existing version."""
        models_dir.mkdir(parents=True, exist_ok=True)
        n = next_version(models_dir)
        while True:
            path = models_dir / f"crop_proposer_v{n}.pth"
            self.meta.update(name=path.stem, version=n)
            meta = json.loads(json.dumps(self.meta, default=float))  # plain types only: weights_only loads it
            payload = {"format": FORMAT, "config": self.net_config(), "meta": meta,
                       "state_dict": self.net.state_dict()}
            data = _serialise(payload)
            if len(data) > MAX_BYTES:
                raise CropkitError(f"proposer would be {len(data):,} bytes, over the 10 MB limit")
            if atomic_write_bytes(path, data, replace=False):
                return path
            n += 1  # another process took this version meanwhile

    def net_config(self) -> dict:
        return {"n_features": int(self.net.mean.shape[0]), "emb_dim": self.net.emb.in_features,
                "hidden": self.net.head.in_features, "emb_out": self.net.emb.out_features,
                "feature_names": list(feature_names(self.subject_id is not None))}

    @classmethod
    def load(cls, path: Path, encoder_id: str | None = None) -> CropProposer:
        """Load safely: a regular file under 10 MB, plain tensors only, a config and weights that are checked
        before anything is built; refuse a proposer trained on another encoder's features."""
        path = Path(path)
        retrain = "Retrain with cropkit train, or pass --proposer with another proposer file."
        try:
            data, _ = read_source_bytes(path, max_bytes=MAX_BYTES)  # non-blocking: a pipe is refused, not waited on
        except FileNotFoundError:
            raise CropkitError(f"proposer {path} not found; run cropkit train or pass --proposer PATH") from None
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise CropkitError(f"cannot read proposer {path}: {reason}. {retrain}") from None
        try:
            payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as exc:
            raise CropkitError(f"cannot load proposer {path}: {load_failure_reason(exc)}. Only plain tensors and "
                               f"metadata are loaded. {retrain}") from None
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise CropkitError(f"{path} is not a cropkit crop proposer. {retrain}")
        try:
            cfg, meta, state = _checked_payload(payload)
        except CueVersionError as exc:  # says what to do itself
            raise CropkitError(f"{path.name} {exc}") from None
        except ValueError as exc:
            raise CropkitError(f"{path} is not a usable cropkit crop proposer: {exc}. {retrain}") from None
        if encoder_id is not None and meta["feature_model"] != encoder_id:
            raise CropkitError(
                f"{path.name} was trained on features of {meta['feature_model']!r}, not {encoder_id!r}. "
                f"Use --arch/--weights matching it, or retrain with cropkit train on these features.")
        net = ProposerNet(cfg["n_features"], cfg["emb_dim"], cfg["hidden"], cfg["emb_out"])
        net.load_state_dict(state)
        return cls(net.eval(), meta)


_CONFIG_KEYS = ("n_features", "emb_dim", "hidden", "emb_out")


def _parameter_count(n_features: int, emb_dim: int, hidden: int, emb_out: int) -> int:
    """The numbers a ProposerNet of this config holds (buffers included), computed without building it."""
    return (2 * n_features + (emb_dim + 1) * emb_out + (n_features + emb_out + 1) * hidden
            + (hidden + 1) * hidden + (hidden + 1) * 5)


def _checked_payload(payload: dict) -> tuple[dict, dict, dict[str, torch.Tensor]]:
    """Config, metadata and weights of a loaded proposer file, each checked; raises ValueError saying what is
    wrong. The config is checked before any network is built, so a forged one cannot make it allocate much."""
    cfg, meta, state = payload.get("config"), payload.get("meta"), payload.get("state_dict")
    for key, value in (("config", cfg), ("meta", meta), ("state_dict", state)):
        if not isinstance(value, dict) or not value:
            raise ValueError(f"its {key!r} is missing or not a mapping")
    if not isinstance(meta.get("feature_model"), str) or not meta["feature_model"]:
        raise ValueError("its metadata does not say which feature model it was trained on")
    trained_on, here = meta.get("cues", "v1"), cue_version()
    if trained_on != here:
        raise CueVersionError(f"was trained on cues {trained_on}, and this installation computes cues {here}: "
                              + _cue_advice(trained_on, here))
    subject = meta.get("subject")
    if subject is not None and not (isinstance(subject, str) and subject):
        raise ValueError("its metadata 'subject' does not name a subject model")
    if subject is not None and subject_version_of(subject) != SUBJECT_VERSION:
        raise CueVersionError(f"was trained on subject maps {subject_version_of(subject) or 'of no known version'} "
                              f"({subject}), and this installation makes subject maps {SUBJECT_VERSION}: train "
                              "again with cropkit train (extract adds the new maps to cached images)")
    names = list(cfg.get("feature_names") or [])
    if names != list(feature_names(subject is not None)):
        with_subject = names == list(FEATURE_NAMES + SUBJECT_FEATURE_NAMES)
        raise ValueError("its subject features and its metadata's 'subject' disagree" if with_subject
                         or names == list(FEATURE_NAMES) else "it was trained with other candidate features")
    sizes = [cfg.get(k) for k in _CONFIG_KEYS]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in sizes) \
            or sizes[0] != len(names) or _parameter_count(*sizes) * 4 > MAX_BYTES:
        raise ValueError(f"its network size {dict(zip(_CONFIG_KEYS, sizes))} does not fit a proposer file")
    if not all(isinstance(meta.get(key, ""), str) for key in ("name", "pretrained")):
        raise ValueError("its metadata 'name' or 'pretrained' is not text")
    aspects = meta.get("aspects", [])
    if not isinstance(aspects, list) or not all(
            is_finite_number(a) and (a <= 0 or 1 / MAX_ASPECT <= a <= MAX_ASPECT) for a in aspects):
        raise ValueError("its learned 'aspects' are not aspect ratios between 1:20 and 20:1")
    if "guard" in meta:
        Guard.from_meta(meta["guard"])
    with torch.device("meta"):  # shapes only: the meta device allocates nothing
        expected = ProposerNet(*sizes).state_dict()
    if set(state) != set(expected):
        raise ValueError("its weights are not those of a crop proposer (wrong or missing tensors)")
    for name, tensor in state.items():
        if not isinstance(tensor, torch.Tensor) or tensor.shape != expected[name].shape \
                or not tensor.is_floating_point():
            raise ValueError(f"its weight {name!r} does not have the shape {tuple(expected[name].shape)}")
        if not torch.isfinite(tensor).all():
            raise ValueError(f"its weight {name!r} holds NaN or infinite numbers")
    if not (state["std"] > 0).all():
        raise ValueError("its feature scales ('std') must all be positive")
    return cfg, dict(meta), state


class CueVersionError(ValueError):
    """A proposer file trained on cues of another version."""


def _cue_advice(trained_on: str, here: str) -> str:
    """What to do when a proposer meets cues of another version."""
    if trained_on == "v2" and here == "v2-nopeople":
        return f"it needs MediaPipe's people cues: {INSTALL_HINT}"
    return "train again with cropkit train (it adds the new cues to cached images without recomputing CLIP features)"


def subject_advice(subject_id: str) -> str:
    """What to do when a proposer trained with a subject model meets maps of another one (or none)."""
    model = subject_id.rsplit("-", 3)[0]
    return (f"run cropkit extract --subject-model with the model file it was trained with ({model}.onnx), "
            "or retrain with cropkit train on this root's subject model")


def _serialise(payload: dict) -> bytes:
    import io

    buf = io.BytesIO()
    torch.save(payload, buf)
    return buf.getvalue()


def next_version(models_dir: Path) -> int:
    versions = [int(m.group(1)) for p in models_dir.glob("crop_proposer_v*.pth") if (m := _VERSION_RE.match(p.name))]
    return max(versions, default=0) + 1


def latest_proposer(models_dir: Path) -> Path:
    """The highest-numbered ``crop_proposer_vN.pth``; a clear error when there is none."""
    n = next_version(models_dir) - 1
    if n < 1:
        raise CropkitError(f"no trained proposer in {models_dir}; run cropkit train first")
    return models_dir / f"crop_proposer_v{n}.pth"
