"""``cropkit bench``: timings of the learning side on this machine, measured in one run.

- train: ``cropkit train`` end to end on a cached library of N decisions (default 14,000);
- suggest (cached): per-image latency from cached features, p50 and p95;
- suggest (new image): a new 24-megapixel JPEG (the extraction benchmark's camera files), decode and
  features included, encoder already loaded.

With a subject model, every step reads (and the new images compute) its maps: the model's real maps of the
library's pictures, stored for each entry as ``cropkit extract --subject-model`` would.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from cropkit.decisions import CropDecision, append_decision
from cropkit.demo.photographer import TASTES, subject_point
from cropkit.errors import CropkitError
from cropkit.extract.save import Stores
from cropkit.features.cache import CacheEntry, ProcessedCache
from cropkit.features.cues import CueStore, compute_cues
from cropkit.features.encoder_id import RANDOM_INIT_SEED
from cropkit.features.store import FeatureStore, pack_features
from cropkit.fileio import atomic_write_bytes, read_source_bytes
from cropkit.layout import Layout, claim_generated_root
from cropkit.learn.suggest import Suggester
from cropkit.learn.train import TrainOptions, run_train
from cropkit.remembered import remember, subject_model_spec

ARCH = "ViT-B-32"
ENCODER_ID = f"{ARCH}/random-init-seed{RANDOM_INIT_SEED}"


def synth_cached_library(root: Path, n: int, log: Callable[[str], None]) -> list[Path]:
    """``n`` small JPEGs with cached features, cues and one logged crop each, as a long-used library has."""
    layout = Layout.from_args(root)
    cache = ProcessedCache(layout.processed_files, ENCODER_ID)
    if len(cache.entries) >= n:
        return sorted(layout.images.glob("*.jpg"))[:n]
    rng = np.random.default_rng(0)
    stores = Stores(FeatureStore(layout.embeddings, ENCODER_ID), CueStore(layout.cues))
    layout.images.mkdir(parents=True, exist_ok=True)
    pictures = _pictures()
    cues = [compute_cues(p) for p in pictures]
    subjects = [subject_point(p) for p in pictures]
    paths, taste = [], TASTES["thirds-4:5"]
    for i in range(n):
        k = i % len(pictures)
        path = layout.images / f"bench_{i:05d}.jpg"
        pictures[k].save(path, quality=80)
        st = path.stat()
        digest = _entry_hash(i)
        g = rng.standard_normal(512).astype(np.float32)
        grid = rng.standard_normal((7, 7, 512)).astype(np.float32)
        stores.features.write(digest, pack_features(g / np.linalg.norm(g), grid))
        stores.cues.write(digest, cues[k])
        w, h = pictures[k].size
        cache.append(CacheEntry(layout.relative_name(path), st.st_size, st.st_mtime_ns, ENCODER_ID, "ok", hash=digest,
                                phash="0" * 16, width=w, height=h, shapes={"global": [512], "grid": [7, 7, 512]}))
        append_decision(layout.logs, CropDecision(layout.relative_name(path), w, h, taste(w, h, subjects[k]), i))
        paths.append(path)
        if (i + 1) % 2000 == 0:
            log(f"synthesised {i + 1} of {n} cached images")
    return paths


def _entry_hash(i: int) -> str:
    return hashlib.sha256(f"bench-{i}".encode()).hexdigest()


def _pictures() -> list[Image.Image]:
    """The library's 64 distinct pictures (the same on every call)."""
    rng = np.random.default_rng(0)
    return [_picture(rng) for _ in range(64)]


def use_subject_model(root: Path, n: int, spec: str, log: Callable[[str], None]) -> None:
    """Store the subject model's maps of the library's pictures for its ``n`` entries, as extract would, and make
    the root remember the model (``none``: forget it, so nothing reads maps)."""
    layout = Layout.from_args(root)
    if spec == "none":
        remember(layout.ai_data, subject_model="none", subject_id=None)
        return
    from cropkit.features.subject import SubjectModel, SubjectStore, model_file

    model = SubjectModel(model_file(spec))
    store = SubjectStore(layout.cues, model.subject_id)
    missing = [i for i in range(n) if not store.has_valid(_entry_hash(i))]
    if missing:
        log(f"subject maps of {model.subject_id} for {len(missing)} entries ...")
        maps = [model.subject_map(p) for p in _pictures()]
        for i in missing:
            store.write(_entry_hash(i), maps[i % len(maps)])
    remember(layout.ai_data, subject_model=subject_model_spec(spec), subject_id=model.subject_id)


