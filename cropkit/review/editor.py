"""The crops of one image being edited: what is under the pointer, drags (move, resize by any edge or corner, draw the
crop anew or, asked, another one), nudges, the aspect lock and its orientation, straightening, and Esc back to the
suggestion.

Coordinates are pixels of the full-resolution upright image, turned by ``angle`` when straightened (the crop is cut
from the image as drawn). No widgets and no I/O: the session holds one editor per image shown, the widget feeds it
pointer positions already converted to image pixels.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import NamedTuple

from cropkit.decisions import MAX_ANGLE
from cropkit.geometry import (
    STANDARD_ASPECTS,
    Box,
    clamp_box,
    fit_box_to_aspect,
    fit_inside_turned,
    inside_turned,
    is_finite_number,
    largest_centred_box,
    nearest_standard_aspect,
)

HANDLES = ("nw", "n", "ne", "e", "se", "s", "sw", "w")
MIN_SIDE = 8.0
DRAW_THRESHOLD = 3.0  # pointer travel (image pixels) before a press outside every crop starts a new one

# the CSS cursor hinting what a press there would do
CURSORS = {"nw": "nwse-resize", "se": "nwse-resize", "ne": "nesw-resize", "sw": "nesw-resize", "n": "ns-resize",
           "s": "ns-resize", "e": "ew-resize", "w": "ew-resize", "move": "move", "draw": "crosshair"}


class Drag(NamedTuple):
    """A drag in progress: ``what`` (a handle, "move" or "draw"), where the pointer was pressed, the box when it
    began (for "draw": None until the pointer has moved), whether a drawn crop is added rather than replacing the
    active one, and whether a resize keeps the crop's ratio."""

    what: str
    x: float
    y: float
    start: Box | None
    add: bool = False
    keep_ratio: bool = False


@dataclass
class CropBox:
    """One crop being edited; ``suggested`` is the AI box it started from (None for a crop the user added)."""

    box: Box
    suggested: Box | None = None
    score: float | None = None

    @property
    def added(self) -> bool:
        return self.suggested is None

    @property
    def changed(self) -> bool:
        return self.suggested is None or max(abs(a - b) for a, b in zip(self.box, self.suggested)) > 0.5


def handle_points(box: Box) -> dict[str, tuple[float, float]]:
    """Where each handle of ``box`` is: its corners and the middles of its sides."""
    x0, y0, x1, y1 = box
    xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
    return {"nw": (x0, y0), "n": (xm, y0), "ne": (x1, y0), "e": (x1, ym),
            "se": (x1, y1), "s": (xm, y1), "sw": (x0, y1), "w": (x0, ym)}


def edge_at(box: Box, x: float, y: float, tolerance: float) -> str | None:
    """The edge or corner of ``box`` within ``tolerance`` of (x, y) anywhere along it ('nw', 'e', ...), or None."""
    x0, y0, x1, y1 = box
    if not (x0 - tolerance <= x <= x1 + tolerance and y0 - tolerance <= y <= y1 + tolerance):
        return None
    tol_x = min(tolerance, (x1 - x0) / 3)  # on a small crop the middle stays for moving it
    tol_y = min(tolerance, (y1 - y0) / 3)
    vertical = "n" if abs(y - y0) <= tol_y else "s" if abs(y - y1) <= tol_y else ""
    horizontal = "w" if abs(x - x0) <= tol_x else "e" if abs(x - x1) <= tol_x else ""
    return (vertical + horizontal) or None


