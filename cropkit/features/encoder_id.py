"""Encoder ids without loading a model: ``<arch>/<weights id>`` (``ViT-B-32/openai``), so cached work is found
without torch. The one place that builds and parses them."""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from pathlib import Path

RANDOM_INIT_SEED = 0
UNTRAINED_WARNING = (
    "!!! UNTRAINED ENCODER: --weights none gives a randomly initialised encoder (seed {seed}).\n"
    "!!! Its features carry no learned meaning; use them only for tests and demos.\n"
    "!!! For real use: --arch efficientnet-lite0 (ImageNet), an open_clip tag (--weights openai) or a checkpoint file."
)


def is_random(weights: str) -> bool:
    """Whether a weights spec asks for an untrained, randomly initialised encoder."""
    return weights.lower() in ("none", "random", "")


def weights_id(weights: str) -> str:
    """``random-init-seed0`` for none, ``file:<name>#<sha256[:16]>`` for a checkpoint file, else the tag."""
    if is_random(weights):
        return f"random-init-seed{RANDOM_INIT_SEED}"
    path = Path(weights).expanduser()
    if path.is_file():
        st = path.stat()
        return f"file:{path.name}#{_file_digest(str(path.resolve()), st.st_size, st.st_mtime_ns)}"
    return weights


def encoder_id(arch: str, weights: str) -> str:
    """The stable id of an architecture with a weights spec (a tag, a checkpoint file or none)."""
    return f"{arch}/{weights_id(weights)}"


def parse_encoder_id(text: str) -> tuple[str, str]:
    """``(arch, weights id)`` of an encoder id; a text without both parts is refused."""
    arch, sep, weights = text.partition("/")
    if not (arch and sep and weights):
        raise ValueError(f"{text!r} is not an encoder id (<arch>/<weights>, e.g. ViT-B-32/openai)")
    return arch, weights


def is_untrained(encoder_id: str) -> bool:
    """Whether features of this encoder id come from a randomly initialised encoder."""
    return encoder_id.partition("/")[2].startswith("random-init")


@lru_cache(maxsize=8)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    """SHA-256 (first 16 hex digits) of a checkpoint, once per process for an unchanged file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()[:16]


def load_failure_reason(exc: BaseException) -> str:
    """Why a weights file did not load (torch.load with weights_only=True, or safetensors), in one short clause.

    torch's own text advises ``weights_only=False``; cropkit never loads unsafely, so that advice is never shown.
    """
    text = str(exc)
    if "Weights only load failed" in text:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", text)
        what = f"a {found.group(1)} object" if found else "objects"
        return f"it holds {what}, not only plain tensors (loading it could run code)"
    if isinstance(exc, EOFError) or "central directory" in text or "zip archive" in text:
        return "the file is empty, cut short or damaged"
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if not first or "weights_only" in first:
        return type(exc).__name__
    return first if len(first) <= 200 else first[:197] + "..."


def concrete_encoder(arch: str, weights: str) -> tuple[str, str]:
    """``(arch, weights)`` with any ``auto`` made concrete (``cropkit.features.encoders.choose_encoder``); named
    values pass through without importing torch, so a cached rerun stays light."""
    if "auto" not in (arch, weights):
        return arch, weights
    from cropkit.features.encoders import choose_encoder

    return choose_encoder(arch, weights)
