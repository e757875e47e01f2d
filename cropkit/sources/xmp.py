"""XMP, read safely: sidecars (``IMG_1.xmp`` as Lightroom and Camera Raw name them, ``IMG_1.jpg.xmp`` as
darktable does) and packets embedded in JPEG and TIFF files; and the Lightroom / Camera Raw crop in it.

Parsing goes through defusedxml with DTDs, entities and external references forbidden: a billion-laughs packet
is refused, never expanded.

The ``crs:`` crop (namespace http://ns.adobe.com/camera-raw-settings/1.0/): ``CropLeft/Top`` and
``CropRight/Bottom`` are the top-left and bottom-right corners of the crop rectangle as fractions of the image as
stored (before its EXIF orientation), the rectangle turned ``CropAngle`` degrees clockwise as seen (y down) about
its centre. That reading comes from darktable's Lightroom importer (src/develop/lightroom.c) and lr2rt, checked
against a published numeric example; Adobe's namespace page lists the tags without their geometry.
"""

from __future__ import annotations

import math
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from xml.etree.ElementTree import Element

import numpy as np
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from cropkit.decisions import MAX_ANGLE, brief
from cropkit.extract.decode import DecodeError, open_image
from cropkit.fileio import read_source_bytes
from cropkit.geometry import Box, clamp_box, fit_inside_turned, turn_points

CRS = "http://ns.adobe.com/camera-raw-settings/1.0/"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
XMP_APP1 = b"http://ns.adobe.com/xap/1.0/\x00"
TIFF_XMP_TAG = 700
MAX_XMP_BYTES = 8 * 1024 * 1024
MIRRORED = (2, 4, 5, 7)  # EXIF orientations that mirror the stored image


class XmpError(ValueError):
    """An XMP packet that cannot be used (hostile, malformed, or with unusable crop values)."""


def parse_xmp(data: bytes) -> Element:
    """The XMP document's root; DTDs, entities and external references are refused."""
    start = data.find(b"<x:xmpmeta")
    if start < 0:
        start = data.find(b"<rdf:RDF")
    if start < 0:
        raise XmpError("no XMP packet (no x:xmpmeta or rdf:RDF element)")
    head = data[:start]
    if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
        raise XmpError("refused: the XMP declares a DTD or entities (as a billion-laughs attack does)")
    end = data.rfind(b"<?xpacket end")
    body = data[start:end] if end > start else data[start:]
    try:
        return fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise XmpError(f"refused: {type(exc).__name__} ({exc})") from None
    except Exception as exc:  # ParseError and the expat errors of a malformed document
        raise XmpError(f"not well-formed XML: {exc}") from None


def read_sidecar(path: Path) -> bytes:
    data, _ = read_source_bytes(path, max_bytes=MAX_XMP_BYTES)
    return data


def embedded_xmp(data: bytes) -> bytes | None:
    """The XMP packet inside a JPEG (its APP1 segment) or TIFF (tag 700), without decoding pixels; None if none."""
    try:
        img = open_image(data)
    except DecodeError:  # not an image Pillow reads: no embedded packet to offer
        return None
    if img.format in ("JPEG", "MPO"):
        for marker, payload in getattr(img, "applist", []):
            if marker == "APP1" and payload.startswith(XMP_APP1):
                return payload[len(XMP_APP1):]
    elif img.format == "TIFF":
        packet = img.tag_v2.get(TIFF_XMP_TAG)
        if isinstance(packet, (bytes, str)):
            return packet.encode() if isinstance(packet, str) else packet
    return None


RAW_SUFFIXES = frozenset({".3fr", ".arw", ".cr2", ".cr3", ".crw", ".dcr", ".dng", ".erf", ".iiq", ".kdc", ".mef",
                          ".mos", ".mrw", ".nef", ".nrw", ".orf", ".pef", ".raf", ".raw", ".rw2", ".rwl", ".sr2",
                          ".srf", ".srw", ".x3f"})


def stem_owner(stem: str, names: list[str], pictures: frozenset[str]) -> str | None:
    """The picture that Lightroom's ``<stem>.xmp`` belongs to, among the folder's ``names``: the raw with that
    stem (Lightroom and Camera Raw write such sidecars for raws), else the only picture with that stem; None when
    several non-raw pictures share it (the sidecar cannot say which)."""
    same = [n for n in names if os.path.splitext(n)[0] == stem and os.path.splitext(n)[1].lower() != ".xmp"]
    raws = [n for n in same if os.path.splitext(n)[1].lower() in RAW_SUFFIXES]
    if raws:
        return raws[0] if len(raws) == 1 else None
    shown = [n for n in same if os.path.splitext(n)[1].lower() in pictures]
    return shown[0] if len(shown) == 1 else None


def sidecars_of(image: Path, names: list[str], pictures: frozenset[str]) -> tuple[list[Path], list[str]]:
    """The XMP sidecars of ``image`` (its folder lists ``names``), each file once (a name in two letter cases on
    a case-insensitive disk, or a hard link, is one file): darktable's ``IMG_1.jpg.xmp`` first, then Lightroom's
    ``IMG_1.xmp`` where ``image`` is the picture it belongs to (``stem_owner``). Also a note for each stem sidecar
    that belongs to another picture."""
    listed = set(names)
    own = [n for n in (image.name + ".xmp", image.name + ".XMP") if n in listed]
    stem = [n for n in (image.stem + ".xmp", image.stem + ".XMP") if n in listed]
    owner = stem_owner(image.stem, names, pictures) if stem else None
    notes = [] if owner == image.name or not stem else \
        [f"{stem[0]} belongs to {owner}, not {image.name}" if owner else
         f"{stem[0]} is shared by several pictures named {image.stem}.*: it cannot say which one it crops"]
    found, seen = [], set()
    for name in own + (stem if owner == image.name else []):
        try:
            st = (image.parent / name).stat()
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            found.append(image.parent / name)
    return found, notes


