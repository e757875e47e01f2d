"""Model ids without loading a model: ``<architecture>/<weights>``, so cached work is found without torch."""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from pathlib import Path

RANDOM_INIT_SEED = 0
UNTRAINED_WARNING = (
    "!!! UNTRAINED ENCODER: --pretrained none gives randomly initialised CLIP weights (seed {seed}).\n"
    "!!! Its features carry no learned meaning; use them only for tests and demos.\n"
    "!!! For real use pass an open_clip tag (e.g. --pretrained openai) or a checkpoint file."
)


def is_random(pretrained: str) -> bool:
    return pretrained.lower() in ("none", "random", "")


def weights_id(pretrained: str) -> str:
    """``random-init-seed0`` for none, ``file:<name>#<sha256[:16]>`` for a checkpoint file, else the tag."""
    if is_random(pretrained):
        return f"random-init-seed{RANDOM_INIT_SEED}"
    path = Path(pretrained).expanduser()
    if path.is_file():
        st = path.stat()
        return f"file:{path.name}#{_file_digest(str(path.resolve()), st.st_size, st.st_mtime_ns)}"
    return pretrained


def model_id(model: str, pretrained: str) -> str:
    return f"{model}/{weights_id(pretrained)}"


def is_untrained(model_id: str) -> bool:
    """Whether features of this model id come from a randomly initialised encoder."""
    return "/random-init" in model_id


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
