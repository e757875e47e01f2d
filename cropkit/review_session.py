"""The review loop without any widget: a queue of images, editable crops, decisions, undo and statistics.

Coordinates are pixels of the full-resolution upright image. The ipycanvas widget (``cropkit.review``) and the
tests drive the same methods; every decision is appended to the logs at once.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from cropkit.decisions import CropDecision, SuggestionDecision, append_decision, append_undo
from cropkit.geometry import Box, clamp_box, fit_box_to_aspect, largest_centred_box

ASPECT_CHOICES = {"free": None, "original": "original", "1:1": 1.0, "4:5": 0.8, "3:2": 1.5, "16:9": 16 / 9}
HANDLES = ("nw", "n", "ne", "e", "se", "s", "sw", "w")
MIN_SIDE = 8.0
QUEUE_ORDERS = ("file", "newest", "uncertain")


@dataclass
class CropBox:
    """One crop being edited; ``suggested`` is the AI box it started from (None for a crop the user added)."""

    box: Box
    suggested: Box | None = None
    score: float | None = None

    @property
    def changed(self) -> bool:
        return self.suggested is None or max(abs(a - b) for a, b in zip(self.box, self.suggested)) > 0.5


@dataclass
class Decided:
    """What one accept or reject logged, so that undo can cancel it and restore the image's crops."""

    index: int
    records: list
    boxes: list[CropBox]


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
class ReviewSession:
    """A review of ``queue`` (absolute image paths) with suggestions from ``suggester`` (cropkit.suggest)."""

    suggester: object
    queue: list[Path]
    aspect_name: str = "free"
    index: int = 0
    boxes: list[CropBox] = field(default_factory=list)
    active: int = 0
    width: int = 0
    height: int = 0
    image: str = ""
    companion: str = ""
    model_name: str = ""
    history: list[Decided] = field(default_factory=list)
    decided: int = 0
    approved: int = 0
    _drag: tuple | None = None
    _logged_here: list = field(default_factory=list)  # records of this image a failed accept did write

    @property
    def logs(self) -> Path:
        return self.suggester.layout.logs

    @property
    def aspect(self) -> float | None:
        value = ASPECT_CHOICES[self.aspect_name]
        return self.width / self.height if value == "original" else value

    @property
    def done(self) -> bool:
        return self.index >= len(self.queue)

    @property
    def acceptance_rate(self) -> float:
        return self.approved / self.decided if self.decided else 0.0

    def load(self, index: int, boxes: list[CropBox] | None = None) -> None:
        """Show image ``index`` with a fresh suggestion from the current proposer (or the given crops)."""
        self.index = max(0, min(index, len(self.queue)))
        self._drag = None
        self._logged_here = []
        if self.done:
            self.boxes = []
            return
        path = self.queue[self.index]
        result = self.suggester.suggest(path, aspect=self.aspect if self.aspect_name != "free" else None, k=1)
        self.image, self.width, self.height = result["image"], result["width"], result["height"]
        self.model_name = result["model"]
        self.companion = read_companion(path)
        if boxes is None:
            top = result["suggestions"][0]
            box = tuple(float(v) for v in top["box"])
            boxes = [CropBox(box, box, top["score"])]
        self.boxes, self.active = boxes, 0

    # editing -------------------------------------------------------------------------------------------

    def hit(self, x: float, y: float, tolerance: float) -> tuple[int, str] | None:
        """Which crop and which handle (or 'move' inside) is at (x, y); the active crop wins ties."""
        order = [self.active] + [i for i in range(len(self.boxes)) if i != self.active]
        for i in order:
            x0, y0, x1, y1 = self.boxes[i].box
            points = {"nw": (x0, y0), "n": ((x0 + x1) / 2, y0), "ne": (x1, y0), "e": (x1, (y0 + y1) / 2),
                      "se": (x1, y1), "s": ((x0 + x1) / 2, y1), "sw": (x0, y1), "w": (x0, (y0 + y1) / 2)}
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

    def set_aspect(self, name: str) -> None:
        """Lock crops to an aspect (kept for the following images too) and refit the active crop now."""
        if name not in ASPECT_CHOICES:
            raise ValueError(f"aspect {name!r}: choose one of {', '.join(ASPECT_CHOICES)}")
        self.aspect_name = name
        if self.boxes and self.aspect is not None:
            b = self.boxes[self.active]
            b.box = fit_box_to_aspect(b.box, self.aspect, self.width, self.height)

    def add_box(self) -> None:
        """Another crop of this image (multi-crop), centred, at the locked aspect."""
        full = largest_centred_box(self.aspect, self.width, self.height)
        cx, cy = (full[0] + full[2]) / 2, (full[1] + full[3]) / 2
        w, h = (full[2] - full[0]) * 0.6, (full[3] - full[1]) * 0.6
        self.boxes.append(CropBox((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)))
        self.active = len(self.boxes) - 1

    # decisions -----------------------------------------------------------------------------------------

    def accept(self) -> list:
        """Log every crop of this image (approved if the suggestion is unchanged, modified if adjusted; crops the
        user added as plain crops) and move to the next image."""
        return self._decide(self._records(rejected=False))

    def reject(self) -> list:
        """Log the suggestion as rejected (crops the user added are still logged as crops) and move on."""
        return self._decide(self._records(rejected=True))

    def _records(self, rejected: bool) -> list:
        records = []
        for b in self.boxes:
            if b.suggested is None:
                records.append(CropDecision(self.image, self.width, self.height, _round(b.box), time.time(),
                                            source="cropkit-review"))
                continue
            kind = "rejected" if rejected else "modified" if b.changed else "approved"
            final = None if rejected else _round(b.box)
            records.append(SuggestionDecision(self.image, self.width, self.height, _round(b.suggested), final,
                                              kind, self.model_name, time.time()))
        return records

    def _decide(self, records: list) -> list:
        """Log ``records`` and move on. If a write fails (a full disk, a read-only folder) the error is
        raised and the image stays; the records already written are not written again on the retry."""
        if self.done:
            return []
        for r in records[len(self._logged_here):]:
            append_decision(self.logs, r)  # one flushed line each, at once
            self._logged_here.append(r)
        records = self._logged_here
        self.history.append(Decided(self.index, records, [CropBox(b.box, b.suggested, b.score) for b in self.boxes]))
        self.decided += 1
        self.approved += any(getattr(r, "decision", None) == "approved" for r in records)
        self.load(self.index + 1)
        return records

    def skip(self) -> None:
        """No decision: on to the next image."""
        self.load(self.index + 1)

    def previous(self) -> None:
        self.load(self.index - 1)

    def undo(self) -> Decided | None:
        """Cancel the last decision with undo lines in the logs and go back to its image, crops as they were."""
        if not self.history:
            return None
        last = self.history[-1]
        now = time.time()
        for r in last.records:  # written before anything changes here: a failed write leaves the undo to redo
            append_undo(self.logs, r, now)
        self.history.pop()
        self.decided -= 1
        self.approved -= any(getattr(r, "decision", None) == "approved" for r in last.records)
        self.load(last.index, last.boxes)
        return last


