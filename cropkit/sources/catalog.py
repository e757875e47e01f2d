"""The Lightroom Classic catalog (``.lrcat``, an SQLite database): each image's file and its develop settings'
crop, read from a private copy (Lightroom may hold the catalog open and write to it meanwhile).

The schema, from open-source readers (hfiguiere/lrcat-extractor's doc/lrcat_format.md, kal-kaliper/lrcat2xmp,
alfanick/lrcat.rb): ``Adobe_images`` (``rootFile``) -> ``AgLibraryFile`` (``baseName``, ``extension``,
``folder``) -> ``AgLibraryFolder`` (``pathFromRoot``, ``rootFolder``) -> ``AgLibraryRootFolder``
(``absolutePath``); ``Adobe_imageDevelopSettings.text`` (``image`` -> ``Adobe_images``) is a Lua table,
``s = { CropLeft = 0.1, ... }``, with the same crop keys and geometry as the ``crs:`` XMP tags, validated by the
XMP reader. Virtual copies are images of their own with the same file: each of their crops is imported.

A catalog is untrusted input: only real tables are read (no views, virtual tables or computed columns), rows are
streamed under a row and an SQLite-step budget that the tables' sizes set, and values are size-capped.
"""

from __future__ import annotations

import re
import sqlite3
import zlib
from collections.abc import Iterator
from pathlib import Path
from xml.etree.ElementTree import Element

from tqdm.auto import tqdm

from cropkit.errors import CropkitError
from cropkit.sources.lrcat_copy import private_copy
from cropkit.sources.xmp import CRS, RDF, AdobeCrop, XmpError, adobe_crop

TABLES = ("Adobe_images", "AgLibraryFile", "AgLibraryFolder", "AgLibraryRootFolder", "Adobe_imageDevelopSettings")
MAX_SETTINGS = 4 << 20  # characters of one image's develop settings (real ones are 5-50 KB)
MAX_INFLATE = 100  # compressed settings expand at most this many times (Lua text compresses about 5x)
MAX_VALUE = 64 << 20  # SQLite's limit on any one value read: a bigger one stops the import with an error
STEPS_PER_ROW = 2_000  # SQLite steps allowed per row of the tables read (a plain catalog takes about 25)
QUERY = f"""
SELECT i.id_local, rf.absolutePath || fo.pathFromRoot || fi.baseName || '.' || fi.extension,
       CASE WHEN ds.text IS NULL THEN '' WHEN length(ds.text) > {MAX_SETTINGS} THEN NULL
            WHEN typeof(ds.text) = 'blob' OR instr(ds.text, 'HasCrop') > 0 THEN ds.text ELSE '' END
FROM Adobe_images i
JOIN AgLibraryFile fi ON fi.id_local = i.rootFile
JOIN AgLibraryFolder fo ON fo.id_local = fi.folder
JOIN AgLibraryRootFolder rf ON rf.id_local = fo.rootFolder
LEFT JOIN Adobe_imageDevelopSettings ds ON ds.image = i.id_local
WHERE typeof(i.id_local) = 'integer'
"""
_TOKEN = re.compile(r'\s*(?:(\{)|(\})|(,)|(=)|("(?:[^"\\]|\\.)*")|(\[\s*"(?:[^"\\]|\\.)*"\s*\])|([A-Za-z_][\w.]*)|'
                    r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?))")
_NESTED = re.compile(r'"(?:[^"\\]|\\.)*"|[{}]')  # inside a nested table only its braces matter (and strings)


def top_level(text: str | None) -> dict[str, str]:
    """The ``key = value`` pairs directly inside the outermost table of a Lua table text (nested tables, such as
    masks that repeat the crop keys, are skipped); values as their text. None is settings too large to read."""
    if text is None:
        raise XmpError(f"develop settings over {MAX_SETTINGS:,} characters (or a zlib bomb), not read")
    out: dict[str, str] = {}
    depth, pos, pending, last = 0, 0, None, None
    while pos < len(text):
        if depth > 1:  # skipped at the speed of a regex search: masks and curves are most of the text
            m = _NESTED.search(text, pos)
            if m is None:
                break
            pos = m.end()
            depth += {"{": 1, "}": -1}.get(m.group(), 0)
            continue
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
    """The develop settings' crop (None when ``HasCrop`` is not true), refused exactly as the XMP reader refuses
    a ``crs:`` crop: the same keys, read by ``adobe_crop`` from an rdf:Description that carries them."""
    return adobe_crop(Element(f"{{{RDF}}}Description", {f"{{{CRS}}}{k}": v for k, v in settings.items()}))


