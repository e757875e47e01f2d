"""Extraction speed against its ceiling, measured side by side in one run (``cropkit bench --extract``).

- ceiling: images/s of the encoder alone on ready tensors (same model, batch size, threads, precision);
- naive: one process, full Pillow decode, open_clip's own preprocess and encode_image, one file after another;
- cropkit: ``cropkit extract`` end to end in a subprocess (decode, hashes, cues, features, cache, writes),
  with the peak resident memory of its processes (each one's high-water mark, summed);
- cached rerun: ``cropkit extract`` again over the same files (nothing may be opened);
- subject map (with ``--subject-model``): the model alone on the decode extract gives it, per image, and the
  decode's extra cost of that larger side; ``cropkit extract`` then runs with it.
"""

from __future__ import annotations

import io
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

from cropkit.demo.samples import build_sample_library
from cropkit.fileio import atomic_write_bytes
from cropkit.layout import claim_generated_root


def camera_library(dest: Path, n: int, log: Callable[[str], None] = print) -> list[Path]:
    """``n`` distinct 24-megapixel (6000x4000) JPEGs at quality 92 made from the sample photos, with
    sensor-like noise so that file sizes (and decode cost) resemble a camera's; made once and reused."""
    dest.mkdir(parents=True, exist_ok=True)
    photos, _ = build_sample_library(dest.parent / "sample_photos")
    out = []
    for i in range(n):
        path = dest / f"camera_{i:03d}.jpg"
        if not path.exists():
            rng = np.random.default_rng(i)
            with Image.open(photos[i % len(photos)]) as src:
                big = src.convert("RGB").resize((6000, 4000), Image.Resampling.BICUBIC)
            noise = rng.integers(-9, 10, (4000, 6000, 3), dtype=np.int8)  # uniform, std 5.5
            arr = np.clip(np.asarray(big, dtype=np.int16) + noise, 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(path, quality=92)
            log(f"made {path.name} ({path.stat().st_size / 1e6:.1f} MB)")
        out.append(path)
    return out


def measure_ceiling(arch: str, weights: str, device: str, precision: str, batch_size: int | None,
                    n_images: int) -> tuple[float, float, int]:
    """Images/s of the encoder alone on ready uint8 tensors after one warm-up batch, the CPU seconds it
    spent per image (all threads), and the batch size (``None``: the encoder's default for the device)."""
    import torch

    from cropkit.features.encoders import build_encoder

    enc = build_encoder(arch, weights, device, precision)
    batch_size = batch_size or enc.default_batch_size()
    pixels = np.random.default_rng(0).integers(0, 255, (batch_size, enc.image_size, enc.image_size, 3), np.uint8)
    enc.encode(pixels)
    batches = max(3, n_images // batch_size)
    cpu, started = time.process_time(), time.perf_counter()
    for _ in range(batches):
        enc.encode(pixels)
    if enc.device.type == "cuda":
        torch.cuda.synchronize()
    n = batches * batch_size
    return n / (time.perf_counter() - started), (time.process_time() - cpu) / n, batch_size


def measure_prepare(paths: list[Path], input_size: int = 224) -> float:
    """CPU seconds per image of everything before the encoder (read, SHA-256, reduced decode, squash,
    pHash, cues), measured in this process, one image after another."""
    cpu = time.process_time()
    _prepared(paths, input_size, 0)
    return (time.process_time() - cpu) / len(paths)


def _prepared(paths: list[Path], input_size: int, subject_side: int) -> list:
    from cropkit.extract.prepare import Prepared, prepare_image

    out = [prepare_image(p, input_size, subject_side=subject_side) for p in paths]
    bad = [p for p, r in zip(paths, out) if not isinstance(r, Prepared)]
    if bad:
        raise RuntimeError(f"bench image {bad[0]} did not decode")
    return out


def measure_subject(paths: list[Path], spec: str) -> dict:
    """The subject model (``spec``: FILE.onnx or rembg:NAME) on the pixels extract gives it, one image after
    another after one warm-up: wall and CPU (all threads) milliseconds per image, its side, and the CPU seconds
    per image of the preparation that also gives it those pixels."""
    from cropkit.features.subject import SubjectModel, model_file

    path = model_file(spec)
    model = SubjectModel(path)
    cpu = time.process_time()
    prepared = _prepared(paths, 224, model.side)
    prepare_cpu = (time.process_time() - cpu) / len(paths)
    pixels = [Image.fromarray(p.subject_pixels) for p in prepared]
    model.subject_map(pixels[0])
    wall, cpu = time.perf_counter(), time.process_time()
    for img in pixels:
        model.subject_map(img)
    n = len(pixels)
    return {"model": path.name, "subject_id": model.subject_id, "side": model.side, "images": n,
            "wall_ms_per_image": (time.perf_counter() - wall) * 1000 / n,
            "cpu_ms_per_image": (time.process_time() - cpu) * 1000 / n, "target_wall_ms": 500,
            "prepare_cpu_s": prepare_cpu}


def measure_naive(paths: list[Path], arch: str, device: str = "cpu") -> float:
    """Images/s of the obvious script: full decode, open_clip's preprocess, encode_image, one at a time."""
    import open_clip
    import torch

    from cropkit.features.encoders import pick_device
    from cropkit.features.encoders.open_clip import _no_random_init_warning

    dev = pick_device(device)
    with torch.random.fork_rng(devices=[]), _no_random_init_warning():  # random on purpose: the report says so
        torch.manual_seed(0)
        clip, _, preprocess = open_clip.create_model_and_transforms(arch, device=dev)
    clip.eval()
    with torch.no_grad():
        clip.encode_image(preprocess(Image.new("RGB", (64, 64)))[None].to(dev))  # warm-up
        started = time.perf_counter()
        for p in paths:
            with Image.open(p) as img:
                clip.encode_image(preprocess(img.convert("RGB"))[None].to(dev)).cpu()
    return len(paths) / (time.perf_counter() - started)


def checkpoint_file(folder: Path, arch: str) -> Path:
    """The architecture's seeded random weights saved as a checkpoint file, once: loading weights from a file is
    what real use does (a tag resolves to a cached file), and it has its own memory profile."""
    import open_clip
    import torch

    from cropkit.features.encoder_id import RANDOM_INIT_SEED
    from cropkit.features.encoders.open_clip import _no_random_init_warning

    path = folder / f"{arch}_random-seed{RANDOM_INIT_SEED}.pt"
    if not path.exists():
        with torch.random.fork_rng(devices=[]), _no_random_init_warning():
            torch.manual_seed(RANDOM_INIT_SEED)
            state = open_clip.create_model(arch).state_dict()
        buf = io.BytesIO()
        torch.save(state, buf)
        atomic_write_bytes(path, buf.getvalue())
    return path


def _peak_rss_by_pid(pid: int, peaks: dict[int, int]) -> None:
    """Record each process's own peak resident set (the kernel's VmHWM) for a process and its children.

    Summing the per-process peaks bounds the tree's peak from above, and is cheap to sample. A child
    caught between fork and exec (its command line still the parent's) shares the parent's pages and is
    left out until it has exec'd, which starts its own high-water mark.
    """
    import psutil

    try:
        parent = psutil.Process(pid)
        procs, parent_cmdline = [parent, *parent.children(recursive=True)], parent.cmdline()
    except psutil.Error:
        return
    for proc in procs:
        try:
            if proc.pid != pid and proc.cmdline() == parent_cmdline:
                continue
            status = Path(f"/proc/{proc.pid}/status").read_text()
            hwm = int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024
        except psutil.Error:
            continue
        except (OSError, AttributeError):  # gone, or no procfs: fall back to the current RSS
            try:
                hwm = proc.memory_info().rss
            except psutil.Error:
                continue
        peaks[proc.pid] = max(peaks.get(proc.pid, 0), hwm)


def run_cropkit(root: Path, images: Path, extra: list[str]) -> tuple[str, float, int]:
    """Run ``cropkit extract`` as a user would; returns its output, wall seconds and the sum of the peak
    resident sets of its processes (bytes)."""
    cmd = [sys.executable, "-m", "cropkit", "extract", "--root", str(root), "--images", str(images),
           "--no-progress", *extra]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peaks: dict[int, int] = {}

    def sample():
        while proc.poll() is None:
            _peak_rss_by_pid(proc.pid, peaks)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    seconds = time.perf_counter() - started
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"cropkit extract failed:\n{out[-2000:]}")
    return out, seconds, sum(peaks.values())


def run_extract_bench(root: Path, n_images: int = 128, arch: str = "ViT-B-32", weights: str = "none",
                      batch_size: int | None = None, device: str = "auto", log: Callable[[str], None] = print,
                      extra: list[str] = (), subject_model: str = "none") -> dict:
    """All the extraction figures in one run; ``extra`` goes to the ``cropkit extract`` subprocess, and so does
    ``subject_model`` (FILE.onnx, rembg:NAME or none), whose stage is also timed alone."""
    root = claim_generated_root(root, "benchmark")
    paths = camera_library(root / "camera", n_images, log)
    import torch

    from cropkit.features.encoders import pick_device

    dev = pick_device(device)
    threads, cores = torch.get_num_threads(), os.cpu_count() or 1
    log(f"ceiling: encoder alone on {dev} ...")
    ceiling, encode_cpu, batch_size = measure_ceiling(arch, weights, device, "auto", batch_size, n_images)
    log("decode, hashes and cues alone ...")
    prepare_cpu = measure_prepare(paths[: min(16, len(paths))])
    subject = {}
    if subject_model != "none":
        log(f"subject map alone ({subject_model}) ...")
        subject = measure_subject(paths[: min(16, len(paths))], subject_model)
        subject["decode_extra_cpu_ms_per_image"] = (subject.pop("prepare_cpu_s") - prepare_cpu) * 1000
        extra = [*extra, "--subject-model", subject_model]
    log("naive: decode + preprocess + encode, one file after another ...")
    naive = measure_naive(paths[: max(8, n_images // 8)], arch, device)
    log("cropkit extract ...")
    args = ["--arch", arch, "--weights", weights, "--device", device, *extra]
    out, seconds, peak = run_cropkit(root, root / "camera", ["--force", "--batch-size", str(batch_size), *args])
    m = re.search(r"processed:\s+(\d+) images in ([\d.]+) s", out)
    processed, encode_s = int(m.group(1)), float(m.group(2))
    _, rerun_s, _ = run_cropkit(root, root / "camera", args)
    log("cropkit extract with the weights in a checkpoint file (peak memory) ...")
    with_file = ["--arch", arch, "--weights", str(checkpoint_file(root / "weights", arch)), "--device", device,
                 *extra]
    _, _, peak_file = run_cropkit(root, root / "camera", ["--force", "--max-images", "32", *with_file])
    decoders, agreement = {}, {}
    if dev.type == "cuda":  # both decoders, end to end, in this same run, each into its own root
        for decoder in ("cpu", "device"):
            log(f"cropkit extract --decoder {decoder} ...")
            out_d, _, _ = run_cropkit(root / f"decoder-{decoder}", root / "camera",
                                      ["--force", "--batch-size", str(batch_size), "--decoder", decoder, *args])
            md = re.search(r"processed:\s+(\d+) images in ([\d.]+) s", out_d)
            decoders[decoder] = int(md.group(1)) / float(md.group(2))
        agreement = feature_agreement(root / "decoder-cpu", root / "decoder-device")
    features = sorted((root / "data/ai_data/embeddings").rglob("*.npy"))
    cropkit = processed / encode_s
    # What any pipeline could reach here: the CPU work per image spread over every core, and never faster
    # than the encoder alone. On a GPU the host's share of encoding is left out (an optimistic bound).
    host_cpu = prepare_cpu + (encode_cpu if dev.type == "cpu" else 0.0)
    if subject:  # the subject model runs on the host whatever the encoder's device
        host_cpu += (subject["cpu_ms_per_image"] + subject["decode_extra_cpu_ms_per_image"]) / 1000
    attainable = min(ceiling, cores / host_cpu)
    return {
        "machine": f"{cores} cores, torch threads {threads}, {_device_name(dev)}", "device": dev.type,
        "model": arch, "pretrained": weights, "batch_size": batch_size, "images": processed,
        "image": "6000x4000 JPEG, quality 92",
        "ceiling_images_per_s": ceiling, "naive_images_per_s": naive, "cropkit_images_per_s": cropkit,
        "cropkit_whole_run_s": seconds, "ratio_cropkit_ceiling": cropkit / ceiling,
        "ratio_cropkit_naive": cropkit / naive,
        "encoder_cpu_ms_per_image": encode_cpu * 1000, "prepare_cpu_ms_per_image": prepare_cpu * 1000,
        "attainable_images_per_s": attainable, "ratio_cropkit_attainable": cropkit / attainable,
        "peak_rss_bytes": peak, "peak_rss_checkpoint_bytes": peak_file,
        "feature_bytes_per_image": features[0].stat().st_size if features else 0,
        "cached_rerun_s": rerun_s, "decoders_images_per_s": decoders, "decoder_agreement": agreement,
        "subject": subject,
    }


def feature_agreement(a: Path, b: Path) -> dict:
    """Cosine similarity of the whole-frame embeddings two roots computed for the same files."""
    from cropkit.features.store import read_npy

    fa = {p.name: p for p in (a / "data/ai_data/embeddings").rglob("*.npy") if "packed" not in p.parts}
    fb = {p.name: p for p in (b / "data/ai_data/embeddings").rglob("*.npy") if "packed" not in p.parts}
    cos = []
    for name in sorted(fa.keys() & fb.keys()):
        x, y = read_npy(fa[name]).astype("float64"), read_npy(fb[name]).astype("float64")
        cos.append(float((x[0] @ y[0]) / ((x[0] @ x[0]) ** 0.5 * (y[0] @ y[0]) ** 0.5)))
    return {"images": len(cos), "cosine_min": min(cos, default=float("nan")),
            "cosine_mean": sum(cos) / len(cos) if cos else float("nan")}


def _device_name(dev) -> str:
    import torch

    return torch.cuda.get_device_name(dev) if dev.type == "cuda" else dev.type


def format_extract_report(r: dict) -> str:
    return "\n".join([
        f"extraction, {r['model']} ({r['pretrained']}), batch {r['batch_size']}, {r['images']} x {r['image']}, "
        f"{r['machine']}",
        f"  ceiling (encoder alone): {r['ceiling_images_per_s']:.1f} images/s",
        f"  naive (full decode, open_clip preprocess, one by one): {r['naive_images_per_s']:.1f} images/s",
        f"  cropkit extract: {r['cropkit_images_per_s']:.1f} images/s",
        f"  cropkit/ceiling = {r['ratio_cropkit_ceiling']:.2f} (target >= 0.85), "
        f"cropkit/naive = {r['ratio_cropkit_naive']:.2f} (target >= 3.0)",
        f"  CPU per image: encoder {r['encoder_cpu_ms_per_image']:.0f} ms, decode + hashes + cues "
        f"{r['prepare_cpu_ms_per_image']:.0f} ms; attainable with every core busy: "
        f"{r['attainable_images_per_s']:.1f} images/s = {r['attainable_images_per_s'] / r['ceiling_images_per_s']:.2f}"
        f" of the ceiling; cropkit reaches {r['ratio_cropkit_attainable']:.2f} of it",
        f"  peak resident memory, summed over the extract processes: {r['peak_rss_bytes'] / 2**30:.2f} GiB "
        "(target <= 1.5)",
        f"  the same with the weights loaded from a checkpoint file: {r['peak_rss_checkpoint_bytes'] / 2**30:.2f} GiB",
        f"  features per image: {r['feature_bytes_per_image']:,} bytes (target <= 65,536)",
        f"  cached rerun over the same files: {r['cached_rerun_s']:.2f} s",
        *([_subject_line(r["subject"])] if r.get("subject") else []),
        *(f"  cropkit extract --decoder {name}: {v:.1f} images/s ({v / r['ceiling_images_per_s']:.2f} of the "
          "ceiling)" for name, v in r.get("decoders_images_per_s", {}).items()),
        *([f"  device vs CPU decoder, whole-frame embeddings of {r['decoder_agreement']['images']} images: cosine "
           f"min {r['decoder_agreement']['cosine_min']:.4f}, mean {r['decoder_agreement']['cosine_mean']:.4f}"]
          if r.get("decoder_agreement") else []),
    ])


def _subject_line(s: dict) -> str:
    ratio = s["wall_ms_per_image"] / s["target_wall_ms"]
    return (f"  subject map ({s['model']} at {s['side']} px, in extract above): {s['wall_ms_per_image']:.0f} ms per "
            f"image (target <= {s['target_wall_ms']} ms, ratio {ratio:.2f}), CPU "
            f"{s['cpu_ms_per_image']:.0f} ms over its threads, and {s['decode_extra_cpu_ms_per_image']:.0f} ms more "
            "decode for its side")


def run_engine_bench(root: Path, n_images: int = 32, arch: str = "ViT-B-32", weights: str = "none",
                     device: str = "auto", log: Callable[[str], None] = print, extra: list[str] = ()) -> dict:
    """``cropkit extract`` with the local engine and with the Ray engine (a local cluster) on the same camera
    JPEGs, one after the other in this run: images/s while encoding, whole runs, and the ratio."""
    root = claim_generated_root(root, "benchmark")
    camera = root / "camera"
    camera_library(camera, n_images, log)
    out = {}
    for engine in ("local", "ray"):
        log(f"cropkit extract --engine {engine} ...")
        text, seconds, _ = run_cropkit(root / f"engine-{engine}", camera, [
            "--force", "--arch", arch, "--weights", weights, "--device", device, "--engine", engine, *extra])
        m = re.search(r"processed:\s+(\d+) images in ([\d.]+) s", text)
        out[engine] = {"images_per_s": int(m.group(1)) / float(m.group(2)), "whole_run_s": seconds}
    out["ratio_ray_local"] = out["ray"]["images_per_s"] / out["local"]["images_per_s"]
    out["images"] = n_images
    return out


def format_engine_report(r: dict) -> str:
    return (f"extract engines on {r['images']} camera JPEGs: local {r['local']['images_per_s']:.2f} images/s "
            f"(whole run {r['local']['whole_run_s']:.1f} s), ray {r['ray']['images_per_s']:.2f} images/s (whole run "
            f"{r['ray']['whole_run_s']:.1f} s); ray/local = {r['ratio_ray_local']:.2f}")
