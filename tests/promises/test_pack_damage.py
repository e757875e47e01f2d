"""A damaged pack (index or shards) never stops a command and never gives one image's features for another: every
row is checked against the hash stored beside it, and what the pack cannot give is read from the image's own
feature file. A killed pack's temp folders are removed by the next command that opens the store."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cropkit.cli import main
from cropkit.features import packed as packed_module
from cropkit.features.packed import INDEX, PACKED, pack, shard_name
from cropkit.features.store import FeatureStore
from tests.conftest import REPO
from tests.promises.learning_root import FEATURES, make_trained_root


def _sql(statement: str):
    def damage(folder: Path) -> None:
        db = sqlite3.connect(folder / INDEX)
        db.executescript(statement)
        db.commit()
        db.close()
    return damage


def _swap_rows(folder: Path) -> None:
    db = sqlite3.connect(folder / INDEX)
    (a, ra), (b, rb) = db.execute("SELECT hash, row FROM features WHERE shard = 0 ORDER BY row LIMIT 2").fetchall()
    db.execute("UPDATE features SET row = ? WHERE hash = ?", (rb, a))
    db.execute("UPDATE features SET row = ? WHERE hash = ?", (ra, b))
    db.commit()
    db.close()


def _cut(name: str, keep: float):
    def damage(folder: Path) -> None:
        path = folder / name
        path.write_bytes(path.read_bytes()[: int(path.stat().st_size * keep)])
    return damage


DAMAGES = {
    "index of garbage": lambda f: (f / INDEX).write_bytes(b"not a database " * 400),
    "index cut short": _cut(INDEX, 0.5),
    "index of zero bytes": _cut(INDEX, 0.0),
    "features a view": _sql("DROP TABLE features; CREATE VIEW features AS "
                            "SELECT 'x' AS hash, 'p' AS path, 0 AS shard, 0 AS row"),
    "older format": _sql("DROP TABLE pack"),
    "negative rows": _sql("UPDATE features SET row = -1"),
    "rows past the end": _sql("UPDATE features SET row = row + 2"),
    "rows as text or reals": _sql("UPDATE features SET row = CASE WHEN row % 2 THEN 'r' || row ELSE row + 0.5 END"),
    "shards past the end": _sql("UPDATE features SET shard = 7"),
    "swapped rows": _swap_rows,
    "shard of garbage": lambda f: (f / shard_name(0)).write_bytes(b"junk"),
    "shard cut short": _cut(shard_name(1), 0.7),
    "shard of another dtype": lambda f: np.save(f / shard_name(0), np.zeros((3, 5, 4), np.float32)),
    "shard missing": lambda f: (f / shard_name(2)).unlink(),
    "shard a folder": lambda f: ((f / shard_name(0)).unlink(), (f / shard_name(0)).mkdir()),
}


def _packed_store(tmp_path: Path) -> tuple[FeatureStore, dict[str, np.ndarray]]:
    store = FeatureStore(tmp_path / "embeddings", "test/enc")
    store.folder.mkdir(parents=True)
    arrays = {f"{i + 1:064x}": np.full((5, 4), i + 1, np.float16) for i in range(7)}
    for h, a in arrays.items():
        store.write(h, a)
    assert pack(store.folder, [(h, f"p{i}.jpg") for i, h in enumerate(arrays)], shard_images=3) == (7, 0)
    return store, arrays


@pytest.mark.parametrize("damage", DAMAGES, ids=list(DAMAGES))
def test_a_damaged_pack_gives_each_image_its_own_features_or_nothing(tmp_path, damage):
    store, arrays = _packed_store(tmp_path)
    DAMAGES[damage](store.folder / PACKED)
    fresh = FeatureStore(store.folder.parent, store.encoder_id)
    for h, a in arrays.items():  # the per-image files are whole: every image gets exactly its own features
        assert fresh.is_whole(h, a.shape)
        assert np.array_equal(fresh.load_array(h), a) and np.array_equal(fresh.load(h).global_emb, a[0])
    assert "cropkit pack" in fresh.pack_problem
    for h in arrays:
        store.path_for(h).unlink()
    bare = FeatureStore(store.folder.parent, store.encoder_id)
    for h, a in arrays.items():  # without them: what the pack still holds whole, else an error naming the pack
        try:
            got = bare.load_array(h)
        except ValueError as exc:
            assert "packed store" in str(exc) and "cropkit pack" in str(exc)
            assert not bare.is_whole(h)
        else:
            assert np.array_equal(got, a)


def test_suggest_and_train_read_the_per_image_files_past_a_damaged_pack(tmp_path, capsys):
    root = make_trained_root(tmp_path, 6)
    assert main(["pack", "--root", str(root)]) == 0
    (folder,) = (root / "data/ai_data/embeddings").glob(f"*/{PACKED}")
    photo = str(root / "data/training_data/p00.jpg")
    for damage in ("index of garbage", "shard of garbage"):
        assert main(["pack", "--root", str(root)]) == 0
        DAMAGES[damage](folder)
        capsys.readouterr()
        assert main(["suggest", "--root", str(root), photo]) == 0
        out = capsys.readouterr()
        assert "1. [" in out.out and f"note: the packed store {folder}" in out.err  # says why, once
        assert out.err.count("the packed store") == 1
        assert main(["train", "--root", str(root), *FEATURES, "--steps", "5", "--no-progress", "--workers", "0"]) == 0
        out = capsys.readouterr()
        assert "trained on: 6 decisions" in out.out
        assert f"the packed store {folder}" in out.err and "cropkit pack" in out.err
        assert "corrupt feature file" not in out.err + out.out  # the intact per-image files are not blamed


def test_train_lists_the_images_it_could_not_read(tmp_path, capsys):
    root = make_trained_root(tmp_path, 3)
    for photo in (root / "data/training_data").glob("*.jpg"):
        photo.unlink()
    capsys.readouterr()
    assert main(["train", "--root", str(root), *FEATURES, "--steps", "5", "--no-progress", "--workers", "0"]) == 2
    err = capsys.readouterr().err
    for name in ("p00.jpg", "p01.jpg", "p02.jpg"):
        assert f"skipped image: 'data/training_data/{name}': " in err
    assert "none of the 3 logged images could be read (first: 'data/training_data/p00.jpg': " in err


_KILLED_PACK = """
import os, signal, sys
from pathlib import Path
from cropkit.features.packed import pack

