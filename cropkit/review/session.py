"""The review loop without any widget: going from image to image, deciding on each one's crops, undo, and the
counts and notices shown to the user.

Coordinates are pixels of the full-resolution upright image. The widget and the tests drive the same methods;
every decision is appended to the logs at once. An image that cannot be read is shown with its reason and nothing
to decide; a decision is logged once, for the image shown.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path

from cropkit.decisions import CropDecision, SuggestionDecision, append_decision, append_undo
from cropkit.errors import CropkitError
from cropkit.extract.decode import DecodeError
from cropkit.geometry import Box
from cropkit.review.editor import CropBox, CropEditor
from cropkit.review.others import decided_elsewhere, log_sizes, other_reviewers, register_reviewer
from cropkit.review.pictures import read_companion

ASPECT_CHOICES = {"free": None, "original": "original", "1:1": 1.0, "4:5": 0.8, "3:2": 1.5, "16:9": 16 / 9}


def aspect_of(name: str, width: int, height: int) -> float | None:
    """The aspect (width/height) that choice ``name`` locks crops of a width x height image to; None: free, or
    "original" while the image's size is unknown."""
    value = ASPECT_CHOICES[name]
    if value == "original":
        return width / height if height else None
    return value


@dataclass
class Decided:
    """What one accept or reject logged, so that undo can cancel it and restore the image's crops and the
    proposer that suggested them."""

    index: int
    records: list
    boxes: list[CropBox]
    proposer_name: str


