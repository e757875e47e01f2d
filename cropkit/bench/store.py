"""``cropkit bench --only store``: loading N synthetic feature entries from per-image files and from the packed
store, measured in one run on this machine (the same entries, the same shape)."""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cropkit.features.packed import PackedFeatures, pack
from cropkit.features.store import FeatureStore, npy_bytes, read_npy

SHAPE = (17, 16)  # rows x dim: ViT-B-32's 1 + 4x4 rows, with a small dim so a million files fit a laptop's disk


def run_store_bench(root: Path, entries: int = 1_000_000, log: Callable[[str], None] = print) -> dict:
    """Write ``entries`` per-image files (once), pack them, then time loading all of them both ways."""
    store = FeatureStore(root / "embeddings", "bench/synthetic")
    store.folder.mkdir(parents=True, exist_ok=True)
    hashes = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(entries)]
    data = npy_bytes(np.ones(SHAPE, np.float16))
    if sum(1 for _ in store.folder.glob("*.npy")) != entries:
        log(f"writing {entries:,} synthetic feature files (once) ...")
        for h in hashes:
            (store.folder / f"{h}.npy").write_bytes(data)
    shutil.rmtree(store.folder / "packed", ignore_errors=True)
    started = time.perf_counter()
    packed, missing = pack(store.folder, ((h, f"synthetic/{i}.jpg") for i, h in enumerate(hashes)))
    pack_s = time.perf_counter() - started
    assert packed == entries and not missing
    log("loading from per-image files ...")
    started = time.perf_counter()
    for h in hashes:
        read_npy(store.path_for(h))  # what the store itself does for an image's own file
    files_s = time.perf_counter() - started
    log("loading from the packed store ...")
    started = time.perf_counter()
    found = PackedFeatures(store.folder / "packed").get_many(hashes)
    packed_s = time.perf_counter() - started
    assert len(found) == entries
    started = time.perf_counter()
    one = PackedFeatures(store.folder / "packed")
    for h in hashes[: min(entries, 100_000)]:
        one.get(h)
    point_s = (time.perf_counter() - started) * entries / min(entries, 100_000)
    return {"entries": entries, "shape": list(SHAPE), "pack_s": pack_s, "files_s": files_s, "packed_s": packed_s,
            "packed_one_by_one_s": point_s, "ratio": files_s / packed_s}


def format_store_report(r: dict) -> str:
    return (f"feature store, {r['entries']:,} entries of {r['shape'][0]}x{r['shape'][1]} float16: per-image files "
            f"{r['files_s']:.1f} s, packed {r['packed_s']:.1f} s (ratio {r['ratio']:.1f}x; one by one "
            f"{r['packed_one_by_one_s']:.1f} s); cropkit pack took {r['pack_s']:.1f} s")
