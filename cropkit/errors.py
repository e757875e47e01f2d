"""Errors that carry a message telling the user what to do next."""

import errno
import reprlib
from pathlib import Path

TMP_MARK = ".cropkit-tmp-"  # in the names of files being written (see cropkit.fileio)
_brief = reprlib.Repr()
_brief.maxstring = _brief.maxother = 80
_brief.maxlong = 40
_in_notebook = False  # set by cropkit.notebooks.use_parameters: options are then named as notebook parameters


def brief(value: object) -> str:
    """A short repr of a value read from a file, for messages: never echoes a huge field in full."""
    return _brief.repr(value)


def option(name: str, value: str) -> str:
    """An option as the user sets it where cropkit runs: ``--weights none`` on the command line, ``weights =
    'none'`` in a notebook (once it called ``cropkit.use_parameters``); a long value is cut."""
    if _in_notebook:
        return f"{name.replace('-', '_')} = {brief(value)}"
    return f"--{name} {value if len(value) <= 80 else brief(value)}"


def name_options_as_notebook_parameters() -> None:
    """From now on, in this process, ``option`` names notebook parameters instead of command-line flags."""
    global _in_notebook
    _in_notebook = True


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
