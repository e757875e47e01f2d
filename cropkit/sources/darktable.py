"""darktable's crop from its XMP sidecar: the ``crop`` module (versions 1-2) or the older ``clipping`` module
(version 5, "crop and rotate"), as the history up to ``history_end`` leaves them.

From darktable's source (src/iop/crop.c, src/iop/clipping.c, src/common/exif.cc, src/develop/develop.c):
``darktable:params`` is the module's C struct in lowercase hex, or ``gz`` + two digits + base64 of zlib data;
little-endian. ``crop``: ``float cx, cy, cw, ch; int ratio_n, ratio_d[, aligned]`` with cw and ch the right and
bottom edges, fractions of the upright image (darktable runs crop after ``flip``). ``clipping`` v5: ``float angle,
cx, cy, cw, ch, k_h, k_v, kxa..kyd; int k_type, k_sym, k_apply, crop_auto, ratio_n, ratio_d``: the image turned
``angle`` degrees clockwise about its centre, the edges fractions of the turned image's bounding box.
Only the last history item per module below ``history_end`` counts, and ``enabled="0"`` turns the module off.
A crop after a module that moves pixels (lens correction, perspective, liquify) has no exact box on the original:
it is skipped with that reason.
"""

from __future__ import annotations

import base64
import binascii
import math
import struct
import zlib
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from cropkit.decisions import brief
from cropkit.geometry import Box, clamp_box, fit_inside_turned
from cropkit.sources.xmp import RDF, XmpError, check_angle, check_fraction

DT = "http://darktable.sf.net/"
MOVES_PIXELS = ("lens", "ashift", "liquify", "rotatepixels", "scalepixels", "enlargecanvas")
MAX_PARAMS_BYTES = 1 << 20


@dataclass(frozen=True)
class HistoryItem:
    num: int
    operation: str
    enabled: bool
    modversion: int
    params: str
    multi_priority: int


def decode_params(text: str) -> bytes:
    """A history item's parameters: lowercase hex, or ``gzNN`` + base64 of zlib data."""
    try:
        if text.startswith("gz"):
            out = zlib.decompressobj().decompress(base64.b64decode(text[4:], validate=True), MAX_PARAMS_BYTES)
            return out
        return binascii.unhexlify(text)
    except (ValueError, binascii.Error, zlib.error) as exc:
        raise XmpError(f"darktable params {brief(text)}: {exc}") from None


def whole(text: str | None, what: str, default: int = 0) -> int:
    """A whole number written in an attribute: ``"3"``, or ``"3.0"`` as some writers put it; XmpError otherwise
    (``"abc"``, ``"1.5"``, ``"inf"``, a thousand digits)."""
    if text is None:
        return default
    try:
        value = float(text) if len(text) <= 32 else math.nan
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value == int(value) and abs(value) < 1 << 31):
        raise XmpError(f"darktable:{what} {brief(text)} is not a whole number")
    return int(value)


def history(root: Element) -> list[HistoryItem]:
    """The history items the sidecar applies (those numbered below ``history_end``), in order."""
    key = "{" + DT + "}"
    end = None
    for desc in root.iter(f"{{{RDF}}}Description"):
        if key + "history_end" in desc.attrib:
            end = whole(desc.attrib[key + "history_end"], "history_end")
    items = []
    for seq in root.iter(key + "history"):
        for i, li in enumerate(seq.iter(f"{{{RDF}}}li")):
            a = li.attrib
            if key + "operation" not in a:
                continue
            items.append(HistoryItem(whole(a.get(key + "num"), "num", i), a[key + "operation"],
                                     a.get(key + "enabled", "1") == "1", whole(a.get(key + "modversion"), "modversion"),
                                     a.get(key + "params", ""), whole(a.get(key + "multi_priority"), "multi_priority")))
    items.sort(key=lambda h: h.num)
    return [h for h in items if end is None or h.num < end]


def in_effect(items: list[HistoryItem]) -> dict[tuple[str, int], HistoryItem]:
    """The last item of each module instance: what the image looks like."""
    return {(h.operation, h.multi_priority): h for h in items}


def darktable_crop(root: Element, width: int, height: int) -> tuple[Box, float] | None:
    """The crop darktable applies to the upright ``width`` x ``height`` image: a box on the image turned by the
    angle (degrees clockwise); None when no crop is in effect. XmpError says why an effective crop cannot be
    used."""
    effective = {k: h for k, h in in_effect(history(root)).items() if h.enabled}
    crops = [h for (op, _), h in effective.items() if op in ("crop", "clipping")]
    if not crops:
        return None
    moved = sorted({op for op, _ in effective} & set(MOVES_PIXELS))
    if moved:
        raise XmpError(f"the crop follows {', '.join(moved)}, which moves pixels: no exact box on the original")
    if len(crops) > 1:
        raise XmpError("more than one crop module in effect (crop and clipping, or several instances)")
    item = crops[0]
    data = decode_params(item.params)
    if item.operation == "crop":
        if len(data) not in (24, 28):
            raise XmpError(f"crop params of {len(data)} bytes (versions 1 and 2 have 24 and 28)")
        cx, cy, cw, ch = struct.unpack_from("<4f", data)
        return _box(cx, cy, cw, ch, width, height), 0.0
    if len(data) != 84:
        raise XmpError(f"clipping params of {len(data)} bytes, not version 5's 84 (open it in darktable once)")
    angle, cx, cy, cw, ch = struct.unpack_from("<5f", data)
    k_type, _k_sym, k_apply, crop_auto = struct.unpack_from("<4i", data, 60)
    if cw < 0 or ch < 0:
        raise XmpError("the clipping module mirrors the image")
    if k_type != 0 and k_apply:
        raise XmpError("the clipping module corrects keystone: no exact box on the original")
    check_angle("clipping angle", angle)
    cx, cy, cw, ch = (check_fraction(f"clipping {n}", v) for n, v in zip(("cx", "cy", "cw", "ch"), (cx, cy, cw, ch)))
    if angle and crop_auto and not k_apply:
        raise XmpError("clipping with an automatic crop of a turned image (darktable's old mode)")
    t = math.radians(angle)
    bound_w = width * abs(math.cos(t)) + height * abs(math.sin(t))
    bound_h = width * abs(math.sin(t)) + height * abs(math.cos(t))
    dx, dy = (bound_w - width) / 2, (bound_h - height) / 2
    box = (cx * bound_w - dx, cy * bound_h - dy, cw * bound_w - dx, ch * bound_h - dy)
    if not (box[0] < box[2] and box[1] < box[3]):
        raise XmpError(f"clipping edges {cx, cy, cw, ch} make no rectangle")
    if angle:
        return fit_inside_turned(box, angle, width, height), float(angle)
    return clamp_box(box, width, height), 0.0


def _box(cx: float, cy: float, cw: float, ch: float, width: int, height: int) -> Box:
    cx, cy, cw, ch = (check_fraction(f"crop {n}", v) for n, v in zip(("cx", "cy", "cw", "ch"), (cx, cy, cw, ch)))
    if not (cx < cw and cy < ch):
        raise XmpError(f"crop edges {cx, cy, cw, ch} make no rectangle")
    return clamp_box((cx * width, cy * height, cw * width, ch * height), width, height)
