"""Import's identity and names (issue 22: findings 2, 4, 9, 12, 17, 18, 26 and one imported decision per image):
every crop is placed by its source's full path, never undone by another source; EXPORTS never overlaps the library;
names are the library's whichever way a folder was reached; one XMP crop per image, by a stated precedence."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cropkit.cli import main
from cropkit.decisions import TRAINING_LOG, read_crops
from cropkit.errors import CropkitError
from cropkit.geometry import iou
from cropkit.layout import Layout
from cropkit.remembered import remember
from cropkit.sources.run import run_import
from tests.libgen import changed_entries, snapshot
from tests.sources.conftest import lightroom_xmp, marked_photo, save_oriented, stored_crop
from tests.sources.test_import import _catalog, _settings


def library(tmp_path: Path) -> tuple[Layout, Path]:
    images = tmp_path / "data/training_data"
    images.mkdir(parents=True)
    return Layout.from_args(tmp_path), images


def textured(seed: int, size: tuple[int, int] = (480, 360)) -> Image.Image:
    """A picture with detail at every scale, in which a crop can be found by correlation."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 255, (size[1] // 12, size[0] // 12, 3), dtype=np.uint8))
    fine = rng.integers(-30, 30, (size[1], size[0], 3))
    return Image.fromarray(np.clip(np.asarray(coarse.resize(size, Image.Resampling.BICUBIC)) + fine, 0, 255)
                           .astype(np.uint8))


def save_export(original: Image.Image, box: tuple[int, int, int, int], path: Path, scale: float = 0.7) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    crop = original.crop(box)
    crop.resize((round(crop.width * scale), round(crop.height * scale)), Image.Resampling.LANCZOS) \
        .save(path, "JPEG", quality=90)


def undo_lines(layout: Layout) -> int:
    log = layout.logs / TRAINING_LOG
    return sum('"undo"' in line for line in log.read_text().splitlines()) if log.exists() else 0


def test_two_export_folders_with_one_file_name_keep_both_crops(tmp_path):
    layout, images = library(tmp_path)
    photo = textured(1)
    photo.save(images / "photo.jpg", quality=95)
    portrait, wide = (100, 40, 260, 240), (20, 80, 420, 305)
    save_export(photo, portrait, tmp_path / "insta/photo.jpg")
    save_export(photo, wide, tmp_path / "web/photo.jpg")
    (first,) = run_import("exports", layout, [images, tmp_path / "insta"])
    (second,) = run_import("exports", layout, [images, tmp_path / "web"])
    assert first.imported == 1 and second.imported == 1 and second.replaced == 0
    crops = read_crops(layout.logs)[0]
    assert undo_lines(layout) == 0 and len(crops) == 2  # the 16:9 crop never undid the 4:5 one
    assert sorted(c.origin for c in crops) == [str(tmp_path / "insta/photo.jpg"), str(tmp_path / "web/photo.jpg")]
    assert max(iou(c.crop, portrait) for c in crops) > 0.95 and max(iou(c.crop, wide) for c in crops) > 0.95
    (again,) = run_import("exports", layout, [images, tmp_path / "insta"])
    assert again.imported == 0 and again.known == 1 and undo_lines(layout) == 0


def test_two_catalogs_of_one_name_keep_each_others_crops(tmp_path):
    layout, images = library(tmp_path)
    corners, _ = stored_crop(1, 0.0)
    save_oriented(marked_photo(corners), images / "c.jpg", 1)
    for folder, fractions in (("old", (0.1, 0.1, 0.6, 0.7)), ("new", (0.3, 0.2, 0.9, 0.9))):
        (tmp_path / folder).mkdir()
        _catalog(tmp_path / folder / "Lightroom Catalog.lrcat", [(10, f"{images}/", "c.jpg", _settings(*fractions, 0))])
    for folder in ("old", "new", "old"):
        run_import("catalog", layout, [tmp_path / folder / "Lightroom Catalog.lrcat"])
    crops = read_crops(layout.logs)[0]
    assert undo_lines(layout) == 0 and len(crops) == 2
    assert {c.origin for c in crops} == {f"{tmp_path}/{f}/Lightroom Catalog.lrcat#10" for f in ("old", "new")}


