from __future__ import annotations

from pathlib import Path

import pytest

from tests.libgen import changed_entries, make_library, snapshot

REPO = Path(__file__).resolve().parent.parent  # the checkout
FIXTURES = Path(__file__).parent / "fixtures"
TINY_CONFIG = FIXTURES / "cropkit-tiny.json"
TINY = "cropkit-tiny"


@pytest.fixture(scope="session", autouse=True)
def tiny_model():
    """Register the tiny open_clip architecture used by every test (random weights, builds in milliseconds)."""
    from cropkit.features.encoders.open_clip import register_arch_configs

    register_arch_configs(TINY_CONFIG)
    return TINY


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A cropkit root with a generated library in data/training_data, checked unchanged after the test."""
    images = tmp_path / "data" / "training_data"
    make_library(images)
    before = snapshot(images)
    yield tmp_path
    assert changed_entries(before, snapshot(images)) == {}, "the source library was modified"


def tiny_args(root: Path, *extra: str) -> list[str]:
    """Command-line arguments for an extract run with the tiny untrained model."""
    return ["extract", "--root", str(root), "--arch", TINY, "--weights", "none",
            "--arch-config", str(TINY_CONFIG), "--no-progress", "--workers", "0", *extra]
