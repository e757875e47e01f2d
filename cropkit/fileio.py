"""All file reading and writing: read-only source access, atomic writes, append-only JSONL."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cropkit.errors import TMP_MARK

_NOATIME = getattr(os, "O_NOATIME", 0)
_SURROGATE = re.compile("[\ud800-\udfff]")


class NotRegularFile(OSError):
    """The path is a pipe, device, socket or folder, not a plain file to read."""


def _open_noatime(path: Path | str, flags: int) -> int:
    """``os.open`` with O_NOATIME where the OS allows it (it needs ownership; read-only is read-only anyway)."""
    try:
        return os.open(path, flags | _NOATIME)
    except PermissionError:
        return os.open(path, flags)


def open_folder(path: Path | str, follow_link: bool = True) -> int:
    """A read-only descriptor of a folder for listing (``os.scandir(fd)``) without updating its atime."""
    flags = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0) | (0 if follow_link else os.O_NOFOLLOW)
    return _open_noatime(path, flags)


def open_source(path: Path | str, follow_link: bool = True) -> int:
    """A read-only descriptor of a source file that writes nothing to it, metadata included (O_NOATIME where
    allowed); raises NotRegularFile for a pipe, socket, device or folder (opened non-blocking, so a pipe swapped
    in under a file's name cannot hang), and OSError (ELOOP) for a link when ``follow_link`` is False."""
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = _open_noatime(path, flags | (0 if follow_link else os.O_NOFOLLOW))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotRegularFile(errno.EINVAL, "not a regular file (a pipe, socket, device or folder)", str(path))
    return fd


def read_source_bytes(path: Path, max_bytes: int | None = None,
                      follow_link: bool = True) -> tuple[bytes, os.stat_result]:
    """Read a source file whole and its stat through ``open_source``; over ``max_bytes`` refused before reading."""
    fd = open_source(path, follow_link)
    try:
        st = os.fstat(fd)
        if max_bytes is not None and st.st_size > max_bytes:
            raise ValueError(f"file is {st.st_size:,} bytes, over the {max_bytes:,}-byte limit")
        chunks = []
        while chunk := os.read(fd, 1 << 22):
            chunks.append(chunk)
        return b"".join(chunks), st
    finally:
        os.close(fd)


def temp_path(path: Path, suffix: str = "") -> Path:
    """A hidden, unique name beside ``path`` for writing it: it carries the writer's pid, so that
    ``remove_stale_temp_files`` can tell a dead writer's leftovers from work in flight."""
    return path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}-{secrets.token_hex(4)}{suffix}")


def atomic_write_bytes(path: Path, data: bytes, *, replace: bool = True) -> bool:
    """Write ``data`` to ``path`` through a temp file and a rename, so readers never see half a file.

    With ``replace=False`` an existing file is left alone and False is returned.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if the name is taken, never overwrites
            except FileExistsError:
                return False
            finally:
                tmp.unlink(missing_ok=True)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not exc.filename:  # a failed write() names no file: name the target
            exc.filename = str(path)
        raise
    return True


def remove_stale_temp_files(folder: Path) -> int:
    """Delete temp files left by a killed writer in ``folder`` (not recursive); returns how many.

    A temp file whose writer (the pid in its name) is still running is another process's work in flight
    and is left alone.
    """
    removed = 0
    if folder.is_dir():
        for entry in os.scandir(folder):
            if TMP_MARK in entry.name and entry.is_file(follow_symlinks=False) and not temp_writer_alive(entry.name):
                with contextlib.suppress(FileNotFoundError):  # its writer may have just renamed it
                    os.unlink(entry.path)
                    removed += 1
    return removed


def temp_writer_alive(temp_name: str) -> bool:
    """Whether the process whose pid a temp file's name carries is still running."""
    pid_text = temp_name.split(TMP_MARK, 1)[1].split("-", 1)[0]
    return pid_text.isdigit() and pid_alive(int(pid_text))


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError) as exc:
        return isinstance(exc, PermissionError)  # exists, owned by someone else; a pid too large is no process
    return True


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON object as one whole line with a single write on an O_APPEND descriptor."""
    line = jsonl_line(record)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        _ensure_line_start(fd)
        start = os.fstat(fd).st_size
        written = 0
        try:
            while written < len(line):  # a regular file only writes short when the disk fills: that raises next
                written += os.write(fd, line[written:])
        except OSError as exc:
            if written and os.fstat(fd).st_size == start + written:  # nobody appended after our part
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, start)  # take the partial line back; the log stays whole
            exc.filename = exc.filename or str(path)
            raise
    finally:
        os.close(fd)


def json_text(obj: Any, allow_nan: bool = True) -> str:
    """Compact JSON with readable text kept; a str that is no valid Unicode (a file name in another encoding,
    which os.fsdecode carries as lone surrogates) is written as \\u escapes, so the text is valid UTF-8 and
    reading it back gives the same str."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=allow_nan)
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def jsonl_line(record: dict[str, Any]) -> bytes:
    """One record as one whole JSON line."""
    return (json_text(record) + "\n").encode("utf-8")


def _ensure_line_start(fd: int) -> None:
    """After a torn last line (a killed writer), start on a fresh line so the new record stays whole."""
    size = os.fstat(fd).st_size
    if size and os.pread(fd, 1, size - 1) != b"\n":
        os.write(fd, b"\n")


@dataclass(frozen=True)
class BadLine:
    """A JSONL line that could not be used, with where it is and why."""

    path: Path
    lineno: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.lineno}: {self.reason}"


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any] | BadLine]]:
    """Yield ``(line number, object)`` for each line; unparsable lines come as BadLine, never raise."""
    if not path.exists():
        return
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except (ValueError, RecursionError) as exc:  # bad JSON, bad UTF-8, absurd nesting
                torn = "" if raw.endswith(b"\n") else " (torn last line: a writer was interrupted)"
                yield lineno, BadLine(path, lineno, f"not valid JSON{torn}: {exc}")
                continue
            if not isinstance(obj, dict):
                yield lineno, BadLine(path, lineno, "not a JSON object")
                continue
            yield lineno, obj
