"""Errors that carry a message telling the user what to do next."""

import errno
from pathlib import Path

TMP_MARK = ".cropkit-tmp-"  # in the names of files being written (see cropkit.fileio)


class CropkitError(Exception):
    """A failure the user can act on; the CLI prints the message and exits with status 2."""


class WeightsUnavailable(CropkitError):
    """Pretrained encoder weights could not be found or fetched."""


class LayoutError(CropkitError):
    """The root or images folder is missing or unusable."""


def explain_os_error(exc: OSError, retry: str = "run the command again") -> str:
    """What a failed file operation means for the user and what to do: used by the CLI and the reviewer.

    A full disk or a read-only ``data/ai_data`` stops a command; everything it finished before is kept.
    """
    name = exc.filename
    where = f"a new file in {Path(name).parent}" if name and TMP_MARK in str(name) else str(name or "a file")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"the disk is full ({exc.strerror}): cannot write {where}. Everything finished before this "
                f"is kept. Free some space on that disk (or use a --root on a disk with room) and {retry}: it "
                "goes on where it stopped.")
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return (f"cannot write {where}: {exc.strerror}. cropkit only reads the photo library and writes "
                "under ROOT/data/ai_data (plus sidecars when asked): make that folder writable, or choose "
                f"another --root, and {retry}. Nothing already there was changed.")
    return f"{exc.strerror or exc}" + (f": {where}" if name else "")
