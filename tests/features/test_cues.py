"""Composition cues v2 on pictures with a known answer: focus, contrast, people (MediaPipe's models), the store."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from cropkit.features import people
from cropkit.features.cues import CHANNELS, CUES_SHAPE, Cues, CueStore, compute_cues, cue_version
from cropkit.features.people import Hand

skimage_data = pytest.importorskip("skimage.data", reason="the sample extra (scikit-image) holds the real photos")


def mass_inside(m: np.ndarray, box: tuple[float, float, float, float]) -> float:
    n = m.shape[0]
    x0, y0, x1, y1 = (round(v * n) for v in box)
    return float(m[y0:y1, x0:x1].sum() / m.sum())


def test_the_people_models_are_installed_by_the_setup_command():
    # `make` installs cropkit[people]; without it the cues say so in their version (see the next tests)
    assert people.available() and cue_version() == "v2"


def test_focus_finds_the_sharp_patch_on_a_defocused_background():
    rng = np.random.default_rng(0)
    texture = Image.fromarray(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8))
    img = texture.filter(ImageFilter.GaussianBlur(8))
    img.paste(texture.crop((250, 60, 370, 180)), (250, 60))  # in focus: x 0.62-0.92, y 0.2-0.6
    focus = compute_cues(img, with_people=False).channel("focus")
    assert focus.sum() == pytest.approx(1.0)
    assert mass_inside(focus, (0.62, 0.2, 0.93, 0.6)) > 0.8  # a box of 12% of the frame


def test_colour_contrast_finds_what_differs_from_the_border():
    img = Image.new("RGB", (400, 300), (120, 130, 120))
    ImageDraw.Draw(img).rectangle((40, 150, 140, 280), fill=(220, 30, 160))  # x 0.1-0.35, y 0.5-0.93
    contrast = compute_cues(img, with_people=False).channel("contrast")
    assert mass_inside(contrast, (0.08, 0.47, 0.37, 0.96)) > 0.8


def test_faces_and_the_person_are_found_in_a_real_portrait():
    cues = compute_cues(Image.fromarray(skimage_data.astronaut()))  # Eileen Collins, face in the upper middle
    assert cues.version == "v2"
    faces, person = cues.channel("faces"), cues.channel("person")
    ys, xs = np.nonzero(faces > 0.5)
    assert len(xs) > 10 and 0.3 < xs.mean() / 32 < 0.6 and 0.1 < ys.mean() / 32 < 0.45
    assert mass_inside(person, (0.0, 0.0, 0.8, 1.0)) > 0.9  # she sits left of the flag
    assert mass_inside(cues.channel("focus"), (0, 0, 1, 1)) == pytest.approx(1.0)


def test_a_picture_without_people_has_empty_people_maps():
    rng = np.random.default_rng(1)
    img = Image.fromarray(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)).filter(ImageFilter.GaussianBlur(3))
    cues = compute_cues(img)
    for name in ("faces", "hands"):
        assert not cues.channel(name).any()
    assert cues.hands == () and cues.hands_json() == {"hands": []}


def test_cues_round_trip_through_the_store_with_their_hands(tmp_path):
    rng = np.random.default_rng(2)
    maps = rng.random(CUES_SHAPE)
    hand = Hand("Right", 0.93, rng.random((21, 3)).astype(np.float32))
    cues = Cues.from_arrays(maps, Cues(maps, (hand,)).hands_array(), "v2")
    store = CueStore(tmp_path / "cues", "v2")
    store.write("ab" * 32, cues)
    assert store.is_whole("ab" * 32) and store.maps.folder == tmp_path / "cues/v2"
    back = store.load("ab" * 32)
    np.testing.assert_allclose(back.maps, cues.maps, rtol=2e-3, atol=1e-4)  # float16 on disk
    assert [h.handedness for h in back.hands] == ["Right"] and back.hands[0].score == pytest.approx(0.93, abs=1e-3)
    np.testing.assert_allclose(back.hands[0].keypoints, hand.keypoints, atol=1e-3)
    assert back.hands_json()["hands"][0]["keypoints"][0] == pytest.approx(list(hand.keypoints[0]), abs=1e-3)
    with pytest.raises(ValueError, match="another version"):
        Cues.from_arrays(maps[:2])  # a v1 file: saliency and edges only
    with pytest.raises(ValueError, match="do not belong"):
        CueStore(tmp_path / "cues", "v2-nopeople").write("cd" * 32, cues)
    assert len(CHANNELS) == CUES_SHAPE[0]


def test_the_array_reader_takes_plain_arrays_only(tmp_path):
    from cropkit.features.store import npy_bytes, npy_is_whole, read_npy

    good = tmp_path / "good.npy"
    good.write_bytes(npy_bytes(np.arange(12, dtype=np.float16).reshape(3, 4)))
    np.testing.assert_array_equal(read_npy(good), np.arange(12, dtype=np.float16).reshape(3, 4))
    assert npy_is_whole(good, (3, 4)) and not npy_is_whole(good, (4, 3))
    cases = {
        "objects": lambda f: np.save(f, np.array([{"a": 1}], dtype=object), allow_pickle=True),
        "fortran": lambda f: np.save(f, np.asfortranarray(np.ones((3, 4), np.float16))),
        "cut": lambda f: f.write(good.read_bytes()[:-3]),
        "trailing": lambda f: f.write(good.read_bytes() + b"x"),
        "huge": lambda f: f.write(good.read_bytes().replace(b"(3, 4)", b"(99999999999999999999, 4)")),
        "text": lambda f: f.write(b"not numpy at all"),
    }
    for name, write in cases.items():
        path = tmp_path / f"{name}.npy"
        with open(path, "wb") as f:
            write(f)
        with pytest.raises(ValueError):
            read_npy(path)
        assert not npy_is_whole(path)
    fifo = tmp_path / "pipe.npy"
    os.mkfifo(fifo)
    assert not npy_is_whole(fifo)  # never waits on a pipe
    with pytest.raises(OSError):
        read_npy(fifo)
