"""A Lightroom Classic catalog as Lightroom leaves it (open, in WAL mode) and as an attacker makes it: read with its
log, atime untouched, nothing left behind; views, computed columns, multiplying joins and oversized settings
refused or bounded; crop values checked as the XMP reader checks them; origins that tell two catalogs apart."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import tracemalloc
import zlib
from pathlib import Path

import pytest

from cropkit.cli import main
from cropkit.decisions import read_crops
from cropkit.errors import TMP_MARK, CropkitError
from cropkit.sources.run import run_import
from cropkit.sources.xmp import XmpError, adobe_crop, parse_xmp
from tests.libgen import save_photo, snapshot
from tests.sources.conftest import lightroom_xmp
from tests.sources.test_import import _catalog, _settings, crops_by_image, library

DAY_NS = 24 * 3600 * 10**9


@pytest.fixture()
def private_tmp(tmp_path, monkeypatch) -> Path:
    """The temporary folder the import copies catalogs into, this test's own."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _catalog_with(tmp_path: Path, images: Path, settings: list[str | bytes], name: str = "cat") -> Path:
    """A catalog in its own folder: image ``10 + k`` is ``c.jpg`` (400 x 300) with ``settings[k]``."""
    save_photo(images / "c.jpg", 400, 300)
    catalog = tmp_path / name / "Lightroom Catalog.lrcat"
    catalog.parent.mkdir()
    _catalog(catalog, [(10 + k, f"{images}/", "c.jpg", text) for k, text in enumerate(settings)])
    return catalog


def test_a_catalog_in_wal_mode_is_read_with_its_log_atime_and_folder_untouched(tmp_path, private_tmp):
    layout, images = library(tmp_path)
    catalog = _catalog_with(tmp_path, images, [_settings(0.1, 0.1, 0.5, 0.5, 0)])
    lightroom = sqlite3.connect(catalog)  # Lightroom holds it open; the new crop is only in the -wal so far
    lightroom.execute("PRAGMA journal_mode = WAL")
    lightroom.execute("PRAGMA wal_autocheckpoint = 0")
    lightroom.execute("UPDATE Adobe_imageDevelopSettings SET text = ?", (_settings(0.28, 0.2, 0.9, 0.8, 0),))
    lightroom.commit()
    try:
        assert Path(f"{catalog}-wal").stat().st_size > 0
        for path in catalog.parent.iterdir():  # accessed days ago: relatime would move these on a plain read
            st = path.stat()
            os.utime(path, ns=(st.st_mtime_ns - 3 * DAY_NS, st.st_mtime_ns))
        before = snapshot(catalog.parent, atime=True)
        args = ["import", "catalog", str(catalog), "--root", str(tmp_path)]
        assert main([*args, "--dry-run"]) == 0
        assert snapshot(catalog.parent, atime=True) == before  # content, size, mtime, mode, atime; no new file
        assert main(args) == 0
        assert snapshot(catalog.parent, atime=True) == before
    finally:
        lightroom.close()
    (crop,) = crops_by_image(layout, "lightroom-catalog")["c.jpg"]
    assert crop.crop == pytest.approx((112, 60, 360, 240), abs=0.5)  # 0.28 ... of 400 x 300, not the old 40, 30 ...
    assert list(private_tmp.iterdir()) == []


def test_views_computed_columns_and_multiplying_joins_are_refused(tmp_path, private_tmp):
    layout, images = library(tmp_path)
    crop = _settings(0.1, 0.1, 0.9, 0.9, 0)
    forgeries = {
        "a view": ["ALTER TABLE Adobe_images RENAME TO images_real",
                   "CREATE VIEW Adobe_images AS SELECT * FROM images_real"],
        "a computed column": ["DROP TABLE Adobe_imageDevelopSettings",
                              "CREATE TABLE Adobe_imageDevelopSettings (id_local INTEGER PRIMARY KEY, image INTEGER, "
                              f"text TEXT AS ('{crop}' || zeroblob(1000)) VIRTUAL)",
                              "INSERT INTO Adobe_imageDevelopSettings (id_local, image) VALUES (1, 10)"],
        "a virtual table": ["DROP TABLE AgLibraryRootFolder",
                            "CREATE VIRTUAL TABLE AgLibraryRootFolder USING fts5(id_local, absolutePath)",
                            "INSERT INTO AgLibraryRootFolder VALUES (1, '/')"],
        # statistics that call 5,000 rows one: SQLite scans the settings once per image (25 million steps)
        "too long": [*_duplicated("Adobe_images", 1), *_duplicated("Adobe_imageDevelopSettings", 1), "ANALYZE",
                     "UPDATE sqlite_stat1 SET stat = '1'"],
        "join into more rows": _duplicated("AgLibraryFile", 300),  # 300 images x 300 files: 90,000 rows
    }
    for k, (what, statements) in enumerate(forgeries.items()):
        catalog = _catalog_with(tmp_path, images, [crop] * (300 if "join" in what else 5000 if "long" in what else 1),
                                f"forged{k}")
        db = sqlite3.connect(catalog)
        for statement in statements:
            db.execute(statement)
        db.commit()
        db.close()
        with pytest.raises(CropkitError, match=what):
            run_import("catalog", layout, [catalog])
        assert list(private_tmp.iterdir()) == [], what
    assert read_crops(layout.logs)[0] == []


def _duplicated(table: str, copies: int) -> list[str]:
    """Statements that give ``table`` ``copies`` rows of each of its rows, ids and all (no primary key)."""
    return [f"CREATE TABLE dup AS SELECT * FROM {table}", f"DROP TABLE {table}",
            f"CREATE TABLE {table} AS SELECT dup.* FROM dup, (WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL "
            f"SELECT x + 1 FROM n WHERE x < {copies}) SELECT x FROM n)", "DROP TABLE dup"]


