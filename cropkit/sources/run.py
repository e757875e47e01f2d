"""``cropkit import``: each source's crops found, then merged into the log (``merge_crops``).

xmp: every image of the library with its sidecars (``IMG_1.xmp``, ``IMG_1.jpg.xmp``) and embedded XMP, Lightroom /
Camera Raw (``lightroom-xmp``) and darktable (``darktable-xmp``) crops. catalog: a Lightroom Classic catalog
(``lightroom-catalog``). exports: exported crops located in their originals (``export``).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from cropkit.errors import CropkitError
from cropkit.extract.decode import exif_orientation
from cropkit.extract.scan import Found, find_images
from cropkit.fileio import read_source_bytes
from cropkit.layout import Layout
from cropkit.sources.catalog import catalog_crop, catalog_rows, top_level
from cropkit.sources.darktable import darktable_crop
from cropkit.sources.exports import MIN_CONFIDENCE, find_export_crops
from cropkit.sources.merge import Imported, ImportSummary, Skip, inside, merge_crops
from cropkit.sources.xmp import XmpError, adobe_crop, embedded_xmp, parse_xmp, read_sidecar, sidecars_of, upright_crop

LIGHTROOM_XMP, DARKTABLE_XMP, CATALOG, EXPORT = "lightroom-xmp", "darktable-xmp", "lightroom-catalog", "export"


def upright_size(path: Path) -> tuple[int, int, int, bytes]:
    """An image's upright width and height, its EXIF orientation, and its bytes (read once, read-only)."""
    data, _ = read_source_bytes(path)
    try:
        img = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError):
        raise ValueError("not a readable image (unknown or corrupt format)") from None
    with img:
        width, height = img.size
        orientation = exif_orientation(img)
    return (height, width, orientation, data) if orientation >= 5 else (width, height, orientation, data)


def _packets(image: Path, data: bytes) -> Iterator[tuple[str, bytes]]:
    """(origin, packet) for the image's sidecars, then its embedded XMP."""
    for sidecar in sidecars_of(image):
        yield sidecar.name, read_sidecar(sidecar)
    embedded = embedded_xmp(data)
    if embedded is not None:
        yield f"{image.name}#xmp", embedded


def xmp_crops(images: Path, prune: Path | None = None) -> Iterator[tuple[str, Imported | Skip]]:
    """(source, crop or skip) for every XMP packet of every image below ``images``."""
    for found in find_images(images, prune=prune):
        if not isinstance(found, Found):
            continue
        try:
            width, height, orientation, data = upright_size(found.path)
            packets = list(_packets(found.path, data))
        except Exception as exc:  # one unreadable image or sidecar never stops the import
            detail = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
            yield LIGHTROOM_XMP, Skip(found.path.name, "unreadable", detail)
            continue
        for origin, packet in packets:
            try:
                root = parse_xmp(packet)
            except XmpError as exc:
                yield LIGHTROOM_XMP, Skip(origin, "refused XMP" if "refused" in str(exc) else "bad XMP", str(exc))
                continue
            try:
                crop = adobe_crop(root)
                if crop is not None:
                    box, angle = upright_crop(crop, orientation, width, height)
                    yield LIGHTROOM_XMP, Imported(found.path, width, height, box, origin, angle)
            except XmpError as exc:
                yield LIGHTROOM_XMP, Skip(origin, "unusable crop", str(exc))
            try:
                result = darktable_crop(root, width, height)
                if result is not None:
                    yield DARKTABLE_XMP, Imported(found.path, width, height, result[0], origin, result[1])
            except XmpError as exc:
                yield DARKTABLE_XMP, Skip(origin, "unusable crop", str(exc))


def catalog_crops(catalog: Path, images: Path, path_map: tuple[str, str] | None = None) -> Iterator[Imported | Skip]:
    """Every cropped image of a Lightroom Classic catalog that lies in the library (``path_map`` (old, new)
    rewrites the start of the catalog's paths, for a library that moved)."""
    for image_id, recorded, text in catalog_rows(catalog):
        origin = f"{catalog.name}#{image_id}"
        try:
            crop = catalog_crop(top_level(text))
        except XmpError as exc:
            yield Skip(origin, "unusable crop", str(exc))
            continue
        if crop is None:
            continue
        path = Path(path_map[1] + recorded[len(path_map[0]):]) if path_map and recorded.startswith(path_map[0]) \
            else Path(recorded)
        if not inside(path, images):
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
    """Import one kind of source into ``layout``'s log; a summary per source name."""
    layout.require_images()
    sources = sources or []
    if kind == "xmp":
        found: dict[str, list] = {LIGHTROOM_XMP: [], DARKTABLE_XMP: []}
        for source, item in xmp_crops(layout.images, prune=layout.ai_data):
            found[source].append(item)
        return [merge_crops(layout, name, items, dry_run) for name, items in found.items()]
    if kind == "catalog":
        return [merge_crops(layout, CATALOG, catalog_crops(sources[0], layout.images, path_map), dry_run)]
    if kind == "exports":
        originals, exports = sources
        for name, folder in (("ORIGINALS", originals), ("EXPORTS", exports)):
            if not folder.is_dir():
                raise CropkitError(f"import exports: {name} {folder} is not a folder")
        if not inside(originals, layout.images):
            raise CropkitError(f"import exports: ORIGINALS {originals} is outside the library {layout.images}; "
                               "the log names images relative to it (use --images to point at the library)")
        return [merge_crops(layout, EXPORT, find_export_crops(originals, exports), dry_run, min_confidence)]
    raise ValueError(f"import kind {kind!r}: choose xmp, catalog or exports")
