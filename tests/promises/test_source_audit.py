"""Every CLI command, the ones that work and the ones that fail, leaves the source library exactly as it was:
the snapshot (every file's SHA-256, size, mtime_ns, mode and access time, every folder's access time, and the
listing) is compared after each one. The library lives on a tmpfs mounted ``strictatime``, where every read
that does not ask for O_NOATIME moves the access time."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cropkit.cli import main
from cropkit.decisions import SuggestionDecision, append_decision
from tests.conftest import TINY, TINY_CONFIG
from tests.helpers.small_disk import tmpfs
from tests.libgen import changed_entries, log_crops, make_hostile_library, snapshot, subject_library

FEATURES = ["--arch", TINY, "--weights", "none", "--arch-config", str(TINY_CONFIG)]
SIDECARS = (".embedding.npy", ".phash", ".saliency.npy", ".hands.json")


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """20 photos with companions (14 with logged decisions) and the hostile files of the extraction tests."""
    root = tmp_path_factory.mktemp("audit")
    images, logs = root / "data/training_data", root / "data/ai_data/logs"
    with tmpfs(images, size="64m", options="strictatime"):
        _fill_library(images, logs)
        yield root


def _fill_library(images: Path, logs: Path) -> None:
    photos = subject_library(images.parent.parent, 20, seed=700, prefix="a", companions=True)
    log_crops(images.parent.parent, photos[:10])
    for i, p in enumerate(photos[10:14], start=10):
        append_decision(logs, SuggestionDecision(p.name, p.width, p.height, p.crop, p.crop, "approved",
                                                 "crop_proposer_v0", i))
    make_hostile_library(images / "hostile")


def _without_sidecars(snap: dict) -> dict:
    return {name: v for name, v in snap.items() if not name.endswith(SIDECARS)}


def commands(root: Path, tmp: Path) -> list[tuple[str, list[str], int]]:
    """(what, argv, expected exit status), in an order where each works on what the one before left."""
    images = root / "data/training_data"
    r = ["--root", str(root)]
    evil = tmp / "evil.pth"
    torch.save({"x": torch.zeros(1)}, evil)  # a plain file that is no proposer and no encoder
    return [
        ("help", ["--help"], 0),
        ("extract", ["extract", *r, *FEATURES, "--no-progress", "--workers", "0"], 0),
        ("extract, cached rerun", ["extract", *r, *FEATURES, "--no-progress"], 0),
        ("extract --sidecars", ["extract", *r, *FEATURES, "--no-progress", "--sidecars", "--workers", "0"], 0),
        ("clean-sidecars --dry-run", ["clean-sidecars", *r, "--dry-run"], 0),
        ("clean-sidecars", ["clean-sidecars", *r], 0),
        ("extract --force", ["extract", *r, *FEATURES, "--no-progress", "--force", "--workers", "1"], 0),
        ("extract, unknown tag", ["extract", *r, "--arch", TINY, "--weights", "no-such-tag",
                                  "--arch-config", str(TINY_CONFIG), "--force"], 2),
        ("extract, missing checkpoint", ["extract", *r, *FEATURES[:2], "--weights", str(tmp / "none.pt"),
                                         "--arch-config", str(TINY_CONFIG), "--force"], 2),
        ("extract, wrong checkpoint", ["extract", *r, *FEATURES[:2], "--weights", str(evil),
                                       "--arch-config", str(TINY_CONFIG), "--force"], 2),
        ("extract, missing images", ["extract", *r, *FEATURES, "--images", str(tmp / "nowhere")], 2),
        ("train", ["train", *r, *FEATURES, "--steps", "40", "--no-progress", "--workers", "0"], 0),
        ("train, bad holdout", ["train", *r, *FEATURES, "--holdout", "1.5"], 2),
        ("suggest", ["suggest", *r, "--arch-config", str(TINY_CONFIG), str(images / "a15.jpg"),
                     str(images / "a03.jpg")], 0),
        ("suggest --json --aspect", ["suggest", *r, "--json", "--aspect", "4:5", "--arch-config",
                                     str(TINY_CONFIG), str(images / "a16.jpg")], 0),
        ("suggest, hostile files", ["suggest", *r, "--arch-config", str(TINY_CONFIG),
                                    *map(str, sorted((images / "hostile").iterdir()))], 1),
        ("suggest, bad aspect", ["suggest", *r, "--aspect", "wide", str(images / "a15.jpg")], 2),
        ("suggest, not a proposer", ["suggest", *r, "--proposer", str(evil), str(images / "a15.jpg")], 2),
        ("evaluate", ["evaluate", *r, "--no-progress", "--arch-config", str(TINY_CONFIG)], 0),
        ("evaluate, missing model", ["evaluate", *r, "--proposer", str(tmp / "none.pth")], 2),
        ("notebooks, unknown parameter", ["notebooks", *r, "-p", "no_such_parameter", "1"], 2),
        ("sample-library elsewhere", ["sample-library", str(tmp / "samples")], 0),
    ]


def test_every_command_leaves_the_source_library_untouched(library, tmp_path, capsys):
    images = library / "data/training_data"
    runs = commands(library, tmp_path)  # lists the library itself: before the first snapshot
    before = snapshot(images, atime=True)
    for what, argv, expected in runs:
        try:
            code = main(argv)
        except SystemExit as exit_:  # --help and argparse errors
            code = exit_.code
        out, err = capsys.readouterr()
        assert code == expected, f"{what}: exit {code}\n{out[-800:]}\n{err[-800:]}"
        after = snapshot(images, atime=True)
        if what == "extract --sidecars":  # the one command that adds files beside images, and only sidecars
            added = set(after) - set(before)
            assert added and all(name.endswith(SIDECARS) for name in added)
        if what == "clean-sidecars":
            assert after == _without_sidecars(after)  # every sidecar is gone again
        if what in ("extract --sidecars", "clean-sidecars --dry-run", "clean-sidecars"):
            after = _without_sidecars(after)
            # a folder that gained or lost a sidecar has a new mtime of its own; every file stays as it was
            before = {k: after.get(k, v) if v[0] == "other" else v for k, v in before.items()}
        assert changed_entries(before, after) == {}, f"the library changed during: {what}"
    assert (library / "data/ai_data/models/crop_proposer_v1.pth").is_file()
