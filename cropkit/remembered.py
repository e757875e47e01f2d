"""What a root remembers between commands: the library outside it and the encoder its features came from.

``cropkit extract`` writes ``data/ai_data/settings.json``; every later command (CLI or notebook) that is not told
otherwise uses the same library and encoder, so a choice is made once, not repeated on every command.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from cropkit.fileio import atomic_write_bytes, read_source_bytes

SETTINGS = "settings.json"
DEFAULT_ARCH = "auto"  # made concrete by cropkit.features.encoders.choose_encoder (a pretrained encoder, never random)
DEFAULT_WEIGHTS = "auto"  # the family's pretrained weights (openai for open_clip, imagenet for efficientnet-lite0)
DISK_KEYS = {"arch": "model", "weights": "pretrained"}  # field name -> key in settings.json
MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class Remembered:
    """``images``: the library, relative to the root or absolute (None: ROOT/data/training_data);
    ``arch`` and ``weights``: the encoder of the last extraction (a tag, an absolute checkpoint path or none);
    ``subject_model``: its salient-object model (an absolute .onnx path, rembg:NAME or none) and ``subject_id``
    what that file gave (so a cached rerun names it without loading the model)."""

    images: str | None = None
    arch: str | None = None
    weights: str | None = None
    subject_model: str | None = None
    subject_id: str | None = None


def read_remembered(ai_data: Path) -> Remembered:
    """The settings of a root; a missing, unreadable or malformed file counts as nothing remembered."""
    try:
        data, _ = read_source_bytes(ai_data / SETTINGS, max_bytes=MAX_BYTES)
        obj = json.loads(data)
    except (OSError, ValueError, RecursionError):
        return Remembered()
    if not isinstance(obj, dict):
        return Remembered()
    values = {k: v for k in Remembered.__dataclass_fields__ if isinstance(v := obj.get(DISK_KEYS.get(k, k)), str)
              and v and "\x00" not in v}
    return Remembered(**values)


def remember(ai_data: Path, **changes: str | None) -> None:
    """Record new values (atomically, only when something changed)."""
    old = read_remembered(ai_data)
    new = replace(old, **changes)
    if new != old:
        text = json.dumps({DISK_KEYS.get(k, k): v for k, v in asdict(new).items()}, indent=2, ensure_ascii=True) + "\n"
        atomic_write_bytes(ai_data / SETTINGS, text.encode())


def weights_spec(weights: str) -> str:
    """How to remember a ``--weights`` value: a checkpoint file by its absolute path, anything else as given."""
    path = Path(weights).expanduser()
    return str(path.resolve()) if path.is_file() else weights


def subject_model_spec(name: str) -> str:
    """How to remember a ``--subject-model`` value: a file by its absolute path, ``rembg:NAME`` and none as given."""
    if name == "none" or name.startswith("rembg:"):
        return name
    return str(Path(name).expanduser().resolve())


def resolve_subject_model(ai_data: Path, given: str | None) -> str:
    """The ``--subject-model`` to use: what the user named, else what the root remembers, else none."""
    return subject_model_spec(given) if given else read_remembered(ai_data).subject_model or "none"


def resolve_encoder(ai_data: Path, arch: str | None, weights: str | None) -> tuple[str, str]:
    """``(arch, weights)`` to use: what the user named, else what the root's features came from, else ``auto``
    (which ``cropkit.features.encoders.choose_encoder`` makes concrete)."""
    known = read_remembered(ai_data)
    if arch is None and weights is None:
        return known.arch or DEFAULT_ARCH, known.weights or DEFAULT_WEIGHTS
    arch = arch or known.arch or DEFAULT_ARCH
    if weights is None:
        weights = known.weights if known.arch in (None, arch) and known.weights else DEFAULT_WEIGHTS
    return arch, weights
