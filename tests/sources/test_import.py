"""Importing crops made elsewhere: Lightroom / Camera Raw XMP (sidecar and embedded, every EXIF orientation,
turned crops), darktable XMP (plain and compressed parameters), a Lightroom Classic catalog and exported crops;
idempotent, the library untouched, hostile XML refused."""

from __future__ import annotations

import base64
import io
import sqlite3
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cropkit.cli import main
from cropkit.decisions import TRAINING_LOG, read_crops
from cropkit.errors import CropkitError
from cropkit.geometry import inside_turned, iou
from cropkit.layout import Layout
from cropkit.sources.catalog import top_level
from cropkit.sources.run import run_import
from tests.libgen import changed_entries, snapshot
from tests.sources.conftest import (
    STORED,
    expected_box,
    lightroom_xmp,
    marked_photo,
    save_oriented,
    stored_crop,
)

RESULTS: dict[str, list] = {}


def library(tmp_path: Path) -> tuple[Layout, Path]:
    images = tmp_path / "data/training_data"
    images.mkdir(parents=True)
    return Layout.from_args(tmp_path), images


def crops_by_image(layout: Layout, source: str) -> dict[str, list]:
    found: dict[str, list] = {}
    for c in read_crops(layout.logs)[0]:
        if c.source == source:
            found.setdefault(c.image.rsplit("/", 1)[-1], []).append(c)
    return found


@pytest.mark.parametrize("angle", [0.0, 8.5, -12.0])
def test_lightroom_xmp_sidecars_and_embedded_for_every_orientation(tmp_path, angle):
    layout, images = library(tmp_path)
    for orientation in range(1, 9):
        corners, (left, top, right, bottom) = stored_crop(orientation, angle)
        img = marked_photo(corners)
        packet = lightroom_xmp(left, top, right, bottom, angle, orientation, elements=orientation % 2 == 0)
        save_oriented(img, images / f"side{orientation}.jpg", orientation)
        (images / f"side{orientation}.xmp").write_bytes(packet)
        save_oriented(img, images / f"emb{orientation}.jpg", orientation, xmp=packet)
    before = snapshot(images)
    started = time.perf_counter()
    (summary, _dt) = run_import("xmp", layout)
    seconds = time.perf_counter() - started
    assert summary.imported == 16 and not summary.skipped, summary.lines()
    found = crops_by_image(layout, "lightroom-xmp")
    ious = []
    for name, (crop,) in sorted(found.items()):
        box, off = expected_box(images / name, crop.angle)
        assert off < 2.5, f"{name}: the angle {crop.angle} does not stand the crop upright ({off:.1f} px)"
        ious.append(iou(crop.crop, box))
        assert ious[-1] >= 0.98, (name, crop.crop, box)
        assert crop.angle == pytest.approx(0 if angle == 0 else crop.angle) and abs(abs(crop.angle) - abs(angle)) < 1e-6
        assert crop.origin in (str(images / name.replace(".jpg", ".xmp")), f"{images / name}#xmp")
    RESULTS.setdefault("lightroom-xmp", []).append((min(ious), seconds / 16))
    assert changed_entries(before, snapshot(images)) == {}
    log = (layout.logs / TRAINING_LOG).read_bytes()
    (again, _dt) = run_import("xmp", layout)  # a second run adds nothing
    assert again.imported == 0 and again.known == 16 and (layout.logs / TRAINING_LOG).read_bytes() == log


def test_xmp_embedded_in_a_tiff_is_read(tmp_path):
    layout, images = library(tmp_path)
    corners, fractions = stored_crop(7, -5.0)
    marked_photo(corners).save(images / "scan.tif", tiffinfo={700: lightroom_xmp(*fractions, -5.0, 1)})
    (summary, _dt) = run_import("xmp", layout)
    (crop,) = crops_by_image(layout, "lightroom-xmp")["scan.tif"]
    box, off = expected_box(images / "scan.tif", crop.angle)
    assert summary.imported == 1 and crop.origin == f"{images / 'scan.tif'}#xmp" and crop.angle == 5.0
    assert off < 2.5 and iou(crop.crop, box) >= 0.98


