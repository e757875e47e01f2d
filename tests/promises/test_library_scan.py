"""A library scan walks each real folder once and touches nothing, atimes included (issue 11, findings 7 and 14)."""

from __future__ import annotations

from pathlib import Path

from cropkit.cli import main
from cropkit.extract.scan import Found, Skipped, find_images
from cropkit.fileio import read_jsonl
from tests.conftest import tiny_args
from tests.helpers.deadline import deadline
from tests.helpers.small_disk import tmpfs
from tests.libgen import changed_entries, make_library, save_photo, snapshot


def scan(folder: Path) -> tuple[list[str], dict[str, str]]:
    with deadline(20):
        results = list(find_images(folder))
    found = [r.path.relative_to(folder).as_posix() for r in results if isinstance(r, Found)]
    return found, {r.path.relative_to(folder).as_posix(): r.kind for r in results if isinstance(r, Skipped)}


def test_branching_links_are_walked_once_per_folder(tmp_path: Path):
    lib = tmp_path / "lib"
    save_photo(lib / "d0" / "only.jpg", 32, 24)
    for level in range(1, 15):  # each level links twice to the one below: 2**14 paths to one picture
        (lib / f"d{level}").mkdir()
        for side in "ab":
            (lib / f"d{level}" / side).symlink_to(f"../d{level - 1}", target_is_directory=True)
    found, skipped = scan(lib)
    assert found == ["d0/only.jpg"]
    assert len(skipped) == 28 and set(skipped.values()) == {"duplicate-folder"}


def test_a_link_to_the_filesystem_root_is_a_loop(tmp_path: Path):
    lib = tmp_path / "lib"
    save_photo(lib / "a.jpg", 32, 24)
    (lib / "everything").symlink_to("/", target_is_directory=True)
    (lib / "parent").symlink_to(tmp_path, target_is_directory=True)
    assert scan(lib) == (["a.jpg"], {"everything": "symlink-loop", "parent": "symlink-loop"})


def test_a_folder_linked_twice_is_queued_once(tmp_path: Path, capsys):
    root = tmp_path
    images = root / "data" / "training_data"
    make_library(images)
    elsewhere = save_photo(tmp_path / "elsewhere" / "far.jpg", 64, 48, seed=9).parent
    (images / "link1").symlink_to(elsewhere, target_is_directory=True)
    (images / "link2").symlink_to(elsewhere, target_is_directory=True)
    (images / "again").symlink_to("trip", target_is_directory=True)
    assert main(tiny_args(root)) == 0
    assert "processed:  7 images" in capsys.readouterr().out
    lines = [obj for _, obj in read_jsonl(root / "data/ai_data/cache/processed_files.jsonl")]
    ok = sorted(obj["path"] for obj in lines if obj["status"] == "ok")
    assert len(ok) == 7 and "data/training_data/link1/far.jpg" in ok
    assert not any(p.startswith(("data/training_data/link2/", "data/training_data/again/")) for p in ok)
    skipped = {obj["path"]: obj["error"]["kind"] for obj in lines if obj["status"] == "failed"}
    assert skipped == {"data/training_data/again": "duplicate-folder", "data/training_data/link2": "duplicate-folder"}


def test_scanning_leaves_every_folder_atime_as_it_was(tmp_path: Path):
    with tmpfs(tmp_path / "lib", size="16m", options="strictatime") as lib:
        make_library(lib)
        save_photo(lib / "deep" / "er" / "x.png", 32, 24)
        (lib / "via_link").symlink_to(tmp_path / "lib" / "deep", target_is_directory=True)
        before = snapshot(lib, atime=True)
        found, _ = scan(lib)
        assert changed_entries(before, snapshot(lib, atime=True)) == {}
        assert len(found) >= 7


def test_a_root_that_is_its_own_library_never_indexes_cropkits_files(tmp_path: Path, capsys):
    """Finding 16: with the root equal to the library, report figures under data/ai_data were indexed as photos."""
    make_library(tmp_path / "trip", n=3, companions=False)
    save_photo(tmp_path / "data/ai_data/reports/evaluation_1/examples.png")  # a report figure, not a photo
    assert main(tiny_args(tmp_path, "--images", str(tmp_path))) == 0
    assert "processed:  3 images" in capsys.readouterr().out
    names = {obj["path"] for _, obj in read_jsonl(tmp_path / "data/ai_data/cache/processed_files.jsonl")}
    assert len(names) == 3 and not any(name.startswith("data/") for name in names)
