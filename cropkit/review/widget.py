"""The crop reviewer widget: builds the canvas, buttons and panel, and wires mouse, keys and buttons to the
session (decisions), its editor (crops), the viewport (zoom, pan), the pictures and the painters.

The photo is sent once per image as a display-size JPEG on the bottom layer; crops, handles, dimming and the
rule-of-thirds overlay are redrawn on the middle layer; the top layer takes the mouse and keys. Enter accepts,
Delete or Backspace rejects, arrows move, u undoes, s skips; every key has a button too. Retraining runs in a
background thread, so the widget stays responsive.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable

import ipywidgets as widgets
from ipycanvas import MultiCanvas, hold_canvas

from cropkit.errors import explain_os_error
from cropkit.review.paint import HANDLE_PX, paint_crops, paint_photo, panel_html
from cropkit.review.pictures import Pictures
from cropkit.review.session import ASPECT_CHOICES, ReviewSession
from cropkit.review.viewport import Viewport

ZOOM_STEP = 1.6

_NOT_LOGGED = "<b style='color:#c62828'>Not logged:</b>"


class CropReviewer(widgets.VBox):
    """Review crop suggestions one image at a time; decisions go to the logs at once."""

    KEYS = {"Enter": "accept", "Delete": "reject", "Backspace": "reject", "ArrowRight": "skip",
            "ArrowLeft": "previous", "s": "skip", "u": "undo", "a": "add_crop", "+": "zoom_in", "=": "zoom_in",
            "-": "zoom_out", "0": "reset_view"}

    def __init__(self, session: ReviewSession, retrain: Callable[[], object] | None = None,
                 retrain_every: int = 0, width: int = 900, height: int = 600):
        self.session = session
        self.retrain_fn = retrain
        self.retrain_every = retrain_every
        self.view = Viewport(width, height)
        self.pictures = Pictures(width, height)
        self._panning: tuple[float, float] | None = None  # the last pointer position while panning
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
            "zoom_in": button("Zoom +", "+", self.zoom_in),
            "zoom_out": button("Zoom −", "-", self.zoom_out),
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
        self.session.go_to(self.session.index)
        self.show()

    # screen ----------------------------------------------------------------------------------------------

    def show(self) -> None:
        """Put the current image (whole), its crops and the panel on screen, and prepare the next image meanwhile."""
        s = self.session
        self.view.show(s.width, s.height)
        self.redraw()
        self.update_panel()
        if s.index + 1 < len(s.queue):
            self.pictures.prefetch(s.queue[s.index + 1])

    def redraw(self) -> None:
        """Both layers; an image found unreadable only now is shown as such."""
        s = self.session
        picture = None
        if not s.done and not s.problem:
            try:
                picture = self.pictures.for_view(s.queue[s.index], self.view)
            except Exception as exc:  # e.g. the file was cut short or removed since it was queued
                s.cannot_show(exc)
                self.update_panel()
        with hold_canvas():
            paint_photo(self.canvas[0], self.view, picture, s.problem)
            paint_crops(self.canvas[1], self.view, s.editor)

    def draw_overlay(self) -> None:
        """The crops layer only (the photo stays)."""
        with hold_canvas():
            paint_crops(self.canvas[1], self.view, self.session.editor)

    def update_panel(self) -> None:
        self.panel.value = panel_html(self.session, self.last_retrain)
        self.companion.value = "" if self.session.done else self.session.companion

    # actions (keys and buttons share them) ---------------------------------------------------------------

    def accept(self) -> None:
        self._decide(self.session.accept)

    def reject(self) -> None:
        self._decide(self.session.reject)

    def _decide(self, action: Callable[[], list]) -> None:
        started = time.perf_counter()
        if not self._logging(action):  # nothing logged: the panel says why (unreadable, another reviewer's)
            self.update_panel()
            return
        self.show()
        self.latency_ms = (time.perf_counter() - started) * 1000
        if self.retrain_every and self.session.decided and self.session.decided % self.retrain_every == 0:
            self.retrain()

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
        self.session.add_box()
        self.draw_overlay()

    def set_aspect(self, name: str) -> None:
        self.session.set_aspect(name)
        if self.aspect.value != name:
            self.aspect.value = name
        self.draw_overlay()
        self.update_panel()

    def zoom_in(self) -> None:
        self.zoom_by(ZOOM_STEP)

    def zoom_out(self) -> None:
        self.zoom_by(1 / ZOOM_STEP)

    def zoom_by(self, factor: float, around: tuple[float, float] | None = None) -> None:
        """Zoom about a canvas point (default: the centre); the crops keep their image coordinates."""
        self.view.zoom_by(factor, around)
        self.redraw()

    def reset_view(self) -> None:
        self.view.reset()
        self.redraw()

    def retrain(self) -> None:
        """Train a new proposer version in a background thread; the widget stays responsive."""
        if self.retrain_fn is None or (self._retraining and self._retraining.is_alive()):
            return
        self.status.value = "retraining in the background ..."

        def work():
            try:
                proposer = self.retrain_fn()
            except Exception as exc:  # shown in the panel; the review goes on with the current proposer
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
        """Grab a crop or a handle; elsewhere, when zoomed in, start panning."""
        if self.session.done:
            return
        x, y = self.view.to_image(cx, cy)
        if not self.session.editor.press(x, y, tolerance=HANDLE_PX / self.view.scale):
            self._panning = (cx, cy) if self.view.zoom > 1 else None
        self.draw_overlay()

    def _on_move(self, cx: float, cy: float) -> None:
        editor = self.session.editor
        if editor.dragging:
            editor.move(*self.view.to_image(cx, cy))
            self.draw_overlay()
        elif self._panning:
            self.view.pan_by(cx - self._panning[0], cy - self._panning[1])
            self._panning = (cx, cy)
            self.redraw()

    def _on_up(self, cx: float, cy: float) -> None:
        editor = self.session.editor
        if editor.dragging:
            editor.move(*self.view.to_image(cx, cy))
            editor.release()
            self.draw_overlay()
        self._panning = None

    def _on_key(self, key: str, shift: bool, ctrl: bool, meta: bool) -> None:
        action = self.KEYS.get(key)
        if action:
            getattr(self, action)()
