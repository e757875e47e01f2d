"""Every hostile or odd input is either processed correctly or skipped with its reason; the run goes on."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

import cropkit.extract.prepare
from cropkit.cli import main
from cropkit.fileio import read_jsonl
from tests.conftest import tiny_args
from tests.libgen import changed_entries, make_hostile_library, save_photo, snapshot


@pytest.fixture
def hostile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    images = tmp_path / "data/training_data"
    expect = make_hostile_library(images)
    locked = save_photo(images / "locked.jpg", seed=9)
    expect["locked.jpg"] = "unreadable"
    real = cropkit.extract.prepare.read_source_bytes

    def deny_locked(path, *args, **kwargs):  # root reads through chmod 000, so refuse as the OS would
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(cropkit.extract.prepare, "read_source_bytes", deny_locked)
    before = snapshot(images)
    yield tmp_path, expect
    assert changed_entries(before, snapshot(images)) == {}


def entries(root: Path) -> list[dict]:
    return [obj for _, obj in read_jsonl(root / "data/ai_data/cache/processed_files.jsonl")]


def test_each_bad_input_is_skipped_with_its_reason_and_the_rest_processed(hostile, capsys):
    root, expect = hostile
    assert main(tiny_args(root)) == 0
    out = capsys.readouterr().out
    by_path = {e["path"].removeprefix("data/training_data/"): e for e in entries(root)}
    for name, kind in expect.items():
        e = by_path[name]
        if kind is None:
            assert e["status"] == "ok", (name, e)
        else:
            assert e["status"] == "failed" and e["error"]["kind"] == kind, (name, e)
            assert e["error"]["message"]
    assert by_path["rotated.jpg"]["width"] == 200 and by_path["rotated.jpg"]["height"] == 300
    failures = Counter(k for k in expect.values() if k)
    assert f"processed:  {sum(1 for k in expect.values() if k is None)} images" in out
    reasons = ", ".join(f"{k}: {n}" for k, n in sorted(failures.items()))
    assert f"failed:     {sum(failures.values())} ({reasons})" in out


def test_failures_are_not_retried_until_asked(hostile, capsys):
    root, expect = hostile
    assert main(tiny_args(root)) == 0
    n_lines = len(entries(root))
    capsys.readouterr()
    assert main(tiny_args(root)) == 0
    out = capsys.readouterr().out
    assert "processed:  0 new images" in out and "failed before, unchanged since: 5" in out
    assert len(entries(root)) == n_lines  # known failures are not logged again
    assert main(tiny_args(root, "--retry-failed")) == 0
    out = capsys.readouterr().out
    assert "processed:  0 new images" in out and "failed before" not in out
    assert len(entries(root)) == n_lines + 5
