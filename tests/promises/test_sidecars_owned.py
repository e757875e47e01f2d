"""Sidecars are owned: cropkit replaces and deletes only the sidecars it recorded writing, never a user's file that
merely has a sidecar's name, and never anything reached through a folder link (issue 11, findings 1, 2, 18)."""

from __future__ import annotations

from pathlib import Path

from cropkit.cli import main
from cropkit.extract.sidecars import SIDECAR_SUFFIXES
from tests.conftest import tiny_args
from tests.helpers.small_disk import remount, tmpfs
from tests.libgen import changed_entries, make_library, save_photo, snapshot

USER_FILES = {  # a user's own files that only look like sidecars
    "notes.embedding.npy": b"\x93NUMPY my own array",
    "holiday_album.phash": b"album hashes, mine\n",
    "home/portrait.hands.json": b'{"hands": "annotated by me"}',
    "trip/rocket.jpg.phash": b"DAM data, DO NOT LOSE\n",
}


def run(capsys, args: list[str]) -> str:
    assert main(args) == 0
    return capsys.readouterr().out


def test_extract_and_clean_sidecars_never_replace_or_delete_a_users_files(tmp_path: Path, capsys):
    root = tmp_path / "project"
    images = root / "data" / "training_data"
    make_library(images)
    save_photo(images / "trip" / "rocket.jpg", 120, 90, seed=7)
    for name, data in USER_FILES.items():
        (images / name).write_bytes(data)
    outside = tmp_path / "outside_docs"  # reached only through a folder link in the library
    outside.mkdir()
    (outside / "experiment.phash").write_bytes(b"lab results\n")
    (images / "docs_link").symlink_to("../../../outside_docs", target_is_directory=True)
    assert (images / "docs_link" / "experiment.phash").is_file()
    users_before = {name: snapshot(images)[name] for name in USER_FILES}
    outside_before = snapshot(outside)

    out = run(capsys, tiny_args(root, "--sidecars"))
    assert "kept-user-file: 1" in out  # trip/rocket.jpg.phash: not cropkit's, so not replaced
    assert "written: 27" in out  # 7 photos x 4 sidecars, less the .phash name the user holds
    assert {name: snapshot(images)[name] for name in USER_FILES} == users_before
    written = {n for n in snapshot(images) if n.endswith(SIDECAR_SUFFIXES) and n not in USER_FILES}
    assert len(written) == 27

    out = run(capsys, ["clean-sidecars", "--root", str(root)])
    final = snapshot(images)
    assert {name: final[name] for name in USER_FILES} == users_before
    assert not written & set(final)  # every sidecar cropkit wrote is gone ...
    assert "deleted 27 sidecar files" in out  # ... and nothing else
    assert changed_entries(outside_before, snapshot(outside)) == {}
    for name in USER_FILES:
        assert f"left {images / name}: not written by cropkit" in out


def test_clean_sidecars_on_a_read_only_library_says_it_cannot_delete(tmp_path: Path, capsys):
    root = tmp_path / "project"
    with tmpfs(root / "data" / "training_data", size="8m") as images:
        make_library(images, n=2)
        run(capsys, tiny_args(root, "--sidecars"))
        remount(images, "ro")
        try:
            before = snapshot(images)
            out = run(capsys, ["clean-sidecars", "--root", str(root)])
            assert changed_entries(before, snapshot(images)) == {}
        finally:
            remount(images, "rw")
        assert out.count(": cannot delete it: Read-only file system") == 8
        assert "cannot write" not in out
        assert "deleted 8 sidecar files" in run(capsys, ["clean-sidecars", "--root", str(root)])


def _forge(root: Path, *files: Path) -> None:
    """Lines an attacker appends to the sidecar record: each file's real path, size and SHA-256."""
    import hashlib
    import json

    ledger = root / "data" / "ai_data" / "cache" / "sidecars.jsonl"
    ledger.parent.mkdir(parents=True, exist_ok=True)
    with open(ledger, "a") as f:
        for path in files:
            data = path.read_bytes()
            f.write(json.dumps({"path": str(path.resolve()), "size": len(data),
                                "sha256": hashlib.sha256(data).hexdigest()}) + "\n")


def test_a_forged_record_never_deletes_a_photo_its_companion_or_an_orphan(tmp_path: Path, capsys):
    """Issue 22, finding 3: a record line holding IMG_1.jpg's path, size and hash made clean-sidecars delete the
    photo and its companion. Only <image>.<sidecar suffix> beside its image can be deleted, whatever the record."""
    root = tmp_path / "project"
    images = root / "data" / "training_data"
    photo = save_photo(images / "IMG_1.jpg", 64, 48, seed=1)
    companion = images / "IMG_1.yaml"
    companion.write_text("rating: 5\n")
    orphan = images / "gone.jpg.phash"  # a sidecar's name, but no gone.jpg beside it
    orphan.write_bytes(b"0123456789abcdef\n")
    _forge(root, photo, companion, orphan)
    before = snapshot(images)

    out = run(capsys, ["clean-sidecars", "--root", str(root)])
    assert changed_entries(before, snapshot(images)) == {}
    assert "deleted 0 sidecar files" in out
    assert f"left {photo}: not a sidecar's name" in out and f"left {companion}: not a sidecar's name" in out
    assert f"left {orphan}: its image gone.jpg is not beside it" in out


def test_clean_sidecars_finds_the_root_that_recorded_them_from_any_folder(tmp_path: Path, monkeypatch, capsys):
    """Issue 22, finding 27: run from another folder, clean-sidecars LIBRARY read the record under the current
    folder, deleted nothing and called every sidecar "not written by cropkit"."""
    from cropkit.extract.sidecars import SidecarRegistry, write_sidecar

    root = tmp_path / "project"
    images = root / "data" / "training_data"
    registry = SidecarRegistry(root / "data" / "ai_data")
    photo = save_photo(images / "trip" / "a.jpg", 64, 48, seed=1)
    sidecars = [photo.with_name("a.jpg" + s) for s in SIDECAR_SUFFIXES]
    for suffix in SIDECAR_SUFFIXES:
        assert write_sidecar(photo, suffix, suffix.encode(), registry) == "written"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    out = run(capsys, ["clean-sidecars", "--dry-run", str(images / "trip")])
    assert f"root: {root}" in out and "would delete 4 sidecar files" in out
    assert "not written by cropkit" not in out
    out = run(capsys, ["clean-sidecars", str(images)])
    assert "deleted 4 sidecar files" in out and not any(p.exists() for p in sidecars) and photo.is_file()

    other = tmp_path / "other_library"  # no root here or above records anything: say so, and what to do
    save_photo(other / "b.jpg", 32, 24)
    (other / "b.jpg.phash").write_bytes(b"mine\n")
    out = run(capsys, ["clean-sidecars", str(other)])
    assert (other / "b.jpg.phash").read_bytes() == b"mine\n"
    assert f"records no sidecar under {other}" in out and "pass --root" in out
