"""A small extracted and trained root shared by the promise tests of the learning commands."""

from __future__ import annotations

from pathlib import Path

from cropkit.cli import main
from tests.conftest import TINY, TINY_CONFIG
from tests.libgen import log_crops, subject_library

FEATURES = ["--arch", TINY, "--weights", "none", "--arch-config", str(TINY_CONFIG)]


def make_trained_root(root: Path, n: int = 12) -> Path:
    """``n`` photos with one logged crop each, extracted and trained (crop_proposer_v1.pth)."""
    log_crops(root, subject_library(root, n, seed=200))
    assert main(["extract", "--root", str(root), *FEATURES, "--no-progress", "--workers", "0"]) == 0
    assert main(["train", "--root", str(root), *FEATURES, "--steps", "20", "--no-progress", "--workers", "0"]) == 0
    return root