def resize_box(start: Box, handle: str, x: float, y: float, aspect: float | None, width: float,
               height: float) -> Box:
    """Drag one handle of ``start`` to (x, y); with an aspect the opposite side (or corner) stays put.
    The result stays inside the image and at least MIN_SIDE pixels wide and high."""
    x0, y0, x1, y1 = start
    if "w" in handle:
        x0 = min(x, x1 - MIN_SIDE)
    if "e" in handle:
        x1 = max(x, x0 + MIN_SIDE)
    if "n" in handle:
        y0 = min(y, y1 - MIN_SIDE)
    if "s" in handle:
        y1 = max(y, y0 + MIN_SIDE)
    if aspect is None:
        return (max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1))
    cx, cy = (start[0] + start[2]) / 2, (start[1] + start[3]) / 2
    w, h = x1 - x0, y1 - y0
    if handle in ("n", "s"):
        w = h * aspect
        x0, x1 = cx - w / 2, cx + w / 2
        ax, ay = cx, (start[3] if handle == "n" else start[1])
    elif handle in ("e", "w"):
        h = w / aspect
        y0, y1 = cy - h / 2, cy + h / 2
        ax, ay = (start[2] if handle == "w" else start[0]), cy
    else:  # a corner: the side the pointer changed more (relatively) drives the other
        w0, h0 = start[2] - start[0], start[3] - start[1]
        w, h = (w, w / aspect) if abs(w / w0 - 1) >= abs(h / h0 - 1) else (h * aspect, h)
        ax, ay = (start[2] if "w" in handle else start[0]), (start[3] if "n" in handle else start[1])
        x0, x1 = (ax - w, ax) if "w" in handle else (ax, ax + w)
        y0, y1 = (ay - h, ay) if "n" in handle else (ay, ay + h)
    return _shrink_about(ax, ay, (x0, y0, x1, y1), width, height)


def _shrink_about(ax: float, ay: float, box: Box, width: float, height: float) -> Box:
    """``box`` shrunk about the anchor (ax, ay) until it fits the image."""
    x0, y0, x1, y1 = box
    limits = [ax / (ax - x0) if ax - x0 > 1e-9 else 1.0, (width - ax) / (x1 - ax) if x1 - ax > 1e-9 else 1.0,
              ay / (ay - y0) if ay - y0 > 1e-9 else 1.0, (height - ay) / (y1 - ay) if y1 - ay > 1e-9 else 1.0]
    s = min(1.0, *limits)
    return (ax - (ax - x0) * s, ay - (ay - y0) * s, ax + (x1 - ax) * s, ay + (y1 - ay) * s)


def drawn_box(ax: float, ay: float, x: float, y: float, aspect: float | None, width: float, height: float) -> Box:
    """The crop drawn from anchor (ax, ay) to the pointer (x, y), at ``aspect`` when locked (the longer drag
    decides the size), kept inside the image."""
    w, h = max(abs(x - ax), 1.0), max(abs(y - ay), 1.0)
    if aspect is not None:
        w, h = (w, w / aspect) if w / h >= aspect else (h * aspect, h)
    x1, y1 = ax + (w if x >= ax else -w), ay + (h if y >= ay else -h)
    return _shrink_about(ax, ay, (min(ax, x1), min(ay, y1), max(ax, x1), max(ay, y1)), width, height)


def ratio_name(box: Box) -> str:
    """The box's shape for a readout: a standard ratio's name when within 1% of it, else 'w.ww:1'."""
    r = (box[2] - box[0]) / (box[3] - box[1])
    name = nearest_standard_aspect(box)
    return name if abs(r / STANDARD_ASPECTS[name] - 1) <= 0.01 else f"{r:.2f}:1"


