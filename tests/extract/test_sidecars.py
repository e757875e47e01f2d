"""Sidecars: written only as plain files of their own name, and cleaned without touching anything else."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cropkit.extract.sidecars import (
    SIDECAR_SUFFIXES,
    SidecarRegistry,
    clean_sidecars,
    is_sidecar_name,
    sidecar_path,
    write_sidecar,
)
from cropkit.fileio import TMP_MARK
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


def written(image: Path, suffix: str, data: bytes, registry: SidecarRegistry) -> Path:
    assert write_sidecar(image, suffix, data, registry) == "written"
    return sidecar_path(image, suffix)


def test_clean_removes_exactly_the_recorded_sidecars(tmp_path: Path):
    lib, ai_data = tmp_path / "lib", tmp_path / "ai_data"
    registry = SidecarRegistry(ai_data)
    image = save_photo(lib / "a.jpg", 64, 48, seed=1)
    other = save_photo(lib / "sub" / "b.png", 64, 48, seed=2)
    ours = [written(image, s, b"data " + s.encode(), registry) for s in SIDECARS]
    ours += [written(other, ".phash", b"0123456789abcdef\n", registry),
             written(other, ".embedding.npy", b"x", registry)]
    stale = [f".a.jpg.phash{TMP_MARK}999999999-abcd", f"sub/.b.png.embedding.npy{TMP_MARK}999999998-00ff"]
    users = ["orphan.jpg.hands.json", "notes.embedding.npy", "holiday_album.phash", "sub/x.jpg.saliency.npy"]
    keep = ["a.yaml", "sub/b.yaml", ".phash", "x.npy", "phash", "a.embedding.npy.bak", "a.jpg.PHASH",
            "notes.txt", "a.jpg.phash.old", "a.jpg.npy", "hands.json", ".embedding.npy",
            f".a.jpg{TMP_MARK}5-beef", f".notes.txt{TMP_MARK}5-beef"]
    for name in stale + users + keep:
        touch(lib / name, b"data " + name.encode())
    (lib / "l.phash").symlink_to(image)  # a link with a sidecar name is never followed nor removed
    (lib / "dangling.hands.json").symlink_to(lib / "missing")
    before = snapshot(lib)

    report = clean_sidecars(lib, ai_data)

    assert rel_set(report.deleted, lib) == rel_set(ours, lib) | set(stale)
    assert len(report.deleted) == len(ours) + len(stale)
    assert rel_set((p for p, _ in report.left), lib) == {*users, "l.phash", "dangling.hands.json"}
    assert all("not written by cropkit" in why for _, why in report.left)
    after = snapshot(lib)
    for name in users + keep + ["a.jpg", "sub/b.png", "l.phash", "dangling.hands.json"]:
        assert after[name] == before[name], name
    assert (lib / "l.phash").is_symlink() and os.readlink(lib / "l.phash") == str(image)
    assert image.read_bytes()[:2] == b"\xff\xd8"  # the image behind the link is intact
    assert SidecarRegistry(ai_data).records == {}  # the deletions are recorded too


def test_clean_is_idempotent_and_reports_a_sidecar_deleted_by_hand_once(tmp_path: Path):
    registry = SidecarRegistry(tmp_path / "ai")
    image = save_photo(tmp_path / "x" / "a.jpg", 32, 24)
    first, second = written(image, ".phash", b"1", registry), written(image, ".embedding.npy", b"2", registry)
    second.unlink()
    report = clean_sidecars(tmp_path / "x", tmp_path / "ai")
    assert report.deleted == [first] and report.left == [(second, "gone")]
    again = clean_sidecars(tmp_path / "x", tmp_path / "ai")
    assert again.deleted == [] and again.left == []


def test_unreadable_record_lines_are_reported_and_own_nothing(tmp_path: Path):
    registry = SidecarRegistry(tmp_path / "ai")
    image = save_photo(tmp_path / "lib" / "a.jpg", 32, 24)
    side = written(image, ".phash", b"p", registry)
    user = touch(tmp_path / "lib" / "b.jpg.phash", b"mine")
    with open(registry.file, "ab") as f:
        f.write(b'{"path": 5}\n{"path": "%s", "size": "big"}\n{"path": "%s", "size": 4, "sha' % (
            str(user).encode(), str(user).encode()))
    report = clean_sidecars(tmp_path / "lib", tmp_path / "ai")
    assert report.deleted == [side] and user.read_bytes() == b"mine"
    assert [bad.lineno for bad in report.bad_records] == [2, 3, 4]
    assert sum("ignored unreadable sidecar record" in line for line in report.lines()) == 3


def test_dry_run_deletes_nothing_and_lists_the_same_files(tmp_path: Path):
    lib, ai_data = tmp_path / "lib", tmp_path / "ai"
    registry = SidecarRegistry(ai_data)
    image = save_photo(lib / "a.jpg", 32, 24)
    deep = save_photo(lib / "deep/er/b.tif", 32, 24)
    for target, suffix in ((image, ".phash"), (image, ".embedding.npy"), (deep, ".saliency.npy")):
        written(target, suffix, suffix.encode(), registry)
    touch(lib / f".a.jpg.phash{TMP_MARK}999999999-2")
    touch(lib / "keep.yaml")
    before, records = snapshot(lib), (ai_data / "cache/sidecars.jsonl").read_bytes()
    dry = clean_sidecars(lib, ai_data, dry_run=True)
    assert changed_entries(before, snapshot(lib)) == {}
    assert (ai_data / "cache/sidecars.jsonl").read_bytes() == records
    assert len(dry.deleted) == 4 and dry.lines()[-1] == f"would delete 4 sidecar files under {lib}"
    real = clean_sidecars(lib, ai_data)
    assert real.deleted == dry.deleted
    assert all(not p.exists() for p in real.deleted)
    assert (lib / "keep.yaml").exists() and (lib / "a.jpg").exists()


def test_clean_leaves_a_folder_with_a_sidecar_name_but_cleans_inside_it(tmp_path: Path):
    registry = SidecarRegistry(tmp_path / "ai")
    image = touch(tmp_path / "lib" / "odd.phash" / "photo.jpg")
    side = written(image, ".phash", b"p", registry)
    report = clean_sidecars(tmp_path / "lib", tmp_path / "ai")
    assert report.deleted == [side]
    assert (tmp_path / "lib" / "odd.phash").is_dir() and image.is_file()


def test_clean_survives_a_symlink_loop(tmp_path: Path):
    registry = SidecarRegistry(tmp_path / "ai")
    side = written(touch(tmp_path / "lib" / "a.jpg"), ".phash", b"p", registry)
    (tmp_path / "lib" / "loop").symlink_to(tmp_path / "lib", target_is_directory=True)
    assert clean_sidecars(tmp_path / "lib", tmp_path / "ai").deleted == [side]
    assert (tmp_path / "lib" / "loop").is_symlink()


def test_clean_leaves_a_recorded_sidecar_that_changed_or_became_a_link(tmp_path: Path):
    lib, ai_data = tmp_path / "lib", tmp_path / "ai"
    registry = SidecarRegistry(ai_data)
    image = save_photo(lib / "a.jpg", 32, 24)
    edited = written(image, ".phash", b"0123456789abcdef\n", registry)
    edited.write_bytes(b"my own notes now\n")
    same_size = written(image, ".hands.json", b"[1, 2]", registry)
    same_size.write_bytes(b"[3, 4]")
    linked = written(image, ".embedding.npy", b"npy", registry)
    linked.unlink()
    linked.symlink_to(image)
    before = snapshot(lib)
    report = clean_sidecars(lib, ai_data)
    assert report.deleted == []
    assert dict(report.left) == {edited: "changed since cropkit wrote it", same_size: "changed since cropkit wrote it",
                                 linked: "not a plain file any more (a link, folder or special file)"}
    assert changed_entries(before, snapshot(lib)) == {}


def test_clean_on_a_read_only_library_says_it_cannot_delete_and_goes_on(tmp_path: Path):
    from tests.helpers.small_disk import remount, tmpfs

    ai_data = tmp_path / "ai"
    registry = SidecarRegistry(ai_data)
    with tmpfs(tmp_path / "lib", size="4m") as lib:
        image = save_photo(lib / "a.jpg", 32, 24)
        sides = [written(image, s, s.encode(), registry) for s in (".phash", ".embedding.npy")]
        remount(lib, "ro")
        try:
            report = clean_sidecars(lib, ai_data)
        finally:
            remount(lib, "rw")
        assert report.deleted == []
        assert [p for p, _ in report.left] == sorted(sides)
        assert all(why == "cannot delete it: Read-only file system" for _, why in report.left)
        assert all(p.exists() for p in sides)
        assert clean_sidecars(lib, ai_data).deleted == sorted(sides)  # still recorded: a later run deletes them


# --- write_sidecar --------------------------------------------------------------------------------


@pytest.fixture
def registry(tmp_path_factory: pytest.TempPathFactory) -> SidecarRegistry:
    return SidecarRegistry(tmp_path_factory.mktemp("root") / "data" / "ai_data")


def no_temp_files(folder: Path) -> bool:
    return not any(TMP_MARK in name for name in os.listdir(folder))


def test_write_creates_then_reports_unchanged_then_replaces(tmp_path: Path, registry: SidecarRegistry):
    image = save_photo(tmp_path / "a.jpg", 32, 24)
    image_before = snapshot(tmp_path)["a.jpg"]
    target = tmp_path / "a.jpg.phash"
    assert sidecar_path(image, ".phash") == target

    assert write_sidecar(image, ".phash", b"0123456789abcdef", registry) == "written"
    assert target.read_bytes() == b"0123456789abcdef"
    mtime = target.stat().st_mtime_ns
    inode = target.stat().st_ino

    assert write_sidecar(image, ".phash", b"0123456789abcdef", registry) == "unchanged"
    assert target.stat().st_mtime_ns == mtime and target.stat().st_ino == inode

    assert write_sidecar(image, ".phash", b"fedcba9876543210", registry) == "written"
    assert target.read_bytes() == b"fedcba9876543210"
    assert write_sidecar(image, ".phash", b"short", registry) == "written"
    assert target.read_bytes() == b"short"

    assert no_temp_files(tmp_path)
    assert snapshot(tmp_path)["a.jpg"] == image_before


def test_write_keeps_a_user_file_with_a_sidecar_name(tmp_path: Path, registry: SidecarRegistry):
    image = save_photo(tmp_path / "rocket.jpg", 32, 24)
    mine = touch(tmp_path / "rocket.jpg.phash", b"DAM data, DO NOT LOSE\n")
    before = snapshot(tmp_path)
    assert write_sidecar(image, ".phash", b"0123456789abcdef\n", registry).startswith("kept-user-file: not written")
    assert write_sidecar(image, ".phash", b"DAM data, DO NOT LOSE\n", registry).startswith("kept-user-file")
    assert changed_entries(before, snapshot(tmp_path)) == {}
    assert mine.read_bytes() == b"DAM data, DO NOT LOSE\n"
    assert registry.records == {} and SidecarRegistry(registry.ai_data).records == {}


def test_write_keeps_a_recorded_sidecar_the_user_changed(tmp_path: Path, registry: SidecarRegistry):
    image = save_photo(tmp_path / "a.jpg", 32, 24)
    assert write_sidecar(image, ".phash", b"0123456789abcdef\n", registry) == "written"
    (tmp_path / "a.jpg.phash").write_bytes(b"edited by hand\n")
    assert write_sidecar(image, ".phash", b"fedcba9876543210\n", registry) == (
        "kept-user-file: changed since cropkit wrote it")
    assert (tmp_path / "a.jpg.phash").read_bytes() == b"edited by hand\n"


def test_records_are_whole_lines_that_a_new_reader_sees(tmp_path: Path, registry: SidecarRegistry):
    image = save_photo(tmp_path / "sub" / "a.jpg", 32, 24)
    (tmp_path / "via").symlink_to(tmp_path / "sub", target_is_directory=True)
    assert write_sidecar(tmp_path / "via" / "a.jpg", ".phash", b"abc\n", registry) == "written"
    key = str(image.parent.resolve() / "a.jpg.phash")  # recorded by its real folder, links resolved
    assert SidecarRegistry(registry.ai_data).records == {key: (4, hashlib.sha256(b"abc\n").hexdigest())}
    assert write_sidecar(image, ".phash", b"abc\n", registry) == "unchanged"  # the same file, either way in


def test_write_refuses_when_a_symlink_has_the_name(tmp_path: Path, registry: SidecarRegistry):
    image = save_photo(tmp_path / "a.jpg", 32, 24)
    victim = touch(tmp_path / "elsewhere" / "precious.txt", b"do not touch")
    link = tmp_path / "a.jpg.embedding.npy"
    link.symlink_to(victim)
    before = snapshot(tmp_path)
    result = write_sidecar(image, ".embedding.npy", b"new data", registry)
    assert result.startswith("refused")
    assert changed_entries(before, snapshot(tmp_path)) == {}
    assert victim.read_bytes() == b"do not touch"
    assert link.is_symlink()
    assert no_temp_files(tmp_path)


def test_write_refuses_a_symlink_to_the_image_itself(tmp_path: Path, registry: SidecarRegistry):
    image = save_photo(tmp_path / "a.jpg", 32, 24)
    (tmp_path / "a.jpg.phash").symlink_to(image)
    before = snapshot(tmp_path)
    assert write_sidecar(image, ".phash", b"x", registry).startswith("refused")
    assert changed_entries(before, snapshot(tmp_path)) == {}


def test_write_refuses_a_dangling_symlink_and_creates_nothing_behind_it(tmp_path: Path, registry: SidecarRegistry):
    image = save_photo(tmp_path / "a.jpg", 32, 24)
    (tmp_path / "a.jpg.hands.json").symlink_to(tmp_path / "would-be-created.json")
    assert write_sidecar(image, ".hands.json", b"{}", registry).startswith("refused")
    assert not (tmp_path / "would-be-created.json").exists()
    assert (tmp_path / "a.jpg.hands.json").is_symlink()
    assert no_temp_files(tmp_path)


def test_write_refuses_when_a_folder_has_the_name(tmp_path: Path, registry: SidecarRegistry):
    image = save_photo(tmp_path / "a.jpg", 32, 24)
    folder = tmp_path / "a.jpg.saliency.npy"
    touch(folder / "inside.txt", b"keep")
    before = snapshot(tmp_path)
    assert write_sidecar(image, ".saliency.npy", b"data", registry).startswith("refused")
    assert changed_entries(before, snapshot(tmp_path)) == {}
    assert no_temp_files(tmp_path)


def test_write_refuses_a_fifo_without_blocking(tmp_path: Path, registry: SidecarRegistry):
    image = save_photo(tmp_path / "a.jpg", 32, 24)
    os.mkfifo(tmp_path / "a.jpg.phash")
    assert write_sidecar(image, ".phash", b"data", registry).startswith("refused")


def test_write_beside_a_non_ascii_image(tmp_path: Path, registry: SidecarRegistry):
    image = save_photo(tmp_path / "café 写真.jpg", 32, 24)
    assert write_sidecar(image, ".hands.json", '{"ok": "✓"}'.encode(), registry) == "written"
    assert (tmp_path / "café 写真.jpg.hands.json").read_text(encoding="utf-8") == '{"ok": "✓"}'
    assert clean_sidecars(tmp_path, registry.ai_data).deleted == [tmp_path / "café 写真.jpg.hands.json"]


def test_written_sidecars_are_what_clean_removes(tmp_path: Path, registry: SidecarRegistry):
    images = [save_photo(tmp_path / name, 32, 24, seed=i) for i, name in enumerate(["a.jpg", "s/b.PNG", "c.webp"])]
    written = set()
    for image in images:
        for suffix in SIDECARS:
            assert write_sidecar(image, suffix, suffix.encode(), registry) == "written"
            written.add(sidecar_path(image, suffix))
    before_images = {p: p.read_bytes() for p in images}
    assert set(clean_sidecars(tmp_path, registry.ai_data).deleted) == written
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
def file_names(draw) -> tuple[str, bool, bool]:
    """A file name, whether it has a sidecar's name (or a sidecar writer's temp name), and whether cropkit wrote
    it (a sidecar) or its writer was killed (a temp name): only those are cropkit's to delete."""
    base, ext, suffix = draw(_BASES), draw(_IMAGE_EXTS), draw(_SUFFIXES)
    name = base + ext + suffix
    assume(name)
    is_sidecar = suffix in SIDECARS and base + ext != ""  # a file named just ".phash" is no sidecar
    if draw(st.booleans()):
        pid, token = draw(st.integers(5_000_000, 9_999_999)), draw(st.text("0123456789abcdef", min_size=1, max_size=8))
        return f".{name}{TMP_MARK}{pid}-{token}", is_sidecar, is_sidecar  # pid over Linux's pid_max: writer gone
    return name, is_sidecar, is_sidecar and draw(st.booleans())


