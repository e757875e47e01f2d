"""``extract --engine ray`` on a local Ray cluster (2 CPUs): the same feature files (byte for byte), cue files and
cache entries as the local engine, a resume after the driver is killed, and the library never written."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cropkit.cli import main
from cropkit.errors import CropkitError
from tests.conftest import REPO, TINY_CONFIG, tiny_args
from tests.libgen import changed_entries, make_library, snapshot

pytest.importorskip("ray", reason="the ray extra (make installs it)")

RAY = ["--engine", "ray", "--batch-size", "4"]


def _files(root: Path, kind: str) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (root / "data/ai_data" / kind).rglob("*.npy")}


def _cache(root: Path) -> dict[str, dict]:
    """The last cache line per file, without the time it was written and the file's own time (the two libraries
    were written at different moments)."""
    out = {}
    for line in (root / "data/ai_data/cache/processed_files.jsonl").read_text().splitlines():
        entry = json.loads(line)
        entry.pop("ts", None)
        entry.pop("mtime_ns", None)
        out[entry["path"]] = entry
    return out


@pytest.fixture(scope="module")
def ray_cluster():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def _library(tmp_path: Path, name: str, n: int) -> Path:
    root = tmp_path / name
    make_library(root / "data/training_data", n=n)
    (root / "data/training_data/broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    return root


def test_the_ray_engine_writes_what_the_local_engine_writes(tmp_path, ray_cluster):
    local, distributed = _library(tmp_path, "local", 9), _library(tmp_path, "ray", 9)
    before = snapshot(distributed / "data/training_data")
    assert main(tiny_args(local, "--batch-size", "4")) == 0
    assert main(tiny_args(distributed, *RAY)) == 0
    assert _files(distributed, "embeddings") == _files(local, "embeddings") and len(_files(local, "embeddings")) == 9
    assert _files(distributed, "cues") == _files(local, "cues")
    mine, theirs = _cache(distributed), _cache(local)
    assert mine.keys() == theirs.keys() and mine == theirs  # ok lines and the broken file's failed line alike
    assert changed_entries(before, snapshot(distributed / "data/training_data")) == {}
    assert main(tiny_args(distributed, *RAY)) == 0  # a second run finds everything cached
    assert _cache(distributed) == mine


def test_a_killed_ray_driver_loses_nothing_stored_and_the_rerun_finishes(tmp_path):
    root = _library(tmp_path, "killed", 36)
    before = snapshot(root / "data/training_data")
    cache = root / "data/ai_data/cache/processed_files.jsonl"
    script = ("import sys; from cropkit.features.encoder import register_arch_configs; "
              f"register_arch_configs({str(TINY_CONFIG)!r}); from cropkit.cli import main; "
              "sys.exit(main(sys.argv[1:]))")
    driver = subprocess.Popen([sys.executable, "-c", script, "extract", *tiny_args(root, *RAY)[1:]],
                              cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and driver.poll() is None:
            if cache.exists() and cache.read_text().count('"ok"') >= 5:
                break
            time.sleep(0.05)
        assert driver.poll() is None, "the driver finished before it could be killed"
        os.kill(driver.pid, signal.SIGKILL)  # the driver alone, mid-run
        driver.wait(30)
    finally:
        time.sleep(1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(driver.pid, signal.SIGKILL)  # then whatever of the local cluster it left
    stored = cache.read_text().count('"ok"')
    assert 5 <= stored < 36
    assert main(tiny_args(root, *RAY)) == 0
    entries = _cache(root)
    assert sum(e["status"] == "ok" for e in entries.values()) == 36 and len(_files(root, "embeddings")) == 36
    assert changed_entries(before, snapshot(root / "data/training_data")) == {}


def test_without_ray_the_engine_says_how_to_install_it(tmp_path, monkeypatch):
    import cropkit.extract.ray_engine as engine

    monkeypatch.setattr(engine, "ray_available", lambda: False)
    root = _library(tmp_path, "noray", 2)
    with pytest.raises(CropkitError, match=r"pip install 'cropkit\[ray\]'"):
        engine._init(engine.RayOptions())
    assert main(tiny_args(root, "--engine", "ray")) == 2