def values(root: Element, namespace: str) -> dict[str, str]:
    """Every ``namespace`` property on the document's rdf:Description elements, in attribute form (Lightroom 6 and
    earlier) or element form (later ones); names without their prefix."""
    out: dict[str, str] = {}
    prefix = "{" + namespace + "}"
    for desc in root.iter(f"{{{RDF}}}Description"):
        for key, value in desc.attrib.items():
            if key.startswith(prefix):
                out[key[len(prefix):]] = value
        for child in desc:
            if child.tag.startswith(prefix) and len(child) == 0 and child.text is not None:
                out[child.tag[len(prefix):]] = child.text.strip()
    return out


FRACTION_SLACK = 0.01  # edges this far outside 0..1 are rounding, not a crop outside the frame


def check_fraction(name: str, value: float) -> float:
    """``value`` when it is a finite fraction of the image (within FRACTION_SLACK); else XmpError."""
    if not (math.isfinite(value) and -FRACTION_SLACK <= value <= 1 + FRACTION_SLACK):
        raise XmpError(f"{name} {brief(value)} is not a fraction of the image")
    return value


def check_angle(name: str, value: float) -> float:
    """``value`` when it is a finite straightening angle within +-MAX_ANGLE degrees; else XmpError."""
    if not (math.isfinite(value) and abs(value) <= MAX_ANGLE):
        raise XmpError(f"{name} {brief(value)} is not an angle within +-{MAX_ANGLE:g} degrees")
    return value


@dataclass(frozen=True)
class AdobeCrop:
    """Lightroom's crop as recorded: corner fractions of the stored image and the angle in degrees; validated on
    construction (XmpError), whichever reader (XMP, catalog) made it."""

    left: float
    top: float
    right: float
    bottom: float
    angle: float = 0.0

    def __post_init__(self) -> None:
        check_angle("CropAngle", self.angle)
        for name in ("left", "top", "right", "bottom"):
            check_fraction(f"Crop{name.title()}", getattr(self, name))


def adobe_crop(root: Element) -> AdobeCrop | None:
    """The crop the document records (None when it has none: no ``HasCrop``, or ``HasCrop`` false)."""
    crs = values(root, CRS)
    if crs.get("HasCrop", "").strip().lower() != "true":
        return None
    numbers = []
    for name in ("CropLeft", "CropTop", "CropRight", "CropBottom", "CropAngle"):
        text = crs.get(name, "0" if name == "CropAngle" else None)
        try:
            numbers.append(float(text) if text is not None and len(text) <= 64 else math.nan)
        except ValueError:
            numbers.append(math.nan)
        if not math.isfinite(numbers[-1]):
            raise XmpError(f"crs:{name} is {brief(text)}, not a number")
    try:
        return AdobeCrop(*numbers)
    except XmpError as exc:
        raise XmpError(f"crs:{exc}") from None


def orient_point(x: float, y: float, orientation: int, width: float, height: float) -> tuple[float, float]:
    """Where point (x, y) of a stored ``width`` x ``height`` image lands once EXIF ``orientation`` is applied
    (as Pillow's exif_transpose turns the pixels)."""
    return {1: (x, y), 2: (width - x, y), 3: (width - x, height - y), 4: (x, height - y), 5: (y, x),
            6: (height - y, x), 7: (height - y, width - x), 8: (y, width - x)}[orientation]


def upright_crop(crop: AdobeCrop, orientation: int, width: int, height: int) -> tuple[Box, float]:
    """The crop as cropkit records it on the upright ``width`` x ``height`` image: a box on the image turned by
    the returned angle (degrees clockwise). The recorded rectangle is turned ``crop.angle`` clockwise on the
    stored image; mirrored orientations turn it the other way on the upright one."""
    stored_w, stored_h = (height, width) if orientation >= 5 else (width, height)
    tl = np.array([crop.left * stored_w, crop.top * stored_h])
    br = np.array([crop.right * stored_w, crop.bottom * stored_h])
    a = math.radians(crop.angle)
    dx, dy = br - tl
    w = math.cos(a) * dx + math.sin(a) * dy  # the rectangle's own sides: the diagonal turned back by the angle
    h = -math.sin(a) * dx + math.cos(a) * dy
    if w <= 0 or h <= 0:
        raise XmpError(f"crop corners ({crop.left}, {crop.top}) and ({crop.right}, {crop.bottom}) at "
                       f"{crop.angle} degrees make no rectangle")
    cx, cy = orient_point(*(tl + br) / 2, orientation, stored_w, stored_h)
    if orientation >= 5:
        w, h = h, w
    turned = -crop.angle * (-1 if orientation in MIRRORED else 1)  # turn the image so the crop stands upright
    (px, py), = turn_points(np.array([[cx, cy]]), turned, width, height)
    box = (px - w / 2, py - h / 2, px + w / 2, py + h / 2)
    if turned:
        return fit_inside_turned(box, turned, width, height), turned
    return clamp_box(box, width, height), 0.0