def _picture(rng: np.random.Generator) -> Image.Image:
    w, h = int(rng.integers(240, 400)), int(rng.integers(200, 340))
    arr = rng.normal(120, 20, (h, w, 3))
    cx, cy, r = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h, 0.1 * min(w, h)
    yy, xx = np.mgrid[0:h, 0:w]
    arr[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = (240, 50, 40)
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8))


def _percentiles(ms: list[float]) -> dict:
    q = statistics.quantiles(ms, n=20)
    return {"p50_ms": statistics.median(ms), "p95_ms": q[18], "n": len(ms)}


def run_bench(root: Path, n_decisions: int = 14_000, n_new: int = 8, log: Callable[[str], None] = print,
              subject_model: str = "none") -> dict:
    root = claim_generated_root(root, "benchmark")
    paths = synth_cached_library(root, n_decisions, log)
    use_subject_model(root, n_decisions, subject_model, log)
    from cropkit.bench.extract import camera_library, run_cropkit

    out, rerun_s, _ = run_cropkit(root, root / "data" / "training_data", ["--weights", "none"])
    if f"cached:     {n_decisions} " not in out:
        raise RuntimeError(f"the cached rerun did not find every image cached:\n{out[-1500:]}")
    log(f"training on {n_decisions} decisions ...")
    t = time.perf_counter()
    result = run_train(TrainOptions(root=root, arch=ARCH, weights="none", progress=False), log=lambda _m: None)
    train_s = time.perf_counter() - t

    suggester = Suggester.open(root, result.path)
    cache = ProcessedCache(suggester.layout.processed_files, suggester.encoder_id)
    cached_ms = []
    for p in paths[:300]:
        t = time.perf_counter()
        suggester.suggest(p, cache=cache)
        cached_ms.append((time.perf_counter() - t) * 1000)

    suggester.encoder().warm_up()  # model load (and its one-time kernel set-up) excluded, as the target says
    new_ms = []
    new_dir = root / "new"
    new_dir.mkdir(exist_ok=True)
    for i, camera in enumerate(camera_library(root / "camera", n_new, log)):
        jpeg = new_dir / f"camera_{time.time_ns()}_{i}.jpg"  # a name the cache has never seen
        shutil.copyfile(camera, jpeg)
        t = time.perf_counter()
        suggester.suggest(jpeg, cache=cache)
        new_ms.append((time.perf_counter() - t) * 1000)
        jpeg.unlink()
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, CPU", "date": time.strftime("%Y-%m-%d"),
        "train": {"decisions": n_decisions, "seconds": train_s, "target_s": 60},
        "cached_rerun": {"entries": n_decisions, "seconds": rerun_s, "target_s": 2},
        "suggest_cached": {**_percentiles(cached_ms), "target_ms": 5},
        "suggest_new_24mp": {**_percentiles(new_ms), "target_ms": 100, "model": ENCODER_ID},
        "subject_id": suggester.proposer.subject_id,
    }
    return report


def format_report(r: dict) -> str:
    t, c, n, e = r["train"], r["suggest_cached"], r["suggest_new_24mp"], r["cached_rerun"]
    return "\n".join([
        f"machine: {r['machine']}; subject maps: {r.get('subject_id') or 'none'}",
        f"cropkit extract rerun over {e['entries']:,} cached entries (whole command): {e['seconds']:.2f} s "
        f"(target <= {e['target_s']} s)",
        f"train on {t['decisions']:,} decisions: {t['seconds']:.1f} s (target <= {t['target_s']} s, "
        f"ratio {t['seconds'] / t['target_s']:.2f})",
        f"suggest, cached features: p50 {c['p50_ms']:.2f} ms, p95 {c['p95_ms']:.2f} ms (target <= {c['target_ms']} ms)",
        f"suggest, new 24 MP JPEG ({n['model']}): p50 {n['p50_ms']:.1f} ms, p95 {n['p95_ms']:.1f} ms "
        f"(target <= {n['target_ms']} ms)",
    ])


REPORT_KIND = "cropkit bench report"


def check_report_target(path: Path) -> None:
    """Refuse a report path that holds anything but an earlier bench report (checked before a long run too)."""
    if path.exists() or path.is_symlink():
        try:
            earlier = json.loads(read_source_bytes(path, max_bytes=1 << 20)[0]).get("kind")
        except (OSError, ValueError, AttributeError):
            earlier = None
        if earlier != REPORT_KIND:
            raise CropkitError(f"--out {path} exists and is not an earlier bench report: it is left alone; "
                               "choose another file")


def write_report(r: dict, path: Path) -> None:
    """Write the JSON report whole; an existing file is replaced only when it is an earlier bench report."""
    check_report_target(path)
    atomic_write_bytes(path, json.dumps({"kind": REPORT_KIND, **r}, indent=1).encode())
