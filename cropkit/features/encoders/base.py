"""What every encoder shares: the device and precision it runs at, the feature budget that sizes its grid, and
the interface the pipeline calls (``encode`` -> L2-normalised pooled (B, D) and grid (B, G, G, D) features)."""

from __future__ import annotations

import math

import numpy as np
import torch

from cropkit.errors import CropkitError
from cropkit.features.weights import Weights

FEATURE_BUDGET_BYTES = 64 * 1024  # global + grid, float16, per image (npy header included)
NPY_HEADER_BYTES = 128

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


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


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX), where bf16 halves encoder time."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def pick_precision(device: torch.device, requested: str = "auto") -> str:
    """auto: fp16 autocast on CUDA, bf16 on CPUs with native bf16, else fp32. Features stay within cosine
    0.9999 of fp32; ``fp32`` gives exact parity with the reference model."""
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


def batch_size_for(free_bytes: int, per_image_bytes: float, low: int = 32, high: int = 1024) -> int:
    """Largest power of two in [low, high] whose batch needs at most half of ``free_bytes``."""
    fits = int(free_bytes / 2 / max(per_image_bytes, 1.0))
    return max(low, min(high, 1 << max(fits, 1).bit_length() - 1))


class Encoder:
    """Pixels to whole-frame features. A family sets ``arch``, ``weights``, ``device``, ``precision``,
    ``image_size``, ``dim``, ``grid_side`` and the input normalisation (``_mean``/``_std`` on the 0-255 scale),
    and implements ``encode``."""

    arch: str
    weights: Weights
    device: torch.device
    precision: str
    image_size: int
    dim: int
    grid_side: int
    _mean: torch.Tensor
    _std: torch.Tensor

    @property
    def encoder_id(self) -> str:
        return f"{self.arch}/{self.weights.weights_id}"

    @property
    def untrained(self) -> bool:
        return self.weights.untrained

    def _set_normalisation(self, mean: tuple[float, ...], std: tuple[float, ...], scale: float = 1.0) -> None:
        """Per-channel mean and std, times ``scale``, on the 0-255 scale of the pixels."""
        self._mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1) * scale
        self._std = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1) * scale

    def to_input(self, pixels: np.ndarray) -> torch.Tensor:
        """(B, S, S, 3) uint8 to the normalised float tensor the model expects; the uint8 batch travels to a
        GPU from page-locked memory, asynchronously, and is converted there."""
        t = torch.from_numpy(pixels if pixels.flags.writeable else pixels.copy())
        if self.device.type == "cuda":
            t = t.pin_memory()
        x = t.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float()
        return (x - self._mean) / self._std

    def encode(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """L2-normalised global (B, D) and grid (B, G, G, D) features as float32 arrays."""
        raise NotImplementedError

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
