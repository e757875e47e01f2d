"""The review loop without any widget: going from image to image, deciding on each one's crops, undo, and the
counts and notices shown to the user.

Coordinates are pixels of the full-resolution upright image. The widget and the tests drive the same methods;
every decision is appended to the logs at once. Going on passes over an image that cannot be read (its reason is
kept and told); one shown anyway (going back) has nothing to decide. A decision is logged once, for the image shown,
and only as lines every reader takes.
"""

from __future__ import annotations

import copy
import time
import weakref
from dataclasses import dataclass, field, replace
from pathlib import Path

from cropkit.decisions import CropDecision, SuggestionDecision, append_decision, append_undo
from cropkit.errors import CropkitError
from cropkit.extract.decode import DecodeError
from cropkit.geometry import Box
from cropkit.review.editor import CropBox, CropEditor
from cropkit.review.others import decided_elsewhere, log_sizes, other_reviewers, register_reviewer
from cropkit.review.pictures import read_companion

ASPECT_CHOICES = {"free": None, "original": "original", "1:1": 1.0, "4:5": 0.8, "5:4": 1.25, "2:3": 2 / 3,
                  "3:2": 1.5, "3:4": 0.75, "4:3": 4 / 3, "9:16": 9 / 16, "16:9": 16 / 9}


def aspect_of(name: str, width: int, height: int) -> float | None:
    """The aspect (width/height) that choice ``name`` locks crops of a width x height image to; None: free, or
    "original" while the image's size is unknown."""
    value = ASPECT_CHOICES[name]
    if value == "original":
        return width / height if height else None
    return value


@dataclass
class Decided:
    """What one accept or reject logged, so that undo (or a new decision on the same image) can cancel it and
    restore the image's crops and the proposer that suggested them; ``replaced``: the earlier decision on the image
    that this one replaced (and its place in the history), which undoing this one brings back."""

    index: int
    records: list
    boxes: list[CropBox]
    proposer_name: str
    angle: float = 0.0
    initial: list[CropBox] = field(default_factory=list)  # the crops first shown (the suggestion)
    replaced: tuple[int, Decided] | None = None
    restored: list = field(default_factory=list)  # ``replaced``'s records logged again by an undo (retries resume)

    @property
    def kind(self) -> str:
        """approved, modified or rejected (the suggestion's fate), or 'cropped' when only added crops were logged."""
        return next((r.decision for r in self.records if isinstance(r, SuggestionDecision)), "cropped")

    def describe(self) -> str:
        ts = max((r.ts for r in self.records), default=0.0)
        return f"{self.kind} at {time.strftime('%H:%M:%S', time.localtime(ts))}"


