"""The subject map as a cue, end to end: extract --subject-model stores one checked map per image, remembered by the
root; train reads it, suggest computes it with the same model, and a proposer refuses another model's maps.

The subject model is the tests' tiny ISNet-like export (it marks bright pixels); the encoder the tiny random CLIP."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from cropkit.cli import main
from cropkit.errors import CropkitError
from cropkit.extract.options import ExtractOptions
from cropkit.extract.pipeline import run_extract
from cropkit.features import subject
from cropkit.features.subject import SUBJECT_VERSION, SubjectMap
from cropkit.learn.proposer import CropProposer
from tests.conftest import TINY, TINY_CONFIG, tiny_args
from tests.features.test_subject import tiny_isnet
from tests.libgen import changed_entries, log_crops, make_library, snapshot, subject_library

pytestmark = pytest.mark.skipif(not subject.available(), reason="the subject extra (onnxruntime, onnx) is not "
                                "installed; make test installs it")
FEATURES = ["--arch", TINY, "--weights", "none", "--arch-config", str(TINY_CONFIG)]


@pytest.fixture
def lib(tmp_path):
    """A root with a generated library plus one blank (dark, subject-free) picture, its files checked byte-identical
    after (sidecars written then cleaned included)."""
    images = tmp_path / "data" / "training_data"
    make_library(images)
    Image.fromarray(np.full((200, 300, 3), 15, np.uint8)).save(images / "blank.jpg", quality=95)
    before = files(snapshot(images))
    yield tmp_path
    assert changed_entries(before, files(snapshot(images))) == {}, "the source library was modified"


def files(snap: dict) -> dict:
    """A snapshot's files and links: folders' times change when sidecars come and go beside the pictures."""
    return {name: entry for name, entry in snap.items() if entry[0] != "other"}


def extract(root, **kwargs):
    return run_extract(ExtractOptions(root=root, arch=TINY, weights="none", workers=0, progress=False, **kwargs),
                       log=lambda _: None)


def maps_of(root) -> dict:
    """subject_id -> {content hash: file}"""
    folder = root / "data/ai_data/cues/subject"
    return {d.name: {p.stem: p for p in d.glob("*.npy")} for d in folder.iterdir()} if folder.is_dir() else {}


def hash_of(root, name: str) -> str:
    for line in (root / "data/ai_data/cache/processed_files.jsonl").read_text().splitlines():
        entry = json.loads(line)
        if entry["path"].endswith(name):
            return entry["hash"]
    raise KeyError(name)


def test_extract_writes_one_checked_map_per_image_and_none_for_a_blank_one(lib):
    model = tiny_isnet(lib / "tiny.onnx")
    first = extract(lib, subject_model=str(model))
    assert first.processed == 7 and first.subject_id.startswith("tiny-")
    assert first.subject_id.endswith(f"-{SUBJECT_VERSION}-512")
    stored = maps_of(lib)[first.subject_id]
    assert len(stored) == 7
    for path in stored.values():
        SubjectMap.from_array(np.load(path))  # each one a valid map
    blank = SubjectMap.from_array(np.load(stored[hash_of(lib, "blank.jpg")]))
    assert not blank.found and not blank.mass.any()
    assert sum(SubjectMap.from_array(np.load(p)).found for p in stored.values()) >= 1
    mtimes = {p: p.stat().st_mtime_ns for p in stored.values()}
    again = extract(lib)  # remembered: no flag
    assert (again.processed, again.subjects_added, again.cached, again.subject_id) == (0, 0, 7, first.subject_id)
    assert {p: p.stat().st_mtime_ns for p in stored.values()} == mtimes


def test_a_cached_library_gains_the_maps_without_encoding_again(lib):
    before = extract(lib)
    assert before.processed == 7 and before.subject_id is None and maps_of(lib) == {}
    features = {p: p.stat().st_mtime_ns for p in (lib / "data/ai_data/embeddings").rglob("*.npy")}
    gained = extract(lib, subject_model=str(tiny_isnet(lib / "tiny.onnx")))
    assert (gained.processed, gained.subjects_added, gained.cached) == (0, 7, 7)
    assert "7 cached images gained subject maps" in "\n".join(gained.lines())
    assert len(maps_of(lib)[gained.subject_id]) == 7
    assert {p: p.stat().st_mtime_ns for p in (lib / "data/ai_data/embeddings").rglob("*.npy")} == features


def test_a_damaged_map_is_computed_again_never_trusted(lib):
    sid = extract(lib, subject_model=str(tiny_isnet(lib / "tiny.onnx"))).subject_id
    victim = maps_of(lib)[sid][hash_of(lib, "blank.jpg")]
    np.save(victim, np.full((32, 32), np.nan, np.float16))  # a whole .npy, but no map
    other = next(p for p in maps_of(lib)[sid].values() if p != victim)
    other.write_bytes(other.read_bytes()[:40])  # truncated
    rerun = extract(lib)
    assert (rerun.processed, rerun.subjects_added) == (0, 2)
    for path in (victim, other):
        SubjectMap.from_array(np.load(path))


def test_the_setting_is_remembered_and_a_gone_model_is_said_clearly(lib, capsys):
    model = tiny_isnet(lib / "tiny.onnx")
    assert main(tiny_args(lib, "--subject-model", str(model))) == 0
    settings = json.loads((lib / "data/ai_data/settings.json").read_text())
    assert settings["subject_model"] == str(model.resolve()) and settings["subject_id"].startswith("tiny-")
    os.remove(model)
    with pytest.raises(CropkitError, match=r"tiny\.onnx.*Put it back.*--subject-model none"):
        extract(lib)
    off = extract(lib, subject_model="none")
    assert off.subject_id is None and off.cached == 7
    assert json.loads((lib / "data/ai_data/settings.json").read_text())["subject_model"] == "none"
    assert extract(lib).subject_id is None  # "none" is remembered too


def test_sidecars_hold_the_subject_map_and_are_owned(lib, capsys):
    model = tiny_isnet(lib / "tiny.onnx")
    summary = extract(lib, subject_model=str(model), sidecars=True)
    images = lib / "data/training_data"
    sidecar = images / "blank.jpg.saliency.npy"
    assert sidecar.is_file() and not np.load(sidecar).any()  # no subject: the zero map, not the spectral saliency
    for name in ("blank.jpg", *[p.name for p in images.glob("*.jpg")]):
        stored = maps_of(lib)[summary.subject_id][hash_of(lib, name)]
        np.testing.assert_array_equal(np.load(images / f"{name}.saliency.npy"), np.load(stored))
    record = (lib / "data/ai_data/cache/sidecars.jsonl").read_text()
    assert "blank.jpg.saliency.npy" in record
    assert main(["clean-sidecars", str(images), "--root", str(lib)]) == 0
    assert not list(images.glob("*.saliency.npy"))  # the fixture checks the library is as it was


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """24 subject photos, extracted with the tiny subject model and trained once."""
    root = tmp_path_factory.mktemp("subject")
    photos = subject_library(root, 24, seed=300)
    log_crops(root, photos)
    model = tiny_isnet(root / "tiny.onnx")
    assert main([*tiny_args(root, "--subject-model", str(model))]) == 0
    assert main(["train", "--root", str(root), *FEATURES, "--steps", "60", "--no-progress", "--workers", "0"]) == 0
    return root


def test_train_records_the_subject_model_and_suggest_computes_maps_for_new_images(trained, capsys):
    path = trained / "data/ai_data/models/crop_proposer_v1.pth"
    proposer = CropProposer.load(path)
    sid = json.loads((trained / "data/ai_data/settings.json").read_text())["subject_id"]
    assert proposer.subject_id == sid
    assert proposer.net_config()["n_features"] == len(proposer.net_config()["feature_names"])
    assert proposer.net_config()["feature_names"][-1] == "subject_found"
    new = trained / "new.jpg"
    Image.fromarray(np.full((240, 320, 3), 40, np.uint8)).save(new)
    before = len(maps_of(trained)[sid])
    assert main(["suggest", "--root", str(trained), str(new), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert len(out["suggestions"]) >= 1
    assert len(maps_of(trained)[sid]) == before + 1


def test_a_proposer_refuses_a_root_whose_subject_model_changed(trained, tmp_path, capsys):
    other = tiny_isnet(tmp_path / "other.onnx", scale=20.0)
    settings = trained / "data/ai_data/settings.json"
    kept = settings.read_bytes()
    try:
        assert main(tiny_args(trained, "--subject-model", str(other))) == 0
        image = next((trained / "data/training_data").glob("*.jpg"))
        assert main(["suggest", "--root", str(trained), str(image)]) != 0
        said = capsys.readouterr().err
        assert "trained with subject maps of tiny-" in said and "gives other-" in said and "--subject-model" in said
        assert main(["suggest", "--root", str(trained), "--subject-model", "none", str(image)]) != 0
        assert "subject model gives none" in capsys.readouterr().err
        assert main(["suggest", "--root", str(trained), "--subject-model", str(trained / "tiny.onnx"),
                     str(image)]) == 0  # naming the model it was trained with is enough
    finally:
        settings.write_bytes(kept)


def test_a_proposer_of_another_subject_version_is_refused_clearly(trained, tmp_path):
    payload = torch.load(trained / "data/ai_data/models/crop_proposer_v1.pth", weights_only=True)
    payload["meta"]["subject"] = payload["meta"]["subject"].replace(f"-{SUBJECT_VERSION}-", "-s0-")
    forged = tmp_path / "crop_proposer_v9.pth"
    buf = io.BytesIO()
    torch.save(payload, buf)
    forged.write_bytes(buf.getvalue())
    with pytest.raises(CropkitError, match=rf"subject maps s0 .* makes subject maps {SUBJECT_VERSION}: train again"):
        CropProposer.load(forged)
    payload["meta"].pop("subject")  # subject features without a subject model named: not a usable proposer
    buf = io.BytesIO()
    torch.save(payload, buf)
    forged.write_bytes(buf.getvalue())
    with pytest.raises(CropkitError, match="subject features and its metadata"):
        CropProposer.load(forged)
