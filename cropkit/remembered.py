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
DEFAULT_MODEL = "ViT-B-32"
DEFAULT_PRETRAINED = "openai"
MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class Remembered:
    """``images``: the library, relative to the root or absolute (None: ROOT/data/training_data);
    ``model`` and ``pretrained``: the encoder of the last extraction (a tag, an absolute checkpoint path or none)."""

    images: str | None = None
    model: str | None = None
    pretrained: str | None = None


def read_remembered(ai_data: Path) -> Remembered:
    """The settings of a root; a missing, unreadable or malformed file counts as nothing remembered."""
    try:
        data, _ = read_source_bytes(ai_data / SETTINGS, max_bytes=MAX_BYTES)
        obj = json.loads(data)
    except (OSError, ValueError, RecursionError):
        return Remembered()
    if not isinstance(obj, dict):
        return Remembered()
    values = {k: v for k in Remembered.__dataclass_fields__ if isinstance(v := obj.get(k), str) and v
              and "\x00" not in v}
    return Remembered(**values)


def remember(ai_data: Path, **changes: str | None) -> None:
    """Record new values (atomically, only when something changed)."""
    old = read_remembered(ai_data)
    new = replace(old, **changes)
    if new != old:
        text = json.dumps(asdict(new), indent=2, ensure_ascii=True) + "\n"
        atomic_write_bytes(ai_data / SETTINGS, text.encode())


def pretrained_spec(pretrained: str) -> str:
    """How to remember a ``--pretrained`` value: a checkpoint file by its absolute path, anything else as given."""
    path = Path(pretrained).expanduser()
    return str(path.resolve()) if path.is_file() else pretrained


def resolve_encoder(ai_data: Path, model: str | None, pretrained: str | None) -> tuple[str, str]:
    """The encoder to use: what the user named, else what the root's features came from, else ViT-B-32/openai."""
    known = read_remembered(ai_data)
    if model is None and pretrained is None:
        return known.model or DEFAULT_MODEL, known.pretrained or DEFAULT_PRETRAINED
    model = model or known.model or DEFAULT_MODEL
    if pretrained is None:
        pretrained = known.pretrained if known.model in (None, model) and known.pretrained else DEFAULT_PRETRAINED
    return model, pretrained