def _round(box: Box) -> Box:
    return tuple(round(float(v), 1) for v in box)


def read_companion(image: Path) -> str:
    """The image's companion YAML as text (validated with safe_load), or a note; it is only ever read."""
    for candidate in (image.with_suffix(".yaml"), image.with_suffix(".yml")):
        if candidate.is_file():
            text = candidate.read_text(errors="replace")
            try:
                yaml.safe_load(text)
            except yaml.YAMLError as exc:
                return f"(companion {candidate.name} is not valid YAML: {str(exc).splitlines()[0]})\n{text}"
            return text
    return "(no companion .yaml)"


def order_queue(paths: list[Path], order: str, suggester=None) -> list[Path]:
    """file: by path; newest: newest first by modification time; uncertain: where the proposer is least sure first."""
    if order == "file":
        return sorted(paths)
    if order == "newest":
        return sorted(paths, key=lambda p: os.stat(p).st_mtime_ns, reverse=True)
    if order == "uncertain":
        score = {p: suggester.suggest(p, k=1)["suggestions"][0]["score"] for p in paths}
        return sorted(paths, key=lambda p: score[p])
    raise ValueError(f"queue order {order!r}: choose one of {', '.join(QUEUE_ORDERS)}")


def pending_images(layout, images: Path | None = None) -> list[Path]:
    """Images of the library that no log line decides yet (a crop or a suggestion outcome)."""
    from cropkit.decisions import read_crops, read_suggestions
    from cropkit.scan import Found, find_images

    crops, _ = read_crops(layout.logs)
    suggestions, _ = read_suggestions(layout.logs)
    done = {d.image for d in [*crops, *suggestions]}
    found = [f.path for f in find_images(images or layout.images) if isinstance(f, Found)]
    return [p for p in found if layout.relative_name(p) not in done]
