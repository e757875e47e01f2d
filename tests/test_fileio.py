"""File primitives: atomic writes, stale temp files, append-only JSONL, read-only source access."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cropkit import fileio
from cropkit.fileio import (
    TMP_MARK,
    BadLine,
    NotRegularFile,
    append_jsonl,
    atomic_write_bytes,
    read_jsonl,
    read_source_bytes,
    remove_stale_temp_files,
)
from tests.helpers.deadline import deadline
from tests.libgen import changed_entries, save_photo, snapshot


def temp_files(folder: Path) -> list[str]:
    return [name for name in os.listdir(folder) if TMP_MARK in name]


def records(path: Path) -> list:
    return [obj for _, obj in read_jsonl(path)]


# --- atomic_write_bytes ---------------------------------------------------------------------------


def test_atomic_write_creates_file_with_content_and_parents(tmp_path: Path):
    path = tmp_path / "a" / "b" / "out.bin"
    data = bytes(range(256)) * 100
    assert atomic_write_bytes(path, data) is True
    assert path.read_bytes() == data
    assert temp_files(path.parent) == []
    assert path.stat().st_mode & 0o777 == 0o644 & ~current_umask()


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_atomic_write_replaces_by_default(tmp_path: Path):
    path = tmp_path / "out.txt"
    path.write_bytes(b"old contents that are longer")
    old_inode = path.stat().st_ino
    assert atomic_write_bytes(path, b"new") is True
    assert path.read_bytes() == b"new"
    assert path.stat().st_ino != old_inode  # a rename, not an in-place rewrite readers could see half of
    assert temp_files(tmp_path) == []


def test_atomic_write_empty_data(tmp_path: Path):
    path = tmp_path / "empty"
    assert atomic_write_bytes(path, b"") is True
    assert path.read_bytes() == b""


def test_replace_false_keeps_an_existing_file(tmp_path: Path):
    path = tmp_path / "keep.txt"
    path.write_bytes(b"original")
    before = snapshot(tmp_path)
    assert atomic_write_bytes(path, b"intruder", replace=False) is False
    assert path.read_bytes() == b"original"
    assert changed_entries(before, snapshot(tmp_path)) == {}
    assert temp_files(tmp_path) == []


def test_replace_false_creates_a_new_file(tmp_path: Path):
    path = tmp_path / "new.txt"
    assert atomic_write_bytes(path, b"fresh", replace=False) is True
    assert path.read_bytes() == b"fresh"
    assert path.stat().st_nlink == 1  # the temp hard link is gone
    assert temp_files(tmp_path) == []


def test_replace_false_never_writes_through_a_link(tmp_path: Path):
    target = tmp_path / "target.txt"
    target.write_bytes(b"target")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    dangling = tmp_path / "dangling.txt"
    dangling.symlink_to(tmp_path / "nowhere.txt")
    assert atomic_write_bytes(link, b"x", replace=False) is False
    assert atomic_write_bytes(dangling, b"x", replace=False) is False
    assert target.read_bytes() == b"target"
    assert not (tmp_path / "nowhere.txt").exists()
    assert temp_files(tmp_path) == []


def test_failed_write_leaves_no_temp_file_and_keeps_the_old_file(tmp_path: Path):
    path = tmp_path / "out.txt"
    path.write_bytes(b"old")
    with pytest.raises(TypeError):
        atomic_write_bytes(path, "not bytes")  # type: ignore[arg-type]  # the write itself raises
    assert path.read_bytes() == b"old"
    assert temp_files(tmp_path) == []


def test_failed_rename_leaves_no_temp_file(tmp_path: Path, monkeypatch):
    path = tmp_path / "out.txt"
    path.write_bytes(b"old")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fileio.os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space"):
        atomic_write_bytes(path, b"new")
    monkeypatch.undo()
    assert path.read_bytes() == b"old"
    assert temp_files(tmp_path) == []


def test_interrupted_write_leaves_no_temp_file(tmp_path: Path, monkeypatch):
    """A KeyboardInterrupt mid-write (Ctrl-C) still cleans up the temp file."""
    path = tmp_path / "out.txt"
    real_link = os.link

    def interrupted_link(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(fileio.os, "link", interrupted_link)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(path, b"new", replace=False)
    monkeypatch.setattr(fileio.os, "link", real_link)
    assert not path.exists()
    assert temp_files(tmp_path) == []


def test_write_onto_a_folder_fails_and_cleans_up(tmp_path: Path):
    folder = tmp_path / "taken"
    (folder / "inner").mkdir(parents=True)
    with pytest.raises(OSError):
        atomic_write_bytes(folder, b"data")
    assert folder.is_dir() and (folder / "inner").is_dir()
    assert temp_files(tmp_path) == []


def test_non_ascii_name(tmp_path: Path):
    path = tmp_path / "données 写真.json"
    assert atomic_write_bytes(path, "é".encode()) is True
    assert path.read_text(encoding="utf-8") == "é"


# --- remove_stale_temp_files ----------------------------------------------------------------------


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_remove_stale_temp_files(tmp_path: Path):
    dead = _dead_pid()
    stale = [f".a.phash{TMP_MARK}{dead}-abcd", f".store.jsonl{TMP_MARK}{dead}-00", f"x{TMP_MARK}"]
    in_flight = f".b.npy{TMP_MARK}{os.getpid()}-beef"  # a live writer's temp file is its work in progress
    keep = ["a.phash", "store.jsonl", "cropkit-tmp", ".hidden", in_flight]
    for name in stale + keep:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / f"folder{TMP_MARK}1").mkdir()
    target = tmp_path / "real.txt"
    target.write_bytes(b"real")
    (tmp_path / f"link{TMP_MARK}1").symlink_to(target)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / f".deep{TMP_MARK}7-ff").write_bytes(b"x")

    assert remove_stale_temp_files(tmp_path) == len(stale)
    left = set(os.listdir(tmp_path))
    assert left == set(keep) | {f"folder{TMP_MARK}1", "real.txt", f"link{TMP_MARK}1", "sub"}
    assert (tmp_path / "sub" / f".deep{TMP_MARK}7-ff").exists()  # not recursive
    assert target.read_bytes() == b"real"
    assert remove_stale_temp_files(tmp_path) == 0


def test_remove_stale_temp_files_on_missing_folder(tmp_path: Path):
    assert remove_stale_temp_files(tmp_path / "missing") == 0


# --- JSONL ----------------------------------------------------------------------------------------


def test_append_and_read_round_trip_including_non_ascii(tmp_path: Path):
    path = tmp_path / "log" / "records.jsonl"
    items = [
        {"path": "café 写真.jpg", "n": 1},
        {"emoji": "📷", "nested": {"list": [1, 2.5, None, True]}, "quote": 'a "b" \\ c'},
        {"separators": "line\u2028para\u2029next\x85end", "tab": "a\tb", "newline": "a\nb"},
        {},
    ]
    for item in items:
        append_jsonl(path, item)
    raw = path.read_bytes()
    assert raw.count(b"\n") == len(items)  # one physical line per record
    assert "café 写真".encode() in raw  # stored as UTF-8, not \\u escapes
    assert list(read_jsonl(path)) == list(enumerate(items, start=1))


def test_a_name_that_is_not_utf8_is_written_as_valid_json_and_read_back_to_the_same_file(tmp_path: Path):
    name = os.fsdecode(b"caf\xe9.jpg")  # Latin-1 bytes on disk: Python carries them as a lone surrogate
    (tmp_path / name).write_bytes(b"photo")
    log = tmp_path / "log.jsonl"
    append_jsonl(log, {"path": name, "note": "café ✓"})
    raw = log.read_bytes()
    raw.decode("utf-8")  # the file stays valid UTF-8
    assert json.loads(raw) == {"path": name, "note": "café ✓"}
    ((_, obj),) = read_jsonl(log)
    assert (tmp_path / obj["path"]).read_bytes() == b"photo"
    assert os.fsencode(obj["path"]) == b"caf\xe9.jpg"


def test_read_jsonl_of_missing_file_is_empty(tmp_path: Path):
    assert list(read_jsonl(tmp_path / "none.jsonl")) == []


def test_read_jsonl_reports_bad_lines_and_keeps_going(tmp_path: Path):
    path = tmp_path / "r.jsonl"
    path.write_bytes(
        b'{"a": 1}\n'
        b"this is not json\n"
        b"\n"
        b'{"b": 2}\n'
        b"[1, 2, 3]\n"
        b'{"c": "\xff\xfe"}\n'
        b'{"d": 4}\n'
        b'{"e": 5, "trunc'
    )
    got = list(read_jsonl(path))
    assert [n for n, _ in got] == [1, 2, 4, 5, 6, 7, 8]
    good = {n: obj for n, obj in got if isinstance(obj, dict)}
    bad = {n: obj for n, obj in got if isinstance(obj, BadLine)}
    assert good == {1: {"a": 1}, 4: {"b": 2}, 7: {"d": 4}}
    assert set(bad) == {2, 5, 6, 8}
    for n, line in bad.items():
        assert line.lineno == n and line.path == path
        assert str(line).startswith(f"{path}:{n}: ")
    assert "not a JSON object" in bad[5].reason
    assert "torn" in bad[8].reason
    assert "torn" not in bad[2].reason


def test_read_jsonl_never_raises_on_hostile_lines(tmp_path: Path):
    """Zero-filled blocks (a crash before the data reached the disk) and absurd nesting are bad lines."""
    path = tmp_path / "r.jsonl"
    path.write_bytes(b'{"a": 1}\n' + b"\0" * 4096 + b"\n" + b"[" * 100_000 + b"\n" + b'{"b": 2}\n' + b"\0" * 100)
    with deadline(20):
        got = list(read_jsonl(path))
    assert [n for n, _ in got] == [1, 2, 3, 4, 5]
    assert got[0] == (1, {"a": 1}) and got[3] == (4, {"b": 2})
    assert all(isinstance(obj, BadLine) for n, obj in got if n in (2, 3, 5))
    append_jsonl(path, {"c": 3})  # after the zero-filled tail, the next record still lands on its own line
    assert records(path)[-1] == {"c": 3}


def test_append_after_a_torn_line_starts_a_fresh_line(tmp_path: Path):
    path = tmp_path / "r.jsonl"
    append_jsonl(path, {"first": 1})
    with open(path, "ab") as f:
        f.write(b'{"second": "killed mid-wri')  # a writer died here
    append_jsonl(path, {"third": "ü"})
    append_jsonl(path, {"fourth": 4})
    got = list(read_jsonl(path))
    assert [n for n, _ in got] == [1, 2, 3, 4]
    assert got[0] == (1, {"first": 1})
    assert isinstance(got[1][1], BadLine) and got[1][1].lineno == 2
    assert got[2] == (3, {"third": "ü"})
    assert got[3] == (4, {"fourth": 4})
    assert path.read_bytes().endswith(b'\n{"fourth":4}\n')


def test_append_to_an_empty_file_adds_no_blank_line(tmp_path: Path):
    path = tmp_path / "r.jsonl"
    path.write_bytes(b"")
    append_jsonl(path, {"a": 1})
    assert path.read_bytes() == b'{"a":1}\n'


def test_many_appends_stay_whole(tmp_path: Path):
    path = tmp_path / "r.jsonl"
    for i in range(200):
        append_jsonl(path, {"i": i, "pad": "x" * (i * 37 % 500)})
    got = records(path)
    assert [r["i"] for r in got] == list(range(200))


# --- read_source_bytes ----------------------------------------------------------------------------


def test_read_source_bytes_returns_content_and_stat_without_changing_the_file(tmp_path: Path):
    path = save_photo(tmp_path / "café.jpg", 200, 150, seed=3)
    old = 1_500_000_000_000_000_000
    os.utime(path, ns=(old, old))
    before = snapshot(tmp_path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()

    data, st = read_source_bytes(path)

    assert hashlib.sha256(data).hexdigest() == digest
    assert st.st_size == len(data)
    assert st.st_mtime_ns == old
    assert st.st_ino == path.stat().st_ino
    assert changed_entries(before, snapshot(tmp_path)) == {}
    assert path.stat().st_mtime_ns == old


def test_read_source_bytes_on_a_read_only_file(tmp_path: Path):
    path = tmp_path / "ro.png"
    path.write_bytes(b"\x89PNG" + b"\0" * 10)
    path.chmod(0o444)
    try:
        data, st = read_source_bytes(path)
        assert data == b"\x89PNG" + b"\0" * 10
        assert st.st_mode & 0o777 == 0o444
    finally:
        path.chmod(0o644)


def test_read_source_bytes_reads_large_files_whole(tmp_path: Path):
    path = tmp_path / "big.tif"
    blob = os.urandom((1 << 22) * 2 + 12345)  # more than one read chunk
    path.write_bytes(blob)
    data, st = read_source_bytes(path)
    assert data == blob and st.st_size == len(blob)


def test_read_source_bytes_refuses_files_over_the_limit(tmp_path: Path):
    path = tmp_path / "x.jpg"
    path.write_bytes(b"0123456789")
    with pytest.raises(ValueError, match="limit"):
        read_source_bytes(path, max_bytes=9)
    data, _ = read_source_bytes(path, max_bytes=10)
    assert data == b"0123456789"


def test_read_source_bytes_of_missing_file_raises_oserror(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        read_source_bytes(tmp_path / "missing.jpg")


def test_read_source_bytes_refuses_a_fifo_without_blocking(tmp_path: Path):
    fifo = tmp_path / "swapped.jpg"
    os.mkfifo(fifo)
    with deadline(10), pytest.raises(NotRegularFile):
        read_source_bytes(fifo)


def test_read_source_bytes_refuses_a_folder(tmp_path: Path):
    (tmp_path / "dir.jpg").mkdir()
    with pytest.raises(NotRegularFile) as info:
        read_source_bytes(tmp_path / "dir.jpg")
    assert isinstance(info.value, OSError)  # callers catching OSError still catch it


def test_read_source_bytes_can_refuse_to_read_through_a_link(tmp_path: Path):
    target = tmp_path / "real.txt"
    target.write_bytes(b"data")
    (tmp_path / "link.txt").symlink_to(target)
    assert read_source_bytes(tmp_path / "link.txt")[0] == b"data"
    with pytest.raises(OSError):
        read_source_bytes(tmp_path / "link.txt", follow_link=False)
    assert read_source_bytes(target, follow_link=False)[0] == b"data"


def test_open_folder_lists_without_following_a_link_when_asked(tmp_path: Path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "a").write_bytes(b"")
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    fd = fileio.open_folder(tmp_path / "link")
    try:
        assert os.listdir(fd) == ["a"]
    finally:
        os.close(fd)
    with pytest.raises(OSError):
        fileio.open_folder(tmp_path / "link", follow_link=False)


def test_read_source_bytes_of_empty_file(tmp_path: Path):
    path = tmp_path / "e.jpg"
    path.write_bytes(b"")
    data, st = read_source_bytes(path)
    assert data == b"" and st.st_size == 0


def test_jsonl_lines_are_compact_json(tmp_path: Path):
    path = tmp_path / "r.jsonl"
    append_jsonl(path, {"a": [1, 2], "b": "c"})
    line = path.read_bytes().decode("utf-8")
    assert line == '{"a":[1,2],"b":"c"}\n'
    assert json.loads(line) == {"a": [1, 2], "b": "c"}
