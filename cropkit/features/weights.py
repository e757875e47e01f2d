"""Where an encoder's weights come from: for open_clip, ``--weights`` (a tag, a checkpoint file or ``none``) resolved to
a file on disk, without a download when it is cached, failing fast with the fixes when it cannot be had; and the
checkpoint's tensors read safely (plain tensors only)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import open_clip
import torch
from safetensors import safe_open

from cropkit.errors import WeightsUnavailable, option
from cropkit.features.encoder_id import is_random, weights_id


@dataclass(frozen=True)
class Weights:
    """Where an encoder's weights come from: ``checkpoint`` is None for random initialisation."""

    weights_id: str
    checkpoint: str | None
    tag_cfg: dict

    @property
    def untrained(self) -> bool:
        return self.checkpoint is None


def resolve_clip_weights(arch: str, weights: str, cache_dir: str | None = None) -> Weights:
    """Turn an open_clip ``--weights`` (a tag, a file path or ``none``) into a checkpoint file, failing fast."""
    if is_random(weights):
        return Weights(weights_id(weights), None, {})
    path = Path(weights).expanduser()
    if path.is_file():
        return Weights(weights_id(weights), str(path), {})
    cfg = open_clip.get_pretrained_cfg(arch, weights)
    if not cfg:
        tags = open_clip.list_pretrained_tags_by_model(arch)
        known = ", ".join(tags) if tags else "none for this architecture"
        raise WeightsUnavailable(
            f"{option('weights', weights)} is neither a file nor a known open_clip tag for {arch} "
            f"(known tags: {known}).\n" + weights_fixes(arch)
        )
    cached = _cached_checkpoint(cfg, cache_dir)
    if cached is None:
        host = _download_host(cfg)
        if os.environ.get("HF_HUB_OFFLINE") or not _reachable(host):
            raise WeightsUnavailable(
                f"weights {arch}/{weights} are not in the local cache and {host} cannot be reached.\n"
                + weights_fixes(arch)
            )
        try:
            cached = open_clip.download_pretrained(cfg, cache_dir=cache_dir)
        except Exception as exc:
            raise WeightsUnavailable(f"downloading {arch}/{weights} failed: {exc}\n" + weights_fixes(arch)) from None
    return Weights(weights, str(cached), cfg)


def weights_fixes(arch: str) -> str:
    """What a user can do when weights cannot be had."""
    return (
        "Fixes:\n"
        f"  - a local checkpoint file: {option('weights', '/path/to/open_clip_model.safetensors')} (or .bin/.pt)\n"
        "  - the Hugging Face cache: copy the weights into ~/.cache/huggingface/hub (or set HF_HOME) "
        "on a machine that has them\n"
        f"  - {option('weights', 'none')}: a randomly initialised {arch} (features carry no learned meaning)"
    )


def _cached_checkpoint(cfg: dict, cache_dir: str | None) -> str | None:
    """The weights file for a tag if it is already on disk, without touching the network."""
    if cfg.get("file"):
        return cfg["file"]
    hub = cfg.get("hf_hub", "")
    if hub:
        from huggingface_hub import try_to_load_from_cache

        repo_id, filename = os.path.split(hub)
        filename = filename or "open_clip_pytorch_model.bin"
        safe = filename.replace("open_clip_pytorch_model.bin", "open_clip_model.safetensors")
        safe = safe[:-4] + ".safetensors" if safe.endswith(".bin") else safe
        for name in dict.fromkeys([safe, filename]):
            found = try_to_load_from_cache(repo_id, name, cache_dir=cache_dir)
            if isinstance(found, str):
                return found
        return None
    url = cfg.get("url", "")
    target = Path(cache_dir or Path.home() / ".cache" / "clip") / os.path.basename(url)
    return str(target) if url and target.is_file() else None


def _download_host(cfg: dict) -> str:
    if cfg.get("hf_hub"):
        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
        return urlparse(endpoint).hostname or "huggingface.co"
    return urlparse(cfg.get("url", "")).hostname or "the download host"


def _reachable(host: str, timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def read_state_dict(path: str) -> dict[str, torch.Tensor]:
    """A checkpoint's tensors, plain tensors only (weights_only / safetensors), mapped rather than copied
    where the format allows; only the image tower's are read from a safetensors file."""
    if path.endswith(".safetensors"):
        with safe_open(path, framework="pt") as f:
            return {k.removeprefix("module."): f.get_tensor(k) for k in f.keys()  # noqa: SIM118 (not a dict)
                    if k.removeprefix("module.").startswith("visual.")}
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # the legacy (pre-zip) format cannot be mapped: read it
        state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    return {k.removeprefix("module."): v for k, v in state.items()}


def cached_clip_checkpoint(arch: str, tag: str) -> str | None:
    """The local file of an open_clip tag when it is already cached (no network), else None."""
    cfg = open_clip.get_pretrained_cfg(arch, tag)
    return _cached_checkpoint(cfg, None) if cfg else None
