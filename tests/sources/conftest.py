"""Sources in the real formats, generated: photos stored with every EXIF orientation whose crop corners are marked
by coloured dots in the stored pixels, so the expected box comes from the decoded pixels, not from cropkit's own
geometry; Lightroom XMP (attribute and element form, sidecar and embedded), darktable XMP, a catalog."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from cropkit.extract.decode import decode_oriented_rgb
from cropkit.geometry import Box, turn_points
from cropkit.sources.xmp import XMP_APP1

MARKERS = ((255, 0, 0), (0, 200, 0), (0, 0, 255), (255, 0, 255))  # the crop's corners, in order TL TR BR BL
STORED = (400, 300)


def lightroom_corners(centre: tuple[float, float], size: tuple[float, float], angle: float) -> np.ndarray:
    """The crop rectangle's corners (TL, TR, BR, BL) in stored pixels, turned ``angle`` degrees (crs:CropAngle)
    clockwise as seen about its centre, as Lightroom records them (darktable's importer, the published example)."""
    a = math.radians(angle)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    w, h = size
    return np.array(centre) + np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]]) @ rot.T


def marked_photo(corners: np.ndarray, size: tuple[int, int] = STORED) -> Image.Image:
    """A plain grey picture with one coloured dot on each crop corner."""
    img = Image.new("RGB", size, (128, 128, 128))
    draw = ImageDraw.Draw(img)
    for (x, y), colour in zip(corners, MARKERS):
        draw.ellipse((x - 5, y - 5, x + 5, y + 5), fill=colour)
    return img


def save_oriented(img: Image.Image, path: Path, orientation: int, xmp: bytes | None = None) -> None:
    """Save the stored pixels as a JPEG tagged with ``orientation`` (and an XMP packet in APP1 if given)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    img.save(path, "JPEG", quality=95, exif=exif.tobytes())
    if xmp is not None:
        data = path.read_bytes()
        segment = XMP_APP1 + xmp
        path.write_bytes(data[:2] + b"\xff\xe1" + (len(segment) + 2).to_bytes(2, "big") + segment + data[2:])


def marker_points(path: Path) -> np.ndarray:
    """The dots' centres in the upright picture as cropkit decodes it (TL TR BR BL of the stored crop)."""
    img, _ = decode_oriented_rgb(path.read_bytes(), 10_000)
    a = np.asarray(img, dtype=np.int32)
    points = []
    for colour in MARKERS:
        mask = (np.abs(a - np.array(colour)).sum(axis=2)) < 120
        ys, xs = np.nonzero(mask)
        assert len(xs) > 10, f"marker {colour} not found"
        points.append((xs.mean() + 0.5, ys.mean() + 0.5))
    return np.array(points)


def expected_box(path: Path, angle: float) -> tuple[Box, float]:
    """The box the markers make once the upright picture is turned by ``angle``, and how far (pixels) the
    turned markers are from that box's corners: 0 when ``angle`` stands the crop upright."""
    img = Image.open(path)
    from cropkit.extract.decode import exif_orientation

    w, h = img.size if exif_orientation(img) < 5 else img.size[::-1]
    turned = turn_points(marker_points(path), angle, w, h)
    x0, y0 = turned.min(axis=0)
    x1, y1 = turned.max(axis=0)
    corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    off = max(min(np.hypot(*(p - c)) for c in corners) for p in turned)
    return (float(x0), float(y0), float(x1), float(y1)), float(off)


def lightroom_xmp(left: float, top: float, right: float, bottom: float, angle: float, orientation: int,
                  elements: bool = False) -> bytes:
    """A Lightroom / Camera Raw XMP packet with a crop: attribute form (Lightroom 6 and earlier) or element form."""
    values = {"CropLeft": left, "CropTop": top, "CropRight": right, "CropBottom": bottom, "CropAngle": angle}
    if elements:
        body = "".join(f"<crs:{k}>{v:.6f}</crs:{k}>" for k, v in values.items())
        desc = (f'<rdf:Description rdf:about="" tiff:Orientation="{orientation}">{body}'
                "<crs:HasCrop>True</crs:HasCrop></rdf:Description>")
    else:
        attrs = " ".join(f'crs:{k}="{v:.6f}"' for k, v in values.items())
        desc = f'<rdf:Description rdf:about="" tiff:Orientation="{orientation}" {attrs} crs:HasCrop="True"/>'
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
            '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
            'xmlns:tiff="http://ns.adobe.com/tiff/1.0/" xmlns:crs="http://ns.adobe.com/camera-raw-settings/1.0/">'
            f"{desc}</rdf:RDF></x:xmpmeta>\n<?xpacket end=\"w\"?>").encode()


def stored_crop(seed: int, angle: float) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """A crop of the stored picture: its corners and its crs: fractions (left, top, right, bottom)."""
    rng = np.random.default_rng(seed)
    w, h = STORED
    corners = lightroom_corners((w * rng.uniform(0.42, 0.58), h * rng.uniform(0.42, 0.58)),
                                (w * rng.uniform(0.35, 0.5), h * rng.uniform(0.35, 0.5)), angle)
    return corners, (corners[0][0] / w, corners[0][1] / h, corners[2][0] / w, corners[2][1] / h)
