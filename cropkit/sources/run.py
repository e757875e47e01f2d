"""``cropkit import``: each source's crops found, then merged into the log (``merge_crops``).

xmp: every image of the library with its sidecars (``IMG_1.jpg.xmp``; ``IMG_1.xmp`` where the image is the picture
it belongs to) and embedded XMP, Lightroom / Camera Raw (``lightroom-xmp``) and darktable (``darktable-xmp``)
crops, one per image by PRECEDENCE. catalog: a Lightroom Classic catalog (``lightroom-catalog``). exports: exported
crops located in their originals (``export``). Each crop's ``origin`` is its source's full path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from xml.etree.ElementTree import Element

from cropkit.decisions import brief
from cropkit.errors import CropkitError
from cropkit.extract.decode import DecodeError, exif_orientation, open_image
from cropkit.extract.prepare import MAX_FILE_BYTES
from cropkit.extract.scan import IMAGE_SUFFIXES, Found, find_images
from cropkit.fileio import open_folder, read_source_bytes
from cropkit.geometry import Box
from cropkit.layout import Layout
from cropkit.sources.catalog import catalog_crop, catalog_rows, top_level
from cropkit.sources.darktable import darktable_crop
from cropkit.sources.exports import MIN_CONFIDENCE, find_export_crops
from cropkit.sources.merge import Imported, ImportSummary, Skip, merge_crops, source_path
from cropkit.sources.xmp import XmpError, adobe_crop, embedded_xmp, parse_xmp, read_sidecar, sidecars_of, upright_crop

LIGHTROOM_XMP, DARKTABLE_XMP, CATALOG, EXPORT = "lightroom-xmp", "darktable-xmp", "lightroom-catalog", "export"
PROBE = "_"  # a name under a folder: Layout.image_name then places the folder itself, links included
PRECEDENCE = ("the image's own sidecar IMG_1.jpg.xmp, then IMG_1.xmp where it belongs to the image, then XMP "
              "embedded in the image; in each, Lightroom's crop before darktable's")


def upright_size(path: Path) -> tuple[int, int, int, bytes]:
    """An image's upright width and height, its EXIF orientation, and its bytes (read once, read-only; over
    extract's MAX_FILE_BYTES refused before reading)."""
    data, _ = read_source_bytes(path, max_bytes=MAX_FILE_BYTES)
    try:
        img = open_image(data)
    except DecodeError as exc:
        raise ValueError(str(exc)) from None
    with img:
        width, height = img.size
        orientation = exif_orientation(img)
    return (height, width, orientation, data) if orientation >= 5 else (width, height, orientation, data)


def folder_names(folder: Path) -> list[str]:
    """The names in ``folder``, listed without touching its access time; none when it cannot be listed."""
    try:
        fd = open_folder(folder)
    except OSError:
        return []
    try:
        with os.scandir(fd) as entries:
            return sorted(e.name for e in entries)
    except OSError:
        return []
    finally:
        os.close(fd)


def _lightroom(root: Element, orientation: int, width: int, height: int) -> tuple[Box, float] | None:
    crop = adobe_crop(root)
    return None if crop is None else upright_crop(crop, orientation, width, height)


def _darktable(root: Element, orientation: int, width: int, height: int) -> tuple[Box, float] | None:
    return darktable_crop(root, width, height)


READERS = ((LIGHTROOM_XMP, _lightroom), (DARKTABLE_XMP, _darktable))


def image_crop(path: Path, names: list[str], noted: set[str]) -> Iterator[tuple[str, Imported | Skip]]:
    """The one XMP crop of the image at ``path`` (its folder lists ``names``), by precedence (PRECEDENCE); every
    other packet that records a crop is reported as overruled. ``noted``: stem sidecars already reported as
    another picture's."""
    try:
        width, height, orientation, data = upright_size(path)
        sidecars, notes = sidecars_of(path, names, IMAGE_SUFFIXES)
        packets = [(source_path(s), read_sidecar(s)) for s in sidecars]
        if (embedded := embedded_xmp(data)) is not None:
            packets.append((source_path(path) + "#xmp", embedded))
    except Exception as exc:  # one unreadable image or sidecar never stops the import
        detail = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
        yield LIGHTROOM_XMP, Skip(source_path(path), "unreadable", detail)
        return
    for note in notes:
        if note not in noted:
            noted.add(note)
            yield LIGHTROOM_XMP, Skip(source_path(path.with_name(note.split(" ", 1)[0])),
                                      "sidecar of another picture, not read", note)
    winner = None
    for origin, packet in packets:
        try:
            root = parse_xmp(packet)
        except XmpError as exc:  # says nothing about the crop: the next packet may
            yield LIGHTROOM_XMP, Skip(origin, "refused XMP" if "refused" in str(exc) else "bad XMP", str(exc))
            continue
        for kind, read in READERS:
            try:
                result = read(root, orientation, width, height)
                if result is None:
                    continue
                found: Imported | Skip = Imported(path, width, height, result[0], origin, result[1])
            except Exception as exc:  # XmpError, or whatever else a hostile packet provokes
                detail = str(exc) if isinstance(exc, XmpError) else f"{type(exc).__name__}: {exc}"
                found = Skip(origin, "unusable crop", detail)
            if winner is None:
                winner = origin
                yield kind, found
            else:
                yield kind, Skip(origin, "overruled by another XMP of the image", f"{winner} decides ({PRECEDENCE})")


