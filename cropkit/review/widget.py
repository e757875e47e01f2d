"""The AI-assisted crop reviewer: an ipycanvas widget over a ReviewSession.

The photo is sent once per image as a display-size JPEG on the bottom layer; crops, handles, dimming and the
rule-of-thirds overlay are redrawn on the middle layer; the top layer takes the mouse and keys. Enter accepts,
Delete or Backspace rejects, arrows move, u undoes, s skips; every key has a button too.
"""

from __future__ import annotations

import contextlib
import html
import io
import threading
import time
from collections.abc import Callable
from pathlib import Path

import ipywidgets as widgets
from ipycanvas import MultiCanvas, hold_canvas

from cropkit.errors import explain_os_error
from cropkit.extract.decode import DecodeError, decode_oriented_rgb
from cropkit.fileio import read_source_bytes
from cropkit.review.session import ASPECT_CHOICES, ReviewSession

GREEN = "#39ff14"
HANDLE_PX = 9  # handle squares and the grab tolerance, in canvas pixels
ZOOM_STEP = 1.6

_NOT_LOGGED = "<b style='color:#c62828'>Not logged:</b>"


def preview_jpeg(path: Path, width: int, height: int, quality: int = 85) -> tuple[bytes, int, int]:
    """A JPEG of the whole upright frame fitted to width x height (decoded reduced, read-only)."""
    data, _ = read_source_bytes(path)
    img, _ = decode_oriented_rgb(data, max(width, height) // 2)
    img.thumbnail((width, height))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue(), img.width, img.height


class CropReviewer(widgets.VBox):
    """Review crop suggestions one image at a time; decisions go to the logs at once."""

    def __init__(self, session: ReviewSession, retrain: Callable[[], object] | None = None,
                 retrain_every: int = 0, width: int = 900, height: int = 600):
        self.session = session
        self.retrain_fn = retrain
        self.retrain_every = retrain_every
        self.cw, self.ch = width, height
        self.zoom, self.pan = 1.0, (0.0, 0.0)
        self._panning: tuple | None = None
        self._previews: dict[Path, tuple[bytes, int, int]] = {}
        self._full: tuple[Path, object] | None = None  # the current image at full resolution, once zoomed in
        self._retraining: threading.Thread | None = None
        self.last_retrain: str = ""
        self.latency_ms: float | None = None

        self.canvas = MultiCanvas(3, width=width, height=height)
        self.canvas.on_mouse_down(self._on_down)
        self.canvas.on_mouse_move(self._on_move)
        self.canvas.on_mouse_up(self._on_up)
        self.canvas.on_key_down(self._on_key)
        self.canvas.on_client_ready(self.redraw)

        def button(label: str, tip: str, action: Callable[[], None]) -> widgets.Button:
            b = widgets.Button(description=label, tooltip=tip, layout=widgets.Layout(width="auto"))
            b.on_click(lambda _b: action())
            return b

        self.buttons = {
            "accept": button("Accept ⏎", "Enter: log the crops and go on", self.accept),
            "reject": button("Reject ⌫", "Delete/Backspace: the suggestion is wrong", self.reject),
            "previous": button("◀ Previous", "Left arrow", self.previous),
            "next": button("Next ▶", "Right arrow: no decision", self.skip),
            "skip": button("Skip (s)", "s: no decision", self.skip),
            "undo": button("Undo (u)", "u: take the last decision back", self.undo),
            "add": button("Add crop (a)", "a: another crop of this image", self.add_crop),
            "zoom_in": button("Zoom +", "+", lambda: self.zoom_by(ZOOM_STEP)),
            "zoom_out": button("Zoom −", "-", lambda: self.zoom_by(1 / ZOOM_STEP)),
            "reset": button("Fit (0)", "0: whole image", self.reset_view),
            "retrain": button("Retrain", "train a new proposer version in the background", self.retrain),
        }
        self.aspect = widgets.Dropdown(options=list(ASPECT_CHOICES), value=session.aspect_name,
                                       description="Aspect", layout=widgets.Layout(width="180px"))
        self.aspect.observe(lambda change: self.set_aspect(change["new"]), names="value")
        self.panel = widgets.HTML()
        self.companion = widgets.Textarea(disabled=True, layout=widgets.Layout(width="300px", height="220px"))
        self.status = widgets.HTML()
        controls = widgets.HBox([self.buttons[k] for k in ("previous", "accept", "reject", "skip", "next", "undo")])
        tools = widgets.HBox([self.aspect] + [self.buttons[k] for k in ("add", "zoom_in", "zoom_out", "reset",
                                                                         "retrain")])
        side = widgets.VBox([self.panel, widgets.HTML("<b>Companion (read-only)</b>"), self.companion])
        super().__init__([widgets.HBox([self.canvas, side]), controls, tools, self.status])
        self.session.load(self.session.index)
        self.show()

    # view ------------------------------------------------------------------------------------------------

    @property
    def scale(self) -> float:
        s = self.session
        return min(self.cw / s.width, self.ch / s.height) * self.zoom if s.width else 1.0

    def origin(self) -> tuple[float, float]:
        s = self.session
        return ((self.cw - s.width * self.scale) / 2 + self.pan[0], (self.ch - s.height * self.scale) / 2 + self.pan[1])

    def to_image(self, cx: float, cy: float) -> tuple[float, float]:
        ox, oy = self.origin()
        return (cx - ox) / self.scale, (cy - oy) / self.scale

    def to_canvas(self, x: float, y: float) -> tuple[float, float]:
        ox, oy = self.origin()
        return ox + x * self.scale, oy + y * self.scale

    def show(self) -> None:
        """Put the current image, its crops and the panel on screen, and prepare the next image meanwhile."""
        self.zoom, self.pan = 1.0, (0.0, 0.0)
        self.redraw()
        self.update_panel()
        nxt = self.session.index + 1
        if nxt < len(self.session.queue):
            threading.Thread(target=self._prefetch, args=(self.session.queue[nxt],), daemon=True).start()

    def _prefetch(self, path: Path) -> None:
        with contextlib.suppress(Exception):  # an unreadable image says why when it is shown
            self._preview(path)

    def _preview(self, path: Path) -> tuple[bytes, int, int]:
        if path not in self._previews:
            self._previews[path] = preview_jpeg(path, self.cw, self.ch)
            for old in list(self._previews)[:-3]:  # keep memory flat on long queues
                self._previews.pop(old, None)
        return self._previews[path]

    def _visible_region(self) -> tuple[bytes, tuple[int, int, int, int]]:
        """The part of the full-resolution image under the canvas, as a canvas-size JPEG, and its box."""
        s = self.session
        path = s.queue[s.index]
        if self._full is None or self._full[0] != path:
            data, _ = read_source_bytes(path)
            self._full = (path, decode_oriented_rgb(data, max(s.width, s.height))[0])
        img = self._full[1]
        x0, y0 = (max(0, int(v)) for v in self.to_image(0, 0))
        x1, y1 = self.to_image(self.cw, self.ch)
        x1, y1 = min(img.width, int(x1) + 1), min(img.height, int(y1) + 1)
        region = img.crop((x0, y0, x1, y1))
        region = region.resize((max(1, round((x1 - x0) * self.scale)), max(1, round((y1 - y0) * self.scale))))
        buf = io.BytesIO()
        region.save(buf, format="JPEG", quality=90)
        return buf.getvalue(), (x0, y0, x1, y1)

    def redraw(self) -> None:
        s = self.session
        photo = self.canvas[0]
        with hold_canvas():
            photo.clear()
            photo.fill_style = "#222"
            photo.fill_rect(0, 0, self.cw, self.ch)
            if not s.done and not s.problem:
                try:
                    self._draw_photo(photo)
                except Exception as exc:  # e.g. the file was cut short or removed since it was queued
                    s.cannot_show(str(exc) if isinstance(exc, DecodeError) else f"{type(exc).__name__}: {exc}")
                    self.update_panel()
            if s.problem:
                photo.fill_style = "#ff8a80"
                photo.font = "16px sans-serif"
                photo.fill_text(s.problem[:110], 20, self.ch / 2)
                photo.fill_text("nothing to accept: press s or → for the next image", 20, self.ch / 2 + 24)
            self.draw_overlay()

    def _draw_photo(self, photo) -> None:
        s = self.session
        jpeg, pw, _ = self._preview(s.queue[s.index])
        if self.scale <= 1.05 * pw / s.width:
            x0, y0 = self.to_canvas(0, 0)
            photo.draw_image(widgets.Image(value=jpeg, format="jpeg"), x0, y0,
                             s.width * self.scale, s.height * self.scale)
        else:  # zoomed past the preview's resolution: show the visible part at full resolution
            jpeg, (x0, y0, x1, y1) = self._visible_region()
            cx0, cy0 = self.to_canvas(x0, y0)
            cx1, cy1 = self.to_canvas(x1, y1)
            photo.draw_image(widgets.Image(value=jpeg, format="jpeg"), cx0, cy0, cx1 - cx0, cy1 - cy0)

    def draw_overlay(self) -> None:
        s, layer = self.session, self.canvas[1]
        with hold_canvas():
            layer.clear()
            if s.done or not s.boxes:
                return
            ax0, ay0, ax1, ay1 = (*self.to_canvas(*s.boxes[s.active].box[:2]),
                                  *self.to_canvas(*s.boxes[s.active].box[2:]))
            layer.fill_style = "rgba(0, 0, 0, 0.5)"  # dim what the active crop cuts away
            layer.fill_rect(0, 0, self.cw, ay0)
            layer.fill_rect(0, ay1, self.cw, self.ch - ay1)
            layer.fill_rect(0, ay0, ax0, ay1 - ay0)
            layer.fill_rect(ax1, ay0, self.cw - ax1, ay1 - ay0)
            layer.stroke_style = "rgba(255, 255, 255, 0.6)"  # rule of thirds inside the active crop
            layer.line_width = 1
            layer.set_line_dash([])
            for f in (1 / 3, 2 / 3):
                layer.stroke_line(ax0 + f * (ax1 - ax0), ay0, ax0 + f * (ax1 - ax0), ay1)
                layer.stroke_line(ax0, ay0 + f * (ay1 - ay0), ax1, ay0 + f * (ay1 - ay0))
            for i, b in enumerate(s.boxes):
                x0, y0 = self.to_canvas(*b.box[:2])
                x1, y1 = self.to_canvas(*b.box[2:])
                layer.stroke_style = GREEN
                layer.line_width = 3 if i == s.active else 2
                layer.set_line_dash([6, 4])
                layer.stroke_rect(x0, y0, x1 - x0, y1 - y0)
                layer.set_line_dash([])
                layer.fill_style = GREEN
                h = HANDLE_PX
                for hx, hy in ((x0, y0), ((x0 + x1) / 2, y0), (x1, y0), (x1, (y0 + y1) / 2), (x1, y1),
                               ((x0 + x1) / 2, y1), (x0, y1), (x0, (y0 + y1) / 2)):
                    layer.fill_rect(hx - h / 2, hy - h / 2, h, h)

    def update_panel(self) -> None:
        s = self.session
        warnings = "".join(f"<br><b style='color:#c62828'>{html.escape(w)}</b>" for w in [*s.others, s.notice] if w)
        if s.done:
            self.panel.value = (f"<b>All {_count(len(s.queue), 'image')} reviewed.</b><br>"
                                f"{_count(s.decided, 'decision')} this session, {s.acceptance_rate:.0%} accepted."
                                + warnings)
            self.companion.value = ""
            return
        head = (f"<b>{s.index + 1} of {len(s.queue)}</b> · {_count(s.decided, 'decision')}, "
                f"{s.acceptance_rate:.0%} accepted<br><code>{html.escape(s.image)}</code>")
        if s.problem:
            body = (f"<br><b style='color:#c62828'>{html.escape(s.problem)}</b><br>"
                    "nothing to accept or reject: skip (s or →) to go on")
        else:
            score = s.boxes[0].score if s.boxes and s.boxes[0].score is not None else float("nan")
            body = (f" ({s.width}×{s.height})<br>suggested by <b>{html.escape(s.model_name)}</b>, score {score:.3f}"
                    f"<br>aspect lock: {s.aspect_name}")
        retrained = f"<br><i>{html.escape(self.last_retrain)}</i>" if self.last_retrain else ""
        self.panel.value = head + body + retrained + warnings
        self.companion.value = s.companion

    # actions (keys and buttons share them) ---------------------------------------------------------------

    def _after_decision(self, started: float) -> None:
        self.show()
        self.latency_ms = (time.perf_counter() - started) * 1000
        if self.retrain_every and self.session.decided and self.session.decided % self.retrain_every == 0:
            self.retrain()

    def accept(self) -> None:
        self._decide(self.session.accept)

    def reject(self) -> None:
        self._decide(self.session.reject)

    def _decide(self, action: Callable[[], list]) -> None:
        started = time.perf_counter()
        if self._logging(action):
            self._after_decision(started)
        else:  # nothing logged: the panel says why (an unreadable image, another reviewer's decision)
            self.update_panel()

    def _logging(self, action: Callable[[], object]) -> object:
        """Run a logging action; a full disk or a read-only log folder is shown, and the image stays."""
        try:
            result = action()
        except OSError as exc:
            message = explain_os_error(exc, retry="press the key again")
            self.status.value = f"{_NOT_LOGGED} {html.escape(message)}"
            return None
        if self.status.value.startswith(_NOT_LOGGED):
            self.status.value = ""
        return result

    def skip(self) -> None:
        self.session.skip()
        self.show()

    def previous(self) -> None:
        self.session.previous()
        self.show()

    def undo(self) -> None:
        if self._logging(self.session.undo):
            self.show()

    def add_crop(self) -> None:
        if not self.session.done:
            self.session.add_box()
            self.draw_overlay()

    def set_aspect(self, name: str) -> None:
        if self.session.done:
            self.session.aspect_name = name
        else:
            self.session.set_aspect(name)
        if self.aspect.value != name:
            self.aspect.value = name
        self.draw_overlay()
        self.update_panel()

    def zoom_by(self, factor: float, around: tuple[float, float] | None = None) -> None:
        """Zoom about a canvas point (default: the centre); the crops keep their image coordinates."""
        cx, cy = around or (self.cw / 2, self.ch / 2)
        x, y = self.to_image(cx, cy)
        self.zoom = min(16.0, max(1.0, self.zoom * factor))
        nx, ny = self.to_canvas(x, y)
        self.pan = (self.pan[0] + cx - nx, self.pan[1] + cy - ny) if self.zoom > 1 else (0.0, 0.0)
        self.redraw()

    def reset_view(self) -> None:
        self.zoom, self.pan = 1.0, (0.0, 0.0)
        self.redraw()

    def retrain(self) -> None:
        """Train a new proposer version in a background thread; the widget stays responsive."""
        if self.retrain_fn is None or (self._retraining and self._retraining.is_alive()):
            return
        self.status.value = "retraining in the background ..."

        def work():
            try:
                proposer = self.retrain_fn()
            except Exception as exc:  # shown in the panel; the review goes on with the current model
                self.status.value = (f"retraining failed ({type(exc).__name__}): {html.escape(str(exc))}; "
                                     f"still suggesting with {html.escape(self.session.suggester.proposer.name)}")
                return
            self.session.suggester.proposer = proposer
            self.last_retrain = f"now suggesting with {proposer.name}"
            self.status.value = f"retrained: following suggestions come from {proposer.name}"
            self.update_panel()

        self._retraining = threading.Thread(target=work, daemon=True)
        self._retraining.start()

    def wait_for_retrain(self, timeout: float = 300) -> None:
        if self._retraining:
            self._retraining.join(timeout)

    def close(self) -> None:
        """Close the widget and withdraw this reviewer's registration on the root."""
        self.session.close()
        super().close()

    # events --------------------------------------------------------------------------------------------

    def _on_down(self, cx: float, cy: float) -> None:
        if self.session.done:
            return
        x, y = self.to_image(cx, cy)
        if not self.session.press(x, y, tolerance=HANDLE_PX / self.scale):
            self._panning = (cx, cy, self.pan) if self.zoom > 1 else None
        self.draw_overlay()

    def _on_move(self, cx: float, cy: float) -> None:
        if self.session.dragging:
            self.session.move(*self.to_image(cx, cy))
            self.draw_overlay()
        elif self._panning:
            sx, sy, (px, py) = self._panning
            self.pan = (px + cx - sx, py + cy - sy)
            self.redraw()

    def _on_up(self, cx: float, cy: float) -> None:
        if self.session.dragging:
            self.session.move(*self.to_image(cx, cy))
            self.session.release()
            self.draw_overlay()
        self._panning = None

    KEYS = {"Enter": "accept", "Delete": "reject", "Backspace": "reject", "ArrowRight": "skip",
            "ArrowLeft": "previous", "s": "skip", "u": "undo", "a": "add_crop", "+": "zoom_in", "=": "zoom_in",
            "-": "zoom_out", "0": "reset_view"}

    def _on_key(self, key: str, shift: bool, ctrl: bool, meta: bool) -> None:
        action = self.KEYS.get(key)
        if action == "zoom_in":
            self.zoom_by(ZOOM_STEP)
        elif action == "zoom_out":
            self.zoom_by(1 / ZOOM_STEP)
        elif action:
            getattr(self, action)()


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def open_reviewer(root: str | Path = ".", proposer: str | Path | None = None, images: str | Path | None = None,
                  order: str = "file", aspect: str = "free", aspect_choices: list[str] | None = None,
                  retrain_every: int = 0, device: str = "auto") -> CropReviewer:
    """A reviewer over the library's images that have no decision yet, suggesting with the latest proposer (or
    the ``proposer`` file given); Retrain trains the next version on every decision logged so far, with the same
    features."""
    from dataclasses import replace

    from cropkit.features.encoder_id import parse_encoder_id
    from cropkit.layout import Layout
    from cropkit.learn.suggest import Suggester
    from cropkit.learn.train import TrainOptions, run_train
    from cropkit.review.session import log_sizes, order_queue, pending_images

    layout = Layout.from_args(root, images)
    suggester = replace(Suggester.open(layout.root, proposer, device), layout=layout)  # names images as the logs do
    marks = log_sizes(layout.logs)  # before the pending list: a decision logged elsewhere from now on is caught
    queue = order_queue(pending_images(layout), order, suggester)
    session = ReviewSession(suggester, queue, aspect_name=aspect, log_marks=marks)
    meta = suggester.proposer.meta

    def retrain():
        opts = TrainOptions(root=layout.root, images=layout.images, arch=parse_encoder_id(suggester.encoder_id)[0],
                            weights=meta.get("pretrained"), device=device, progress=False, workers=0)
        return run_train(opts, log=lambda _m: None).proposer

    reviewer = CropReviewer(session, retrain=retrain, retrain_every=retrain_every)
    if aspect_choices:
        reviewer.aspect.options = [a for a in ASPECT_CHOICES if a in aspect_choices or a == aspect]
    return reviewer
