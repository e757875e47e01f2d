"""The open_clip family: every open_clip architecture (and those registered with ``--arch-config``), its image
tower alone, giving whole-frame features.

The features describe the whole frame: images arrive squashed to the model's square input, never centre-cropped.
Per image the encoder gives an L2-normalised global embedding and a coarse grid of L2-normalised patch features
projected into the same embedding space.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from pathlib import Path

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from open_clip.model import resize_pos_embed

from cropkit.errors import CropkitError, WeightsUnavailable
from cropkit.features.encoder_id import RANDOM_INIT_SEED, load_failure_reason
from cropkit.features.encoders.base import DTYPES, Encoder, grid_side_for, pick_precision
from cropkit.features.weights import Weights, read_state_dict, resolve_clip_weights, weights_fixes
from cropkit.fileio import read_source_bytes

NAME = "open_clip"
DEFAULT_WEIGHTS = "openai"
MAX_CONFIG_BYTES = 256 * 1024
MAX_CONFIG_DEPTH = 8  # open_clip's own configs nest three levels deep


def register_arch_configs(path: str | Path) -> None:
    """Make open_clip architectures from a JSON file (or a folder of them) available by name (the file's stem).

    Every file is checked first, regular files only, none registered unless all are good: a clear error says
    which file is wrong and how."""
    p = Path(path).expanduser()
    if not p.exists():
        raise CropkitError(f"--arch-config: {p} does not exist (give a JSON file or a folder of JSON files)")
    files = sorted(p.glob("*.json")) if p.is_dir() else [p]
    if not files:
        raise CropkitError(f"--arch-config: {p} holds no .json files")
    configs = {f.stem: _read_arch_config(f) for f in files}
    open_clip.factory._MODEL_CONFIGS.update(configs)  # what open_clip.add_model_config does, from checked data


def image_size_of(arch: str) -> int:
    """An architecture's input side from its open_clip config, without building the model."""
    size = ((open_clip.get_model_config(arch) or {}).get("vision_cfg") or {}).get("image_size", 224)
    return int(size[0] if isinstance(size, (list, tuple)) else size)


def _read_arch_config(file: Path) -> dict:
    """One open_clip architecture config: a small regular JSON file holding an object with embed_dim, vision_cfg
    and text_cfg, nested at most a few levels."""
    fix = "it must be an open_clip model config (JSON with embed_dim, vision_cfg and text_cfg)"
    try:
        data, _ = read_source_bytes(file, max_bytes=MAX_CONFIG_BYTES)  # non-blocking: a pipe is refused
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise CropkitError(f"--arch-config: cannot read {file}: {reason}; {fix}") from None
    try:
        cfg = json.loads(data)
    except json.JSONDecodeError as exc:
        raise CropkitError(f"--arch-config: {file} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                           f"{exc.msg}); {fix}") from None
    except (ValueError, RecursionError) as exc:
        raise CropkitError(f"--arch-config: {file} is not valid JSON ({type(exc).__name__}); {fix}") from None
    if _nests_deeper_than(cfg, MAX_CONFIG_DEPTH):
        raise CropkitError(f"--arch-config: {file} nests deeper than {MAX_CONFIG_DEPTH} levels; {fix}")
    if not (isinstance(cfg, dict) and isinstance(cfg.get("embed_dim"), int) and cfg["embed_dim"] > 0
            and isinstance(cfg.get("vision_cfg"), dict) and isinstance(cfg.get("text_cfg"), dict)):
        raise CropkitError(f"--arch-config: {file}: {fix}")
    return cfg


def _nests_deeper_than(value: object, limit: int) -> bool:
    """Whether lists and objects nest more than ``limit`` levels (checked level by level, without recursion)."""
    level = [value]
    for _ in range(limit + 1):
        level = [c for v in level if isinstance(v, (dict, list)) for c in (v.values() if isinstance(v, dict) else v)]
        if not level:
            return False
    return True


def claims(arch: str) -> bool:
    """Whether ``arch`` is an open_clip architecture (built in or registered with --arch-config)."""
    return arch in open_clip.list_models()


def check_arch(arch: str) -> None:
    if not claims(arch):
        raise CropkitError(
            f"--arch {arch!r} is not an open_clip architecture. Try ViT-B-32, ViT-B-16 or ViT-L-14 "
            "(open_clip.list_models() lists all), or register your own with --arch-config FILE.json."
        )


_MAPPABLE = (".pt", ".pth", ".bin", ".safetensors")


def _image_tower(arch: str, weights: Weights) -> torch.nn.Module:
    """The image tower alone. Random weights are seeded. A checkpoint is loaded lean: the model is built on
    the meta device (no throw-away random initialisation) and takes the checkpoint's own tensors, mapped
    from the file, so the text tower's weights are never read (the peak memory saved: docs/benchmarks.md)."""
    quick_gelu = bool(weights.tag_cfg.get("quick_gelu"))
    if weights.checkpoint is None or not weights.checkpoint.endswith(_MAPPABLE):
        with torch.random.fork_rng(devices=[]), _no_random_init_warning():
            torch.manual_seed(RANDOM_INIT_SEED)
            return open_clip.create_model(arch, pretrained=weights.checkpoint, force_quick_gelu=quick_gelu).visual
    try:
        with torch.device("meta"), _no_random_init_warning():  # the checkpoint's weights are loaded just below
            clip = open_clip.create_model(arch, force_quick_gelu=quick_gelu, device="meta")
    except Exception as exc:
        raise architecture_error(arch, exc) from None
    state = read_state_dict(weights.checkpoint)
    resize_pos_embed(state, clip)  # as open_clip does for a checkpoint of another input size
    tower = {k.removeprefix("visual."): v for k, v in state.items() if k.startswith("visual.")}
    clip.visual.load_state_dict(tower, strict=True, assign=True)
    return clip.visual


def architecture_error(arch: str, exc: Exception) -> CropkitError:
    """A model whose config cannot be built: the config is at fault, not any weights file."""
    return CropkitError(f"cannot build the {arch} architecture from its config: {load_failure_reason(exc)}\n"
                        "Check the --arch-config file that defines it (open_clip.get_model_config shows what "
                        "is registered), or choose another --arch.")


class _DropRandomInitWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("No pretrained weights loaded for model")


@contextlib.contextmanager
def _no_random_init_warning():
    """Silence exactly open_clip's 'No pretrained weights loaded' warning while cropkit builds a tower whose
    weights it chose (random on purpose, with cropkit's own banner, or loaded right after)."""
    root, drop = logging.getLogger(), _DropRandomInitWarning()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)