def test_a_crop_changed_at_its_source_replaces_the_old_line_and_dry_run_writes_nothing(tmp_path):
    layout, images = library(tmp_path)
    corners, fractions = stored_crop(1, 0.0)
    save_oriented(marked_photo(corners), images / "a.jpg", 1)
    (images / "a.xmp").write_bytes(lightroom_xmp(*fractions, 0.0, 1))
    (dry, _) = run_import("xmp", layout, dry_run=True)
    assert dry.imported == 1 and "would import" in dry.lines()[0] and not (layout.logs / TRAINING_LOG).exists()
    run_import("xmp", layout)
    (images / "a.xmp").write_bytes(lightroom_xmp(0.1, 0.1, 0.6, 0.7, 0.0, 1))
    (changed, _) = run_import("xmp", layout)
    assert changed.imported == 1 and changed.replaced == 1
    (crop,) = read_crops(layout.logs)[0]
    assert crop.crop == pytest.approx((40, 30, 240, 210))
    assert sum(1 for line in (layout.logs / TRAINING_LOG).read_text().splitlines() if '"undo"' in line) == 1


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
xmlns:crs="http://ns.adobe.com/camera-raw-settings/1.0/"><rdf:Description crs:HasCrop="True" crs:CropLeft="&lol9;"
/></rdf:RDF></x:xmpmeta>"""


def test_hostile_xmp_is_refused_and_paths_outside_the_library_are_skipped(tmp_path):
    layout, images = library(tmp_path)
    corners, fractions = stored_crop(2, 0.0)
    save_oriented(marked_photo(corners), images / "bomb.jpg", 1)
    (images / "bomb.xmp").write_bytes(BILLION_LAUGHS)
    save_oriented(marked_photo(corners), images / "external.jpg", 1)
    (images / "external.xmp").write_bytes(b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                                          b'<x:xmpmeta xmlns:x="adobe:ns:meta/">&e;</x:xmpmeta>')
    save_oriented(marked_photo(corners), images / "broken.jpg", 1)
    (images / "broken.xmp").write_bytes(b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF")
    started = time.perf_counter()
    (summary, _dt) = run_import("xmp", layout)
    assert time.perf_counter() - started < 30  # nothing was expanded
    assert summary.imported == 0 and summary.skipped["refused XMP"] == 2 and summary.skipped["bad XMP"] == 1
    assert any("refused" in line and "bomb.xmp" in line for line in summary.lines())


def _darktable(items: list[tuple[str, int, bool, bytes]], end: int | None = None, compress: bool = False) -> bytes:
    def encode(params: bytes) -> str:
        if compress:
            return "gz12" + base64.b64encode(zlib.compress(params)).decode()
        return params.hex()

    lis = "".join(f'<rdf:li darktable:num="{i}" darktable:operation="{op}" darktable:enabled="{int(on)}" '
                  f'darktable:modversion="{version}" darktable:params="{encode(params)}" '
                  'darktable:multi_name="" darktable:multi_priority="0"/>' for i, (op, version, on, params)
                  in enumerate(items))
    end = len(items) if end is None else end
    return ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            '<rdf:Description rdf:about="" xmlns:darktable="http://darktable.sf.net/" '
            f'darktable:history_end="{end}"><darktable:history><rdf:Seq>{lis}</rdf:Seq></darktable:history>'
            "</rdf:Description></rdf:RDF></x:xmpmeta>").encode()


def crop_v1(cx, cy, cw, ch):
    return struct.pack("<4f2i", cx, cy, cw, ch, 0, 0)


def crop_v2(cx, cy, cw, ch):
    return struct.pack("<4f3i", cx, cy, cw, ch, 3, 2, 0)


def clipping_v5(angle, cx, cy, cw, ch, crop_auto=0):
    return struct.pack("<15f6i", angle, cx, cy, cw, ch, 0, 0, .2, .2, .8, .2, .8, .8, .2, .8, 0, 0, 0, crop_auto,
                       0, 0)


@pytest.mark.parametrize("compress", [False, True])
def test_darktable_crops_plain_and_compressed_with_history_end_and_disabled_items(tmp_path, compress):
    layout, images = library(tmp_path)
    w, h = STORED
    cases = {
        "v1.jpg": ([("crop", 1, True, crop_v1(0.1, 0.2, 0.7, 0.9))], None, (0.1 * w, 0.2 * h, 0.7 * w, 0.9 * h)),
        "v2.jpg": ([("crop", 2, True, crop_v2(0.25, 0.1, 0.95, 0.6))], None, (0.25 * w, 0.1 * h, 0.95 * w, 0.6 * h)),
        # the last crop is beyond history_end: the earlier one holds
        "end.jpg": ([("crop", 2, True, crop_v2(0.1, 0.1, 0.5, 0.5)), ("crop", 2, True, crop_v2(0.3, 0.3, 0.9, 0.9))],
                    1, (0.1 * w, 0.1 * h, 0.5 * w, 0.5 * h)),
        "off.jpg": ([("crop", 2, True, crop_v2(0.1, 0.1, 0.5, 0.5)), ("crop", 2, False, crop_v2(0.1, 0.1, 0.5, 0.5))],
                    None, None),  # switched off last
        "clip.jpg": ([("clipping", 5, True, clipping_v5(0.0, 0.05, 0.1, 0.85, 0.95))], None,
                     (0.05 * w, 0.1 * h, 0.85 * w, 0.95 * h)),
        "lens.jpg": ([("lens", 6, True, b"\0" * 8), ("crop", 2, True, crop_v2(0.1, 0.1, 0.5, 0.5))], None, "skip"),
    }
    for name, (items, end, _) in cases.items():
        marked_photo(np.zeros((4, 2))).save(images / name, quality=90)
        (images / f"{name}.xmp").write_bytes(_darktable(items, end, compress))
    marked_photo(np.zeros((4, 2))).save(images / "turned.jpg", quality=90)
    (images / "turned.jpg.xmp").write_bytes(_darktable([("clipping", 5, True, clipping_v5(6.0, 0.2, 0.2, 0.8, 0.8))]))
    started = time.perf_counter()
    (_lr, summary) = run_import("xmp", layout)
    seconds = time.perf_counter() - started
    found = crops_by_image(layout, "darktable-xmp")
    ious = []
    for name, (_, _, expected) in cases.items():
        if expected is None or expected == "skip":
            assert name not in found, name
            continue
        (crop,) = found[name]
        ious.append(iou(crop.crop, expected))
        assert ious[-1] >= 0.98 and crop.angle == 0 and crop.origin == str(images / f"{name}.xmp"), name
    assert summary.skipped["unusable crop"] == 1 and "lens" in summary.first_skip["unusable crop"]
    (turned,) = found["turned.jpg"]
    assert turned.angle == 6.0 and inside_turned(turned.crop, 6.0, w, h)
    cx, cy = (turned.crop[0] + turned.crop[2]) / 2, (turned.crop[1] + turned.crop[3]) / 2
    assert (cx, cy) == pytest.approx((w / 2, h / 2), abs=0.5)  # a centred crop of the turned image stays centred
    RESULTS.setdefault("darktable-xmp", []).append((min(ious), seconds / len(cases)))


def _catalog(path: Path, rows: list[tuple[int, str, str, str | bytes]]) -> None:
    """A catalog with the Lightroom Classic tables and columns cropkit reads (and a few it does not)."""
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE AgLibraryRootFolder (id_local INTEGER PRIMARY KEY, absolutePath TEXT, name TEXT,
                                          relativePathFromCatalog TEXT);
        CREATE TABLE AgLibraryFolder (id_local INTEGER PRIMARY KEY, pathFromRoot TEXT, rootFolder INTEGER);
        CREATE TABLE AgLibraryFile (id_local INTEGER PRIMARY KEY, baseName TEXT, extension TEXT, folder INTEGER,
                                    idx_filename TEXT, originalFilename TEXT);
        CREATE TABLE Adobe_images (id_local INTEGER PRIMARY KEY, rootFile INTEGER, orientation TEXT,
                                   fileWidth INTEGER, fileHeight INTEGER, masterImage INTEGER, copyName TEXT);
        CREATE TABLE Adobe_imageDevelopSettings (id_local INTEGER PRIMARY KEY, image INTEGER, text,
                                                 croppedWidth INTEGER, croppedHeight INTEGER);
    """)
    db.execute("INSERT INTO AgLibraryRootFolder VALUES (1, '/', 'root', NULL)")
    folders: dict[str, int] = {}
    for i, (image_id, folder, name, text) in enumerate(rows):
        if folder not in folders:
            folders[folder] = len(folders) + 1
            db.execute("INSERT INTO AgLibraryFolder VALUES (?, ?, 1)", (folders[folder], folder.lstrip("/")))
        stem, ext = name.rsplit(".", 1)
        db.execute("INSERT OR IGNORE INTO AgLibraryFile VALUES (?, ?, ?, ?, ?, ?)",
                   (image_id % 100, stem, ext, folders[folder], name, name))
        db.execute("INSERT INTO Adobe_images VALUES (?, ?, 'AB', 400, 300, NULL, NULL)", (image_id, image_id % 100))
        db.execute("INSERT INTO Adobe_imageDevelopSettings VALUES (?, ?, ?, 0, 0)", (i + 1, image_id, text))
    db.commit()
    db.close()


