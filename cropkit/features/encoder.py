"""Pixels to features: one factory turns (arch, weights, device) into a CLIP image encoder with a stable id.

The features describe the whole frame: images arrive squashed to the model's square input, never
centre-cropped. Per image the encoder gives an L2-normalised global embedding and a coarse grid of
L2-normalised patch features projected into the same embedding space.
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
from cropkit.features.weights import Weights, read_state_dict, weights_fixes
from cropkit.fileio import read_source_bytes

FEATURE_BUDGET_BYTES = 64 * 1024  # global + grid, float16, per image (npy header included)
NPY_HEADER_BYTES = 128
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


def check_arch(arch: str) -> None:
    if arch not in open_clip.list_models():
        raise CropkitError(
            f"--arch {arch!r} is not an open_clip architecture. Try ViT-B-32, ViT-B-16 or ViT-L-14 "
            "(open_clip.list_models() lists all), or register your own with --arch-config FILE.json."
        )


def pick_device(requested: str = "auto") -> torch.device:
    """auto: cuda, then mps, then cpu; an explicit device that is absent is an error."""
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if requested == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if requested == "cuda" and not cuda:
        raise CropkitError("--device cuda: no CUDA GPU is visible to torch here; use --device auto or cpu")
    if requested == "mps" and not mps:
        raise CropkitError("--device mps: Apple's MPS backend is not available here; use --device auto or cpu")
    if requested not in ("cpu", "cuda", "mps"):
        raise CropkitError(f"--device {requested}: choose auto, cpu, cuda or mps")
    return torch.device(requested)


_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX), where bf16 halves encoder time."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def pick_precision(device: torch.device, requested: str = "auto") -> str:
    """auto: fp16 autocast on CUDA, bf16 on CPUs with native bf16, else fp32. Features stay within cosine
    0.9999 of fp32; ``fp32`` gives exact parity with open_clip."""
    if requested not in ("auto", "fp32", "bf16", "fp16"):
        raise CropkitError(f"--precision {requested}: choose auto, fp32, bf16 or fp16")
    if requested != "auto":
        return requested
    if device.type == "cuda":
        return "fp16"
    if device.type == "cpu" and cpu_has_native_bf16():
        return "bf16"
    return "fp32"


def grid_side_for(native_side: int, dim: int, budget: int = FEATURE_BUDGET_BYTES) -> int:
    """Largest grid side <= ``native_side`` whose (1 + side^2) x dim float16 rows fit the budget."""
    rows = (budget - NPY_HEADER_BYTES) // (2 * dim)
    return max(1, min(native_side, math.isqrt(max(rows - 1, 1))))


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


def batch_size_for(free_bytes: int, per_image_bytes: float, low: int = 32, high: int = 1024) -> int:
    """Largest power of two in [low, high] whose batch needs at most half of ``free_bytes``."""
    fits = int(free_bytes / 2 / max(per_image_bytes, 1.0))
    return max(low, min(high, 1 << max(fits, 1).bit_length() - 1))


class ClipEncoder:
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
        self.dtype = _DTYPES[self.precision]
        self.visual = visual.eval().to(device=device, dtype=self.dtype)
        self.arch = arch
        self.weights = weights
        self.device = device
        self.encoder_id = f"{arch}/{weights.weights_id}"
        size = visual.image_size
        self.image_size = int(size[0] if isinstance(size, (tuple, list)) else size)
        pre = open_clip.get_model_preprocess_cfg(self.visual) or {}
        mean = weights.tag_cfg.get("mean") or pre.get("mean") or open_clip.OPENAI_DATASET_MEAN
        std = weights.tag_cfg.get("std") or pre.get("std") or open_clip.OPENAI_DATASET_STD
        self._mean = torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1) * 255.0
        self._std = torch.tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1) * 255.0
        self.dim = int(visual.proj.shape[1])
        patch = visual.conv1.kernel_size[0]
        self.native_grid = self.image_size // patch
        self.grid_side = grid_side_for(self.native_grid, self.dim)

    @property
    def untrained(self) -> bool:
        return self.weights.untrained

    def to_input(self, pixels: np.ndarray) -> torch.Tensor:
        """(B, S, S, 3) uint8 to the normalised float tensor the tower expects; the uint8 batch travels to a
        GPU from page-locked memory, asynchronously, and is converted there."""
        t = torch.from_numpy(pixels if pixels.flags.writeable else pixels.copy())
        if self.device.type == "cuda":
            t = t.pin_memory()
        x = t.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float()
        return (x - self._mean) / self._std

    def default_batch_size(self) -> int:
        """32 on CPU and MPS; on CUDA, sized to the GPU: the memory one image needs is measured on a
        probe batch, and the batch may use half of the memory that is free."""
        if self.device.type != "cuda":
            return 32
        probe = 16
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        base = torch.cuda.memory_allocated(self.device)
        self.encode(np.zeros((probe, self.image_size, self.image_size, 3), np.uint8))
        per_image = (torch.cuda.max_memory_allocated(self.device) - base) / probe
        free, _total = torch.cuda.mem_get_info(self.device)
        return batch_size_for(free, per_image)

    def warm_up(self) -> None:
        """One throw-away batch, so one-time kernel set-up is not charged to the first real image."""
        self.encode(np.zeros((1, self.image_size, self.image_size, 3), np.uint8))

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
