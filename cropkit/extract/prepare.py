"""The per-image work before the encoder: one read, one content hash, one reduced decode.

Runs in decode worker processes; imports no torch.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cropkit.extract.decode import DecodeError, decode_oriented_rgb, squash_to_square
from cropkit.extract.phash import phash64
from cropkit.features.cues import Cues, compute_cues
from cropkit.features.people import PeopleModelError
from cropkit.features.subject import SubjectMap
from cropkit.fileio import NotRegularFile, read_source_bytes

MAX_FILE_BYTES = 1 << 30  # 1 GiB: larger "images" are refused before reading


@dataclass
class Prepared:
    """An image ready for the encoder: its identity, hashes, full size and square pixels."""

    path: Path
    size: int
    mtime_ns: int
    hash: str
    phash: str
    width: int
    height: int
    pixels: np.ndarray  # (S, S, 3) uint8, the whole frame squashed
    cues: Cues
    subject_pixels: np.ndarray | None = None  # (side, side, 3) uint8 for the subject model, when one is on
    subject: SubjectMap | None = None  # its map, computed in the main process (cropkit.extract.subject_stage)


@dataclass
class Failed:
    """An image that could not be prepared, with a reason code and message."""

    path: Path
    size: int
    mtime_ns: int
    kind: str
    message: str


def read_image(path: Path, size: int = -1, mtime_ns: int = -1) -> tuple[bytes, int, int] | Failed:
    """The file's bytes (read once, read-only) and its size and mtime, or why it cannot be read."""
    try:
        data, st = read_source_bytes(path, max_bytes=MAX_FILE_BYTES)
    except ValueError as exc:
        return Failed(path, size, mtime_ns, "too-large", str(exc))
    except NotRegularFile as exc:
        return Failed(path, size, mtime_ns, "not-a-file", exc.strerror or str(exc))
    except OSError as exc:
        return Failed(path, size, mtime_ns, "unreadable", f"{type(exc).__name__}: {exc.strerror or exc}")
    return data, st.st_size, st.st_mtime_ns


def prepare_image(path: Path, input_size: int, size: int = -1, mtime_ns: int = -1, *,
                  subject_side: int = 0) -> Prepared | Failed:
    """Read ``path`` once (read-only), hash its bytes (SHA-256), decode it reduced, squash it to the input (and,
    with ``subject_side``, to the subject model's side from the same decode)."""
    read = read_image(path, size, mtime_ns)
    if isinstance(read, Failed):
        return read
    return prepare_bytes(path, *read, input_size, subject_side=subject_side)


def prepare_bytes(path: Path, data: bytes, size: int, mtime_ns: int, input_size: int,
                  digest: str | None = None, subject_side: int = 0) -> Prepared | Failed:
    """The decode half of ``prepare_image`` on bytes already read (``digest``: their SHA-256 when known)."""
    digest = _Known(digest) if digest else _HashInBackground(data)  # SHA-256 and the decode release the GIL
    try:
        img, (width, height) = decode_oriented_rgb(data, max(input_size, subject_side))
        pixels = squash_to_square(img, input_size)
        subject_pixels = squash_to_square(img, subject_side) if subject_side else None
        phash = phash64(img)
        cues = compute_cues(img)
    except (DecodeError, PeopleModelError) as exc:  # a model failure is recorded as such, not as the file's
        return Failed(path, size, mtime_ns, exc.kind, str(exc))
    except Exception as exc:  # never let one hostile file stop the run
        return Failed(path, size, mtime_ns, "decode-error", f"{type(exc).__name__}: {exc}")
    return Prepared(path, size, mtime_ns, digest.result(), phash, width, height, pixels, cues, subject_pixels)


class _Known:
    def __init__(self, digest: str):
        self.digest = digest

    def result(self) -> str:
        return self.digest


class _HashInBackground:
    """SHA-256 of a large buffer on a second thread; small buffers are hashed at once."""

    def __init__(self, data: bytes):
        self._digest: str | None = None
        self._thread = None
        if len(data) < (1 << 20):
            self._digest = hashlib.sha256(data).hexdigest()
        else:
            self._thread = threading.Thread(target=self._run, args=(data,), daemon=True)
            self._thread.start()

    def _run(self, data: bytes) -> None:
        self._digest = hashlib.sha256(data).hexdigest()

    def result(self) -> str:
        if self._thread is not None:
            self._thread.join()
        assert self._digest is not None
        return self._digest