def _settings(left, top, right, bottom, angle) -> str:
    return (f"s = {{\n\tAutoLateralCA = 0,\n\tCropAngle = {angle},\n\tCropBottom = {bottom},\n\tCropLeft = {left},"
            f"\n\tCropRight = {right},\n\tCropTop = {top},\n\tHasCrop = true,\n\tRetouchAreas = {{ {{ CropLeft = 0.9,"
            ' HasCrop = false, }, },\n\tToneCurveName = "Linear",\n}\n')


def test_a_lightroom_catalog_read_from_a_copy_with_virtual_copies_and_paths_outside(tmp_path):
    layout, images = library(tmp_path)
    rows = []
    for k, orientation in enumerate((1, 6, 3, 8)):
        angle = (0.0, 4.0, -7.5, 11.0)[k]
        corners, fractions = stored_crop(20 + k, angle)
        save_oriented(marked_photo(corners), images / f"c{k}.jpg", orientation)
        rows.append((10 + k, f"{images}/", f"c{k}.jpg", _settings(*fractions, angle)))
    corners, fractions = stored_crop(30, 0.0)
    rows.append((110, f"{images}/", "c0.jpg", _settings(*fractions, 0.0)))  # a virtual copy of c0, cropped again
    rows.append((14, "/elsewhere/photos/", "far.jpg", _settings(0.1, 0.1, 0.9, 0.9, 0)))
    rows.append((15, f"{images}/", "c1.jpg", "s = { Exposure2012 = 0.3, }"))  # no crop
    rows.append((16, f"{images}/", "c2.jpg", zlib.compress(b"x") and
                 len(b := _settings(*fractions, 0.0).encode()).to_bytes(4, "big") + zlib.compress(b)))
    catalog = tmp_path / "Lightroom Catalog.lrcat"
    _catalog(catalog, rows)
    catalog_bytes = catalog.read_bytes()
    before = snapshot(images)
    started = time.perf_counter()
    assert main(["import", "catalog", str(catalog), "--root", str(tmp_path)]) == 0
    seconds = time.perf_counter() - started
    found = crops_by_image(layout, "lightroom-catalog")
    assert sorted((n, len(c)) for n, c in found.items()) == [("c0.jpg", 2), ("c1.jpg", 1), ("c2.jpg", 2),
                                                            ("c3.jpg", 1)]
    ious = []
    for k in range(4):
        crop = next(c for c in found[f"c{k}.jpg"] if c.origin == f"{catalog}#{10 + k}")
        box, off = expected_box(images / f"c{k}.jpg", crop.angle)
        ious.append(iou(crop.crop, box))
        assert off < 2.5 and ious[-1] >= 0.98, (k, crop, box)
    RESULTS.setdefault("lightroom-catalog", []).append((min(ious), seconds / 7))
    assert catalog.read_bytes() == catalog_bytes and changed_entries(before, snapshot(images)) == {}
    summary = run_import("catalog", layout, [catalog])[0]
    assert summary.imported == 0 and summary.known == 6 and summary.skipped["outside the library"] == 1
    assert top_level(_settings(0.1, 0.2, 0.3, 0.4, 0))["CropLeft"] == "0.1"  # not the nested 0.9
    (tmp_path / "broken.lrcat").write_bytes(b"SQLite format 3\0" + b"\x13" * 400)
    with pytest.raises(CropkitError, match="not a readable Lightroom Classic catalog"):
        run_import("catalog", layout, [tmp_path / "broken.lrcat"])