class ClipEncoder(Encoder):
    """An open_clip image tower that returns whole-frame global and grid features."""

    def __init__(self, arch: str, weights: Weights, device: torch.device, precision: str = "auto"):
        check_arch(arch)
        try:
            visual = _image_tower(arch, weights)
        except Exception as exc:  # a wrong architecture, a corrupt file, or a pickle that is not plain weights
            if isinstance(exc, CropkitError):
                raise
            if weights.checkpoint is None:  # nothing was loaded: the architecture itself cannot be built
                raise architecture_error(arch, exc) from None
            raise WeightsUnavailable(
                f"cannot load {arch} weights from {weights.checkpoint}: {load_failure_reason(exc)}\n"
                "Only plain tensors are loaded (weights_only=True / safetensors); a file that needs code to "
                "unpickle is refused. Check that the file is an open_clip checkpoint of this --arch.\n"
                + weights_fixes(arch)
            ) from None
        if not hasattr(visual, "output_tokens") or getattr(visual, "proj", None) is None:
            raise CropkitError(
                f"{arch}: the spatial feature grid needs a ViT image tower with a projection "
                "(ViT-B-32, ViT-B-16, ViT-L-14, ...); this architecture has none."
            )
        visual.output_tokens = True
        self.precision = pick_precision(device, precision)
        # Whole-tower casting beats autocast on CPU: autocast re-casts every weight on every call
        # (the timings: docs/benchmarks.md).
        self.dtype = DTYPES[self.precision]
        self.visual = visual.eval().to(device=device, dtype=self.dtype)
        self.arch = arch
        self.weights = weights
        self.device = device
        size = visual.image_size
        self.image_size = int(size[0] if isinstance(size, (tuple, list)) else size)
        pre = open_clip.get_model_preprocess_cfg(self.visual) or {}
        mean = weights.tag_cfg.get("mean") or pre.get("mean") or open_clip.OPENAI_DATASET_MEAN
        std = weights.tag_cfg.get("std") or pre.get("std") or open_clip.OPENAI_DATASET_STD
        self._set_normalisation(mean, std, scale=255.0)
        self.dim = int(visual.proj.shape[1])
        patch = visual.conv1.kernel_size[0]
        self.native_grid = self.image_size // patch
        self.grid_side = grid_side_for(self.native_grid, self.dim)

    @torch.inference_mode()
    def encode(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return L2-normalised global (B, D) and grid (B, G, G, D) features as float32 arrays."""
        x = self.to_input(pixels).to(self.dtype)
        pooled, tokens = self.visual(x)
        tokens = tokens @ self.visual.proj
        b, n, d = tokens.shape
        side = math.isqrt(n)
        grid = tokens.float().reshape(b, side, side, d).permute(0, 3, 1, 2)
        if side != self.grid_side:
            grid = F.adaptive_avg_pool2d(grid, self.grid_side)
        grid = F.normalize(grid.permute(0, 2, 3, 1), dim=-1)
        pooled = F.normalize(pooled.float(), dim=-1)
        return pooled.cpu().numpy(), grid.cpu().numpy()


def resolve_weights(arch: str, weights: str, cache_dir: str | None = None) -> Weights:
    """An open_clip tag (from the local cache, else downloaded), a checkpoint file, or none."""
    return resolve_clip_weights(arch, weights, cache_dir)


def build(arch: str, weights: Weights, device: torch.device, precision: str = "auto") -> ClipEncoder:
    return ClipEncoder(arch, weights, device, precision)


def examples() -> str:
    return "ViT-B-32, ViT-B-16, ViT-L-14 (open_clip.list_models() lists all, --arch-config adds your own)"