def test_oversized_and_inflating_settings_are_skipped_unread(tmp_path, private_tmp):
    layout, images = library(tmp_path)
    crop = _settings(0.1, 0.1, 0.9, 0.9, 0)
    huge = crop.replace("ToneCurveName", "Dabs = { " + '"d 0.5 0.5", ' * 500_000 + "},\n\tToneCurveName")
    bomb = crop.encode() + b"{" * 8_000_000
    catalog = _catalog_with(tmp_path, images, [crop, huge, len(bomb).to_bytes(4, "big") + zlib.compress(bomb, 9)])
    (summary,) = run_import("catalog", layout, [catalog])
    assert summary.imported == 1 and summary.skipped["unusable crop"] == 2, summary.lines()
    assert "not read" in summary.first_skip["unusable crop"]
    assert [c.origin.rsplit("#", 1)[1] for c in read_crops(layout.logs)[0]] == ["10"]


@pytest.mark.parametrize("values", [(-0.5, 0.1, 1.5, 0.9, 0), (0.1, 0.1, "inf", 0.9, 0), ("-1e999", 0.1, 0.9, 0.9, 0),
                                    (0.1, 0.1, 0.9, "1e999", 0), (0.9, 0.9, 0.1, 0.1, 180),
                                    (0.1, 0.1, 0.9, 0.9, "nan")])
def test_values_the_xmp_reader_refuses_are_refused_in_a_catalog(tmp_path, private_tmp, values):
    with pytest.raises(XmpError):  # the XMP reader's verdict on the same values
        adobe_crop(parse_xmp(lightroom_xmp(*(float(v) for v in values), 1)))
    layout, images = library(tmp_path)
    catalog = _catalog_with(tmp_path, images, [_settings(*values), _settings(0.1, 0.1, 0.9, 0.9, 0)])
    for _ in range(2):  # and again: nothing appended on a rerun
        (summary,) = run_import("catalog", layout, [catalog])
        assert summary.skipped["unusable crop"] == 1, summary.lines()
    (crop,) = read_crops(layout.logs)[0]
    assert crop.origin.endswith("#11") and crop.crop == pytest.approx((40, 30, 360, 270), abs=0.5)


def test_no_private_copy_outlives_an_import_and_killed_ones_are_cleaned(tmp_path, private_tmp):
    layout, images = library(tmp_path)
    catalog = _catalog_with(tmp_path, images, [_settings(0.1, 0.1, 0.9, 0.9, 0)] * 3)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = [private_tmp / f"cropkit-lrcat{TMP_MARK}{dead.pid}-abcd1234", private_tmp / "cropkit-lrcat-x1y2z3_4"]
    alive = private_tmp / f"cropkit-lrcat{TMP_MARK}{os.getpid()}-efgh5678"  # another import of this process
    for folder in (*stale, alive):
        folder.mkdir()
        (folder / "catalog.lrcat").write_bytes(catalog.read_bytes())
    old = time.time() - 2 * 24 * 3600
    os.utime(stale[1], (old, old))
    assert run_import("catalog", layout, [catalog])[0].imported == 3  # an image and two virtual copies
    assert sorted(private_tmp.iterdir()) == [alive]
    alive.joinpath("catalog.lrcat").unlink()
    alive.rmdir()
    reader = subprocess.Popen(  # killed while it reads the catalog's rows
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from cropkit.sources.catalog import "
         "catalog_rows; rows = catalog_rows(Path(sys.argv[1])); next(rows); print('reading', flush=True); "
         "time.sleep(60)", str(catalog)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=Path(__file__).parents[2],
        env={**os.environ, "TMPDIR": str(private_tmp)})
    try:
        assert reader.stdout.readline() == "reading\n"
        assert list(private_tmp.iterdir()) == []  # the copy has no name while it is read
    finally:
        reader.kill()
        reader.wait()
    assert list(private_tmp.iterdir()) == []


def test_a_long_catalog_is_streamed_with_progress(tmp_path, private_tmp, capsys):
    layout, images = library(tmp_path)
    curves = "s = {\n\tToneCurvePV2012 = { " + ", ".join(map(str, range(1500))) + " },\n}\n"  # 8 KB, no crop
    catalog = _catalog_with(tmp_path, images, [_settings(0.1, 0.1, 0.9, 0.9, 0)] + [curves] * 3000)
    main(["import", "catalog", str(catalog), "--root", str(tmp_path), "--dry-run"])  # every module imported
    capsys.readouterr()
    tracemalloc.start()
    try:
        assert main(["import", "catalog", str(catalog), "--root", str(tmp_path)]) == 0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10_000_000, f"{peak:,} bytes at the peak for 3,001 rows of 8 KB"  # all of them: 24 MB
    err = capsys.readouterr().err
    assert "catalog" in err and "3001/3001" in err
    assert len(read_crops(layout.logs)[0]) == 1


def test_two_catalogs_of_one_name_keep_their_own_crops(tmp_path, private_tmp):
    layout, images = library(tmp_path)
    first = _catalog_with(tmp_path, images, [_settings(0.1, 0.1, 0.5, 0.5, 0)], "a")
    second = _catalog_with(tmp_path, images, [_settings(0.2, 0.2, 0.9, 0.9, 0)], "b")
    assert first.name == second.name
    for catalog in (first, second, first, second):
        run_import("catalog", layout, [catalog])
    crops = read_crops(layout.logs)[0]
    assert sorted(c.origin for c in crops) == [f"{first.resolve()}#10", f"{second.resolve()}#10"]
    assert sorted(c.crop for c in crops) == [(40, 30, 200, 150), (80, 60, 360, 270)]
