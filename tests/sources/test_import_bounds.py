"""Import's readers validate and stay bounded (issue 22: findings 10, 11, 13, 21, 22, 24): darktable numbers as
strict as the XMP reader's, one bad sidecar never stops the import, extract's 1 GiB limit, an unmatched export
searched among originals decoded once, --min-confidence checked, echoed values cut."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cropkit.extract.prepare as prepare
import cropkit.sources.exports as exports_module
from cropkit.cli import main
from cropkit.decisions import read_crops
from cropkit.errors import CropkitError
from cropkit.geometry import iou
from cropkit.sources.catalog import catalog_crop
from cropkit.sources.run import run_import
from cropkit.sources.xmp import AdobeCrop, XmpError
from tests.sources.conftest import lightroom_xmp, marked_photo, save_oriented, stored_crop
from tests.sources.test_import import _darktable, clipping_v5, crop_v2
from tests.sources.test_import_identity import library, save_export, textured


def _photo(images: Path, name: str) -> None:
    marked_photo(np.zeros((4, 2))).save(images / name, quality=90)


def test_darktable_edges_outside_the_frame_or_infinite_are_refused_as_the_xmp_reader_does(tmp_path):
    layout, images = library(tmp_path)
    cases = {"outside.jpg": ("crop", 2, crop_v2(-0.5, -0.5, 1.5, 1.5)),
             "inf.jpg": ("clipping", 5, clipping_v5(0.0, -math.inf, -math.inf, math.inf, math.inf)),
             "far.jpg": ("clipping", 5, clipping_v5(0.0, 0.1, 0.1, 7.0, 0.9)),
             "turned.jpg": ("clipping", 5, clipping_v5(180.0, 0.1, 0.1, 0.9, 0.9))}
    for name, item in cases.items():
        _photo(images, name)
        (images / f"{name}.xmp").write_bytes(_darktable([(*item[:2], True, item[2])]))
    (_lr, dt) = run_import("xmp", layout)
    assert dt.imported == 0 and dt.skipped["unusable crop"] == 4, dt.lines()
    assert read_crops(layout.logs)[0] == []


@pytest.mark.parametrize("values", [(0.1, 0.1, 0.9, 0.9, 180.0), (-3.0, 0.1, 0.9, 0.9, 0.0),
                                    (0.1, 0.1, math.inf, 0.9, 0.0)])
def test_a_lightroom_crop_is_validated_whichever_reader_made_it(values):
    with pytest.raises(XmpError):
        AdobeCrop(*values)
    settings = dict(zip(("CropLeft", "CropTop", "CropRight", "CropBottom", "CropAngle"), map(str, values)))
    with pytest.raises(XmpError):
        catalog_crop({**settings, "HasCrop": "true"})


@pytest.mark.parametrize("end", ["abc", "1.5", "inf", "9" * 5000])
def test_a_darktable_history_end_that_is_no_whole_number_skips_that_file_only(tmp_path, end):
    layout, images = library(tmp_path)
    for name in ("bad.jpg", "good.jpg", "dotted.jpg"):
        _photo(images, name)
    good = _darktable([("crop", 2, True, crop_v2(0.1, 0.2, 0.7, 0.9))])
    (images / "good.jpg.xmp").write_bytes(good)
    (images / "bad.jpg.xmp").write_bytes(good.replace(b'history_end="1"', f'history_end="{end}"'.encode()))
    (images / "dotted.jpg.xmp").write_bytes(good.replace(b'history_end="1"', b'history_end="1.0"'))
    (_lr, dt) = run_import("xmp", layout)
    assert dt.imported == 2 and dt.skipped["unusable crop"] == 1, dt.lines()
    assert "history_end" in dt.first_skip["unusable crop"] and len(dt.first_skip["unusable crop"]) < 400
    assert sorted(c.image for c in read_crops(layout.logs)[0]) == ["data/training_data/dotted.jpg",
                                                                   "data/training_data/good.jpg"]


def test_files_over_extracts_limit_are_refused_before_reading(tmp_path, monkeypatch):
    layout, images = library(tmp_path)
    corners, fractions = stored_crop(1, 0.0)
    save_oriented(marked_photo(corners), images / "scan.jpg", 1, xmp=lightroom_xmp(*fractions, 0.0, 1))
    photo = textured(2)
    photo.save(images / "orig.jpg")
    save_export(photo, (10, 10, 300, 300), tmp_path / "out/orig-Edit.jpg")
    read = []
    real_read = exports_module.read_source_bytes

    def spy(path, max_bytes=None, **kw):
        read.append((Path(path).name, max_bytes))
        return real_read(path, max_bytes=max_bytes, **kw)

    monkeypatch.setattr(exports_module, "read_source_bytes", spy)
    monkeypatch.setattr("cropkit.sources.run.read_source_bytes", spy)
    assert prepare.MAX_FILE_BYTES == 1 << 30
    run_import("xmp", layout)
    run_import("exports", layout, [images, tmp_path / "out"])
    images_read = [r for r in read if not r[0].endswith(".xmp")]
    assert images_read and all(limit == prepare.MAX_FILE_BYTES for _, limit in images_read), read
    big = images / "huge.jpg"
    with big.open("wb") as f:  # a sparse file just over the limit: refused from its size, never read
        f.truncate(prepare.MAX_FILE_BYTES + 1)
    (lr, _dt) = run_import("xmp", layout)
    assert "over the 1,073,741,824-byte limit" in lr.first_skip["unreadable"]


def test_an_export_without_a_name_decodes_each_original_once_and_the_search_is_bounded(tmp_path, monkeypatch):
    layout, images = library(tmp_path)
    photos = [textured(20 + k) for k in range(5)]
    for k, photo in enumerate(photos):
        photo.save(images / f"o{k}.jpg", quality=95)
    boxes = {k: (40 + 10 * k, 30, 360, 300) for k in (1, 3, 4)}
    for k, box in boxes.items():
        save_export(photos[k], box, tmp_path / f"out/export {k}.jpg")  # no name in common
    decoded: list[str] = []
    real = exports_module.decode_oriented_rgb

    def counting(data, side):
        decoded.append(side)
        return real(data, side)

    monkeypatch.setattr(exports_module, "decode_oriented_rgb", counting)
    (summary,) = run_import("exports", layout, [images, tmp_path / "out"])
    assert summary.imported == 3, summary.lines()
    assert decoded.count(exports_module.SEARCH_SIDE) == 5  # each original once, not once per export
    by_image = {c.image: c.crop for c in read_crops(layout.logs)[0]}
    assert min(iou(by_image[f"data/training_data/o{k}.jpg"], box) for k, box in boxes.items()) > 0.95
    monkeypatch.setattr(exports_module, "MAX_CONTENT_SEARCH", 4)
    save_export(photos[0], (0, 0, 200, 200), tmp_path / "out2/unnamed.jpg")
    (bounded,) = run_import("exports", layout, [images, tmp_path / "out2"])
    assert bounded.imported == 0 and "more than the 4 searched by content" in bounded.first_skip["no original found"]


def test_an_export_with_a_capture_time_is_searched_among_originals_taken_then(tmp_path, monkeypatch):
    layout, images = library(tmp_path)
    photos = [textured(30 + k) for k in range(3)]
    for k, photo in enumerate(photos):
        exif = Image.Exif()
        exif.get_ifd(0x8769)[0x9003] = f"2024:05:0{k + 1} 10:00:00"
        photo.save(images / f"o{k}.jpg", quality=95, exif=exif)
    crop = photos[2].crop((50, 40, 400, 320))
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = "2024:05:03 10:00:00"
    (tmp_path / "out").mkdir()
    crop.save(tmp_path / "out/final.jpg", exif=exif)
    monkeypatch.setattr(exports_module, "MAX_CONTENT_SEARCH", 1)  # too many to search without the capture time
    (summary,) = run_import("exports", layout, [images, tmp_path / "out"])
    assert summary.imported == 1, summary.lines()
    (logged,) = read_crops(layout.logs)[0]
    assert logged.image == "data/training_data/o2.jpg"


@pytest.mark.parametrize("value", ["nan", "-0.1", "1.5", "inf"])
def test_min_confidence_outside_0_to_1_is_refused(tmp_path, capsys, value):
    layout, images = library(tmp_path)
    textured(1).save(images / "a.jpg")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (100, 100, 3), dtype=np.uint8)).save(
        (tmp_path / "noise").mkdir() or tmp_path / "noise/a-noise.jpg")
    with pytest.raises(CropkitError, match="min-confidence"):
        run_import("exports", layout, [images, tmp_path / "noise"], min_confidence=float(value))
    assert main(["import", "exports", str(images), str(tmp_path / "noise"), "--root", str(tmp_path),
                 "--min-confidence", value]) == 2
    assert "min-confidence" in capsys.readouterr().err and read_crops(layout.logs)[0] == []


def test_a_huge_attribute_is_never_echoed_in_full(tmp_path, capsys):
    layout, images = library(tmp_path)
    corners, fractions = stored_crop(2, 0.0)
    save_oriented(marked_photo(corners), images / "a.jpg", 1)
    huge = "9" * (5 << 20)
    (images / "a.xmp").write_bytes(lightroom_xmp(*fractions, 0.0, 1).replace(b'crs:CropLeft="', b'crs:CropLeft="'
                                                                             + huge.encode()))
    _photo(images, "b.jpg")
    (images / "b.jpg.xmp").write_bytes(_darktable([("crop", 2, True, crop_v2(0.1, 0.2, 0.7, 0.9))])
                                       .replace(b'history_end="1"', f'history_end="{huge}"'.encode()))
    assert main(["import", "xmp", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert len(out) < 3000 and "unusable crop" in out, out[:3000]
