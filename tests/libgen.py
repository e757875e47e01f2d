"""Generated test libraries: photo-like images, companions, and snapshots to prove nothing changed."""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from PIL import Image, ImageDraw


def photo_like(width: int, height: int, seed: int) -> Image.Image:
    """A deterministic picture with smooth gradients, blobs and texture, so JPEG and pHash behave as on photos."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.zeros((height, width, 3), np.float32)
    for c in range(3):
        a, b = rng.uniform(-1, 1, 2)
        img[..., c] = 128 + 60 * (a * xx / width + b * yy / height)
    for _ in range(4):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        r = rng.uniform(0.1, 0.3) * min(width, height)
        colour = rng.uniform(0, 255, 3)
        mask = ((xx - cx) ** 2 + (yy - cy) ** 2) < r * r
        img[mask] = 0.4 * img[mask] + 0.6 * colour
    img += rng.normal(0, 6, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def save_photo(path: Path, width: int = 320, height: int = 240, seed: int = 0, **save_kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    photo_like(width, height, seed).save(path, **save_kwargs)
    return path


def make_library(images: Path, n: int = 6, companions: bool = True) -> list[Path]:
    """``n`` photos of mixed formats and sizes in nested folders, each with a companion .yaml."""
    suffixes = [".jpg", ".png", ".JPEG", ".webp", ".tif", ".Jpg"]
    paths = []
    for i in range(n):
        sub = images / ("trip" if i % 2 else "home") / f"day{i % 3}"
        path = save_photo(sub / f"img_{i:03d}{suffixes[i % len(suffixes)]}", 200 + 37 * i, 150 + 23 * (i % 4), seed=i)
        if companions:
            path.with_suffix(".yaml").write_text(yaml.safe_dump({"rating": i % 5, "tags": ["test"]}))
        paths.append(path)
    return paths


def snapshot(folder: Path, atime: bool = False) -> dict[str, tuple]:
    """Every entry below ``folder``: content hash, size, mtime_ns and mode (links recorded, not followed).

    With ``atime`` also each file's and folder's access time; the snapshot itself reads and lists with O_NOATIME,
    so taking it changes none (a link's own atime is left out: following a link touches it by design).
    """
    snap = {}
    for rel, path, st in _entries(folder):
        when = (st.st_atime_ns,) if atime else ()
        if stat.S_ISLNK(st.st_mode):
            snap[rel] = ("link", os.readlink(path))
        elif stat.S_ISREG(st.st_mode):
            digest = hashlib.sha256(_read_noatime(path)).hexdigest() if os.access(path, os.R_OK) else "?"
            snap[rel] = ("file", digest, st.st_size, st.st_mtime_ns, st.st_mode, *when)
        else:
            snap[rel] = ("other", st.st_mode, st.st_mtime_ns if stat.S_ISDIR(st.st_mode) else 0,
                         *(when if stat.S_ISDIR(st.st_mode) else ()))
    return snap


def _entries(folder: Path, prefix: str = ""):
    """(relative name, path, lstat) of every entry below ``folder``, listed without touching folder atimes."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_NOATIME", 0))
    try:
        names = sorted(os.listdir(fd))
    finally:
        os.close(fd)
    for name in names:
        path = folder / name
        st = os.lstat(path)
        yield prefix + name, path, st
        if stat.S_ISDIR(st.st_mode):
            yield from _entries(path, f"{prefix}{name}/")


