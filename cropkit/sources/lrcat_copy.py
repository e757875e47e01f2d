"""A private copy of an SQLite database to read, that leaves nothing behind: the file and its write-ahead log
(``-wal``, which Lightroom keeps while it runs and a crash leaves) or rollback journal (``-journal``) are copied
with O_NOATIME into a folder of this process's own, opened there by SQLite (which applies the log or rolls the
journal back in the copy, never next to the user's file), and unlinked while the connection holds them open.

Only the copying is ever on disk under a name; a copy left by a killed run (its pid in the folder's name) is
removed by the next.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from cropkit.errors import TMP_MARK, CropkitError
from cropkit.fileio import open_source, temp_writer_alive

PREFIX = "cropkit-lrcat"
COMPANIONS = ("-wal", "-journal")
LEGACY = re.compile(r"cropkit-lrcat-[a-z0-9_]{8}$")  # the unnamed temporary folders of earlier versions
LEGACY_AGE_S = 24 * 3600
TRIES = 3


def remove_stale_copies(folder: Path | None = None) -> int:
    """Remove the private copies that killed runs left in ``folder`` (the temporary folder): those whose pid is
    no longer running, and earlier versions' unnamed ones after a day; only folders of this user. How many."""
    folder = Path(folder or tempfile.gettempdir())
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    removed = 0
    for entry in entries:
        if not entry.name.startswith(PREFIX):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
            continue
        if (not temp_writer_alive(entry.name) if TMP_MARK in entry.name else
                LEGACY.match(entry.name) and time.time() - st.st_mtime > LEGACY_AGE_S):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed += 1
    return removed


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _copy(source: Path, target: Path) -> None:
    """Copy a plain file without moving its access time (O_NOATIME) and without blocking on a pipe."""
    fd = open_source(source)
    try:
        with open(target, "xb") as out:
            while chunk := os.read(fd, 1 << 20):
                out.write(chunk)
    finally:
        os.close(fd)


def _open_copy(database: Path, folder: Path) -> sqlite3.Connection | None:
    """The database and its companions copied into ``folder`` and opened there, its first read done; None when
    they changed while being copied."""
    files = {suffix: Path(f"{database}{suffix}") for suffix in ("", *COMPANIONS)}
    before = {suffix: _signature(path) for suffix, path in files.items()}
    copy = folder / "catalog.lrcat"
    try:
        for suffix, path in files.items():
            if before[suffix] is not None:
                _copy(path, Path(f"{copy}{suffix}"))
    except FileNotFoundError:
        return None  # Lightroom removed its log meanwhile: copy again
    except OSError as exc:
        raise CropkitError(f"{database}: cannot be copied to read it ({exc}); close Lightroom and try again") \
            from None
    if {suffix: _signature(path) for suffix, path in files.items()} != before:
        return None
    db = sqlite3.connect(copy, isolation_level=None)
    try:
        db.execute("BEGIN")  # one read transaction: the copy's log applied once, the rows all of one moment
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        db.close()
        raise CropkitError(f"{database}: not a readable Lightroom Classic catalog ({exc}); if it is damaged, "
                           "use a backup") from None
    return db


@contextlib.contextmanager
def private_copy(database: Path) -> Iterator[sqlite3.Connection]:
    """A connection to a copy of ``database`` with its log, whose files are already unlinked."""
    if not database.is_file():
        raise CropkitError(f"{database}: no such catalog file")
    remove_stale_copies()
    for _ in range(TRIES):
        folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{TMP_MARK}{os.getpid()}-"))
        try:
            db = _open_copy(database, folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if db is not None:
            break
    else:
        raise CropkitError(f"{database}: it kept changing while it was copied; close Lightroom (or let it finish "
                           "what it is doing) and try again")
    try:
        yield db
    finally:
        db.close()
