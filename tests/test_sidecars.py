"""Sidecars: written only as plain files of their own name, and cleaned without touching anything else."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cropkit.fileio import TMP_MARK
from cropkit.sidecars import SIDECAR_SUFFIXES, clean_sidecars, is_sidecar_name, sidecar_path, write_sidecar
from tests.libgen import changed_entries, save_photo, snapshot

SIDECARS = (".embedding.npy", ".phash", ".saliency.npy", ".hands.json")


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def rel_set(paths, root: Path) -> set[str]:
    return {Path(p).relative_to(root).as_posix() for p in paths}


def all_entries(root: Path) -> set[str]:
    return set(snapshot(root))


def test_suffixes_are_the_documented_ones():
    assert set(SIDECAR_SUFFIXES) == set(SIDECARS)


def test_clean_removes_exactly_the_sidecars(tmp_path: Path):
    lib = tmp_path / "lib"
    image = save_photo(lib / "a.jpg", 64, 48, seed=1)
    save_photo(lib / "sub" / "b.png", 64, 48, seed=2)
    sidecars = ["a.jpg.embedding.npy", "a.jpg.phash", "a.jpg.saliency.npy", "a.jpg.hands.json",
                "sub/b.png.phash", "sub/b.png.embedding.npy", "orphan.jpg.hands.json",
                f".a.jpg.phash{TMP_MARK}123-abcd", f"sub/.b.png.embedding.npy{TMP_MARK}9-00ff"]
    keep = ["a.yaml", "sub/b.yaml", ".phash", "x.npy", "phash", "a.embedding.npy.bak", "a.jpg.PHASH",
            "notes.txt", "a.jpg.phash.old", "a.jpg.npy", "hands.json", ".embedding.npy",
            f".a.jpg{TMP_MARK}5-beef", f".notes.txt{TMP_MARK}5-beef"]
    for name in sidecars + keep:
        touch(lib / name, b"data " + name.encode())
    (lib / "l.phash").symlink_to(image)  # a link with a sidecar name is never followed nor removed
    (lib / "dangling.hands.json").symlink_to(lib / "missing")
    before = snapshot(lib)

    removed = clean_sidecars(lib)

    assert rel_set(removed, lib) == set(sidecars)
    assert len(removed) == len(sidecars)
    after = snapshot(lib)
    changed = changed_entries(before, after)
    assert {name for name in changed if before[name][0] != "other"} == set(sidecars)  # folders' mtimes move
    assert all(after[name][0] == "other" for name in changed if name not in sidecars)
    for name in keep + ["a.jpg", "sub/b.png", "l.phash", "dangling.hands.json"]:
        assert after[name] == before[name], name
    assert (lib / "l.phash").is_symlink() and os.readlink(lib / "l.phash") == str(image)
    assert image.read_bytes()[:2] == b"\xff\xd8"  # the image behind the link is intact


def test_clean_returns_paths_below_the_folder_and_is_idempotent(tmp_path: Path):
    touch(tmp_path / "x" / "a.jpg.phash")
    first = clean_sidecars(tmp_path)
    assert first == [tmp_path / "x" / "a.jpg.phash"]
    assert clean_sidecars(tmp_path) == []


def test_dry_run_deletes_nothing_and_lists_the_same_files(tmp_path: Path):
    save_photo(tmp_path / "a.jpg", 32, 24)
    for name in ["a.jpg.phash", "a.jpg.embedding.npy", "deep/er/b.tif.saliency.npy", f".a.jpg.phash{TMP_MARK}1-2"]:
        touch(tmp_path / name)
    touch(tmp_path / "keep.yaml")
    before = snapshot(tmp_path)
    dry = clean_sidecars(tmp_path, dry_run=True)
    assert changed_entries(before, snapshot(tmp_path)) == {}
    assert len(dry) == 4
    real = clean_sidecars(tmp_path)
    assert real == dry
    assert all(not p.exists() for p in real)
    assert (tmp_path / "keep.yaml").exists() and (tmp_path / "a.jpg").exists()


def test_clean_leaves_a_folder_with_a_sidecar_name_but_cleans_inside_it(tmp_path: Path):
    touch(tmp_path / "odd.phash" / "photo.jpg")
    touch(tmp_path / "odd.phash" / "photo.jpg.phash")
    removed = clean_sidecars(tmp_path)
    assert removed == [tmp_path / "odd.phash" / "photo.jpg.phash"]
    assert (tmp_path / "odd.phash").is_dir() and (tmp_path / "odd.phash" / "photo.jpg").is_file()


def test_clean_survives_a_symlink_loop(tmp_path: Path):
    touch(tmp_path / "a.jpg.phash")
    (tmp_path / "loop").symlink_to(tmp_path, target_is_directory=True)
    assert clean_sidecars(tmp_path) == [tmp_path / "a.jpg.phash"]
    assert (tmp_path / "loop").is_symlink()


# --- write_sidecar --------------------------------------------------------------------------------


def no_temp_files(folder: Path) -> bool:
    return not any(TMP_MARK in name for name in os.listdir(folder))


def test_write_creates_then_reports_unchanged_then_replaces(tmp_path: Path):
    image = save_photo(tmp_path / "a.jpg", 32, 24)
    image_before = snapshot(tmp_path)["a.jpg"]
    target = tmp_path / "a.jpg.phash"
    assert sidecar_path(image, ".phash") == target

    assert write_sidecar(image, ".phash", b"0123456789abcdef") == "written"
    assert target.read_bytes() == b"0123456789abcdef"
    mtime = target.stat().st_mtime_ns
    inode = target.stat().st_ino

    assert write_sidecar(image, ".phash", b"0123456789abcdef") == "unchanged"
    assert target.stat().st_mtime_ns == mtime and target.stat().st_ino == inode

    assert write_sidecar(image, ".phash", b"fedcba9876543210") == "written"
    assert target.read_bytes() == b"fedcba9876543210"
    assert write_sidecar(image, ".phash", b"short") == "written"
    assert target.read_bytes() == b"short"

    assert no_temp_files(tmp_path)
    assert snapshot(tmp_path)["a.jpg"] == image_before


def test_write_refuses_when_a_symlink_has_the_name(tmp_path: Path):
    image = save_photo(tmp_path / "a.jpg", 32, 24)
    victim = touch(tmp_path / "elsewhere" / "precious.txt", b"do not touch")
    link = tmp_path / "a.jpg.embedding.npy"
    link.symlink_to(victim)
    before = snapshot(tmp_path)
    result = write_sidecar(image, ".embedding.npy", b"new data")
    assert result.startswith("refused")
    assert changed_entries(before, snapshot(tmp_path)) == {}
    assert victim.read_bytes() == b"do not touch"
    assert link.is_symlink()
    assert no_temp_files(tmp_path)


def test_write_refuses_a_symlink_to_the_image_itself(tmp_path: Path):
    image = save_photo(tmp_path / "a.jpg", 32, 24)
    (tmp_path / "a.jpg.phash").symlink_to(image)
    before = snapshot(tmp_path)
    assert write_sidecar(image, ".phash", b"x").startswith("refused")
    assert changed_entries(before, snapshot(tmp_path)) == {}


def test_write_refuses_a_dangling_symlink_and_creates_nothing_behind_it(tmp_path: Path):
    image = save_photo(tmp_path / "a.jpg", 32, 24)
    (tmp_path / "a.jpg.hands.json").symlink_to(tmp_path / "would-be-created.json")
    assert write_sidecar(image, ".hands.json", b"{}").startswith("refused")
    assert not (tmp_path / "would-be-created.json").exists()
    assert (tmp_path / "a.jpg.hands.json").is_symlink()
    assert no_temp_files(tmp_path)


def test_write_refuses_when_a_folder_has_the_name(tmp_path: Path):
    image = save_photo(tmp_path / "a.jpg", 32, 24)
    folder = tmp_path / "a.jpg.saliency.npy"
    touch(folder / "inside.txt", b"keep")
    before = snapshot(tmp_path)
    assert write_sidecar(image, ".saliency.npy", b"data").startswith("refused")
    assert changed_entries(before, snapshot(tmp_path)) == {}
    assert no_temp_files(tmp_path)


def test_write_refuses_a_fifo_without_blocking(tmp_path: Path):
    image = save_photo(tmp_path / "a.jpg", 32, 24)
    os.mkfifo(tmp_path / "a.jpg.phash")
    assert write_sidecar(image, ".phash", b"data").startswith("refused")


def test_write_beside_a_non_ascii_image(tmp_path: Path):
    image = save_photo(tmp_path / "café 写真.jpg", 32, 24)
    assert write_sidecar(image, ".hands.json", '{"ok": "✓"}'.encode()) == "written"
    assert (tmp_path / "café 写真.jpg.hands.json").read_text(encoding="utf-8") == '{"ok": "✓"}'
    assert clean_sidecars(tmp_path) == [tmp_path / "café 写真.jpg.hands.json"]


def test_written_sidecars_are_what_clean_removes(tmp_path: Path):
    images = [save_photo(tmp_path / name, 32, 24, seed=i) for i, name in enumerate(["a.jpg", "s/b.PNG", "c.webp"])]
    written = set()
    for image in images:
        for suffix in SIDECARS:
            assert write_sidecar(image, suffix, suffix.encode()) == "written"
            written.add(sidecar_path(image, suffix))
    before_images = {p: p.read_bytes() for p in images}
    assert set(clean_sidecars(tmp_path)) == written
    assert {p: p.read_bytes() for p in images} == before_images
    assert not any(p.exists() for p in written)


# --- property test --------------------------------------------------------------------------------

_NAME_CHARS = st.characters(
    blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\.\x00", min_codepoint=32, max_codepoint=0x2FFF
)
_BASES = st.text(_NAME_CHARS, min_size=0, max_size=12)
_IMAGE_EXTS = st.sampled_from(["", ".jpg", ".JPG", ".png", ".tif", ".x"])
_NEAR_MISSES = ["", ".npy", ".bak", ".yaml", ".json", ".phash.bak", ".embedding.npy.bak", ".hands.jsonx", ".saliency",
                ".embedding", "phash", "_phash", ".PHASH", ".Embedding.npy", ".hands.JSON", ".phash~", ".phash "]
_SUFFIXES = st.sampled_from(list(SIDECARS) + _NEAR_MISSES)


@st.composite
def file_names(draw) -> tuple[str, bool]:
    """A file name and whether it is a sidecar (or a sidecar writer's stale temp file)."""
    base, ext, suffix = draw(_BASES), draw(_IMAGE_EXTS), draw(_SUFFIXES)
    name = base + ext + suffix
    assume(name)
    is_sidecar = suffix in SIDECARS and base + ext != ""  # a file named just ".phash" is no sidecar
    if draw(st.booleans()):
        pid, token = draw(st.integers(1, 99999)), draw(st.text("0123456789abcdef", min_size=1, max_size=8))
        name = f".{name}{TMP_MARK}{pid}-{token}"
    return name, is_sidecar


def _oracle(name: str) -> bool:
    """Independent reading of the rule: '<non-empty stem><sidecar suffix>' or '.<that>.cropkit-tmp-...'."""
    m = re.fullmatch(r"\.(.+?)" + re.escape(TMP_MARK) + r".*", name, flags=re.S)
    core = m.group(1) if m else name
    return any(core.endswith(s) and len(core) > len(s) for s in SIDECARS)


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(file_names(), min_size=1, max_size=25, unique_by=lambda t: t[0]), st.booleans())
def test_clean_removes_sidecar_named_files_and_nothing_else(entries: list[tuple[str, bool]], in_subfolder: bool):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = root / "sub dir" if in_subfolder else root
        folder.mkdir(exist_ok=True)
        for name, _ in entries:
            (folder / name).write_bytes(name.encode("utf-8", "surrogatepass"))
        expected = {name for name, is_sidecar in entries if is_sidecar}
        assert expected == {name for name, _ in entries if _oracle(name)}
        assert {name for name, _ in entries if is_sidecar_name(name)} == expected

        dry = clean_sidecars(root, dry_run=True)
        assert sorted(os.listdir(folder)) == sorted(name for name, _ in entries)
        removed = clean_sidecars(root)

        assert {p.name for p in removed} == expected
        assert all(p.parent == folder for p in removed)
        assert removed == dry
        survivors = set(os.listdir(folder))
        assert survivors == {name for name, _ in entries} - expected
        for name in survivors:  # survivors keep their content
            assert (folder / name).read_bytes() == name.encode("utf-8", "surrogatepass")
