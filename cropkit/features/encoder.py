"""The names older imports took from here (``from cropkit.features.encoder import ...``); they live in the encoder
families' package now: ``cropkit.features.encoders`` (the factory), ``.base`` (device, precision, budget) and
``.open_clip`` (CLIP and ``--arch-config``)."""

from cropkit.features.encoders import build_encoder, check_arch, image_size_of
from cropkit.features.encoders.base import (
    FEATURE_BUDGET_BYTES,
    batch_size_for,
    cpu_has_native_bf16,
    grid_side_for,
    pick_device,
    pick_precision,
)
from cropkit.features.encoders.open_clip import ClipEncoder, register_arch_configs

__all__ = ["FEATURE_BUDGET_BYTES", "ClipEncoder", "batch_size_for", "build_encoder", "check_arch",
           "cpu_has_native_bf16", "grid_side_for", "image_size_of", "pick_device", "pick_precision",
           "register_arch_configs"]
