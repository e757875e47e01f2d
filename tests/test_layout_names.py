"""One name per image: the scan's name, whatever way the path arrives (relative, with '..', through links)."""

from __future__ import annotations

import os
from pathlib import Path

from cropkit.extract.scan import Found, find_images
from cropkit.layout import Layout
from tests.libgen import save_photo


def _library(tmp_path: Path) -> tuple[Layout, Path]:
    root = tmp_path / "root"
    images = root / "data" / "training_data"
    save_photo(images / "a.jpg")
    elsewhere = tmp_path / "elsewhere" / "trip"
    save_photo(elsewhere / "linked.jpg", seed=1)
    os.symlink(elsewhere, images / "trip")
    return Layout.from_args(root), elsewhere


def test_every_way_to_a_linked_photo_gives_the_scan_name(tmp_path: Path, monkeypatch):
    layout, elsewhere = _library(tmp_path)
    scanned = {layout.image_name(f.path) for f in find_images(layout.images) if isinstance(f, Found)}
    assert scanned == {"data/training_data/a.jpg", "data/training_data/trip/linked.jpg"}
    monkeypatch.chdir(layout.images / "trip")
    outside_link = tmp_path / "to-root"
    os.symlink(layout.root, outside_link)
    ways = [elsewhere / "linked.jpg",                                 # the real path (a resolved folder)
            layout.images / "trip" / "linked.jpg",                    # as the scan walks it
            Path("linked.jpg"),                                       # relative to the current folder
            layout.images / "trip" / ".." / "trip" / "linked.jpg",    # with '..'
            outside_link / "data" / "training_data" / "trip" / "linked.jpg"]  # through a link to the root
    assert {layout.image_name(p) for p in ways} == {"data/training_data/trip/linked.jpg"}


def test_a_file_outside_the_library_has_no_name(tmp_path: Path):
    layout, _ = _library(tmp_path)
    stranger = save_photo(tmp_path / "stranger.jpg")
    assert layout.image_name(stranger) is None
    assert layout.relative_name(stranger) == stranger.as_posix()  # never logged: readers refuse absolute names
    assert layout.image_name(layout.root) is None
    beside = save_photo(layout.root / "data" / "elsewhere.jpg")  # under the root, outside its library
    assert layout.image_name(beside) is None


def test_a_library_outside_the_root_names_from_the_library(tmp_path: Path):
    library = tmp_path / "photos"
    save_photo(library / "x" / "b.jpg")
    os.symlink(library / "x", tmp_path / "x-link")
    layout = Layout.from_args(tmp_path / "root", library)
    assert layout.image_name(library / "x" / "b.jpg") == "x/b.jpg"
    assert layout.image_name(tmp_path / "x-link" / "b.jpg") == "x/b.jpg"


def test_two_links_to_one_folder_and_a_link_to_a_real_folder_take_the_scans_name(tmp_path: Path):
    """The scan walks a folder once, real folders first, then links in the order it meets them; every other way
    in is named as it walks it."""
    layout, elsewhere = _library(tmp_path)
    (layout.images / "a").mkdir()
    os.symlink(elsewhere, layout.images / "a" / "trip")   # met before the top-level 'trip' link
    save_photo(layout.images / "home" / "own.jpg")
    os.symlink(layout.images / "home", layout.images / "alias")  # a link to a real folder of the library
    scanned = {layout.image_name(f.path) for f in find_images(layout.images) if isinstance(f, Found)}
    assert scanned == {"data/training_data/a.jpg", "data/training_data/a/trip/linked.jpg",
                       "data/training_data/home/own.jpg"}
    fresh = Layout.from_args(layout.root)
    assert {fresh.image_name(p) for p in (layout.images / "trip" / "linked.jpg", elsewhere / "linked.jpg",
                                          layout.images / "a" / "trip" / "linked.jpg")} == \
        {"data/training_data/a/trip/linked.jpg"}
    assert fresh.image_name(layout.images / "alias" / "own.jpg") == "data/training_data/home/own.jpg"
