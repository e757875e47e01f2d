"""People in a photo from the pretrained models inside the MediaPipe wheel: a person mask, faces and hands.

MediaPipe is an extra (``pip install 'cropkit[people]'``; ``make`` installs it). Without it ``available()`` is
False and the cues say so in their version, so a proposer never mixes cues made with and without people.

A process has one set of graphs and they are not thread-safe (two callers at once break them for good: "Graph has
errors"), nor is the redirect of file descriptor 2 that hushes them: both are used under one lock, and a graph that
fails is built afresh once before the models are blamed (``PeopleModelError``, which is never the file's fault).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import threading
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from cropkit.decisions import brief

MEDIAPIPE_VERSION = "0.10.21"  # the last line whose wheel ships the legacy solutions' models
INSTALL_HINT = f"pip install 'cropkit[people]' (mediapipe=={MEDIAPIPE_VERSION}, which needs numpy < 2)"
HAND_POINTS = 21  # MediaPipe's hand landmarks, wrist first
MIN_PERSON_SHARE = 0.01  # hands are looked for only where a face or this much of a person was found
MODEL_ERROR = "model-error"  # the failure kind of a picture the models could not look at: the process's, not the file's
_LOCK = threading.Lock()  # the graphs and the fd 2 redirect serve one caller at a time


class PeopleModelError(RuntimeError):
    """The people models failed in this process even when built afresh: not the picture's fault."""

    kind = MODEL_ERROR


@lru_cache(maxsize=1)
def available() -> bool:
    """Whether MediaPipe's legacy solutions can run here (checked without importing it)."""
    return importlib.util.find_spec("mediapipe") is not None


@dataclass(frozen=True)
class Hand:
    """One detected hand: 'Left' or 'Right' as MediaPipe labels it, its score, and 21 (x, y, z) keypoints with
    x and y as fractions of the upright frame."""

    handedness: str
    score: float
    keypoints: np.ndarray  # (21, 3) float


@dataclass(frozen=True)
class People:
    """What the people models saw in one picture."""

    person: np.ndarray  # (H, W) float in 0..1: selfie segmentation's person probability
    faces: list[tuple[float, float, float, float, float]] = field(default_factory=list)  # x0, y0, x1, y1, score
    hands: list[Hand] = field(default_factory=list)


class _Models:
    """The three MediaPipe graphs of this process (decode workers each build their own), used under ``_LOCK``."""

    def __init__(self):
        with _quiet_stderr():  # MediaPipe's C++ start-up notes ("Created TensorFlow Lite XNNPACK delegate" ...)
            import mediapipe as mp

            solutions = mp.solutions
            self.faces = solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5)
            self.person = solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)
            self.hands = solutions.hands.Hands(static_image_mode=True, max_num_hands=2,
                                               min_detection_confidence=0.5)
            blank = np.zeros((64, 64, 3), np.uint8)  # the first run of each graph prints more notes
            for graph in (self.faces, self.person, self.hands):
                graph.process(blank)


_built: _Models | None = None  # the process's graphs once built


@contextlib.contextmanager
def _quiet_stderr():
    """Send file descriptor 2 to /dev/null for a moment (C++ logging bypasses sys.stderr)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _models() -> _Models:
    """The process's graphs, built on first use (call under ``_LOCK``)."""
    global _built
    if _built is None:
        _built = _Models()
    return _built


def _drop_models() -> None:
    """Forget graphs that failed (a graph in error refuses every later picture); the next use builds new ones."""
    global _built
    old, _built = _built, None
    for graph in (old.faces, old.person, old.hands) if old is not None else ():
        with contextlib.suppress(Exception):
            graph.close()


def detect_people(rgb: np.ndarray) -> People:
    """Person mask, faces and hands of an (H, W, 3) uint8 upright picture (about 512 px is plenty). Hands are looked
    for only where there is someone (the hand model costs more than the other two together). Safe from any thread;
    raises ``PeopleModelError`` when the models fail twice, the second time freshly built."""
    if not available():
        raise RuntimeError(f"MediaPipe is not installed: {INSTALL_HINT}")
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    with _LOCK:
        for _ in range(2):
            try:
                return _detect(_models(), rgb)
            except Exception as exc:  # a graph in error stays in error: build the graphs afresh, try once more
                _drop_models()
                failure = exc
    raise PeopleModelError(f"the people models failed in this process, twice ({type(failure).__name__}: "
                           f"{brief(str(failure))}); not the picture's fault: try it again") from failure


def _detect(models: _Models, rgb: np.ndarray) -> People:
    mask = models.person.process(rgb).segmentation_mask
    person = np.clip(np.asarray(mask, np.float32), 0.0, 1.0) if mask is not None else np.zeros(rgb.shape[:2],
                                                                                                np.float32)
    faces = []
    for det in models.faces.process(rgb).detections or []:
        b = det.location_data.relative_bounding_box
        x0, y0 = max(0.0, b.xmin), max(0.0, b.ymin)
        x1, y1 = min(1.0, b.xmin + b.width), min(1.0, b.ymin + b.height)
        if x1 > x0 and y1 > y0:
            faces.append((x0, y0, x1, y1, float(det.score[0])))
    hands = []
    if not faces and person.mean() < MIN_PERSON_SHARE:  # no one in the picture: skip the costliest model
        return People(person, faces, hands)
    with _quiet_stderr():  # the hand graph logs a note from C++ on every picture with a hand candidate
        found = models.hands.process(rgb)
    for marks, side in zip(found.multi_hand_landmarks or [], found.multi_handedness or []):
        points = np.array([(p.x, p.y, p.z) for p in marks.landmark], np.float32)
        if points.shape == (HAND_POINTS, 3) and np.isfinite(points).all():
            label = side.classification[0]
            hands.append(Hand(label.label, float(label.score), points))
    return People(person, faces, hands)

