"""The installed command as a user runs it: help, python -m, and a run killed with SIGKILL that resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from cropkit.fileio import TMP_MARK, BadLine, read_jsonl
from tests.conftest import tiny_args
from tests.libgen import changed_entries, save_photo, snapshot

CROPKIT = [sys.executable, "-m", "cropkit"]


def run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(CROPKIT + args, capture_output=True, text=True, timeout=300, **kwargs)


def test_help_explains_every_command():
    top = run(["--help"])
    assert top.returncode == 0
    for command in ("extract", "clean-sidecars", "sample-library"):
        assert command in top.stdout
    ex = run(["extract", "--help"])
    for flag in ("--max-images", "--force", "--arch", "--weights", "--device", "--batch-size",
                 "--workers", "--sidecars", "--root", "--images"):
        assert flag in ex.stdout
    assert "UNTRAINED" in ex.stdout
    for old in ("--model", "--pretrained", "--model-config"):  # old spellings work but are not advertised
        assert old not in ex.stdout


def test_old_flag_spellings_still_work_and_name_the_new_ones():
    from cropkit.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["extract", "--model", "RN50", "--pretrained", "none", "--model-config", "x.json"])
    assert (args.arch, args.weights, args.arch_config) == ("RN50", "none", "x.json")
    assert parser.parse_args(["extract"]).arch is None  # the hidden alias never overrides the default
    assert parser.parse_args(["suggest", "--model", "v3.pth", "a.jpg"]).proposer == "v3.pth"
    assert parser.parse_args(["evaluate", "--model", "v3.pth"]).proposer == "v3.pth"
    result = run(["suggest", "--root", "/nonexistent-cropkit-root", "--model", "v3.pth", "a.jpg"])
    assert "--model is now --proposer" in result.stderr


def test_console_script_is_installed():
    script = Path(sys.executable).with_name("cropkit")
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("cropkit ")


def test_bad_arguments_exit_nonzero_with_a_message(tmp_path: Path):
    result = run(["extract", "--root", str(tmp_path), "--batch-size", "0"])
    assert result.returncode == 2 and "must be 1 or more" in result.stderr
    save_photo(tmp_path / "lib" / "a.jpg")
    result = run(["extract", "--root", str(tmp_path), "--model", "ViT-Nope", "--weights", "none",
                  "--images", str(tmp_path / "lib")])
    assert result.returncode == 2 and "not an encoder cropkit knows" in result.stderr


def test_sigkill_mid_run_leaves_no_partial_file_and_a_rerun_finishes(tmp_path: Path):
    images = tmp_path / "data/training_data"
    for i in range(60):
        save_photo(images / f"p{i:02d}.jpg", 1600, 1200, seed=i, quality=95)
    before = snapshot(images)
    cache = tmp_path / "data/ai_data/cache/processed_files.jsonl"
    args = tiny_args(tmp_path, "--batch-size", "1")
    args[args.index("--workers") + 1] = "1"
    proc = subprocess.Popen(CROPKIT + args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if cache.exists() and cache.read_bytes().count(b"\n") >= 8:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed; make it slower"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    lines = [obj for _, obj in read_jsonl(cache)]
    assert not any(isinstance(obj, BadLine) for obj in lines)
    done = len(lines)
    assert 8 <= done < 60
    emb = tmp_path / "data/ai_data/embeddings"
    for npy in emb.rglob("*.npy"):
        np.load(npy, allow_pickle=False)  # every visible feature file is whole
    assert all(TMP_MARK in p.name for p in emb.rglob("*") if p.is_file() and p.suffix != ".npy")

    result = run(tiny_args(tmp_path))
    assert result.returncode == 0, result.stderr
    assert f"cached:     {done} " in result.stdout and f"processed:  {60 - done} images" in result.stdout
    lines = [obj for _, obj in read_jsonl(cache)]
    ok_paths = [e["path"] for e in lines if e["status"] == "ok"]
    assert len(ok_paths) == 60 and len(set(ok_paths)) == 60  # nothing lost, nothing twice
    assert not [p for p in emb.rglob("*") if TMP_MARK in p.name]
    assert len(list(emb.rglob("*.npy"))) == 60
    assert changed_entries(before, snapshot(images)) == {}


def test_a_cached_rerun_never_imports_torch(tmp_path: Path):
    """Photographers rerun extract after every import: with nothing new, no model (not even torch) is loaded."""
    images = tmp_path / "data/training_data"
    for i in range(3):
        save_photo(images / f"p{i}.jpg", seed=i)
    first = run(["extract", "--root", str(tmp_path), "--weights", "none", "--no-progress", "--workers", "0"])
    assert first.returncode == 0 and "processed:  3 images" in first.stdout
    probe = ("import sys; from cropkit.cli import main; "
             f"rc = main(['extract', '--root', {str(tmp_path)!r}, '--weights', 'none', '--no-progress']); "
             "print('torch loaded' if 'torch' in sys.modules else 'no torch', rc)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert "cached:     3 " in result.stdout and result.stdout.strip().endswith("no torch 0"), result.stdout


def test_two_extracts_at_once_on_one_root_corrupt_nothing(tmp_path: Path):
    """Append-safe design, no lock: whole-line O_APPEND writes and temp-file renames; at worst both encode an image."""
    images = tmp_path / "data/training_data"
    for i in range(24):
        save_photo(images / f"c{i:02d}.jpg", 900, 600, seed=i)
    before = snapshot(images)
    args = tiny_args(tmp_path, "--batch-size", "2")
    procs = [subprocess.Popen(CROPKIT + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    lines = [obj for _, obj in read_jsonl(tmp_path / "data/ai_data/cache/processed_files.jsonl")]
    assert not any(isinstance(obj, BadLine) for obj in lines)
    assert {e["path"] for e in lines if e["status"] == "ok"} == {f"data/training_data/c{i:02d}.jpg" for i in range(24)}
    emb = tmp_path / "data/ai_data"
    assert not [p for p in emb.rglob("*") if TMP_MARK in p.name]
    for npy in emb.rglob("*.npy"):
        np.load(npy, allow_pickle=False)
    rerun = run(tiny_args(tmp_path))
    assert "cached:     24 " in rerun.stdout
    assert changed_entries(before, snapshot(images)) == {}
