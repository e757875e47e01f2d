"""Issue 22, one naming function: a photo in a folder linked into the library (extract follows such links) is named
by every writer of decisions exactly as the scan names it (extract's cache), whichever way a source reached it;
every reader takes every line, a rerun of each import appends nothing, and no source file changes.

Every writer is run, and what each logged is compared at the end, so a failure lists every name that differs.
Only helpers that predate the issue are imported, so the file also runs (and fails) on the code before it.
With a second link to the same folder the scan walks it once, through the first link it meets (``a/trip``, in
depth-first order); a source that reaches the photo through the other link, or by its real path, names it so too."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image

from cropkit.cli import main
from cropkit.decisions import TRAINING_LOG, read_crops, read_suggestions
from cropkit.layout import Layout
from cropkit.review.queue import pending_images
from cropkit.review.start import open_reviewer
from tests.conftest import TINY, tiny_args
from tests.libgen import changed_entries, photo_like, save_photo, snapshot
from tests.review.conftest import key
from tests.sources.conftest import lightroom_xmp
from tests.sources.test_import import _catalog, _settings

SIZE = (480, 360)
EXPORTED = (60, 40, 420, 300)  # the exported crop, in the original's pixels


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def _linked_library(tmp_path: Path, outside: bool, second_link: bool) -> dict[str, Path]:
    """A root whose library holds an ordinary photo and the folder link ``trip -> <tmp>/elsewhere/trip`` with
    ``linked.jpg`` and its Lightroom sidecar (and with ``second_link`` ``a/trip`` to the same folder); an exported
    crop of it outside the library; and a Lightroom catalog that records its folder both ways Lightroom may have
    been shown it: through the library's ``trip`` link, and by its real path."""
    root = tmp_path / "root"
    library = tmp_path / "library" if outside else root / "data/training_data"
    elsewhere = tmp_path / "elsewhere/trip"
    save_photo(library / "home/own.jpg", *SIZE, seed=1, quality=92)
    photo = save_photo(elsewhere / "linked.jpg", *SIZE, seed=7, quality=95)
    (elsewhere / "linked.xmp").write_bytes(lightroom_xmp(0.1, 0.15, 0.8, 0.9, 0.0, 1))
    (library / "trip").symlink_to(elsewhere, target_is_directory=True)
    if second_link:
        (library / "a").mkdir()
        (library / "a/trip").symlink_to(elsewhere, target_is_directory=True)
    exports = tmp_path / "exports"
    exports.mkdir()
    crop = photo_like(*SIZE, seed=7).crop(EXPORTED)
    crop.resize((round(crop.width * 0.7), round(crop.height * 0.7)), Image.Resampling.LANCZOS) \
        .save(exports / "linked-Edit.jpg", "JPEG", quality=90)
    catalog = tmp_path / "lightroom/Lightroom Catalog.lrcat"
    catalog.parent.mkdir()
    _catalog(catalog, [(10, f"{library}/trip/", "linked.jpg", _settings(0.1, 0.1, 0.7, 0.8, 0)),
                       (11, f"{elsewhere}/", "linked.jpg", _settings(0.2, 0.2, 0.9, 0.9, 0))])
    return {"root": root, "library": library, "elsewhere": elsewhere, "photo": photo, "exports": exports,
            "catalog": catalog}


@pytest.mark.parametrize("outside, second_link", [
    (False, False), (True, False), (False, True)],
    ids=["library inside the root", "library outside the root", "a second link to the folder"])
def test_the_scan_the_reviewer_and_every_importer_name_a_linked_photo_identically(tmp_path, outside, second_link):
    where = _linked_library(tmp_path, outside, second_link)
    root, library, elsewhere = where["root"], where["library"], where["elsewhere"]
    layout = Layout.from_args(root, library)
    name = ("" if outside else "data/training_data/") + ("a/" if second_link else "") + "trip/linked.jpg"
    watched = {key_: where[key_] for key_ in ("library", "elsewhere", "exports")} | {"catalog": where["catalog"].parent}
    before = {k: snapshot(folder) for k, folder in watched.items()}
    paths = ["--root", str(root), "--images", str(library)]
    log = layout.logs / TRAINING_LOG
    named: dict[str, list[str]] = {}  # writer -> the names it logged for the linked photo
    codes: dict[str, int] = {}

    # the scan: extract's cache of processed files
    codes["extract"] = main(tiny_args(root, "--images", str(library)))
    cached = [e["path"] for e in _lines(layout.processed_files)]
    named["extract"] = [n for n in cached if n.endswith("linked.jpg")]

    # the reviewer, with no proposer yet (the starting suggester): the linked photo accepted as suggested
    rv = open_reviewer(root, images=library, arch=TINY, weights="none")
    try:
        s = rv.session
        while not s.done and s.queue[s.index].name != "linked.jpg":
            key(rv, "s")
        assert not s.done, "the reviewer never queued the linked photo"
        key(rv, "Enter")
    finally:
        rv.close()
    named["reviewer"] = [ln["image"] for ln in _lines(layout.logs / "suggestions.jsonl")]

    # each importer, then its reruns: ORIGINALS and the catalog's folder given every way that reaches the photo
    imports = {
        "import xmp": [["import", "xmp", *paths]],
        "import exports": [["import", "exports", str(originals), str(where["exports"]), *paths]
                           for originals in (library, library / "trip", elsewhere)],
        "import catalog": [["import", "catalog", str(where["catalog"]), *paths]] * 2,
    }
    appended_by_rerun: dict[str, int] = {}
    for writer, runs in imports.items():
        start = len(_lines(log))
        codes[writer] = main(runs[0])
        logged = _lines(log)
        named[writer] = [ln["image"] for ln in logged[start:]]
        for again in runs[1:] or runs:
            codes[f"{writer} (rerun)"] = main(again)
        appended_by_rerun[writer] = len(_lines(log)) - len(logged)

    assert named == {"extract": [name], "reviewer": [name], "import xmp": [name], "import exports": [name],
                     "import catalog": [name, name]}, "a writer named the linked photo otherwise than the scan"
    assert set(codes.values()) == {0}, codes
    assert appended_by_rerun == dict.fromkeys(imports, 0), "a rerun appended lines again"

    # every reader takes every line, and the name leads back to the photo
    crops, bad_crops = read_crops(layout.logs)
    suggestions, bad_suggestions = read_suggestions(layout.logs)
    assert bad_crops == [] and bad_suggestions == []
    assert len(crops) == len(_lines(log)) == 4 and len(suggestions) == 1
    assert {c.image for c in crops} | {d.image for d in suggestions} == {name}
    assert {c.source for c in crops} == {"lightroom-xmp", "export", "lightroom-catalog"}
    assert os.path.samefile(layout.image_path(name), where["photo"])
    assert "linked.jpg" not in [p.name for p in pending_images(layout)]  # decided: no longer pending

    assert {k: changed_entries(before[k], snapshot(folder)) for k, folder in watched.items()} == \
        dict.fromkeys(watched, {}), "a source file changed"
