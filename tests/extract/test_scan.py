"""Walking a library: which files count as images, order, links, loops and special files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cropkit.extract.scan import Found, Skipped, find_images, is_image_name, walk_files
from tests.helpers.deadline import deadline
from tests.libgen import changed_entries, make_library, snapshot


def scan(folder: Path) -> list[Found | Skipped]:
    with deadline(10):
        return list(find_images(folder))


def found_rel(results, root: Path) -> list[str]:
    return [r.path.relative_to(root).as_posix() for r in results if isinstance(r, Found)]


def skipped_rel(results, root: Path) -> dict[str, str]:
    return {r.path.relative_to(root).as_posix(): r.kind for r in results if isinstance(r, Skipped)}


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_finds_every_image_suffix_in_any_case_recursively(tmp_path: Path):
    images = ["a.jpg", "b.JPG", "c.Jpeg", "d.jpeg", "e.png", "f.PNG", "g.webp", "h.WebP", "i.tif", "j.TIFF",
              "k.tiff", "sub/l.jpg", "sub/deeper/still/m.PnG", "sub/deeper/n.TIF"]
    others = ["a.yaml", "a.txt", "a.npy", "b.jpg.npy", "c.jpgx", "d.gif", "e.heic", "notes", "jpg", ".jpg",
              "sub/a.jpg.phash", "sub/deeper/x.yaml", "sub/img.jpg.embedding.npy", "f.jp", "g.png~"]
    for name in images + others:
        touch(tmp_path / name)
    results = scan(tmp_path)
    assert all(isinstance(r, Found) for r in results), results
    assert sorted(found_rel(results, tmp_path)) == sorted(images)


def test_found_carries_size_and_mtime(tmp_path: Path):
    path = touch(tmp_path / "a.jpg", b"123456789")
    os.utime(path, ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    (result,) = scan(tmp_path)
    assert result == Found(path, 9, 1_600_000_000_123_456_789)


def test_order_is_sorted_and_does_not_depend_on_creation_order(tmp_path: Path):
    names = ["b.jpg", "a/z.jpg", "a b.jpg", "A.JPG", "c.png", "a/b/c.jpg", "a/a.jpg", "a-b/x.jpg", "Z.jpg", "é.jpg"]
    one, two = tmp_path / "one", tmp_path / "two"
    for name in names:
        touch(one / name)
    for name in reversed(names):
        touch(two / name)
    first = found_rel(scan(one), one)
    assert first == found_rel(scan(two), two)
    assert first == found_rel(scan(one), one)
    # depth first, entries of each folder by name
    assert first == sorted(names, key=lambda n: Path(n).parts)
    assert sorted(first) == sorted(names)


def test_follows_a_symlinked_folder_once(tmp_path: Path):
    outside = tmp_path / "elsewhere"
    touch(outside / "x.jpg")
    touch(outside / "inner" / "y.png")
    lib = tmp_path / "lib"
    touch(lib / "a.jpg")
    (lib / "linked").symlink_to(outside, target_is_directory=True)
    results = scan(lib)
    assert skipped_rel(results, lib) == {}
    assert found_rel(results, lib) == ["a.jpg", "linked/inner/y.png", "linked/x.jpg"]


def test_symlinked_image_file_is_found(tmp_path: Path):
    target = touch(tmp_path / "store" / "real.jpg", b"abcdef")
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "alias.jpg").symlink_to(target)
    (result,) = scan(lib)
    assert isinstance(result, Found)
    assert result.path == lib / "alias.jpg"
    assert result.size == 6


def test_link_to_an_ancestor_folder_is_a_symlink_loop(tmp_path: Path):
    lib = tmp_path / "lib"
    touch(lib / "a.jpg")
    touch(lib / "sub" / "b.jpg")
    (lib / "sub" / "up").symlink_to("..", target_is_directory=True)
    (lib / "sub" / "top").symlink_to(lib, target_is_directory=True)
    (lib / "self").symlink_to(".", target_is_directory=True)
    results = scan(lib)
    assert found_rel(results, lib) == ["a.jpg", "sub/b.jpg"]
    assert skipped_rel(results, lib) == {"self": "symlink-loop", "sub/top": "symlink-loop", "sub/up": "symlink-loop"}


def test_two_links_pointing_at_each_other_are_duplicates_of_folders_walked_once(tmp_path: Path):
    lib = tmp_path / "lib"
    touch(lib / "x" / "1.jpg")
    touch(lib / "y" / "2.jpg")
    (lib / "x" / "to_y").symlink_to("../y", target_is_directory=True)
    (lib / "y" / "to_x").symlink_to("../x", target_is_directory=True)
    results = scan(lib)
    assert skipped_rel(results, lib) == {"x/to_y": "duplicate-folder", "y/to_x": "duplicate-folder"}
    assert found_rel(results, lib) == ["x/1.jpg", "y/2.jpg"]


def test_links_between_two_outside_folders_terminate(tmp_path: Path):
    outside, lib = tmp_path / "outside", tmp_path / "lib"
    touch(outside / "x" / "1.jpg")
    touch(outside / "y" / "2.jpg")
    (outside / "x" / "to_y").symlink_to("../y", target_is_directory=True)
    (outside / "y" / "to_x").symlink_to("../x", target_is_directory=True)
    lib.mkdir()
    (lib / "a").symlink_to(outside / "x", target_is_directory=True)
    results = scan(lib)
    assert found_rel(results, lib) == ["a/1.jpg", "a/to_y/2.jpg"]
    assert skipped_rel(results, lib) == {"a/to_y/to_x": "symlink-loop"}


def test_self_referencing_file_link_is_a_symlink_loop(tmp_path: Path):
    touch(tmp_path / "ok.png")
    (tmp_path / "a.jpg").symlink_to("a.jpg")
    (tmp_path / "b.jpg").symlink_to("c.jpg")
    (tmp_path / "c.jpg").symlink_to("b.jpg")
    results = scan(tmp_path)
    assert found_rel(results, tmp_path) == ["ok.png"]
    assert skipped_rel(results, tmp_path) == {"a.jpg": "symlink-loop", "b.jpg": "symlink-loop",
                                              "c.jpg": "symlink-loop"}


def test_broken_link_is_reported(tmp_path: Path):
    touch(tmp_path / "ok.jpg")
    (tmp_path / "gone.jpg").symlink_to(tmp_path / "nowhere" / "missing.jpg")
    (tmp_path / "gone.txt").symlink_to(tmp_path / "missing.txt")  # not an image name: ignored
    (tmp_path / "gonedir").symlink_to(tmp_path / "missing-folder")  # a dangling link is no folder
    results = scan(tmp_path)
    assert found_rel(results, tmp_path) == ["ok.jpg"]
    assert skipped_rel(results, tmp_path) == {"gone.jpg": "broken-link"}
    (skip,) = [r for r in results if isinstance(r, Skipped)]
    assert "missing.jpg" in skip.message


def test_fifo_named_like_an_image_is_not_a_file_and_does_not_block(tmp_path: Path):
    touch(tmp_path / "a.jpg")
    os.mkfifo(tmp_path / "x.jpg")
    os.mkfifo(tmp_path / "y.txt")
    results = scan(tmp_path)  # opening the FIFO would block forever: the deadline turns that into a failure
    assert found_rel(results, tmp_path) == ["a.jpg"]
    assert skipped_rel(results, tmp_path) == {"x.jpg": "not-a-file"}


def test_link_to_a_fifo_is_not_a_file(tmp_path: Path):
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "p.png").symlink_to(tmp_path / "pipe")
    assert skipped_rel(scan(tmp_path), tmp_path) == {"p.png": "not-a-file"}


def test_folder_named_like_an_image_is_walked_into(tmp_path: Path):
    touch(tmp_path / "folder.jpg" / "inside.png")
    touch(tmp_path / "folder.jpg" / "more.TIF" / "deep.webp")
    results = scan(tmp_path)
    assert skipped_rel(results, tmp_path) == {}
    assert found_rel(results, tmp_path) == ["folder.jpg/inside.png", "folder.jpg/more.TIF/deep.webp"]


def test_empty_and_missing_folders(tmp_path: Path):
    assert scan(tmp_path) == []
    results = scan(tmp_path / "missing")
    assert len(results) == 1 and isinstance(results[0], Skipped)
    assert results[0].kind == "unreadable-folder"


def test_scan_never_changes_the_library(tmp_path: Path):
    lib = tmp_path / "lib"
    paths = make_library(lib)
    (lib / "loop").symlink_to(lib, target_is_directory=True)
    before = snapshot(lib)
    results = scan(lib)
    assert changed_entries(before, snapshot(lib)) == {}
    assert sorted(found_rel(results, lib)) == sorted(p.relative_to(lib).as_posix() for p in paths)
    assert skipped_rel(results, lib) == {"loop": "symlink-loop"}


def test_walk_files_yields_non_image_entries_too(tmp_path: Path):
    touch(tmp_path / "a.yaml")
    touch(tmp_path / "b" / "c.npy")
    with deadline(10):
        names = [entry.name for entry, skipped in walk_files(tmp_path) if entry is not None]
    assert names == ["a.yaml", "c.npy"]


@pytest.mark.parametrize(
    "name, expected",
    [("a.jpg", True), ("A.JPEG", True), ("x.y.TiF", True), ("p.webp", True), ("photo.png", True),
     ("a.jpg.phash", False), ("a.yaml", False), ("jpg", False), (".jpg", False), ("a.gif", False), ("a.", False)],
)
def test_is_image_name(name: str, expected: bool):
    assert is_image_name(name) is expected