def _settings_text(value: object) -> str | None:
    """The develop settings as text: stored as text, or (in some versions) as a length-prefixed zlib blob;
    None when they inflate beyond the caps."""
    if isinstance(value, str) or value is None:
        return value
    if isinstance(value, bytes):
        if value.lstrip().startswith(b"s"):
            return value.decode("utf-8", "replace")
        inflate = zlib.decompressobj()
        try:
            text = inflate.decompress(value[4:], min(MAX_SETTINGS, MAX_INFLATE * len(value) + 65536))
        except zlib.error:
            return ""
        return None if inflate.unconsumed_tail else text.decode("utf-8", "replace")
    return ""


def _check_tables(db: sqlite3.Connection, catalog: Path) -> int:
    """Refuse a catalog whose tables are views, virtual tables or have computed columns (which run code of the
    catalog's on every read); the rows the tables hold, for the budgets."""
    kinds = {name.lower(): (kind, sql or "") for name, kind, sql in
             db.execute("SELECT name, type, sql FROM sqlite_master WHERE type IN ('table', 'view')")}
    rows = 0
    for table in TABLES:
        kind, sql = kinds.get(table.lower(), (None, ""))
        if kind is None:
            raise CropkitError(f"{catalog}: no {table} table: not a Lightroom Classic catalog")
        computed = kind == "table" and any(c[-1] == 2 for c in db.execute(f"PRAGMA table_xinfo({table})"))
        if kind != "table" or sql.lstrip()[:14].upper() == "CREATE VIRTUAL" or computed:
            what = "a view" if kind == "view" else "a computed column" if computed else "a virtual table"
            raise CropkitError(f"{catalog}: {table} is {what}, not a plain table: refused (a Lightroom catalog "
                               "has none; this one was made by something else)")
        rows += db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    return rows


def catalog_rows(catalog: Path, progress: bool = True) -> Iterator[tuple[int, str, str | None]]:
    """(image id, file path as the catalog records it, develop settings text: '' when they hold no crop, None
    when too large) for every image, streamed from a private copy that no file name points at while it is read."""
    with private_copy(catalog) as db:
        try:
            db.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE)
            db.execute("PRAGMA query_only = ON")
            db.execute("PRAGMA trusted_schema = OFF")
            table_rows = _check_tables(db, catalog)
            budget = STEPS_PER_ROW * (table_rows + 10)
            steps = [budget]

            def spend() -> int:
                steps[0] -= 1000
                return steps[0] < 0

            db.set_progress_handler(spend, 1000)
            rows = db.execute(f"SELECT count(*) FROM ({QUERY})").fetchone()[0]  # the budgets kept before any row
            if rows > table_rows:
                raise CropkitError(f"{catalog}: its tables join into more rows ({rows:,}) than they hold "
                                   f"({table_rows:,}): a damaged or forged catalog, refused; use a backup of it")
            steps[0] = budget
            with tqdm(total=rows, unit="img", desc="catalog", disable=not progress, dynamic_ncols=True) as bar:
                for image_id, path, text in db.execute(QUERY):
                    bar.update(1)
                    yield image_id, "" if path is None else str(path), _settings_text(text)
        except sqlite3.DatabaseError as exc:
            spent = isinstance(exc, sqlite3.OperationalError) and str(exc) == "interrupted"
            why = "it takes too long to read: a damaged or forged catalog" if spent else str(exc)
            raise CropkitError(f"{catalog}: not a readable Lightroom Classic catalog ({why}); if Lightroom is "
                               "writing it, close Lightroom; if it is damaged, use a backup") from None