@pytest.mark.parametrize("where", ["the library", "a folder holding it", "a folder inside it", "a link to it"])
def test_exports_overlapping_the_library_are_refused(tmp_path, where):
    layout, images = library(tmp_path)
    for k in range(3):
        textured(k).save(images / f"p{k}.jpg")
    (images / "inside").mkdir()
    textured(9).crop((0, 0, 200, 200)).save(images / "inside/p0-Edit.jpg")
    (tmp_path / "link").symlink_to(images)
    exports = {"the library": images, "a folder holding it": tmp_path / "data", "a folder inside it": images / "inside",
               "a link to it": tmp_path / "link"}[where]
    with pytest.raises(CropkitError, match="EXPORTS .* overlaps the library"):
        run_import("exports", layout, [images, exports])
    assert not (layout.logs / TRAINING_LOG).exists()


def test_an_export_reached_through_a_link_to_a_library_folder_is_no_export(tmp_path):
    layout, images = library(tmp_path)
    elsewhere = tmp_path / "elsewhere/trip"
    elsewhere.mkdir(parents=True)
    textured(3).save(elsewhere / "t.jpg")
    (images / "trip").symlink_to(elsewhere)  # a linked folder of the library
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports/trip").symlink_to(elsewhere)  # the same folder, seen from the exports
    (summary,) = run_import("exports", layout, [images, tmp_path / "exports"])
    assert summary.imported == 0 and summary.skipped["a picture of the library, not an export"] == 1


@pytest.mark.parametrize("how", ["a link", "sub/..", "a relative path from another folder"])
def test_export_names_are_the_librarys_and_reruns_add_nothing(tmp_path, monkeypatch, how):
    layout, images = library(tmp_path)
    photo = textured(4)
    photo.save(images / "photo.jpg", quality=95)
    (images / "sub").mkdir()
    save_export(photo, (60, 50, 380, 290), tmp_path / "exports/photo-Edit.jpg")
    (tmp_path / "link").symlink_to(images)
    elsewhere = tmp_path / "somewhere"
    elsewhere.mkdir()
    originals = {"a link": tmp_path / "link", "sub/..": images / "sub/..",
                 "a relative path from another folder": Path("../data/training_data")}[how]
    monkeypatch.chdir(elsewhere)
    for run in range(2):
        (summary,) = run_import("exports", layout, [originals, tmp_path / "exports"])
        assert (summary.imported, summary.known) == ((1, 0) if run == 0 else (0, 1)), summary.lines()
    (crop,) = read_crops(layout.logs)[0]
    assert crop.image == "data/training_data/photo.jpg"


def test_camera_counters_that_wrapped_find_the_right_original(tmp_path):
    layout, images = library(tmp_path)
    for year, seed in (("2023", 5), ("2024", 6)):
        (images / year).mkdir()
        textured(seed).save(images / year / "IMG_0001.jpg", quality=95)
    box = (80, 60, 400, 300)
    save_export(textured(6), box, tmp_path / "exports/IMG_0001-Edit.jpg")
    (summary,) = run_import("exports", layout, [images, tmp_path / "exports"])
    assert summary.imported == 1 and not summary.skipped, summary.lines()
    (crop,) = read_crops(layout.logs)[0]
    assert crop.image == "data/training_data/2024/IMG_0001.jpg" and iou(crop.crop, box) > 0.95


def test_a_low_confidence_message_names_the_original_it_tried(tmp_path):
    layout, images = library(tmp_path)
    textured(7).save(images / "IMG_0002.jpg")
    save_export(textured(8), (0, 0, 300, 300), tmp_path / "exports/IMG_0002-Edit.jpg")
    (summary,) = run_import("exports", layout, [images, tmp_path / "exports"])
    assert summary.skipped["low confidence"] == 1
    assert "in data/training_data/IMG_0002.jpg" in summary.first_skip["low confidence"]


def test_photos_in_a_linked_folder_of_the_library_are_imported_with_the_scans_name(tmp_path):
    layout, images = library(tmp_path)
    trip = tmp_path / "elsewhere/trip"
    trip.mkdir(parents=True)
    corners, fractions = stored_crop(2, 0.0)
    save_oriented(marked_photo(corners), trip / "linked.jpg", 1)
    (trip / "linked.xmp").write_bytes(lightroom_xmp(*fractions, 0.0, 1))
    (images / "trip").symlink_to(trip)
    (summary, _dt) = run_import("xmp", layout)
    assert summary.imported == 1 and not summary.skipped, summary.lines()
    (crop,) = read_crops(layout.logs)[0]
    assert crop.image == "data/training_data/trip/linked.jpg"
    assert run_import("xmp", layout)[0].known == 1


def raw_bytes() -> bytes:
    return b"II*\x00" + bytes(2000)  # a raw cropkit does not read (only its name matters here)


