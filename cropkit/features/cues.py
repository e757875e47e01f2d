"""Composition cues from pixels, versioned: where the eye goes, what is in focus, who is in the picture.

Every cue is a map on a CUE_SIDE x CUE_SIDE grid over the whole frame, computed once at extraction from the
same reduced decode as the CLIP input. The weight-free maps (spectral-residual saliency, edges, focus, colour
contrast) always exist; the people maps (person mask, faces, hands) come from MediaPipe's models when it is
installed (see cropkit.features.people), and the cue version names which of the two a file holds, so a proposer
is never fed cues of a kind it was not trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from cropkit.features import people
from cropkit.features.people import HAND_POINTS, Hand
from cropkit.features.store import NpyStore
from cropkit.features.subject import SubjectMap

CUE_SIDE = 32
CHANNELS = ("saliency", "edges", "focus", "contrast", "person", "faces", "hands")
CUES_SHAPE = (len(CHANNELS), CUE_SIDE, CUE_SIDE)
PEOPLE_CHANNELS = ("person", "faces", "hands")
PEOPLE_SIDE = 512  # the people models see the reduced decode at most this large
CUE_DECODE_SIZE = 224  # the reduced decode for cues alone (a cached library gaining a new cue version)


def cue_version() -> str:
    """The cue version this installation computes: 'v2' with the people models, 'v2-nopeople' without."""
    return "v2" if people.available() else "v2-nopeople"


def _box_blur_axis(a: np.ndarray, radius: int, axis: int) -> np.ndarray:
    n = 2 * radius + 1
    pad = [(0, 0), (0, 0)]
    pad[axis] = (radius + 1, radius)
    c = np.cumsum(np.pad(a, pad, mode="edge"), axis=axis)
    hi = np.take(c, range(n, c.shape[axis]), axis=axis)
    lo = np.take(c, range(0, c.shape[axis] - n), axis=axis)
    return (hi - lo) / n


def _blur(a: np.ndarray, radius: int) -> np.ndarray:
    """Separable box blur, applied twice (close to a Gaussian), with edge padding."""
    for _ in range(2):
        a = _box_blur_axis(_box_blur_axis(a, radius, 0), radius, 1)
    return a


def _mass(a: np.ndarray) -> np.ndarray:
    """Non-negative, summing to 1 (uniform when empty)."""
    a = np.maximum(a, 0.0)
    total = a.sum()
    return a / total if total > 0 else np.full_like(a, 1.0 / a.size)


def _pool(a: np.ndarray, side: int = CUE_SIDE) -> np.ndarray:
    """Mean of ``a`` over a side x side grid (any input size)."""
    if a.shape == (side, side):
        return a.astype(np.float64)
    img = Image.fromarray(np.asarray(a, np.float32), mode="F").resize((side, side), Image.Resampling.BOX)
    return np.asarray(img, np.float64)


def spectral_residual_saliency(gray: np.ndarray) -> np.ndarray:
    """Hou & Zhang's spectral residual saliency of a small grayscale array, normalised to sum 1."""
    f = np.fft.fft2(gray - gray.mean())
    log_amp = np.log(np.abs(f) + 1e-8)
    residual = log_amp - _blur(log_amp, 1)
    sal = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(f)))) ** 2
    return _mass(_blur(sal, 2))


def edge_energy(gray: np.ndarray) -> np.ndarray:
    """Gradient magnitude, normalised to mean 1."""
    gy, gx = np.gradient(gray)
    mag = np.hypot(gx, gy)
    m = mag.mean()
    return mag / m if m > 0 else np.ones_like(mag)


def focus_energy(gray: np.ndarray) -> np.ndarray:
    """Where the picture is sharp: local Laplacian energy, summing to 1. An in-focus subject against a defocused
    background (portraits, macro) carries most of it."""
    lap = np.abs(4 * gray[1:-1, 1:-1] - gray[:-2, 1:-1] - gray[2:, 1:-1] - gray[1:-1, :-2] - gray[1:-1, 2:])
    return _mass(_blur(np.pad(lap, 1, mode="edge") ** 2, 2))


