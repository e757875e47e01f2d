"""A real full or read-only filesystem for one test: a small tmpfs mounted on a folder (needs root).

Real filesystems, not mocks: every writer (features, cues, cache, logs, models, reports, figures,
papermill outputs, sidecars) meets the kernel's own ENOSPC and EROFS.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

PAGE = 4096


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "16m", options: str = "") -> Iterator[Path]:
    """Mount a tmpfs of ``size`` on ``path`` for the duration (``options`` such as ``strictatime`` added); CI must
    be able to (it runs as root)."""
    path.mkdir(parents=True, exist_ok=True)
    opts = f"size={size},mode=0755" + (f",{options}" if options else "")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "cropkit-test", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        reason = f"mounting a tmpfs needs root (CAP_SYS_ADMIN): {done.stderr.strip()}"
        if os.environ.get("CI"):
            pytest.fail(reason)  # CI runs as root: these tests must run there, never silently skip
        pytest.skip(reason)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def remount(path: Path, options: str) -> None:
    """Change a mounted tmpfs, e.g. ``ro``, ``rw`` or ``size=32m``."""
    subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True)


def fill(disk: Path, leave_pages: int = 0) -> Path:
    """Take all free space of ``disk`` but ``leave_pages`` pages, with one filler file; returns it."""
    filler = disk / "filler.bin"
    st = os.statvfs(disk)
    target = max(0, st.f_bavail * st.f_frsize - leave_pages * PAGE)
    with open(filler, "wb") as f:
        try:
            while target > 0:
                target -= f.write(b"\0" * min(target, 1 << 20))
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler
