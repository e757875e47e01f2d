"""The crops of one image being edited: which handle is under the pointer, drags, resizes and the aspect lock.

Coordinates are pixels of the full-resolution upright image. No widgets and no I/O: the session holds one editor
per image shown, the widget feeds it pointer positions already converted to image pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cropkit.geometry import Box, clamp_box, fit_box_to_aspect, largest_centred_box

HANDLES = ("nw", "n", "ne", "e", "se", "s", "sw", "w")
MIN_SIDE = 8.0


@dataclass
class CropBox:
    """One crop being edited; ``suggested`` is the AI box it started from (None for a crop the user added)."""

    box: Box
    suggested: Box | None = None
    score: float | None = None

    @property
    def changed(self) -> bool:
        return self.suggested is None or max(abs(a - b) for a, b in zip(self.box, self.suggested)) > 0.5


def handle_points(box: Box) -> dict[str, tuple[float, float]]:
    """Where each handle of ``box`` is: its corners and the middles of its sides."""
    x0, y0, x1, y1 = box
    xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
    return {"nw": (x0, y0), "n": (xm, y0), "ne": (x1, y0), "e": (x1, ym),
            "se": (x1, y1), "s": (xm, y1), "sw": (x0, y1), "w": (x0, ym)}


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
    # shrink about the anchor until the box fits the image
    limits = [ax / (ax - x0) if ax - x0 > 1e-9 else 1.0, (width - ax) / (x1 - ax) if x1 - ax > 1e-9 else 1.0,
              ay / (ay - y0) if ay - y0 > 1e-9 else 1.0, (height - ay) / (y1 - ay) if y1 - ay > 1e-9 else 1.0]
    s = min(1.0, *limits)
    return (ax - (ax - x0) * s, ay - (ay - y0) * s, ax + (x1 - ax) * s, ay + (y1 - ay) * s)


@dataclass
class CropEditor:
    """The crops of one ``width`` x ``height`` image; ``active`` is the one dragged last, ``aspect`` (width/height,
    None: free) locks resizes and new crops."""

    width: int = 0
    height: int = 0
    boxes: list[CropBox] = field(default_factory=list)
    aspect: float | None = None
    active: int = 0
    _drag: tuple | None = None  # (handle or "move", pointer x, pointer y, the box when the drag began)

    def hit(self, x: float, y: float, tolerance: float) -> tuple[int, str] | None:
        """Which crop and which handle (or 'move' inside) is at (x, y); the active crop wins ties."""
        order = [self.active] + [i for i in range(len(self.boxes)) if i != self.active]
        for i in order:
            points = handle_points(self.boxes[i].box)
            for name in HANDLES:
                px, py = points[name]
                if abs(x - px) <= tolerance and abs(y - py) <= tolerance:
                    return i, name
        for i in order:
            x0, y0, x1, y1 = self.boxes[i].box
            if x0 < x < x1 and y0 < y < y1:
                return i, "move"
        return None

    def press(self, x: float, y: float, tolerance: float = 12.0) -> bool:
        """Start dragging whatever is under (x, y); False when nothing is there."""
        found = self.hit(x, y, tolerance)
        if found is None:
            return False
        self.active, handle = found
        self._drag = (handle, x, y, self.boxes[self.active].box)
        return True

    def move(self, x: float, y: float) -> None:
        """The pointer is at (x, y): move or resize the crop being dragged (nothing when none is)."""
        if self._drag is None:
            return
        handle, sx, sy, start = self._drag
        if handle == "move":
            dx, dy = x - sx, y - sy
            box = clamp_box((start[0] + dx, start[1] + dy, start[2] + dx, start[3] + dy), self.width, self.height)
        else:
            box = resize_box(start, handle, x, y, self.aspect, self.width, self.height)
        self.boxes[self.active].box = box

    def release(self) -> None:
        self._drag = None

    @property
    def dragging(self) -> bool:
        return self._drag is not None

    def set_aspect(self, aspect: float | None) -> None:
        """Lock crops to ``aspect`` (None: free) and refit the active crop to it, same centre and area."""
        self.aspect = aspect
        if self.boxes and aspect is not None:
            b = self.boxes[self.active]
            b.box = fit_box_to_aspect(b.box, aspect, self.width, self.height)

    def add_box(self) -> None:
        """Another crop (multi-crop), centred, at the locked aspect, 0.6 of the largest such box; it becomes
        the active one."""
        full = largest_centred_box(self.aspect, self.width, self.height)
        cx, cy = (full[0] + full[2]) / 2, (full[1] + full[3]) / 2
        w, h = (full[2] - full[0]) * 0.6, (full[3] - full[1]) * 0.6
        self.boxes.append(CropBox((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)))
        self.active = len(self.boxes) - 1