_SRGB_TO_XYZ = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
_WHITE = np.array([0.9505, 1.0, 1.089])  # D65


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of an (..., 3) uint8 sRGB array (numpy: Pillow's LAB mode takes 40 times longer)."""
    c = rgb.astype(np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    t = (linear @ _SRGB_TO_XYZ.T) / _WHITE
    f = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def colour_contrast(rgb: np.ndarray) -> np.ndarray:
    """How far each place's colour (CIELAB) is from the frame border's median colour, summing to 1; ``rgb`` is an
    (H, W, 3) uint8 array."""
    lab = srgb_to_lab(rgb)
    h, w = lab.shape[:2]
    b = max(1, round(0.08 * min(h, w)))
    border = np.concatenate([lab[:b].reshape(-1, 3), lab[-b:].reshape(-1, 3),
                             lab[:, :b].reshape(-1, 3), lab[:, -b:].reshape(-1, 3)])
    distance = np.sqrt(((lab - np.median(border, axis=0)) ** 2).sum(-1))
    return _mass(_blur(distance, 1) ** 2)


def _boxes_map(boxes: list[tuple[float, float, float, float, float]], side: int = CUE_SIDE) -> np.ndarray:
    """Coverage of each cell by score-weighted boxes (fractions of the frame), at most 1."""
    out = np.zeros((side, side))
    edges = np.arange(side + 1) / side
    for x0, y0, x1, y1, score in boxes:
        cover_x = np.clip(np.minimum(edges[1:], x1) - np.maximum(edges[:-1], x0), 0, None) * side
        cover_y = np.clip(np.minimum(edges[1:], y1) - np.maximum(edges[:-1], y0), 0, None) * side
        out += score * cover_y[:, None] * cover_x[None, :]
    return np.minimum(out, 1.0)


def _hand_box(hand: Hand, pad: float = 0.15) -> tuple[float, float, float, float, float]:
    x, y = hand.keypoints[:, 0], hand.keypoints[:, 1]
    px, py = pad * (x.max() - x.min()), pad * (y.max() - y.min())
    return (float(x.min() - px), float(y.min() - py), float(x.max() + px), float(y.max() + py), hand.score)


@dataclass(frozen=True)
class Cues:
    """The cue maps of one picture (CHANNELS, each CUE_SIDE x CUE_SIDE) and its hands' keypoints.

    saliency, focus and contrast sum to 1; edges has mean 1; person, faces and hands are coverages in 0..1
    (zeros where nothing was found, or where the people models were not run: see ``version``).
    """

    maps: np.ndarray  # (len(CHANNELS), side, side) float64
    hands: tuple[Hand, ...] = ()
    version: str = "v2"
    subject: SubjectMap | None = None  # from the root's subject model (kept apart: cropkit.features.subject)
    subject_id: str | None = None  # the model that made ``subject``; None when there is none

    def channel(self, name: str) -> np.ndarray:
        return self.maps[CHANNELS.index(name)]

    @property
    def saliency(self) -> np.ndarray:
        return self.maps[0]

    @property
    def edges(self) -> np.ndarray:
        return self.maps[1]

    def to_array(self) -> np.ndarray:
        """(len(CHANNELS), side, side) float16, for a cue file."""
        return self.maps.astype(np.float16)

    def hands_array(self) -> np.ndarray:
        """(hands, 1 + 21, 3) float16: a row (1 for a right hand else 0, score, 0), then the keypoints."""
        rows = [np.vstack([[1.0 if h.handedness == "Right" else 0.0, h.score, 0.0], h.keypoints])
                for h in self.hands]
        return np.array(rows, np.float16).reshape(-1, 1 + HAND_POINTS, 3)

    def hands_json(self) -> dict:
        """The hands for a ``.hands.json`` sidecar: x and y as fractions of the upright frame."""
        return {"hands": [{"handedness": h.handedness, "score": round(float(h.score), 4),
                           "keypoints": np.round(h.keypoints.astype(float), 4).tolist()} for h in self.hands]}

    @classmethod
    def from_arrays(cls, maps: np.ndarray, hands: np.ndarray | None = None, version: str | None = None) -> Cues:
        """Cues from a cue file's arrays (of this installation's version unless named); raises ValueError when
        they are not cues of this version's shape."""
        if maps.shape[:1] != (len(CHANNELS),) or maps.ndim != 3 or maps.shape[1] != maps.shape[2] \
                or not np.isfinite(maps).all():
            raise ValueError(f"cue array of shape {maps.shape} is not ({len(CHANNELS)}, side, side): cues of "
                             f"another version")
        if hands is None:
            hands = np.zeros((0, 1 + HAND_POINTS, 3), np.float16)
        if hands.ndim != 3 or hands.shape[1:] != (1 + HAND_POINTS, 3) or not np.isfinite(hands).all():
            raise ValueError(f"hand array of shape {hands.shape} is not (hands, {1 + HAND_POINTS}, 3)")
        out = maps.astype(np.float64)
        for name in ("saliency", "focus", "contrast"):
            out[CHANNELS.index(name)] = _mass(out[CHANNELS.index(name)])
        found = tuple(Hand("Right" if h[0, 0] > 0.5 else "Left", float(h[0, 1]), h[1:].astype(np.float32))
                      for h in hands)
        return cls(out, found, version or cue_version())


def compute_cues(img: Image.Image, with_people: bool | None = None) -> Cues:
    """Cues of a decoded upright image (any size; the whole frame is squashed to the cue grid). The people
    maps are computed when MediaPipe is installed, unless ``with_people`` says otherwise."""
    with_people = people.available() if with_people is None else with_people
    rgb = img.convert("RGB")
    gray_small = np.asarray(rgb.convert("L").resize((2 * CUE_SIDE, 2 * CUE_SIDE), Image.Resampling.BILINEAR,
                                                    reducing_gap=2.0), np.float64) / 255.0
    gray_fine = np.asarray(rgb.convert("L").resize((4 * CUE_SIDE, 4 * CUE_SIDE), Image.Resampling.BILINEAR,
                                                   reducing_gap=2.0), np.float64) / 255.0
    maps = np.zeros(CUES_SHAPE)
    maps[0] = spectral_residual_saliency(gray_small).reshape(CUE_SIDE, 2, CUE_SIDE, 2).sum(axis=(1, 3))
    maps[1] = edge_energy(gray_small).reshape(CUE_SIDE, 2, CUE_SIDE, 2).mean(axis=(1, 3))
    maps[2] = _mass(_pool(focus_energy(gray_fine)))
    small_rgb = np.asarray(rgb.resize((2 * CUE_SIDE, 2 * CUE_SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0))
    maps[3] = _mass(_pool(colour_contrast(small_rgb)))
    hands: tuple[Hand, ...] = ()
    if with_people:
        small = rgb.copy()
        small.thumbnail((PEOPLE_SIDE, PEOPLE_SIDE), Image.Resampling.BILINEAR)
        seen = people.detect_people(np.asarray(small))
        hands = tuple(seen.hands)
        maps[4] = np.clip(_pool(seen.person), 0.0, 1.0)
        maps[5] = _boxes_map(seen.faces)
        maps[6] = _boxes_map([_hand_box(h) for h in hands])
    return Cues(maps, hands, "v2" if with_people else "v2-nopeople")


class CueStore:
    """The cue files of one version under ``data/ai_data/cues/<version>``: maps, and hands beside them."""

    def __init__(self, cues_root: Path, version: str | None = None):
        self.version = version or cue_version()
        self.maps = NpyStore(cues_root / self.version)
        self.hands = NpyStore(cues_root / self.version / "hands")

    @property
    def folders(self) -> tuple[Path, Path]:
        return self.maps.folder, self.hands.folder

    def is_whole(self, content_hash: str) -> bool:
        """The maps complete and of this version's shape (checked from the header, without reading the data):
        anything else is computed again. The hands file is written first, so whole maps mean it was written;
        a hands file damaged since makes ``load`` fail, and the picture is computed again there."""
        return self.maps.is_whole(content_hash, CUES_SHAPE)

    def write(self, content_hash: str, cues: Cues) -> None:
        """Hands first, maps last: a kill in between leaves the maps missing, so the pair is redone."""
        if cues.version != self.version:
            raise ValueError(f"cues {cues.version} do not belong in the {self.version} store")
        self.hands.write(content_hash, cues.hands_array())
        self.maps.write(content_hash, cues.to_array())

    def load(self, content_hash: str, hands: bool = True) -> Cues:
        """Read one picture's cues (its hands' keypoints only when asked: the learner reads the maps alone);
        raises ValueError (saying what to do) when a file is corrupt or missing."""
        maps = self.maps.load_array(content_hash)
        hands = self.hands.load_array(content_hash) if hands else None
        try:
            return Cues.from_arrays(maps, hands, self.version)
        except ValueError as exc:
            raise ValueError(f"corrupt cue files for {content_hash} in {self.maps.folder}: {exc}; delete them "
                             "and rerun cropkit extract") from None