@dataclass
class CropEditor:
    """The crops of one ``width`` x ``height`` image; ``active`` is the one edited last, ``aspect`` (width/height,
    None: free) locks resizes and new crops, ``angle`` (degrees, clockwise) straightens the image under them.
    ``initial`` is what Esc returns to: the crops as first shown."""

    width: int = 0
    height: int = 0
    boxes: list[CropBox] = field(default_factory=list)
    aspect: float | None = None
    active: int = 0
    angle: float = 0.0
    initial: list[CropBox] = field(default_factory=list)
    _drag: Drag | None = None

    def __post_init__(self) -> None:
        if not self.initial:
            self.initial = copy.deepcopy(self.boxes)

    def hit(self, x: float, y: float, tolerance: float) -> tuple[int, str] | None:
        """Which crop and which edge or corner (anywhere along it, within ``tolerance``), or 'move' inside, is at
        (x, y); the active crop wins ties."""
        order = [self.active] + [i for i in range(len(self.boxes)) if i != self.active]
        for i in order:
            edge = edge_at(self.boxes[i].box, x, y, tolerance)
            if edge:
                return i, edge
        for i in order:
            x0, y0, x1, y1 = self.boxes[i].box
            if x0 < x < x1 and y0 < y < y1:
                return i, "move"
        return None

    def cursor(self, x: float, y: float, tolerance: float) -> str:
        """The CSS cursor for the pointer at (x, y): what pressing there would do."""
        if self._drag is not None:
            return CURSORS.get(self._drag.what, "crosshair")
        found = self.hit(x, y, tolerance)
        if found and not (found[1] == "move" and self._whole(self.boxes[found[0]].box)):
            return CURSORS[found[1]]
        return CURSORS["draw"] if self.width else "default"

    def press(self, x: float, y: float, tolerance: float = 12.0, add: bool = False, keep_ratio: bool = False) -> str:
        """Start dragging whatever is under (x, y). Outside every crop, or inside a crop that covers the whole image
        (it has nowhere to move), start drawing: the drawn crop replaces the active one (a drawn suggestion is the
        suggestion modified), or with ``add`` becomes another crop; it appears once the pointer has moved. With
        ``keep_ratio`` (Shift, as in Lightroom) a resize keeps the crop's own ratio when no aspect is locked.
        Returns what the drag does: a handle name, 'move' or 'draw' ('' on no image)."""
        if not self.width or not self.height:
            return ""
        found = self.hit(x, y, tolerance)
        if found is None or (found[1] == "move" and self._whole(self.boxes[found[0]].box)):
            if found is not None and not add:
                self.active = found[0]
            self._drag = Drag("draw", x, y, None, add=add or not self.boxes)
            return "draw"
        self.active, handle = found
        self._drag = Drag(handle, x, y, self.boxes[self.active].box, keep_ratio=keep_ratio)
        return handle

    def _whole(self, box: Box) -> bool:
        return box[0] <= 0.5 and box[1] <= 0.5 and box[2] >= self.width - 0.5 and box[3] >= self.height - 0.5

    def move(self, x: float, y: float) -> None:
        """The pointer is at (x, y): move, resize or draw the crop being dragged (nothing when none is)."""
        if self._drag is None:
            return
        what, sx, sy, start = self._drag.what, self._drag.x, self._drag.y, self._drag.start
        if what == "draw":
            if start is None:
                if max(abs(x - sx), abs(y - sy)) < DRAW_THRESHOLD:
                    return
                box = self._limit(None, drawn_box(sx, sy, x, y, self.aspect, self.width, self.height))
                if self._drag.add:
                    self.boxes.append(CropBox(box))
                    self.active = len(self.boxes) - 1
                else:
                    self.boxes[self.active].box = box
                self._drag = self._drag._replace(start=box)
                return
            box = drawn_box(sx, sy, x, y, self.aspect, self.width, self.height)
        elif what == "move":
            dx, dy = x - sx, y - sy
            box = clamp_box((start[0] + dx, start[1] + dy, start[2] + dx, start[3] + dy), self.width, self.height)
        else:  # the grabbed edge or corner follows the pointer's travel (it may be grabbed a little off the line)
            hx, hy = handle_points(start)[what]
            aspect = self.aspect or ((start[2] - start[0]) / (start[3] - start[1]) if self._drag.keep_ratio else None)
            box = resize_box(start, what, hx + x - sx, hy + y - sy, aspect, self.width, self.height)
        self.boxes[self.active].box = self._limit(self.boxes[self.active].box, box)

    def release(self) -> None:
        self._drag = None

    @property
    def dragging(self) -> bool:
        return self._drag is not None

    @property
    def drawing(self) -> bool:
        return self._drag is not None and self._drag.what == "draw" and self._drag.start is not None

    def _limit(self, start: Box | None, target: Box) -> Box:
        """``target`` if it covers only pixels of the (turned) image; else the furthest point from ``start`` (a
        valid box) towards it that does, or, without a start, ``target`` shrunk to fit."""
        if not self.angle or inside_turned(target, self.angle, self.width, self.height):
            return target
        if start is None or not inside_turned(start, self.angle, self.width, self.height):
            return fit_inside_turned(target, self.angle, self.width, self.height)
        lo, hi = 0.0, 1.0
        for _ in range(24):
            mid = (lo + hi) / 2
            if inside_turned(_lerp(start, target, mid), self.angle, self.width, self.height):
                lo = mid
            else:
                hi = mid
        return _lerp(start, target, lo)

    def nudge(self, dx: float, dy: float) -> None:
        """Move the active crop by (dx, dy) image pixels, as far as the image allows."""
        if self.boxes:
            b = self.boxes[self.active]
            moved = clamp_box((b.box[0] + dx, b.box[1] + dy, b.box[2] + dx, b.box[3] + dy), self.width, self.height)
            b.box = self._limit(b.box, moved)

    def set_aspect(self, aspect: float | None) -> None:
        """Lock crops to ``aspect`` (None: free) and refit the active crop to it, same centre and area."""
        self.aspect = aspect
        if self.boxes and aspect is not None:
            b = self.boxes[self.active]
            b.box = self._limit(None, fit_box_to_aspect(b.box, aspect, self.width, self.height))

    def swap_orientation(self) -> None:
        """Turn the active crop's shape from landscape to portrait or back, same centre and area (with a locked
        aspect the caller swaps the lock; this refits to it)."""
        if not self.boxes:
            return
        b = self.boxes[self.active]
        x0, y0, x1, y1 = b.box
        shape = (y1 - y0) / (x1 - x0)
        b.box = self._limit(None, fit_box_to_aspect(b.box, self.aspect or shape, self.width, self.height))

    def set_angle(self, angle: float) -> None:
        """Straighten by ``angle`` degrees (clockwise, within +-MAX_ANGLE); every crop shrinks to stay on the
        image. A value that is no finite number is ignored."""
        if not is_finite_number(angle):
            return
        self.angle = max(-MAX_ANGLE, min(MAX_ANGLE, float(angle)))
        for b in self.boxes:
            b.box = self._limit(None, b.box)

    def add_box(self) -> None:
        """Another crop (multi-crop), centred, at the locked aspect, 0.6 of the largest such box; it becomes
        the active one."""
        full = largest_centred_box(self.aspect, self.width, self.height)
        cx, cy = (full[0] + full[2]) / 2, (full[1] + full[3]) / 2
        w, h = (full[2] - full[0]) * 0.6, (full[3] - full[1]) * 0.6
        self.boxes.append(CropBox(self._limit(None, (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))))
        self.active = len(self.boxes) - 1

    def remove_active(self) -> bool:
        """Remove the active crop if the user added it (a suggestion is rejected, not removed); False otherwise."""
        if not self.boxes or not self.boxes[self.active].added:
            return False
        del self.boxes[self.active]
        self.active = max(0, min(self.active, len(self.boxes) - 1))
        return True

    def next_active(self) -> None:
        """Make the next crop the active one (Tab)."""
        if self.boxes:
            self.active = (self.active + 1) % len(self.boxes)

    def reset(self) -> None:
        """Back to the crops as first shown, unturned (Esc)."""
        self.boxes, self.angle, self.active, self._drag = copy.deepcopy(self.initial), 0.0, 0, None

    @property
    def changed(self) -> bool:
        """Whether anything differs from what was first shown."""
        return bool(self.angle) or len(self.boxes) != len(self.initial) or any(
            max(abs(a - b) for a, b in zip(x.box, y.box)) > 0.5 for x, y in zip(self.boxes, self.initial))


def _lerp(a: Box, b: Box, t: float) -> Box:
    return tuple(u + (v - u) * t for u, v in zip(a, b))
