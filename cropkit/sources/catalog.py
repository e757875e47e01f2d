"""The Lightroom Classic catalog (``.lrcat``, an SQLite database): each image's file and its develop settings'
crop, read from a private copy opened read-only (Lightroom may hold the catalog open and write to it meanwhile).

The schema, from open-source readers (hfiguiere/lrcat-extractor's doc/lrcat_format.md, kal-kaliper/lrcat2xmp,
alfanick/lrcat.rb): ``Adobe_images`` (``rootFile``) -> ``AgLibraryFile`` (``baseName``, ``extension``,
``folder``) -> ``AgLibraryFolder`` (``pathFromRoot``, ``rootFolder``) -> ``AgLibraryRootFolder``
(``absolutePath``); ``Adobe_imageDevelopSettings.text`` (``image`` -> ``Adobe_images``) is a Lua table,
``s = { CropLeft = 0.1, ... }``, with the same crop keys and geometry as the ``crs:`` XMP tags. Virtual copies are
images of their own with the same file: each of their crops is imported.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from cropkit.errors import CropkitError
from cropkit.sources.xmp import AdobeCrop, XmpError

QUERY = """
SELECT i.id_local, rf.absolutePath || fo.pathFromRoot || fi.baseName || '.' || fi.extension, ds.text
FROM Adobe_images i
JOIN AgLibraryFile fi ON fi.id_local = i.rootFile
JOIN AgLibraryFolder fo ON fo.id_local = fi.folder
JOIN AgLibraryRootFolder rf ON rf.id_local = fo.rootFolder
LEFT JOIN Adobe_imageDevelopSettings ds ON ds.image = i.id_local
ORDER BY i.id_local
"""
_TOKEN = re.compile(r'\s*(?:(\{)|(\})|(,)|(=)|("(?:[^"\\]|\\.)*")|(\[\s*"(?:[^"\\]|\\.)*"\s*\])|([A-Za-z_][\w.]*)|'
                    r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?))")


def top_level(text: str) -> dict[str, str]:
    """The ``key = value`` pairs directly inside the outermost table of a Lua table text (nested tables, such as
    masks that repeat the crop keys, are skipped); values as their text."""
    out: dict[str, str] = {}
    depth, pos, pending, last = 0, 0, None, None
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            pos += 1  # a character the crop keys never need (ZSTR markers, comments)
            continue
        pos = m.end()
        opened, closed, _comma, equals, string, _bracketed, name, number = m.groups()
        if opened:
            depth += 1
            pending = None
        elif closed:
            depth -= 1
        elif equals:
            pending = last if depth == 1 else None
        elif depth == 1 and pending and (string or name or number):
            out[pending] = string[1:-1] if string else name or number
            pending = None
        last = name
    return out


def catalog_crop(settings: dict[str, str]) -> AdobeCrop | None:
    """The develop settings' crop (None when ``HasCrop`` is not true)."""
    if settings.get("HasCrop", "").lower() != "true":
        return None
    try:
        return AdobeCrop(*(float(settings.get(k, "0" if k == "CropAngle" else "nan")) for k in
                           ("CropLeft", "CropTop", "CropRight", "CropBottom", "CropAngle")))
    except ValueError as exc:
        raise XmpError(f"a crop value is not a number: {exc}") from None


def _settings_text(value: object) -> str:
    """The develop settings as text: stored as text, or (in some versions) as a length-prefixed zlib blob."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        if value.lstrip().startswith(b"s"):
            return value.decode("utf-8", "replace")
        try:
            return zlib.decompressobj().decompress(value[4:], 1 << 24).decode("utf-8", "replace")
        except zlib.error:
            return ""
    return ""


def catalog_rows(catalog: Path) -> Iterator[tuple[int, str, str]]:
    """(image id, file path as the catalog records it, develop settings text) for every image; the catalog is
    copied to a private temporary file and that copy opened read-only."""
    if not catalog.is_file():
        raise CropkitError(f"{catalog}: no such catalog file")
    with tempfile.TemporaryDirectory(prefix="cropkit-lrcat-") as tmp:
        copy = Path(tmp) / "catalog.lrcat"
        try:
            shutil.copyfile(catalog, copy)
        except OSError as exc:
            raise CropkitError(f"{catalog}: cannot be copied to read it ({exc}); close Lightroom and try again") \
                from None
        try:
            db = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
            try:
                rows = db.execute(QUERY).fetchall()
            finally:
                db.close()
        except sqlite3.DatabaseError as exc:
            raise CropkitError(f"{catalog}: not a readable Lightroom Classic catalog ({exc}); if Lightroom is "
                               "writing it, close Lightroom; if it is damaged, use a backup") from None
    for image_id, path, text in rows:
        yield int(image_id), str(path), _settings_text(text)