def _read_noatime(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOATIME", 0))
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def changed_entries(before: dict, after: dict) -> dict[str, tuple]:
    """What differs between two snapshots: name -> (before, after)."""
    names = set(before) | set(after)
    return {n: (before.get(n), after.get(n)) for n in sorted(names) if before.get(n) != after.get(n)}


def make_hostile_library(images: Path) -> dict[str, str | None]:
    """Files that break naive readers, each mapped to the failure kind cropkit must record (None: must work)."""
    images.mkdir(parents=True, exist_ok=True)
    expect: dict[str, str | None] = {}

    def add(name: str, kind: str | None) -> Path:
        expect[name] = kind
        return images / name

    add("zero.jpg", "empty-file").write_bytes(b"")
    good = save_photo(images / "good.jpg", 640, 480, seed=1, quality=90)
    expect["good.jpg"] = None
    add("truncated.jpg", "truncated").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    add("text.jpg", "not-an-image").write_bytes(b"this is a shopping list, not a photo\n")
    Image.new("1", (14000, 14000)).save(add("bomb.png", "too-large"))
    photo_like(300, 200, 2).convert("CMYK").save(add("cmyk.jpg", None))
    ramp = (np.linspace(0, 65535, 300 * 200).reshape(200, 300)).astype(np.uint16)
    Image.fromarray(ramp).save(add("gray16.png", None))  # 16-bit grayscale PNG
    photo_like(300, 200, 3).convert("L").save(add("gray.jpg", None))
    pal = photo_like(300, 200, 4).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal.info["transparency"] = 0
    pal.save(add("palette_alpha.png", None), transparency=0)
    rotated = photo_like(300, 200, 5)
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated.save(add("rotated.jpg", None), exif=exif)
    save_photo(add("café 写真.jpg", None), seed=6)
    (images / "sub").mkdir()
    os.symlink("..", add("sub/loop", "symlink-loop"))
    os.symlink("missing.jpg", add("broken.jpg", "broken-link"))
    os.symlink("self.jpg", add("self.jpg", "symlink-loop"))
    os.mkfifo(add("pipe.jpg", "not-a-file"))
    return expect


def subject_photo(seed: int) -> tuple[Image.Image, tuple[float, float]]:
    """A textured frame with one bright disc (the subject) at a random place; returns it and the subject."""
    rng = np.random.default_rng(seed)
    w, h = int(rng.integers(300, 480)), int(rng.integers(240, 400))
    img = Image.fromarray(rng.normal(120, 12, (h, w, 3)).clip(0, 255).astype(np.uint8))
    sx, sy = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8)
    r = 0.08 * min(w, h)
    ImageDraw.Draw(img).ellipse((sx * w - r, sy * h - r, sx * w + r, sy * h + r), fill=(250, 40, 30))
    return img, (sx, sy)


@dataclass(frozen=True)
class SubjectPhoto:
    """A generated photo on disk, its name relative to the root, its size and the crop the tests' taste makes."""

    path: Path
    name: str
    width: int
    height: int
    crop: tuple[float, float, float, float]


def subject_library(root: Path, n: int, seed: int, prefix: str = "p", companions: bool = False,
                    quality: int = 90, folder: str = "data/training_data") -> list[SubjectPhoto]:
    """The tests' one library generator: ``n`` subject photos ROOT/FOLDER/PREFIX00.jpg, ... (seeds ``seed``,
    ``seed + 1``, ...), with a ``.yaml`` companion each when asked; nothing is logged (see ``log_crops``)."""
    images = root / folder
    images.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        img, subject = subject_photo(seed + i)
        path = images / f"{prefix}{i:02d}.jpg"
        img.save(path, quality=quality)
        if companions:
            path.with_suffix(".yaml").write_text(f"rating: {i % 5}\n")
        out.append(SubjectPhoto(path, f"{folder}/{path.name}", *img.size, square_on_subject(*img.size, subject)))
    return out


def log_crops(root: Path, photos: list[SubjectPhoto]) -> None:
    """Log each photo's crop as the photographer's, at timestamps 1, 2, ..."""
    from cropkit.decisions import CropDecision, append_decision

    for i, p in enumerate(photos):
        append_decision(root / "data/ai_data/logs", CropDecision(p.name, p.width, p.height, p.crop, float(i + 1)))


def square_on_subject(w: int, h: int, subject: tuple[float, float]) -> tuple[float, float, float, float]:
    """The simulated taste of these tests: a square of half the short side centred on the subject."""
    side = 0.5 * min(w, h)
    x0 = min(max(subject[0] * w - side / 2, 0.0), w - side)
    y0 = min(max(subject[1] * h - side / 2, 0.0), h - side)
    return (x0, y0, x0 + side, y0 + side)