def test_exported_crops_are_found_in_their_originals(tmp_path):
    skimage = pytest.importorskip("skimage.data")
    layout, images = library(tmp_path)
    exports = tmp_path / "exports"
    exports.mkdir()
    rng = np.random.default_rng(5)
    truth = {}
    photos = {"astronaut": skimage.astronaut(), "coffee": skimage.coffee(), "chelsea": skimage.chelsea(),
              "rocket": skimage.rocket()}
    for k, (name, pixels) in enumerate(photos.items()):
        original = Image.fromarray(pixels)
        original = original.resize((original.width * 2, original.height * 2))
        original.save(images / f"{name}.jpg", quality=92)
        w, h = original.size
        cw, ch = w * rng.uniform(0.3, 0.8), h * rng.uniform(0.3, 0.8)
        x, y = rng.uniform(0, w - cw), rng.uniform(0, h - ch)
        box = (round(x), round(y), round(x + cw), round(y + ch))
        scale = rng.uniform(0.4, 0.9)
        export = original.crop(box).resize((round((box[2] - box[0]) * scale), round((box[3] - box[1]) * scale)),
                                           Image.Resampling.LANCZOS)
        out = f"{name}-Edit.jpg" if k < 3 else "DSC_0001 final.jpg"  # the last one has no name in common
        buf = io.BytesIO()
        export.save(buf, "JPEG", quality=80)
        (exports / out).write_bytes(buf.getvalue())
        truth[name] = box
    Image.fromarray(rng.integers(0, 255, (200, 300, 3), dtype=np.uint8)).save(exports / "unrelated.jpg")
    before = snapshot(images)
    started = time.perf_counter()
    (summary,) = run_import("exports", layout, [images, exports])
    seconds = time.perf_counter() - started
    found = crops_by_image(layout, "export")
    ious = [iou(found[f"{n}.jpg"][0].crop, truth[n]) for n in photos]
    assert min(ious) >= 0.95, ious
    assert summary.imported == 4 and summary.skipped["low confidence"] == 1
    assert found["rocket.jpg"][0].origin == str(exports / "DSC_0001 final.jpg")
    RESULTS.setdefault("export", []).append((min(ious), seconds / 5))
    assert changed_entries(before, snapshot(images)) == {}
    (again,) = run_import("exports", layout, [images, exports])
    assert again.imported == 0 and again.known == 4