@dataclass
class ReviewSession:
    """A review of ``queue`` (absolute image paths) with suggestions from ``suggester`` (cropkit.learn.suggest)."""

    suggester: object
    queue: list[Path]
    aspect_name: str = "free"
    index: int = 0
    editor: CropEditor = field(default_factory=CropEditor)  # the crops of the image shown
    image: str = ""
    companion: str = ""
    proposer_name: str = ""  # the proposer version that suggested the crops shown
    history: list[Decided] = field(default_factory=list)
    decided: int = 0
    approved: int = 0
    problem: str = ""  # why the image shown cannot be reviewed ("can't be read: ..."); nothing to decide then
    notice: str = ""  # what the last key did not do, and why
    others: list[str] = field(default_factory=list)  # other reviewer processes open on this root
    log_marks: dict[str, int] | None = None  # log sizes when the queue was read; later lines are checked
    _logged_here: list = field(default_factory=list)  # records of this image a failed accept did write
    _own: set = field(default_factory=set)  # (image, ts) of every line this session wrote
    _warned: str = ""  # the image whose decision by another reviewer the user was told about
    _registration: weakref.finalize | None = None

    def __post_init__(self) -> None:
        if self.log_marks is None:
            self.log_marks = log_sizes(self.logs)
        try:
            self._registration = register_reviewer(self, self.suggester.layout.ai_data)
        except OSError:  # a read-only or full data/ai_data: the first decision says so; the log check still runs
            self._registration = None

    def close(self) -> None:
        """Withdraw this session's registration (also done when it is garbage-collected or Python exits)."""
        if self._registration is not None:
            self._registration()

    @property
    def logs(self) -> Path:
        return self.suggester.layout.logs

    @property
    def boxes(self) -> list[CropBox]:
        return self.editor.boxes

    @property
    def width(self) -> int:
        return self.editor.width

    @property
    def height(self) -> int:
        return self.editor.height

    @property
    def aspect(self) -> float | None:
        """The locked aspect of crops of the image shown ("original": that image's own; None while unknown)."""
        return aspect_of(self.aspect_name, self.width, self.height)

    @property
    def done(self) -> bool:
        return self.index >= len(self.queue)

    @property
    def acceptance_rate(self) -> float:
        return self.approved / self.decided if self.decided else 0.0

    # navigation ----------------------------------------------------------------------------------------

    def go_to(self, index: int, boxes: list[CropBox] | None = None, proposer_name: str | None = None) -> None:
        """Show image ``index`` with a fresh suggestion from the current proposer (or the given crops, suggested by
        ``proposer_name``). Never raises for a bad image: it is shown with ``problem`` set and no crops."""
        self.index = max(0, min(index, len(self.queue)))
        self._logged_here, self.notice, self.problem, self.proposer_name = [], "", "", ""
        self.editor = CropEditor()
        self.others = other_reviewers(self.suggester.layout.ai_data)
        if self.done:
            return
        path = self.queue[self.index]
        self.image, self.companion = self.suggester.layout.relative_name(path), read_companion(path)
        try:
            result = self.suggester.suggest(path, aspect=self.aspect, k=1)
            if self.aspect_name == "original":  # its own aspect is known now: ask for a crop of that aspect
                result = self.suggester.suggest(path, aspect=result.width / result.height, k=1)
        except Exception as exc:  # one bad image never stops the review: say why, and let the user go on
            self.cannot_show(exc)
            return
        self.image, self.proposer_name = result.image, proposer_name or result.proposer
        if boxes is None:
            top = result.suggestions[0]
            box = tuple(round(v, 1) for v in top.box)
            boxes = [CropBox(box, box, round(top.score, 4))]
        self.editor = CropEditor(result.width, result.height, boxes,
                                 aspect_of(self.aspect_name, result.width, result.height))

    def cannot_show(self, exc: Exception) -> None:
        """The image shown cannot be read (found now, or while drawing it): say why; nothing to decide on it."""
        self.problem = f"can't be read: {_reason(exc, self.queue[self.index])}"
        self.editor = CropEditor(self.width, self.height)  # no crops: nothing to decide

    def skip(self) -> None:
        """No decision: on to the next image."""
        self.go_to(self.index + 1)

    def previous(self) -> None:
        self.go_to(self.index - 1)

    # editing that depends on the choices of the session ------------------------------------------------

    def set_aspect(self, name: str) -> None:
        """Lock crops to an aspect (kept for the following images too) and refit the active crop now."""
        if name not in ASPECT_CHOICES:
            raise ValueError(f"aspect {name!r}: choose one of {', '.join(ASPECT_CHOICES)}")
        self.aspect_name = name
        self.editor.set_aspect(self.aspect)

    def add_box(self) -> None:
        """Another crop of this image (multi-crop); none for an image with nothing to decide."""
        if not self.done and not self.problem:
            self.editor.add_box()

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
                                              kind, self.proposer_name, time.time()))
        return records

    def _decide(self, records: list) -> list:
        """Log ``records`` and move on. If a write fails (a full disk, a read-only folder) the error is
        raised and the image stays; the records already written are not written again on the retry.
        Nothing is logged for an unreadable image, and a decision another reviewer logged for this image
        meanwhile is shown first: the same key again logs this one as well."""
        if self.done or self.problem or not self.boxes:  # the panel already says why
            return []
        if not self._logged_here and self._warned != self.image:
            elsewhere = decided_elsewhere(self.logs, self.log_marks or {}, self.image, self._own)
            if elsewhere:
                self._warned = self.image
                self.notice = (f"another reviewer decided {self.image} meanwhile ({elsewhere}); nothing logged. "
                               "Press the same key again to log yours as well, or skip (s) to keep theirs.")
                return []
        for r in records[len(self._logged_here):]:
            append_decision(self.logs, r)  # one flushed line each, at once
            self._logged_here.append(r)
            self._own.add((r.image, r.ts))
        records = self._logged_here
        self.history.append(Decided(self.index, records, [CropBox(b.box, b.suggested, b.score) for b in self.boxes],
                                    self.proposer_name))
        self.decided += 1
        self.approved += _approves(records)
        self.go_to(self.index + 1)
        return records

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
        self.approved -= _approves(last.records)
        self.go_to(last.index, last.boxes, last.proposer_name)
        return last


def _approves(records: list) -> bool:
    return any(getattr(r, "decision", None) == "approved" for r in records)


def _round(box: Box) -> Box:
    return tuple(round(float(v), 1) for v in box)


def _reason(exc: Exception, path: Path) -> str:
    """What went wrong with ``path``, for the user: cropkit's own messages as they are, others with their type."""
    message = str(exc) if isinstance(exc, (CropkitError, DecodeError)) else f"{type(exc).__name__}: {exc}"
    return message.removeprefix(f"{path}: ")
