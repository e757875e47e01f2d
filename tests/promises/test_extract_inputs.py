"""extract on odd inputs: names that are not UTF-8, damaged feature files, absurd worker counts, a fully cached
rerun (issue 11, findings 8, 11, 17 and 20)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import cropkit.extract.pipeline
from cropkit.cli import main
from cropkit.errors import CropkitError
from cropkit.extract.options import ExtractOptions
from cropkit.extract.pipeline import default_workers, run_extract
from cropkit.features.store import FeatureStore
from cropkit.fileio import read_jsonl
from cropkit.layout import Layout
from tests.conftest import TINY, tiny_args
from tests.libgen import save_photo

RANDOM_ID = f"{TINY}/random-init-seed0"


def ok_lines(root: Path) -> dict[str, dict]:
    return {obj["path"]: obj for _, obj in read_jsonl(root / "data/ai_data/cache/processed_files.jsonl")
            if obj["status"] == "ok"}


def test_a_latin1_file_name_is_processed_and_the_files_after_it_too(tmp_path: Path, capsys):
    images = tmp_path / "data" / "training_data"
    images.mkdir(parents=True)
    latin1 = Path(os.fsdecode(bytes(images) + b"/caf\xe9.jpg"))  # café.jpg written by a Latin-1 system
    save_photo(latin1, 64, 48, seed=1)
    save_photo(images / "zebra.jpg", 64, 48, seed=2)
    assert main(tiny_args(tmp_path)) == 0
    assert "processed:  2 images" in capsys.readouterr().out
    lines = ok_lines(tmp_path)
    assert len(lines) == 2
    names = {Layout.from_args(tmp_path).image_path(name) for name in lines}  # each recorded name finds its file
    assert names == {latin1, images / "zebra.jpg"}
    assert (tmp_path / "data/ai_data/cache/processed_files.jsonl").read_bytes().decode("utf-8")  # valid UTF-8
    assert main(tiny_args(tmp_path)) == 0  # the rerun reads those lines back
    assert "cached:     2" in capsys.readouterr().out


def test_a_truncated_feature_file_is_recomputed_not_taken_from_the_cache(tmp_path: Path, capsys):
    images = tmp_path / "data" / "training_data"
    for i in range(3):
        save_photo(images / f"p{i}.jpg", 64, 48, seed=i)
    assert main(tiny_args(tmp_path)) == 0
    store = FeatureStore(tmp_path / "data/ai_data/embeddings", RANDOM_ID)
    entry = ok_lines(tmp_path)["data/training_data/p1.jpg"]
    whole = store.path_for(entry["hash"]).read_bytes()
    store.path_for(entry["hash"]).write_bytes(whole[: len(whole) // 2])
    capsys.readouterr()

    assert main(tiny_args(tmp_path, "--sidecars")) == 0
    out = capsys.readouterr().out
    assert "processed:  1 images" in out and "cached:     2" in out
    assert store.path_for(entry["hash"]).read_bytes() == whole  # repaired, with the same features
    np.testing.assert_array_equal(np.load(images / "p1.jpg.embedding.npy"), store.load(entry["hash"]).global_emb
                                  .astype(np.float16))


def test_a_plain_rerun_repairs_a_truncated_feature_file_too(tmp_path: Path, capsys):
    images = tmp_path / "data" / "training_data"
    save_photo(images / "p.jpg", 64, 48)
    assert main(tiny_args(tmp_path)) == 0
    (entry,) = ok_lines(tmp_path).values()
    store = FeatureStore(tmp_path / "data/ai_data/embeddings", RANDOM_ID)
    whole = store.path_for(entry["hash"]).read_bytes()
    store.path_for(entry["hash"]).write_bytes(whole[:100])
    assert main(tiny_args(tmp_path)) == 0
    assert store.path_for(entry["hash"]).read_bytes() == whole


def test_workers_are_capped_to_the_cores_and_negative_counts_refused(tmp_path: Path, monkeypatch):
    images = tmp_path / "data" / "training_data"
    for i in range(3):
        save_photo(images / f"p{i}.jpg", 64, 48, seed=i)
    pools: list[int] = []
    real_pool = cropkit.extract.pipeline.ProcessPoolExecutor

    def recording_pool(max_workers, **kwargs):
        pools.append(max_workers)
        return real_pool(max_workers, **kwargs)

    monkeypatch.setattr(cropkit.extract.pipeline, "ProcessPoolExecutor", recording_pool)
    opts = ExtractOptions(root=tmp_path, arch=TINY, weights="none", progress=False, workers=10_000)
    said: list[str] = []
    summary = run_extract(opts, log=said.append)
    assert summary.processed == 3
    assert pools == [default_workers()]
    assert [line for line in said if "workers" in line] == [
        f"decode workers: 10000 asked, using {default_workers()} (one per core)"]
    with pytest.raises(CropkitError, match="workers must be 0"):
        run_extract(ExtractOptions(root=tmp_path, arch=TINY, weights="none", progress=False, workers=-5))


def test_a_fully_cached_run_says_no_new_images_instead_of_a_rate(tmp_path: Path, capsys):
    save_photo(tmp_path / "data" / "training_data" / "p.jpg", 64, 48)
    assert main(tiny_args(tmp_path)) == 0
    capsys.readouterr()
    assert main(tiny_args(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "processed:  0 new images" in out and "images/s" not in out and "cached:     1" in out
