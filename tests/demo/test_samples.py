"""The sample library comes from photographs inside installed wheels and never replaces a file."""

from __future__ import annotations

from pathlib import Path

import yaml
from PIL import Image

from cropkit.cli import main
from cropkit.demo.samples import SAMPLE_PHOTOS, build_sample_library
from tests.libgen import snapshot


def test_sample_library_holds_real_photos_with_companions(tmp_path: Path):
    photos, missing = build_sample_library(tmp_path / "lib")
    assert missing == [] and len(photos) == len(SAMPLE_PHOTOS) >= 12
    for photo in photos:
        with Image.open(photo) as img:
            assert min(img.size) >= 256
        companion = yaml.safe_load(photo.with_suffix(".yaml").read_text())
        assert companion["source"].endswith(photo.name.split("_", 1)[1]) and companion["caption"]


def test_rebuilding_changes_nothing_and_keeps_a_users_file(tmp_path: Path, capsys):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "skimage_chelsea.png").write_bytes(b"the user's own file")
    assert main(["sample-library", str(lib)]) == 0
    assert (lib / "skimage_chelsea.png").read_bytes() == b"the user's own file"
    first = snapshot(lib)
    assert main(["sample-library", str(lib)]) == 0
    assert snapshot(lib) == first
    assert f"{len(SAMPLE_PHOTOS)} photos" in capsys.readouterr().out