def test_import_from_the_command_line_says_what_it_did(tmp_path, capsys):
    layout, images = library(tmp_path)
    corners, fractions = stored_crop(3, 0.0)
    save_oriented(marked_photo(corners), images / "a.jpg", 1)
    (images / "a.xmp").write_bytes(lightroom_xmp(*fractions, 0.0, 1))
    assert main(["import", "xmp", "--root", str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "lightroom-xmp: would import 1 crop(s)" in out and "dry run: nothing was written" in out
    assert main(["import", "exports", "--root", str(tmp_path), str(tmp_path / "nowhere"), str(images)]) == 2
    err = capsys.readouterr().err
    assert "ORIGINALS" in err and "nowhere is not a folder" in err
    assert main(["import", "exports", str(tmp_path), str(images), "--root", str(tmp_path)]) == 2
    assert "outside the library" in capsys.readouterr().err
    assert main(["import", "xmp", "--root", str(tmp_path)]) == 0
    assert "lightroom-xmp: imported 1 crop(s)" in capsys.readouterr().out


def test_zz_report_accuracy_and_speed():
    """Prints recovery accuracy (min IoU) and seconds per image for each source measured above (pytest -s)."""
    for source, runs in RESULTS.items():
        print(f"{source}: min IoU {min(r[0] for r in runs):.4f}, {max(r[1] for r in runs) * 1000:.0f} ms per image")
