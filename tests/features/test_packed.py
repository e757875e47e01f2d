"""cropkit pack: the per-image feature files gathered into shards and an index; every reader gets the same arrays
from the pack, falls back to per-image files for what the pack lacks, and a pack replaces the old one whole."""

from __future__ import annotations

import numpy as np

from cropkit.cli import main
from cropkit.features.cache import ProcessedCache
from cropkit.features.packed import PACKED, WORK, PackedFeatures, pack
from cropkit.features.store import FeatureStore
from cropkit.layout import Layout
from tests.conftest import tiny_args


def test_pack_gives_the_same_features_and_the_store_reads_them_without_the_files(root):
    assert main(tiny_args(root)) == 0
    layout = Layout.from_args(root)
    (folder,) = [p for p in layout.embeddings.iterdir() if p.is_dir()]
    store = FeatureStore(layout.embeddings, folder.name.replace("_", "/", 1))
    cache = ProcessedCache(layout.processed_files, store.encoder_id)
    hashes = [e.hash for e in cache.entries.values() if e.ok]
    before = {h: store.load_array(h) for h in hashes}
    assert main(["pack", "--root", str(root)]) == 0
    packed = PackedFeatures.open(store.folder)
    assert packed is not None and len(packed) == len(set(hashes))
    assert all(np.array_equal(packed.get(h), before[h]) for h in hashes)
    assert set(packed.get_many(hashes[::-1])) == set(hashes)
    for h in hashes:  # the per-image files may go: the store reads the pack
        store.path_for(h).unlink()
    fresh = FeatureStore(layout.embeddings, store.encoder_id)
    assert all(np.array_equal(fresh.load_array(h), before[h]) and fresh.is_whole(h) for h in hashes)
    assert main(tiny_args(root)) == 0  # extract finds them all whole: nothing is encoded again
    assert not any(store.path_for(h).exists() for h in hashes)


def test_a_pack_spans_shards_skips_missing_files_and_replaces_the_old_pack_whole(tmp_path):
    folder = tmp_path / "enc"
    folder.mkdir()
    arrays = {f"{i:064x}": np.full((5, 4), i, np.float16) for i in range(7)}
    for h, a in arrays.items():
        np.save(folder / f"{h}.npy", a)
    entries = [(h, f"p{i}.jpg") for i, h in enumerate(arrays)] + [("f" * 64, "gone.jpg")]
    assert pack(folder, entries, shard_images=3) == (7, 1)
    assert sorted(p.name for p in (folder / PACKED).glob("shard-*.npy")) == [
        "shard-00000.npy", "shard-00001.npy", "shard-00002.npy"]
    packed = PackedFeatures(folder / PACKED)
    assert all(np.array_equal(packed.get(h), a) for h, a in arrays.items()) and packed.get("e" * 64) is None
    packed.close()
    assert pack(folder, entries[:2]) == (2, 0)
    assert len(PackedFeatures(folder / PACKED)) == 2 and not list((folder / WORK).iterdir())
    assert sorted(p.name for p in folder.iterdir() if p.suffix != ".npy") == sorted([PACKED, WORK])