def _oracle(name: str) -> bool:
    """Independent reading of the rule: '<non-empty stem><sidecar suffix>' or '.<that>.cropkit-tmp-...'."""
    m = re.fullmatch(r"\.(.+?)" + re.escape(TMP_MARK) + r".*", name, flags=re.S)
    core = m.group(1) if m else name
    return any(core.endswith(s) and len(core) > len(s) for s in SIDECARS)


def _image_of(name: str) -> str | None:
    """Independent reading of the deletion rule: the image name a sidecar (or its temp file) belongs to, when
    the part before the sidecar suffix ends in an image suffix; None otherwise."""
    m = re.fullmatch(r"\.(.+?)" + re.escape(TMP_MARK) + r".*", name, flags=re.S)
    core = m.group(1) if m else name
    stem = next((core[: -len(s)] for s in SIDECARS if core.endswith(s)), "")
    return stem if re.search(r".\.(jpe?g|png|webp|tiff?)$", stem, flags=re.I) else None


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(file_names(), min_size=1, max_size=25, unique_by=lambda t: t[0]), st.booleans(), st.booleans())
def test_clean_removes_what_cropkit_wrote_and_nothing_else(entries: list[tuple[str, bool, bool]],
                                                          in_subfolder: bool, with_images: bool):
    """Only a sidecar cropkit wrote (or a temp file of one) whose name is an image's name plus a sidecar suffix,
    beside that image, is deleted; every other file is left, a sidecar-like one with the reason."""
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as ai_data:
        root = Path(tmp)
        folder = root / "sub dir" if in_subfolder else root
        folder.mkdir(exist_ok=True)
        registry = SidecarRegistry(Path(ai_data))
        for name, _, ours in entries:
            content = name.encode("utf-8", "surrogatepass")
            suffix = next((s for s in SIDECARS if name.endswith(s)), "")
            if ours and TMP_MARK not in name:
                assert write_sidecar(folder / name[: -len(suffix)], suffix, content, registry) == "written"
            else:
                (folder / name).write_bytes(content)
        images = {image for name, *_ in entries if (image := _image_of(name))} - {n for n, *_ in entries}
        for image in images if with_images else ():
            (folder / image).write_bytes(b"photo")
        assert {name for name, is_sidecar, _ in entries if is_sidecar} == {n for n, *_ in entries if _oracle(n)}
        assert {name for name, _, _ in entries if is_sidecar_name(name)} == {n for n, s, _ in entries if s}
        beside = images if with_images else set()
        expected = {name for name, _, ours in entries
                    if ours and _image_of(name) and (_image_of(name) in beside or (folder / _image_of(name)).is_file())}

        dry = clean_sidecars(root, Path(ai_data), dry_run=True)
        assert sorted(os.listdir(folder)) == sorted([name for name, *_ in entries] + list(beside))
        report = clean_sidecars(root, Path(ai_data))

        assert {p.name for p in report.deleted} == expected
        assert all(p.parent == folder for p in report.deleted)
        assert report.deleted == dry.deleted
        assert {p.name for p, _ in report.left} == {n for n, s, _ in entries if s and n not in expected}
        survivors = set(os.listdir(folder))
        assert survivors == ({name for name, *_ in entries} | beside) - expected
        if with_images:
            assert all((folder / image).read_bytes() == b"photo" for image in images)
        for name in survivors - beside:  # survivors keep their content
            assert (folder / name).read_bytes() == name.encode("utf-8", "surrogatepass")
