"""The bundled sample library: real photographs that ship inside installed wheels, never downloaded."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

from cropkit.fileio import atomic_write_bytes
from cropkit.layout import claim_generated_root

# (package, file inside it, what the picture shows)
SAMPLE_PHOTOS = [
    ("skimage", "data/astronaut.png", "astronaut Eileen Collins, portrait (NASA)"),
    ("skimage", "data/chelsea.png", "Chelsea the cat"),
    ("skimage", "data/coffee.png", "a cup of coffee on a saucer"),
    ("skimage", "data/camera.png", "cameraman on a tripod, grayscale"),
    ("skimage", "data/coins.png", "Greek coins on a table, grayscale"),
    ("skimage", "data/moon.png", "surface of the moon, grayscale"),
    ("skimage", "data/motorcycle_left.png", "a motorcycle in a garage, left stereo view"),
    ("skimage", "data/motorcycle_right.png", "a motorcycle in a garage, right stereo view"),
    ("skimage", "data/rocket.jpg", "a rocket on the launch pad (NASA)"),
    ("skimage", "data/hubble_deep_field.jpg", "Hubble deep field (NASA)"),
    ("skimage", "data/retina.jpg", "a human retina, fundus photograph"),
    ("skimage", "data/ihc.png", "immunohistochemistry micrograph"),
    ("sklearn", "datasets/images/china.jpg", "a Chinese temple among trees"),
    ("sklearn", "datasets/images/flower.jpg", "a flower close-up"),
    ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "Grace Hopper, portrait"),
]


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def build_sample_library(dest: Path) -> tuple[list[Path], list[str]]:
    """Copy the sample photos (with a companion .yaml each) into ``dest``, a folder cropkit generated (a new or
    empty one, one it made before, or one under this checkout's data/; a user's library is refused with a
    CropkitError); existing files are kept as they are.

    Returns the photos now in the library and a note for each photo that could not be found.
    """
    dest = claim_generated_root(dest, "sample library")
    photos, missing = [], []
    for package, rel, caption in SAMPLE_PHOTOS:
        base = _package_dir(package)
        src = base / rel if base else None
        if src is None or not src.is_file():
            missing.append(f"{package}/{rel} (install {package} to include it)")
            continue
        target = dest / f"{package}_{src.name}"
        atomic_write_bytes(target, src.read_bytes(), replace=False)
        companion = {"source": f"{package} wheel: {rel}", "caption": caption}
        atomic_write_bytes(target.with_suffix(".yaml"), yaml.safe_dump(companion).encode(), replace=False)
        photos.append(target)
    return photos, missing