def entries():
    for i, h in enumerate(sys.argv[2:]):
        if i == 5:
            os.kill(os.getpid(), signal.SIGKILL)
        yield h, f"p{i}.jpg"

pack(Path(sys.argv[1]), entries(), shard_images=2)
"""


def _leftovers(folder: Path) -> list[str]:
    """The folders in an encoder folder that hold files, but its pack: what killed packs left."""
    return sorted({str(p.parent.relative_to(folder)) for p in folder.rglob("*")
                   if p.is_file() and p.parent != folder and PACKED not in p.relative_to(folder).parts[:1]})


def test_a_killed_packs_temp_folders_are_removed_by_the_next_pack_and_by_readers(tmp_path):
    store, arrays = _packed_store(tmp_path)
    before = store.packed.get_many(arrays)
    left = []
    for _ in range(2):  # each killed pack leaves a temp folder with the shards written before the kill ...
        done = subprocess.run([sys.executable, "-c", _KILLED_PACK, str(store.folder), *arrays], cwd=REPO)
        assert done.returncode == -9
        assert list(store.folder.glob(f"**/*tmp*/{shard_name(1)}"))
        left.append(_leftovers(store.folder))
    assert len(left[1]) == 1 and left[1] != left[0]  # ... and the next pack removed the first one's
    fresh = FeatureStore(store.folder.parent, store.encoder_id)  # a reader: the old pack is intact and used
    assert {h: a.tolist() for h, a in fresh.packed.get_many(arrays).items()} == {
        h: a.tolist() for h, a in before.items()}
    assert _leftovers(store.folder) == []
    legacy = store.folder / f".packed.tmp-{_dead_pid()}"  # what cropkit before format 2 left
    legacy.mkdir()
    (legacy / shard_name(0)).write_bytes(b"x" * 1000)
    alive = store.folder / packed_module.WORK / f"tmp.cropkit-tmp-{os.getpid()}-00000000"  # a pack in flight
    alive.mkdir()
    (alive / INDEX).write_bytes(b"")
    assert pack(store.folder, [(h, "p.jpg") for h in arrays]) == (7, 0)
    assert _leftovers(store.folder) == [str(alive.relative_to(store.folder))]  # left alone


def test_an_old_pack_set_aside_by_a_killed_pack_is_put_back(tmp_path):
    store, arrays = _packed_store(tmp_path)
    aside = store.folder / packed_module.WORK / f"old.cropkit-tmp-{_dead_pid()}-12345678"
    (store.folder / PACKED).rename(aside)  # killed between setting the old pack aside and renaming the new one in
    fresh = FeatureStore(store.folder.parent, store.encoder_id)
    assert fresh.packed is not None and len(fresh.packed) == 7 and not aside.exists()


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)
