"""``extract --engine ray`` on a local Ray cluster (2 CPUs): the same feature files (byte for byte), cue files and
cache entries as the local engine, a resume after the driver is killed, and the library never written; options and
addresses that make no sense refused at once with a clear error (Ray would hang or raise a traceback)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cropkit.cli import main
from cropkit.errors import CropkitError
from cropkit.extract.ray_engine import RayOptions
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
    script = ("import sys; from cropkit.features.encoders.open_clip import register_arch_configs; "
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


def _cli(root: Path, *extra: str, limit: float = 120) -> subprocess.CompletedProcess:
    """``cropkit extract`` in its own process (Ray keeps its state per process), stopped after ``limit`` seconds:
    a hang fails the test instead of stalling the suite."""
    script = ("import sys; from cropkit.features.encoders.open_clip import register_arch_configs; "
              f"register_arch_configs({str(TINY_CONFIG)!r}); from cropkit.cli import main; "
              "sys.exit(main(sys.argv[1:]))")
    args = [sys.executable, "-c", script, "extract", *tiny_args(root, *extra)[1:]]
    with subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as driver:
        try:
            out, err = driver.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(driver.pid, signal.SIGKILL)  # the driver and the local cluster it started
            driver.communicate()
            pytest.fail(f"extract {' '.join(extra)} still ran after {limit:g} s")
    return subprocess.CompletedProcess(args, driver.returncode, out, err)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_address_where_nothing_listens_is_refused_before_ray_starts(tmp_path):
    root = _library(tmp_path, "nowhere", 2)
    done = _cli(root, *RAY, "--address", f"127.0.0.1:{_closed_port()}")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "no Ray cluster answers at" in done.stderr and "refused" in done.stderr.lower()
    assert not (root / "data/ai_data/cache/processed_files.jsonl").exists()


def test_an_address_where_something_else_listens_is_refused(tmp_path):
    root = _library(tmp_path, "web", 2)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()

        def answer_like_a_web_server():
            with contextlib.suppress(OSError):
                conn, _ = server.accept()
                with conn:
                    conn.recv(64)
                    conn.sendall(b"HTTP/1.0 400 Bad request\r\n\r\n")

        threading.Thread(target=answer_like_a_web_server, daemon=True).start()
        done = _cli(root, *RAY, "--address", f"127.0.0.1:{server.getsockname()[1]}")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "something else listens on that port" in done.stderr


@pytest.mark.parametrize("flag, value", [("--cpus-per-task", "-1"), ("--cpus-per-task", "nan"),
                                         ("--cpus-per-task", "0"), ("--num-gpus", "nan"), ("--num-gpus", "-1"),
                                         ("--num-gpus", "inf"), ("--num-gpus", "1e300"),
                                         ("--address", "no-port"), ("--address", "host:99999")])
def test_ray_option_values_that_make_no_sense_are_refused_at_the_edge(flag, value):
    option = {"--cpus-per-task": "cpus_per_task", "--num-gpus": "gpus_per_encoder", "--address": "address"}[flag]
    typed = value if flag == "--address" else float(value)
    with pytest.raises(CropkitError, match=f"^{flag} must be"):
        RayOptions(**{option: typed})


def test_bad_ray_options_on_the_command_line_are_a_clear_error_not_a_traceback(tmp_path):
    root = _library(tmp_path, "bad", 2)
    for flag, value in (("--cpus-per-task", "-1"), ("--num-gpus", "nan")):
        done = _cli(root, *RAY, flag, value)
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert f"cropkit: error: {flag} must be a number" in done.stderr


def test_resources_no_node_has_are_refused_instead_of_waiting_for_ever(tmp_path):
    root = _library(tmp_path, "toobig", 2)
    done = _cli(root, *RAY, "--cpus-per-task", "4000")  # a local cluster of this machine's cores
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--cpus-per-task 4000: no node of the cluster has that many CPUs" in done.stderr


def test_an_unknown_engine_is_refused_not_run_as_the_local_one():
    from cropkit.extract.options import ExtractOptions

    with pytest.raises(CropkitError, match="engine must be one of local, ray, not 'Ray'"):
        ExtractOptions(engine="Ray")
    with pytest.raises(CropkitError, match="pass engine='ray'"):
        ExtractOptions(ray=RayOptions(encoders=2))
