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
    assert main(["sample-library", str(lib)]) == 0
    (lib / "skimage_chelsea.png").unlink()
    (lib / "skimage_chelsea.png").write_bytes(b"the user's own file")
    assert main(["sample-library", str(lib)]) == 0
    assert (lib / "skimage_chelsea.png").read_bytes() == b"the user's own file"
    first = snapshot(lib)
    assert main(["sample-library", str(lib)]) == 0
    assert snapshot(lib) == first
    assert f"{len(SAMPLE_PHOTOS)} photos" in capsys.readouterr().out


def test_a_users_library_is_refused_and_left_as_it_was(tmp_path: Path, capsys):
    """Issue 22, finding 22: `cropkit sample-library DIR` with DIR the user's library added 15 foreign photos and
    companions; like the demo and the benchmarks it now builds only in a folder cropkit generated."""
    from tests.libgen import make_library

    lib = tmp_path / "my_photos"
    make_library(lib, n=2)
    before = snapshot(lib)
    assert main(["sample-library", str(lib)]) == 2
    assert snapshot(lib) == before
    assert "did not generate" in capsys.readouterr().err