def xmp_crops(layout: Layout) -> Iterator[tuple[str, Imported | Skip]]:
    """(kind, crop or skip) for every image of the library: at most one crop each (``image_crop``)."""
    folder, names, noted = None, [], set()
    for found in find_images(layout.images, prune=layout.ai_data):
        if not isinstance(found, Found):
            continue
        if found.path.parent != folder:
            folder, names, noted = found.path.parent, folder_names(found.path.parent), set()
        yield from image_crop(found.path, names, noted)


def catalog_crops(catalog: Path, layout: Layout,
                  path_map: tuple[str, str] | None = None) -> Iterator[tuple[str, Imported | Skip]]:
    """Every cropped image of a Lightroom Classic catalog that lies in the library (``path_map`` (old, new)
    rewrites the start of the catalog's paths, for a library that moved)."""
    for item in _catalog_items(catalog, layout, path_map):
        yield CATALOG, item


def _catalog_items(catalog: Path, layout: Layout, path_map: tuple[str, str] | None) -> Iterator[Imported | Skip]:
    where = source_path(catalog)
    for image_id, recorded, text in catalog_rows(catalog):
        origin = f"{where}#{image_id}"
        try:
            crop = catalog_crop(top_level(text))
        except XmpError as exc:
            yield Skip(origin, "unusable crop", str(exc))
            continue
        if crop is None:
            continue
        path = Path(path_map[1] + recorded[len(path_map[0]):]) if path_map and recorded.startswith(path_map[0]) \
            else Path(recorded)
        if layout.image_name(path) is None:
            yield Skip(origin, "outside the library", recorded)
            continue
        try:
            width, height, orientation, _ = upright_size(path)
            box, angle = upright_crop(crop, orientation, width, height)
        except XmpError as exc:
            yield Skip(origin, "unusable crop", str(exc))
            continue
        except Exception as exc:
            yield Skip(origin, "unreadable image", f"{recorded}: {type(exc).__name__}: {exc}")
            continue
        yield Imported(path, width, height, box, origin, angle)


def run_import(kind: str, layout: Layout, sources: list[Path] | None = None, dry_run: bool = False,
               path_map: tuple[str, str] | None = None, min_confidence: float = MIN_CONFIDENCE) -> list[ImportSummary]:
    """Import one kind of source into ``layout``'s log; a summary per kind of crop (xmp: Lightroom's, then
    darktable's)."""
    layout.require_images()
    if not (isinstance(min_confidence, (int, float)) and 0.0 <= min_confidence <= 1.0):  # nan fails both
        raise CropkitError(f"--min-confidence {brief(min_confidence)}: give a match score from 0 to 1")
    sources = [Path(os.path.abspath(p)) for p in sources or []]
    if kind == "xmp":
        return merge_crops(layout, (LIGHTROOM_XMP, DARKTABLE_XMP), xmp_crops(layout), dry_run, per_image=True)
    if kind == "catalog":
        return merge_crops(layout, (CATALOG,), catalog_crops(sources[0], layout, path_map), dry_run)
    if kind == "exports":
        originals, exports = sources
        check_export_folders(layout, originals, exports)
        found = find_export_crops(originals, exports, lambda p: layout.image_name(p) is not None, layout.ai_data)
        return merge_crops(layout, (EXPORT,), ((EXPORT, item) for item in found), dry_run, min_confidence)
    raise ValueError(f"import kind {kind!r}: choose xmp, catalog or exports")


def check_export_folders(layout: Layout, originals: Path, exports: Path) -> None:
    """ORIGINALS lies in the library; EXPORTS neither is, holds nor lies in any folder of it (links followed):
    else every original would be taken for an export of itself."""
    for name, folder in (("ORIGINALS", originals), ("EXPORTS", exports)):
        if not folder.is_dir():
            raise CropkitError(f"import exports: {name} {folder} is not a folder")
    if layout.image_name(originals / PROBE) is None:
        raise CropkitError(f"import exports: ORIGINALS {originals} is outside the library {layout.images}; "
                           "the log names images relative to it (use --images to point at the library)")
    real, library = exports.resolve(), layout.images.resolve()
    if real == library or library in real.parents or real in library.parents or \
            layout.image_name(exports / PROBE) is not None:
        raise CropkitError(f"import exports: EXPORTS {exports} overlaps the library {layout.images} (it is, holds "
                           "or lies in a folder of it), so the originals would be taken for exports of themselves; "
                           "keep the exported pictures in a folder outside the library")
