"""Extraction speed against its ceiling, measured side by side in one run (``cropkit bench --extract``).

- ceiling: images/s of the encoder alone on ready tensors (same model, batch size, threads, precision);
- naive: one process, full Pillow decode, open_clip's own preprocess and encode_image, one file after another;
- cropkit: ``cropkit extract`` end to end in a subprocess (decode, hashes, cues, features, cache, writes),
  with the peak resident memory of its whole process tree;
- cached rerun: ``cropkit extract`` again over the same files (nothing may be opened).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from cropkit.sample_library import build_sample_library


def camera_library(dest: Path, n: int, log: Callable[[str], None] = print) -> list[Path]:
    """``n`` 24-megapixel (6000x4000) JPEGs at quality 92 made from the sample photos, with sensor-like noise
    so that file sizes (and decode cost) resemble a camera's; made once and reused."""
    dest.mkdir(parents=True, exist_ok=True)
    photos, _ = build_sample_library(dest.parent / "sample_photos")
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        path = dest / f"camera_{i:03d}.jpg"
        if not path.exists():
            with Image.open(photos[i % len(photos)]) as src:
                big = src.convert("RGB").resize((6000, 4000), Image.Resampling.BICUBIC)
            arr = np.asarray(big, dtype=np.int16) + rng.normal(0, 5, (4000, 6000, 3)).astype(np.int16)
            Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(path, quality=92)
            log(f"made {path.name} ({path.stat().st_size / 1e6:.1f} MB)")
        out.append(path)
    return out


def measure_ceiling(model: str, pretrained: str, precision: str, batch_size: int, n_images: int) -> float:
    """Images/s of the encoder alone on ready uint8 tensors, after one warm-up batch."""
    import torch

    from cropkit.encoder import ClipEncoder, resolve_weights

    enc = ClipEncoder(model, resolve_weights(model, pretrained), torch.device("cpu"), precision)
    pixels = np.random.default_rng(0).integers(0, 255, (batch_size, enc.image_size, enc.image_size, 3), np.uint8)
    enc.encode(pixels)
    batches = max(1, n_images // batch_size)
    started = time.perf_counter()
    for _ in range(batches):
        enc.encode(pixels)
    return batches * batch_size / (time.perf_counter() - started)


def measure_naive(paths: list[Path], model: str) -> float:
    """Images/s of the obvious script: full decode, open_clip's preprocess, encode_image, one at a time."""
    import open_clip
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        clip, _, preprocess = open_clip.create_model_and_transforms(model)
    clip.eval()
    with torch.no_grad():
        clip.encode_image(preprocess(Image.new("RGB", (64, 64)))[None])  # warm-up
        started = time.perf_counter()
        for p in paths:
            with Image.open(p) as img:
                clip.encode_image(preprocess(img.convert("RGB"))[None])
    return len(paths) / (time.perf_counter() - started)


def _tree_rss(pid: int) -> int:
    import psutil

    try:
        proc = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)])
    except psutil.Error:
        return 0


def run_cropkit(root: Path, images: Path, extra: list[str]) -> tuple[str, float, int]:
    """Run ``cropkit extract`` as a user would; returns its output, wall seconds and peak tree RSS in bytes."""
    cmd = [sys.executable, "-m", "cropkit", "extract", "--root", str(root), "--images", str(images),
           "--no-progress", *extra]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = [0]

    def sample():
        while proc.poll() is None:
            peak[0] = max(peak[0], _tree_rss(proc.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    seconds = time.perf_counter() - started
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"cropkit extract failed:\n{out[-2000:]}")
    return out, seconds, peak[0]


def run_extract_bench(root: Path, n_images: int = 32, model: str = "ViT-B-32", pretrained: str = "none",
                      batch_size: int = 32, log: Callable[[str], None] = print, extra: list[str] = ()) -> dict:
    """All the extraction figures in one run; ``extra`` goes to the ``cropkit extract`` subprocess."""
    paths = camera_library(root / "camera", n_images, log)
    import torch

    threads = torch.get_num_threads()
    log("ceiling: encoder alone ...")
    ceiling = measure_ceiling(model, pretrained, "auto", batch_size, max(n_images, 2 * batch_size))
    log("naive: decode + preprocess + encode, one file after another ...")
    naive = measure_naive(paths[: max(8, n_images // 4)], model)
    log("cropkit extract ...")
    args = ["--model", model, "--pretrained", pretrained, *extra]
    out, seconds, peak = run_cropkit(root, root / "camera", ["--force", "--batch-size", str(batch_size), *args])
    m = re.search(r"processed:\s+(\d+) images in ([\d.]+) s", out)
    processed, encode_s = int(m.group(1)), float(m.group(2))
    _, rerun_s, _ = run_cropkit(root, root / "camera", args)
    features = sorted((root / "data/ai_data/embeddings").rglob("*.npy"))
    cropkit = processed / encode_s
    return {
        "machine": f"{os.cpu_count()} cores, torch threads {threads}", "model": model, "pretrained": pretrained,
        "batch_size": batch_size, "images": processed, "image": "6000x4000 JPEG, quality 92",
        "ceiling_images_per_s": ceiling, "naive_images_per_s": naive, "cropkit_images_per_s": cropkit,
        "cropkit_whole_run_s": seconds, "ratio_cropkit_ceiling": cropkit / ceiling,
        "ratio_cropkit_naive": cropkit / naive,
        "peak_rss_bytes": peak, "feature_bytes_per_image": features[0].stat().st_size if features else 0,
        "cached_rerun_s": rerun_s,
    }


def format_extract_report(r: dict) -> str:
    return "\n".join([
        f"extraction, {r['model']} ({r['pretrained']}), batch {r['batch_size']}, {r['images']} x {r['image']}, "
        f"{r['machine']}",
        f"  ceiling (encoder alone): {r['ceiling_images_per_s']:.1f} images/s",
        f"  naive (full decode, open_clip preprocess, one by one): {r['naive_images_per_s']:.1f} images/s",
        f"  cropkit extract: {r['cropkit_images_per_s']:.1f} images/s",
        f"  cropkit/ceiling = {r['ratio_cropkit_ceiling']:.2f} (target >= 0.85), "
        f"cropkit/naive = {r['ratio_cropkit_naive']:.2f} (target >= 3.0)",
        f"  peak resident memory of the extract process tree: {r['peak_rss_bytes'] / 2**30:.2f} GiB (target <= 1.5)",
        f"  features per image: {r['feature_bytes_per_image']:,} bytes (target <= 65,536)",
        f"  cached rerun over the same files: {r['cached_rerun_s']:.2f} s",
    ])
