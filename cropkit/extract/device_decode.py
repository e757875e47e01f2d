"""Decoding on the encoder's device: JPEGs decoded in batches by ``torchvision.io.decode_jpeg`` (nvJPEG on CUDA,
the hardware decoder of A100/H100-class cards), turned upright, resized and sent to the encoder there; the host
only reads, hashes and parses headers (in the decode workers) and computes the cues and pHash from a small copy.

Formats or files nvJPEG refuses (PNG, TIFF, WebP, progressive or CMYK JPEGs, and any file whose batch decode
fails) go through the CPU path (``prepare_bytes``) with the same bytes. The same code runs on the CPU, where
torchvision decodes with libjpeg: that is how it is tested without a GPU.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from cropkit.errors import CropkitError
from cropkit.extract.decode import MAX_PIXELS, exif_orientation
from cropkit.extract.phash import phash64
from cropkit.extract.prepare import Failed, Prepared, prepare_bytes, read_image
from cropkit.features.cues import compute_cues

DECODERS = ("auto", "cpu", "device")


@dataclass
class Raw:
    """An image read and hashed on the host, its header parsed: what the device decode needs."""

    path: Path
    size: int
    mtime_ns: int
    data: bytes
    hash: str
    orientation: int
    device_ok: bool  # a baseline RGB or gray JPEG: the device decodes it


def pick_decoder(decoder: str, device_type: str) -> str:
    """'device' or 'cpu' for a ``--decoder`` choice on a device of ``device_type``. auto is the CPU: on an H200
    with 16 cores, 24 MP camera JPEGs went faster through libjpeg's reduced (DCT-scaled) decode in the workers
    (38-58 images/s) than through nvJPEG, which decodes every pixel (21-25 images/s; docs/benchmarks.md)."""
    if decoder not in DECODERS:
        raise CropkitError(f"--decoder {decoder!r}: choose one of {', '.join(DECODERS)}")
    if decoder == "device" and device_type != "cuda":
        raise CropkitError("--decoder device decodes JPEGs with nvJPEG on a CUDA GPU; this run's device is "
                           f"{device_type}: use --decoder cpu (or auto)")
    return "device" if decoder == "device" else "cpu"


def device_decodable(data: bytes) -> tuple[bool, int]:
    """Whether the device decoder takes these bytes (a baseline RGB or gray JPEG within the pixel limit), and
    the image's EXIF orientation; headers only, no pixels decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = Image.open(io.BytesIO(data))
        ok = (img.format == "JPEG" and img.mode in ("RGB", "L") and not img.info.get("progressive")
              and not img.info.get("progression") and img.width * img.height <= MAX_PIXELS)
        return ok, exif_orientation(img)
    except Exception:  # anything Pillow cannot even open: the CPU path says why
        return False, 1


def read_raw(path: Path, size: int = -1, mtime_ns: int = -1) -> Raw | Failed:
    """The host's share (runs in decode workers): read once, hash, parse the header."""
    read = read_image(path, size, mtime_ns)
    if isinstance(read, Failed):
        return read
    data, size, mtime_ns = read
    ok, orientation = device_decodable(data)
    return Raw(path, size, mtime_ns, data, hashlib.sha256(data).hexdigest(), orientation, ok)


def upright(img, orientation: int):
    """A (C, H, W) tensor turned as EXIF ``orientation`` asks (as Pillow's exif_transpose does)."""
    import torch

    if orientation in (2, 4):
        return torch.flip(img, dims=[2 if orientation == 2 else 1])
    if orientation == 3:
        return torch.flip(img, dims=[1, 2])
    if orientation == 5:
        return img.transpose(1, 2)
    if orientation == 6:
        return torch.rot90(img, k=-1, dims=[1, 2])
    if orientation == 7:
        return torch.flip(img.transpose(1, 2), dims=[1, 2])
    if orientation == 8:
        return torch.rot90(img, k=1, dims=[1, 2])
    return img


def _resize(img, height: int, width: int):
    """Resize a (C, H, W) uint8 tensor on its device (bicubic, antialiased), back on the host as uint8."""
    import torch
    import torch.nn.functional as F

    out = F.interpolate(img[None].float(), size=(height, width), mode="bicubic", antialias=True, align_corners=False)
    return out[0].clamp_(0, 255).round_().to("cpu", dtype=torch.uint8)


def prepare_on_device(raws: list[Raw], input_size: int, device) -> list[Prepared | Failed]:
    """Decode the device's share of ``raws`` in one batch there, the rest on the CPU; in ``raws``'s order."""
    import torch
    from torchvision.io import ImageReadMode, decode_jpeg

    chosen = [i for i, r in enumerate(raws) if r.device_ok]
    decoded: dict[int, object] = {}
    if chosen:
        tensors = [torch.frombuffer(bytearray(raws[i].data), dtype=torch.uint8) for i in chosen]
        try:
            decoded = dict(zip(chosen, decode_jpeg(tensors, mode=ImageReadMode.RGB, device=device)))
        except Exception:  # one file the decoder refuses fails the batch: try each alone, the rest go to the CPU
            for i, t in zip(chosen, tensors):
                with contextlib.suppress(Exception):
                    decoded[i] = decode_jpeg(t, mode=ImageReadMode.RGB, device=device)
    jobs = []
    for i, r in enumerate(raws):
        img = decoded.get(i)
        if img is None:
            jobs.append(_host_pool().submit(prepare_bytes, r.path, r.data, r.size, r.mtime_ns, input_size, r.hash))
            continue
        img = upright(img, r.orientation)
        height, width = int(img.shape[1]), int(img.shape[2])
        pixels = _resize(img, input_size, input_size).permute(1, 2, 0).numpy()
        scale = input_size / min(width, height)  # a small copy for the cues and pHash, as the CPU path's decode
        small = _resize(img, max(1, round(height * scale)), max(1, round(width * scale))).permute(1, 2, 0).numpy()
        jobs.append(_host_pool().submit(_finish, r, width, height, np.ascontiguousarray(pixels),
                                        np.ascontiguousarray(small)))
    return [job.result() for job in jobs]


def _finish(r: Raw, width: int, height: int, pixels: np.ndarray, small: np.ndarray) -> Prepared:
    """The host's last share: pHash and cues from the small copy."""
    picture = Image.fromarray(small, "RGB")
    return Prepared(r.path, r.size, r.mtime_ns, r.hash, phash64(picture), width, height, pixels,
                    compute_cues(picture))


@functools.cache
def _host_pool() -> ThreadPoolExecutor:
    """Threads for the host's share (numpy and Pillow release the GIL for most of it), one per core."""
    return ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="cropkit-host")
