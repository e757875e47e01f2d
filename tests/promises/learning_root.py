"""A small extracted and trained root shared by the promise tests of the learning commands."""

from __future__ import annotations

from pathlib import Path

from cropkit.cli import main
from cropkit.decisions import CropDecision, append_decision
from tests.conftest import TINY, TINY_CONFIG
from tests.libgen import square_on_subject, subject_photo

FEATURES = ["--arch", TINY, "--weights", "none", "--arch-config", str(TINY_CONFIG)]


def make_trained_root(root: Path, n: int = 12) -> Path:
    """``n`` photos with one logged crop each, extracted and trained (crop_proposer_v1.pth)."""
    images, logs = root / "data/training_data", root / "data/ai_data/logs"
    images.mkdir(parents=True)
    for i in range(n):
        img, subject = subject_photo(200 + i)
        img.save(images / f"p{i:02d}.jpg", quality=90)
        append_decision(logs, CropDecision(f"data/training_data/p{i:02d}.jpg", *img.size,
                                           square_on_subject(*img.size, subject), float(i + 1)))
    assert main(["extract", "--root", str(root), *FEATURES, "--no-progress", "--workers", "0"]) == 0
    assert main(["train", "--root", str(root), *FEATURES, "--steps", "20", "--no-progress", "--workers", "0"]) == 0
    return root