@dataclass
class ReviewSession:
    """A review of ``queue`` (absolute image paths) with suggestions from ``suggester`` (cropkit.learn.suggest, or
    cropkit.review.first before any proposer is trained)."""

    suggester: object
    queue: list[Path]
    aspect_name: str = "free"
    index: int = 0
    editor: CropEditor = field(default_factory=CropEditor)  # the crops of the image shown
    image: str = ""
    companion: str = ""
    proposer_name: str = ""  # the proposer version that suggested the crops shown
    history: list[Decided] = field(default_factory=list)  # this session's effective decisions, oldest first
    skipped: set[int] = field(default_factory=set)  # queue positions left without a decision
    only_skipped: bool = False  # going through the skipped images again: next goes to the next undecided one
    problem: str = ""  # why the image shown cannot be reviewed ("can't be read: ..."); nothing to decide then
    unreadable: dict[int, str] = field(default_factory=dict)  # queue positions found unreadable, and why
    notice: str = ""  # what the last key did not do, and why
    others: list[str] = field(default_factory=list)  # other reviewer processes open on this root
    log_marks: dict[str, int] | None = None  # log sizes when the queue was read; later lines are checked
    last_lock: str = "original"  # the aspect lock that A turns back on
    _logged_here: list = field(default_factory=list)  # records of this image a failed accept did write
    _replacing: tuple[int, Decided] | None = None  # the earlier decision that a failed accept did cancel
    _own: set = field(default_factory=set)  # (image, ts) of every line this session wrote
    _warned: str = ""  # the image whose decision by another reviewer the user was told about
    _registration: weakref.finalize | None = None

    def __post_init__(self) -> None:
        if self.log_marks is None:
            self.log_marks = log_sizes(self.logs)
        if self.aspect_name != "free":
            self.last_lock = self.aspect_name
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

    # counts -------------------------------------------------------------------------------------------------

    @property
    def decided(self) -> int:
        """Images with a decision this session."""
        return len(self.history)

    def count(self, kind: str) -> int:
        """Decisions of one kind: approved, modified, rejected or cropped."""
        return sum(d.kind == kind for d in self.history)

    @property
    def approved(self) -> int:
        return self.count("approved")

    @property
    def acceptance_rate(self) -> float:
        """Suggestions kept unchanged, out of the images decided."""
        return self.approved / self.decided if self.decided else 0.0

    def decision_at(self, index: int) -> Decided | None:
        """This session's effective decision on queue position ``index``, if any."""
        return next((d for d in reversed(self.history) if d.index == index), None)

    @property
    def undecided(self) -> list[int]:
        """Queue positions without a decision this session (skipped, or not reached yet)."""
        decided = {d.index for d in self.history}
        return [i for i in range(len(self.queue)) if i not in decided]

    @property
    def revisiting(self) -> Decided | None:
        """The earlier decision on the image shown: a new one replaces it."""
        return None if self.done else self.decision_at(self.index)

    # navigation ----------------------------------------------------------------------------------------

    def go_to(self, index: int, boxes: list[CropBox] | None = None, proposer_name: str | None = None,
              angle: float = 0.0, initial: list[CropBox] | None = None) -> None:
        """Show image ``index``: the crops it was decided with if it was, else a fresh suggestion from the current
        proposer (or the given crops, suggested by ``proposer_name``). Never raises for a bad image: it is shown
        with ``problem`` set and no crops."""
        self.index = max(0, min(index, len(self.queue)))
        self._logged_here, self._replacing, self.notice, self.problem, self.proposer_name = [], None, "", "", ""
        self.editor = CropEditor()
        self.others = other_reviewers(self.suggester.layout.ai_data)
        if self.done:
            return
        earlier = self.decision_at(self.index)
        if boxes is None and earlier is not None:
            boxes, proposer_name, angle, initial = earlier.boxes, earlier.proposer_name, earlier.angle, earlier.initial
        path = self.queue[self.index]
        self.image, self.companion = self.suggester.layout.relative_name(path), read_companion(path)
        try:
            result = self.suggester.suggest(path, aspect=self.aspect, k=1)
            if self.aspect_name == "original":  # its own aspect is known now: ask for a crop of that aspect
                result = self.suggester.suggest(path, aspect=result.width / result.height, k=1)
        except Exception as exc:  # one bad image never stops the review: say why, and let the user go on
            self.cannot_show(exc)
            return
        self.unreadable.pop(self.index, None)
        self.image, self.proposer_name = result.image, proposer_name or result.proposer
        if boxes is None:
            top = result.suggestions[0]
            box = tuple(round(v, 1) for v in top.box)
            boxes = [CropBox(box, box, round(top.score, 4))]
        self.editor = CropEditor(result.width, result.height, copy.deepcopy(boxes),
                                 aspect_of(self.aspect_name, result.width, result.height),
                                 initial=copy.deepcopy(initial if initial else boxes))
        if angle:
            self.editor.angle = angle

    def cannot_show(self, exc: Exception) -> None:
        """The image shown cannot be read (found now, or while drawing it): say why; nothing to decide on it."""
        self.problem = f"can't be read: {_reason(exc, self.queue[self.index])}"
        self.unreadable[self.index] = self.problem
        self.editor = CropEditor(self.width, self.height)  # no crops: nothing to decide

    def go_on(self, index: int) -> None:
        """Show image ``index``, or the first one after it (as going on goes) that can be read: an unreadable
        image never holds up the queue. Each one passed is left skipped, its reason kept in ``unreadable`` and
        told in ``notice``."""
        self.go_to(index)
        passed = []
        while not self.done and self.problem:
            passed.append(f"{self.image}: {self.problem}")
            if self.decision_at(self.index) is None:
                self.skipped.add(self.index)
            self.go_to(self._next())
        if passed:
            more = f" and {len(passed) - 1} more" if len(passed) > 1 else ""
            self.notice = f"passed over an image that can't be read ({passed[0]}){more}: left skipped"

    def _next(self) -> int:
        """Where going on leads: the next position, or the next undecided one when going through skipped ones."""
        if self.only_skipped:
            return next((i for i in self.undecided if i > self.index), len(self.queue))
        return self.index + 1

    def skip(self) -> None:
        """No decision: on to the next image."""
        if not self.done and self.decision_at(self.index) is None:
            self.skipped.add(self.index)
        self.go_on(self._next())

    def previous(self) -> None:
        self.go_to(self.index - 1)

    def review_skipped(self) -> bool:
        """Go through the images left without a decision again, from the first; False when there are none."""
        left = self.undecided
        if not left:
            return False
        self.only_skipped = True
        self.go_on(left[0])
        return True

    # editing that depends on the choices of the session ------------------------------------------------

    def set_aspect(self, name: str) -> None:
        """Lock crops to an aspect (kept for the following images too) and refit the active crop now."""
        if name not in ASPECT_CHOICES:
            raise ValueError(f"aspect {name!r}: choose one of {', '.join(ASPECT_CHOICES)}")
        self.aspect_name = name
        if name != "free":
            self.last_lock = name
        self.editor.set_aspect(self.aspect)

    def toggle_lock(self) -> None:
        """A: free the aspect, or lock it again to the last locked one (the image's own at first)."""
        self.set_aspect("free" if self.aspect_name != "free" else self.last_lock)

    def swap_orientation(self) -> None:
        """X: 4:5 becomes 5:4 and back (the active crop is refitted); free, the active crop's own shape turns."""
        name = self.aspect_name
        if ":" in name and f"{name.split(':')[1]}:{name.split(':')[0]}" in ASPECT_CHOICES:
            self.set_aspect(f"{name.split(':')[1]}:{name.split(':')[0]}")
        elif name == "original" and self.width and self.height:
            self.aspect_name = "free"  # the image's own shape, turned: a free crop of the swapped shape
            self.editor.set_aspect(None)
            self.editor.swap_orientation()
        else:
            self.editor.swap_orientation()

    def add_box(self) -> None:
        """Another crop of this image (multi-crop); none for an image with nothing to decide."""
        if not self.done and not self.problem:
            self.editor.add_box()

    def reset_crops(self) -> None:
        """Esc: the crops as first shown, unturned."""
        self.editor.reset()

    # decisions -----------------------------------------------------------------------------------------

    def accept(self) -> list:
        """Log every crop of this image (approved if the suggestion is unchanged, modified if adjusted; crops the
        user added as plain crops) and move to the next image."""
        return self._decide(self._records(rejected=False))

    def reject(self) -> list:
        """Log the suggestion as rejected (crops the user added are still logged as crops) and move on."""
        return self._decide(self._records(rejected=True))

    def _records(self, rejected: bool) -> list:
        records, angle = [], round(self.editor.angle, 2)
        for b in self.boxes:
            if b.suggested is None:
                records.append(CropDecision(self.image, self.width, self.height, _round(b.box), time.time(),
                                            source="cropkit-review", angle=angle))
                continue
            kind = "rejected" if rejected else "modified" if b.changed or angle else "approved"
            final = None if rejected else _round(b.box)
            records.append(SuggestionDecision(self.image, self.width, self.height, _round(b.suggested), final,
                                              kind, self.proposer_name, time.time(), 0.0 if rejected else angle))
        return records

    def _decide(self, records: list) -> list:
        """Log ``records`` and move on. A decision this session made on the image before is undone first (one
        effective decision per image). If a write fails (a full disk, a read-only folder) the error is raised and
        the image stays; the records already written are not written again on the retry. Nothing is logged for an
        unreadable image, nor a line a reader of the logs would refuse (said in ``notice``), and a decision another
        reviewer logged for this image meanwhile is shown first: the same key again logs this one as well."""
        if self.done or self.problem or not self.boxes:  # the panel already says why
            return []
        if refused := _refused_by_readers(records):
            self.notice = (f"nothing logged: {refused}, and readers of the logs would refuse it; make the crop "
                           "larger or straighten less (Esc: back to the suggestion)")
            return []
        if not self._logged_here and self._warned != self.image:
            elsewhere = decided_elsewhere(self.logs, self.log_marks or {}, self.image, self._own)
            if elsewhere:
                self._warned = self.image
                self.notice = (f"another reviewer decided {self.image} meanwhile ({elsewhere}); nothing logged. "
                               "Press the same key again to log yours as well, or skip (s) to keep theirs.")
                return []
        earlier = self.decision_at(self.index)
        if earlier is not None and not self._logged_here:
            self._replacing = (self._cancel(earlier), earlier)
        for r in records[len(self._logged_here):]:
            append_decision(self.logs, r)  # one flushed line each, at once
            self._logged_here.append(r)
            self._own.add((r.image, r.ts))
        records = self._logged_here
        self.history.append(Decided(self.index, records, copy.deepcopy(self.boxes), self.proposer_name,
                                    self.editor.angle, copy.deepcopy(self.editor.initial), self._replacing))
        self.skipped.discard(self.index)
        self.go_on(self._next())
        return records

    def _cancel(self, decided: Decided, restore: bool = False) -> int:
        """Undo lines for ``decided``'s records (written before anything changes here), then forget it; returns
        where it was in the history. ``restore``: the decision it replaced is logged again and in force again."""
        now = time.time()
        for r in decided.records:  # written again on a retry after a failed write: a second undo line is harmless
            append_undo(self.logs, r, now)
        replaced = decided.replaced if restore else None
        if replaced is not None:
            for r in replaced[1].records[len(decided.restored):]:  # as new lines: the log only grows
                again = replace(r, ts=time.time())
                append_decision(self.logs, again)
                decided.restored.append(again)
                self._own.add((again.image, again.ts))
        position = self.history.index(decided)
        self.history.remove(decided)
        if replaced is not None:
            earlier = replace(replaced[1], records=list(decided.restored))
            self.history.insert(min(replaced[0], len(self.history)), earlier)
        return position

    def undo(self) -> Decided | None:
        """Cancel the last decision with undo lines in the logs and go back to its image, crops as they were. When
        it replaced an earlier decision on that image (a revisit), that one is in force again, as before."""
        if not self.history:
            return None
        last = self.history[-1]
        self._cancel(last, restore=True)
        self.go_to(last.index, last.boxes, last.proposer_name, last.angle, last.initial)
        return last


def _refused_by_readers(records: list) -> str:
    """Why a reader of the logs would refuse one of ``records`` (as cropkit.decisions reads each line), or ''."""
    for r in records:
        try:
            type(r).from_json(r.to_json())
        except ValueError as exc:
            return str(exc)
    return ""


def _round(box: Box) -> Box:
    return tuple(round(float(v), 1) for v in box)


def _reason(exc: Exception, path: Path) -> str:
    """What went wrong with ``path``, for the user: cropkit's own messages as they are, others with their type."""
    message = str(exc) if isinstance(exc, (CropkitError, DecodeError)) else f"{type(exc).__name__}: {exc}"
    return message.removeprefix(f"{path}: ")
