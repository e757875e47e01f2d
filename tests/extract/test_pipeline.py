"""cropkit extract end to end, in process: cache, resume, --force, --max-images, models apart, bad inputs."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

import cropkit.extract.prepare
from cropkit.cli import main
from cropkit.extract.options import ExtractOptions
from cropkit.extract.pipeline import run_extract
from cropkit.extract.sidecars import SIDECAR_SUFFIXES, clean_sidecars
from cropkit.features.cues import CueStore
from cropkit.features.encoders.base import FEATURE_BUDGET_BYTES
from cropkit.features.store import FeatureStore
from cropkit.fileio import read_jsonl
from tests.conftest import TINY, tiny_args
from tests.libgen import make_library, save_photo, snapshot

RANDOM_ID = f"{TINY}/random-init-seed0"


def cache_lines(root: Path) -> list[dict]:
    return [obj for _, obj in read_jsonl(root / "data/ai_data/cache/processed_files.jsonl")]


def latest(root: Path, model: str = RANDOM_ID) -> dict[str, dict]:
    return {e["path"]: e for e in cache_lines(root) if e["model"] == model}


def extract(root: Path, capsys, *extra: str) -> str:
    assert main(tiny_args(root, *extra)) == 0
    return capsys.readouterr().out


def count_reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Record every source file that extraction opens (decoding runs in process with --workers 0)."""
    opened: list[Path] = []
    real = cropkit.extract.prepare.read_source_bytes

    def spy(path, *args, **kwargs):
        opened.append(Path(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(cropkit.extract.prepare, "read_source_bytes", spy)
    return opened


def test_extract_writes_features_and_one_cache_line_per_image(root: Path, capsys):
    out = extract(root, capsys)
    assert "processed:  6 images" in out and "failed:     0" in out
    entries = latest(root)
    assert len(entries) == 6
    store = FeatureStore(root / "data/ai_data/embeddings", RANDOM_ID)
    for rel, e in entries.items():
        assert rel.startswith("data/training_data/") and e["status"] == "ok" and e["error"] is None
        source = root / rel
        assert e["size"] == source.stat().st_size and e["mtime_ns"] == source.stat().st_mtime_ns
        assert len(e["hash"]) == 64 and len(e["phash"]) == 16
        assert e["shapes"] == {"global": [32], "grid": [4, 4, 32]}
        with Image.open(source) as img:
            assert (e["width"], e["height"]) == img.size
        feats = store.load(e["hash"])
        assert feats.global_emb.shape == (32,) and feats.grid.shape == (4, 4, 32)
        assert abs(np.linalg.norm(feats.global_emb) - 1) < 1e-2
        assert store.path_for(e["hash"]).stat().st_size <= FEATURE_BUDGET_BYTES
        cues = CueStore(root / "data/ai_data/cues").load(e["hash"])
        assert cues.saliency.shape == (32, 32) and abs(cues.saliency.sum() - 1) < 1e-6
    new_files = [p for p in root.rglob("*") if p.is_file() and "training_data" not in p.parts]
    assert new_files and all(p.is_relative_to(root / "data/ai_data") for p in new_files)


def test_rerun_skips_unchanged_files_without_opening_them(root: Path, capsys, monkeypatch):
    extract(root, capsys)
    opened = count_reads(monkeypatch)
    monkeypatch.setattr("cropkit.features.encoders.build_encoder", None)  # a rerun with nothing to do needs no model
    out = extract(root, capsys)
    assert opened == []
    assert "processed:  0 new images" in out and "images/s" not in out and "cached:     6" in out
    assert len(cache_lines(root)) == 6


def test_force_recomputes_everything(root: Path, capsys, monkeypatch):
    extract(root, capsys)
    opened = count_reads(monkeypatch)
    out = extract(root, capsys, "--force")
    assert len(opened) == 6 and "processed:  6 images" in out
    assert len(cache_lines(root)) == 12


def test_a_changed_file_is_recomputed(tmp_path: Path, capsys, monkeypatch):
    images = tmp_path / "data/training_data"
    a = save_photo(images / "a.jpg", seed=1)
    save_photo(images / "b.jpg", seed=2)
    extract(tmp_path, capsys)
    old_hash = latest(tmp_path)["data/training_data/a.jpg"]["hash"]
    save_photo(a, seed=3)  # the photographer re-exported a.jpg
    os.utime(a, ns=(a.stat().st_atime_ns, a.stat().st_mtime_ns + 10**9))
    opened = count_reads(monkeypatch)
    out = extract(tmp_path, capsys)
    assert opened == [a] and "processed:  1 images" in out and "cached:     1" in out
    assert latest(tmp_path)["data/training_data/a.jpg"]["hash"] != old_hash


def test_max_images_limits_new_work_and_a_rerun_continues(root: Path, capsys):
    out = extract(root, capsys, "--max-images", "4")
    assert "processed:  4 images" in out and "not yet processed (--max-images): 2" in out
    out = extract(root, capsys, "--max-images", "4")
    assert "processed:  2 images" in out and "cached:     4" in out
    assert len(latest(root)) == 6


def test_two_models_features_never_mix(root: Path, capsys, tmp_path_factory):
    extract(root, capsys)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(42)
        other = open_clip.create_model(TINY)
    ckpt = tmp_path_factory.mktemp("weights") / "other.pt"
    torch.save(other.state_dict(), ckpt)
    args = tiny_args(root)
    args[args.index("--weights") + 1] = str(ckpt)
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "processed:  6 images" in out  # the first model's cache does not count for this one
    lines = cache_lines(root)
    models = {e["model"] for e in lines}
    assert len(models) == 2 and RANDOM_ID in models
    other_id = (models - {RANDOM_ID}).pop()
    assert other_id.startswith(f"{TINY}/file:other.pt#")
    emb = root / "data/ai_data/embeddings"
    a, b = FeatureStore(emb, RANDOM_ID), FeatureStore(emb, other_id)
    assert a.folder != b.folder and len(list(a.folder.iterdir())) == len(list(b.folder.iterdir())) == 6
    for e in latest(root).values():
        assert not np.allclose(a.load(e["hash"]).global_emb, b.load(e["hash"]).global_emb, atol=1e-2)


def test_identical_content_is_encoded_once(tmp_path: Path, capsys):
    images = tmp_path / "data/training_data"
    save_photo(images / "a.jpg", seed=1)
    shutil.copyfile(images / "a.jpg", images / "copy of a.jpg")
    out = extract(tmp_path, capsys)
    entries = latest(tmp_path)
    assert len(entries) == 2 and len({e["hash"] for e in entries.values()}) == 1
    assert "1 of them duplicates" in out
    assert len(list((tmp_path / "data/ai_data/embeddings").rglob("*.npy"))) == 1


def test_worker_processes_give_the_same_features_as_in_process(root: Path, capsys):
    extract(root, capsys)
    store = FeatureStore(root / "data/ai_data/embeddings", RANDOM_ID)
    before = {p.name: p.read_bytes() for p in store.folder.iterdir()}
    args = tiny_args(root, "--force")
    args[args.index("--workers") + 1] = "2"
    assert main(args) == 0
    assert {p.name: p.read_bytes() for p in store.folder.iterdir()} == before


def test_run_extract_is_the_same_function_notebooks_call(root: Path):
    summary = run_extract(ExtractOptions(root=root, arch=TINY, weights="none", workers=0, progress=False),
                          log=lambda _msg: None)
    assert summary.processed == 6 and summary.untrained and summary.encoder_id == RANDOM_ID
    assert summary.images_per_s > 0


def test_untrained_encoder_is_announced_loudly(root: Path, capsys):
    assert main(tiny_args(root)) == 0
    captured = capsys.readouterr()
    assert "UNTRAINED ENCODER" in captured.err
    assert "UNTRAINED" in captured.out and "random-init" in captured.out


def test_missing_images_folder_is_a_clear_error(tmp_path: Path, capsys):
    assert main(tiny_args(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "images folder not found" in err and "--images" in err
    assert not (tmp_path / "data").exists()


def test_corrupt_cache_lines_are_reported_and_do_not_stop_the_run(root: Path, capsys):
    extract(root, capsys)
    cache = root / "data/ai_data/cache/processed_files.jsonl"
    with open(cache, "ab") as f:
        f.write(json.dumps({"path": "x", "size": "big", "model": RANDOM_ID}).encode() + b'\n{"torn": tr')
    out = extract(root, capsys)
    assert "cached:     6" in out and "2 unreadable cache lines ignored" in out
    extract(root, capsys, "--force", "--max-images", "1")
    assert json.loads(cache.read_bytes().splitlines()[-1])["status"] == "ok"


def test_sidecars_are_new_files_beside_images_and_clean_sidecars_removes_exactly_them(tmp_path: Path, capsys):
    root, images = tmp_path, tmp_path / "data/training_data"
    make_library(images)  # not the `root` fixture: sidecars are meant to change this library's folders
    photo = sorted(images.rglob("*.jpg"))[0]
    foreign = root / "foreign.txt"
    foreign.write_text("not cropkit's")
    os.symlink(foreign, photo.with_name(photo.name + ".phash"))  # a name taken by something not a sidecar
    before = snapshot(images)
    out = extract(root, capsys, "--sidecars")
    assert "sidecars:   refused: 1, written: 23" in out  # 6 images: 4 kinds each, one .phash name taken
    assert foreign.read_text() == "not cropkit's"
    after = snapshot(images)
    added = set(after) - set(before)
    assert len(added) == 23 and all(n.endswith(SIDECAR_SUFFIXES) for n in added)
    assert all(before[n] == after[n] for n in before if before[n][0] != "other")  # folders' mtimes aside
    store = FeatureStore(root / "data/ai_data/embeddings", RANDOM_ID)
    cue_store = CueStore(root / "data/ai_data/cues")
    for rel, e in latest(root).items():
        side = root / (rel + ".embedding.npy")
        np.testing.assert_array_equal(np.load(side), store.load(e["hash"]).global_emb.astype(np.float16))
        if (root / (rel + ".phash")).is_file() and not (root / (rel + ".phash")).is_symlink():
            assert (root / (rel + ".phash")).read_text().strip() == e["phash"]
        cues = cue_store.load(e["hash"])
        np.testing.assert_array_equal(np.load(root / (rel + ".saliency.npy")), cues.saliency.astype(np.float16))
        assert json.loads((root / (rel + ".hands.json")).read_text()) == cues.hands_json()
    assert "unchanged: 23" in extract(root, capsys, "--sidecars")
    dry = clean_sidecars(images, root / "data/ai_data", dry_run=True)
    assert dry.lines()[-1] == f"would delete 23 sidecar files under {images}; left 1 (listed above)"
    assert snapshot(images) == after
    report = clean_sidecars(images, root / "data/ai_data")
    assert report.deleted == dry.deleted and len(report.deleted) == 23
    assert report.left == [(photo.with_name(photo.name + ".phash"), "not written by cropkit (or written before "
                            "cropkit kept a record): delete it yourself if unwanted")]
    final = snapshot(images)
    assert {n: v for n, v in final.items() if v[0] != "other"} == {
        n: v for n, v in before.items() if v[0] != "other"}


def test_failing_runs_leave_the_library_untouched_and_write_nothing(root: Path, capsys, tmp_path_factory):
    evil = tmp_path_factory.mktemp("w") / "evil.pth"
    evil.write_bytes(b"PK\x03\x04 not really a checkpoint")
    for pretrained, message in ((str(evil), "cannot load"), ("no-such-tag", "known tags")):
        args = tiny_args(root)
        args[args.index("--weights") + 1] = pretrained
        assert main(args) == 2
        assert message in capsys.readouterr().err
    assert not (root / "data/ai_data/embeddings").exists() or not any((root / "data/ai_data/embeddings").rglob("*"))


def test_decode_workers_run_at_lower_priority_than_the_encoder():
    """A preempted encoder thread stalls its siblings; workers are niced so the encoder keeps its cores."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from cropkit.extract.pipeline import _decode_worker_init

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=ctx, initializer=_decode_worker_init) as pool:
        worker_nice = pool.submit(os.nice, 0).result()
    assert worker_nice >= os.nice(0) + 10 or worker_nice == 19


def test_a_library_gains_new_cues_without_recomputing_clip_features(root: Path, capsys, monkeypatch):
    extract(root, capsys)
    ai = root / "data/ai_data"
    shutil.rmtree(ai / "cues/v2")  # as a library extracted before cues v2 existed has them
    (ai / "cues/v1").mkdir()
    features = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (ai / "embeddings").rglob("*.npy")}
    cache_before = (ai / "cache/processed_files.jsonl").read_bytes()

    def no_encoder(*args, **kwargs):
        raise AssertionError("the encoder was loaded for cues alone")

    monkeypatch.setattr("cropkit.features.encoders.build_encoder", no_encoder)
    out = extract(root, capsys)
    assert "cues:       6 cached images gained cues v2 (their CLIP features were kept)" in out
    assert "cached:     6" in out and "processed:  0 new images" in out
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (ai / "embeddings").rglob("*.npy")} == features
    assert (ai / "cache/processed_files.jsonl").read_bytes() == cache_before
    store = CueStore(ai / "cues")
    assert all(store.is_whole(e["hash"]) for e in latest(root).values())
    assert "gained" not in extract(root, capsys)  # and only once