def test_a_raws_sidecar_is_not_applied_to_a_picture_of_the_same_stem(tmp_path):
    layout, images = library(tmp_path)
    corners, fractions = stored_crop(3, 0.0)
    (images / "IMG_1.CR2").write_bytes(raw_bytes())
    (images / "IMG_1.xmp").write_bytes(lightroom_xmp(*fractions, 0.0, 1))
    marked_photo(corners).crop((50, 40, 350, 260)).save(images / "IMG_1.tif")  # already cropped
    marked_photo(corners).save(images / "IMG_2.jpg")
    marked_photo(corners).save(images / "IMG_2.tif")
    (images / "IMG_2.xmp").write_bytes(lightroom_xmp(*fractions, 0.0, 1))  # two pictures: cannot say which
    (summary, dt) = run_import("xmp", layout)
    assert summary.imported == 0 and dt.imported == 0 and not (layout.logs / TRAINING_LOG).exists()
    assert summary.skipped["sidecar of another picture, not read"] == 2  # each sidecar reported once
    assert "IMG_1.xmp belongs to IMG_1.CR2" in summary.first_skip["sidecar of another picture, not read"]


def test_one_sidecar_under_two_names_logs_its_crop_once(tmp_path):
    layout, images = library(tmp_path)
    corners, fractions = stored_crop(4, 0.0)
    save_oriented(marked_photo(corners), images / "IMG_1.jpg", 1)
    (images / "IMG_1.xmp").write_bytes(lightroom_xmp(*fractions, 0.0, 1))
    os.link(images / "IMG_1.xmp", images / "IMG_1.XMP")  # one file, as a case-insensitive disk shows it
    for _ in range(2):
        run_import("xmp", layout)
    assert len(read_crops(layout.logs)[0]) == 1 and undo_lines(layout) == 0
    assert len((layout.logs / TRAINING_LOG).read_text().splitlines()) == 1


def test_one_image_one_imported_decision_the_sidecar_over_the_embedded_packet(tmp_path):
    layout, images = library(tmp_path)
    corners, _ = stored_crop(5, 0.0)
    embedded, sidecar = (0.1, 0.1, 0.5, 0.6), (0.3, 0.2, 0.9, 0.9)
    save_oriented(marked_photo(corners), images / "dl.jpg", 1, xmp=lightroom_xmp(*embedded, 0.0, 1))
    (first, _) = run_import("xmp", layout)
    (crop,) = read_crops(layout.logs)[0]
    assert first.imported == 1 and crop.crop == pytest.approx((40, 30, 200, 180))
    (images / "dl.jpg.xmp").write_bytes(lightroom_xmp(*sidecar, 0.0, 1))  # the photographer's own edit, later
    (second, _) = run_import("xmp", layout)
    (crop,) = read_crops(layout.logs)[0]  # one effective decision: the sidecar's
    assert crop.crop == pytest.approx((120, 60, 360, 270)) and crop.origin == str(images / "dl.jpg.xmp")
    assert second.replaced == 1 and second.skipped["overruled by another XMP of the image"] == 1
    (third, _) = run_import("xmp", layout)
    assert third.imported == 0 and third.known == 1 and len(read_crops(layout.logs)[0]) == 1


def test_import_names_the_library_and_root_it_read(tmp_path, capsys):
    layout, images = library(tmp_path)
    victim = tmp_path / "victim"
    victim.mkdir()
    assert main(["import", "xmp", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"library {images}" in out and f"root {tmp_path}" in out and "remembered" not in out
    (tmp_path / "root/data/ai_data").mkdir(parents=True)
    remember(tmp_path / "root/data/ai_data", images="../victim")  # a remembered setting that points elsewhere
    assert main(["import", "xmp", "--root", str(tmp_path / "root")]) == 0
    out = capsys.readouterr().out
    assert f"library {victim}" in out and "remembered in" in out and "settings.json" in out


def test_import_exports_does_not_touch_the_library(tmp_path):
    layout, images = library(tmp_path)
    photo = textured(10)
    photo.save(images / "a.jpg")
    buf = io.BytesIO()
    photo.crop((10, 10, 300, 300)).save(buf, "JPEG")
    (tmp_path / "out").mkdir()
    (tmp_path / "out/a-Edit.jpg").write_bytes(buf.getvalue())
    before = snapshot(images)
    run_import("exports", layout, [images, tmp_path / "out"])
    assert changed_entries(before, snapshot(images)) == {}
