"""The crop reviewer widget: builds the canvas, buttons and panel, and wires mouse, keys and buttons to the
session (decisions), its editor (crops), the viewport (zoom, pan), the pictures and the painters.

The photo is sent once per image as a display-size JPEG on the bottom layer; crops, handles, dimming and the
overlay are redrawn on the middle layer; the top layer takes the mouse. Keys come through the page bridge, which
holds the keyboard while the pointer has been over the reviewer (``KEYS`` lists them; ``?`` shows them). Retraining
runs in a background thread with a progress bar, so the widget stays responsive.
"""

from __future__ import annotations

import html
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import ipywidgets as widgets
from ipycanvas import MultiCanvas, hold_canvas

from cropkit.decisions import MAX_ANGLE
from cropkit.errors import explain_os_error
from cropkit.review.bridge import KEYS_BADGE, PageBridge
from cropkit.review.paint import (
    GRAB_PX,
    MARGIN_PX,
    OVERLAYS,
    keys_html,
    paint_crops,
    paint_photo,
    panel_html,
    view_text,
)
from cropkit.review.pictures import Pictures
from cropkit.review.session import ASPECT_CHOICES, ReviewSession
from cropkit.review.viewport import Viewport

ZOOM_STEP = 1.6
NUDGE_PX, NUDGE_SHIFT_PX = 1.0, 10.0  # image pixels per arrow press (with Shift)
TURN_DEG, TURN_SHIFT_DEG = 0.5, 5.0  # degrees per [ or ] press (with Shift)
ECHO_S = 3.0  # seconds during which the slider may still send back a value it was given
PANEL_PX = 290  # the side panel's width
MIN_CANVAS = (480, 360)
CHROME_PX = 300  # what JupyterLab and the reviewer's own rows take of the window's height
STATUS_PX = 40  # the status line's fixed height (two lines; a longer message scrolls)

_NOT_LOGGED = "<b style='color:#c62828'>Not logged:</b>"
_UNDID = "undid "  # the status after an undo, until the next decision

# The keys as shipped: (keys, what they do). Dispatch is in CropReviewer.handle_key; the README has this table.
KEYS = (
    ("Enter", "accept: log the crops (approved, or modified if you changed them) and go on"),
    ("Delete / Backspace", "reject the suggestion (crops you added are still logged) and go on"),
    ("Esc", "back to the suggestion as shown (or close this list)"),
    ("drag", "an edge or corner anywhere along it resizes, inside moves, outside draws the crop anew (replacing "
             "it)"),
    ("Alt+drag", "outside the crops: draws another crop of this picture (as N adds one)"),
    ("Shift+drag", "an edge or corner: resizes keeping the crop's own ratio (when no aspect is locked)"),
    ("← ↑ → ↓", "move the active crop 1 px of the image (Shift: 10 px)"),
    ("Alt/Ctrl + ← →", "previous / next image without deciding"),
    ("S", "skip: next image, no decision"),
    ("U or Ctrl+Z", "undo the last decision"),
    ("X", "swap the locked aspect's orientation (4:5 to 5:4)"),
    ("A", "aspect lock off / back on"),
    ("O", "cycle overlays: thirds, golden ratio, diagonals, grid, none"),
    ("[ ]", "straighten 0.5° (Shift: 5°)"),
    ("N / D / Tab", "new crop / delete the active added crop / next crop"),
    ("Z, + -, Ctrl/Cmd+wheel", "zoom at the pointer (Z toggles fit; zoomed in, the wheel alone zooms too), 0 fits; "
                               "at fit the wheel scrolls the notebook"),
    ("space + drag", "pan without moving any crop"),
    ("R", "at the end: review the skipped images"),
    ("?", "show or hide this list"),
)


@dataclass
class Retrained:
    """What a background retraining gives the reviewer: the proposer to suggest with from now on (None: keep the
    current one) and a sentence for the panel."""

    proposer: object | None
    message: str


class WidgetBar:
    """A tqdm-like bar (``total``, ``update``) that moves an ipywidgets progress bar from the training thread."""

    def __init__(self, bar: widgets.FloatProgress):
        self.bar, self.total, self.n = bar, 1, 0

    def update(self, n: int = 1) -> None:
        self.n += n
        self.bar.value = min(1.0, self.n / max(1, self.total))


class CropReviewer(widgets.VBox):
    """Review crop suggestions one image at a time; decisions go to the logs at once."""

    def __init__(self, session: ReviewSession, retrain: Callable[[WidgetBar], Retrained] | None = None,
                 retrain_every: int = 0, train_after: int = 10, width: int = 900, height: int = 600):
        self.session = session
        self.retrain_fn = retrain
        self.retrain_every = retrain_every
        self.train_after = train_after  # with no proposer yet: train the first one after this many decisions
        self._first_tried = 0  # decisions logged when the last try to train a first proposer started
        self.view = Viewport(width, height, margin=MARGIN_PX)
        self.pictures = Pictures(width, height)
        self.overlay = OVERLAYS[0]
        self.show_keys = False
        self.held = False  # the page says the reviewer has the keyboard
        self._space = False  # space is held: drags pan
        self._panning: tuple[float, float] | None = None  # the last pointer position while panning
        self._pointer: tuple[float, float] | None = None  # the last pointer position on the canvas
        self._press = {"alt": False, "shift": False}  # the modifiers of the press the canvas reports next: Alt
        # adds a drawn crop, Shift keeps the crop's ratio while resizing
        self._retraining: threading.Thread | None = None
        self._syncing = False  # controls being set from the session: their observers stay quiet
        self._angles_shown: deque[tuple[float, float]] = deque(maxlen=32)  # (angle, time) the slider was sent
        self.last_retrain: str = ""
        self.latency_ms: float | None = None

        self.canvas = MultiCanvas(3, width=width, height=height)
        self.canvas.add_class("cropkit-canvas")
        self.canvas.on_mouse_down(self._on_down)
        self.canvas.on_mouse_move(self._on_move)
        self.canvas.on_mouse_up(self._on_up)
        self.canvas.on_mouse_wheel(self._on_wheel)
        self.canvas.on_client_ready(self.redraw)
        self.bridge = PageBridge(self._on_page)

        def button(label: str, tip: str, action: Callable[[], None]) -> widgets.Button:
            b = widgets.Button(description=label, tooltip=tip, layout=widgets.Layout(width="auto"))
            b.on_click(lambda _b: action())
            return b

        self.buttons = {
            "previous": button("◀ Prev", "Alt/Ctrl+←: previous image", self.previous),
            "accept": button("Accept ⏎", "Enter: log the crops and go on", self.accept),
            "reject": button("Reject ⌫", "Delete/Backspace: the suggestion is wrong", self.reject),
            "skip": button("Skip (S)", "S: next image, no decision", self.skip),
            "next": button("Next ▶", "Alt/Ctrl+→: next image, no decision", self.skip),
            "undo": button("Undo (U)", "U or Ctrl+Z: take the last decision back", self.undo),
            "reset": button("Reset (Esc)", "Esc: back to the suggestion", self.reset_crops),
            "add": button("New crop (N)", "N, or Alt+drag outside the crop: another crop of this image",
                          self.add_crop),
            "remove": button("Delete crop (D)", "D: delete the active crop you added", self.remove_crop),
            "swap": button("Swap ⇄ (X)", "X: 4:5 becomes 5:4", self.swap_orientation),
            "overlay": button("Overlay (O)", "O: thirds, golden ratio, diagonals, grid, none", self.cycle_overlay),
            "zoom_out": button("−", "- or Ctrl/Cmd+wheel: zoom out at the pointer", self.zoom_out),
            "zoom_in": button("+", "+, Z or Ctrl/Cmd+wheel: zoom in at the pointer", self.zoom_in),
            "fit": button("Fit (0)", "0: the whole image", self.reset_view),
            "keys": button("Keys (?)", "?: every key", self.toggle_keys),
            "retrain": button("Retrain", "train a new proposer version in the background", self.retrain),
            "skipped": button("Review skipped (R)", "R: go through the images left without a decision",
                              self.review_skipped),
        }
        self.pan_mode = widgets.ToggleButton(description="Pan (space)", tooltip="drags pan; or hold space",
                                             layout=widgets.Layout(width="auto"))
        self.aspect = widgets.Dropdown(options=list(ASPECT_CHOICES), value=session.aspect_name,
                                       description="Aspect", layout=widgets.Layout(width="150px"),
                                       style={"description_width": "45px"})
        self.aspect.observe(lambda change: self._quiet(self.set_aspect, change["new"]), names="value")
        self.angle = widgets.FloatSlider(0.0, min=-MAX_ANGLE, max=MAX_ANGLE, step=0.1, description="Straighten",
                                         readout_format=".1f", continuous_update=True,
                                         layout=widgets.Layout(width="300px"), style={"description_width": "70px"})
        self.angle.observe(self._on_slider, names="value")
        self.progress = widgets.FloatProgress(0.0, min=0.0, max=1.0, description="training",
                                              layout=widgets.Layout(width="220px", visibility="hidden"))
        self.panel = widgets.HTML(layout=widgets.Layout(width=f"{PANEL_PX - 20}px", flex="0 0 auto"))
        self.view_line = widgets.HTML(layout=widgets.Layout(flex="0 0 auto"))
        self.companion = widgets.Textarea(disabled=True, layout=widgets.Layout(width=f"{PANEL_PX - 30}px",
                                                                               height="140px", flex="0 0 auto"))
        self.status = widgets.HTML(layout=widgets.Layout(height=f"{STATUS_PX}px", overflow="hidden auto"))
        hint = widgets.HTML("<span class='cropkit-keys-hint'>Keys go to the reviewer once the pointer has been over "
                            "it (blue frame and badge) until you click another cell; ? lists them. The wheel scrolls "
                            "the notebook; Ctrl/Cmd+wheel, Z or + zoom the picture.</span>")
        wrap = widgets.Layout(flex_flow="row wrap", align_items="center")
        decide = widgets.HBox([self.buttons[k] for k in ("previous", "accept", "reject", "skip", "next", "undo",
                                                         "reset", "skipped")], layout=wrap)
        tools = widgets.HBox([self.aspect, *(self.buttons[k] for k in ("swap", "add", "remove", "overlay")),
                              self.angle, *(self.buttons[k] for k in ("zoom_out", "zoom_in", "fit")), self.pan_mode,
                              self.buttons["keys"], self.buttons["retrain"], self.progress], layout=wrap)
        # The side panel is exactly as tall as the canvas and scrolls its text: a long message or the keys list
        # never makes the row taller, so the page never stretches the canvas and nothing below it moves.
        badge = widgets.HTML(KEYS_BADGE, layout=widgets.Layout(flex="0 0 auto"))
        self.side = widgets.VBox([badge, self.panel, self.view_line, widgets.HTML("<b>Companion (read-only)</b>"),
                                  self.companion],
                                 layout=widgets.Layout(width=f"{PANEL_PX}px", min_width=f"{PANEL_PX}px",
                                                       height=f"{height}px", overflow="hidden auto"))
        row = widgets.HBox([self.canvas, self.side], layout=widgets.Layout(align_items="flex-start"))
        super().__init__([row, decide, tools, hint, self.status, self.bridge],
                         layout=widgets.Layout(width="100%", padding="4px"))
        self.add_class("cropkit-reviewer")
        self.session.go_on(self.session.index)  # past any unreadable images at the start
        self.show()

    # screen ----------------------------------------------------------------------------------------------

    def show(self) -> None:
        """Put the current image (whole), its crops and the panel on screen, and prepare the next image meanwhile."""
        s = self.session
        self.view.show(s.width, s.height)
        self._sync_controls()
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
                picture = self.pictures.for_view(s.queue[s.index], self.view, s.editor.angle)
            except Exception as exc:  # e.g. the file was cut short or removed since it was queued
                s.cannot_show(exc)
                self.update_panel()
        with hold_canvas():
            paint_photo(self.canvas[0], self.view, picture, s.problem, s.editor.angle)
            self._paint_crops()
        self.bridge.wheel_zooms = self.view.zoom > 1.0001  # zoomed in on purpose: the wheel goes on zooming

    def draw_overlay(self) -> None:
        """The crops layer only (the photo stays)."""
        with hold_canvas():
            self._paint_crops()

    def _paint_crops(self) -> None:
        paint_crops(self.canvas[1], self.view, self.session.editor, self.overlay, self.held)
        self.view_line.value = view_text(self.view, self.session.editor, self.overlay)

    def update_panel(self) -> None:
        self.panel.value = keys_html(KEYS) if self.show_keys else panel_html(self.session, self.last_retrain)
        self.companion.value = "" if self.session.done else self.session.companion

    def _sync_controls(self) -> None:
        """The aspect control and the angle slider show the session's state (without acting on it)."""
        self._syncing = True
        try:
            self.aspect.value = self.session.aspect_name
            self.angle.value = self.session.editor.angle
            self._angles_shown.append((self.session.editor.angle, time.monotonic()))
        finally:
            self._syncing = False

    def _quiet(self, action: Callable[[object], None], value: object) -> None:
        if not self._syncing:
            action(value)

    def _on_slider(self, change: dict) -> None:
        """The user moved the slider. The browser's slider also sends back, late, values the keys gave it (after
        ] ] ] it may report the first one): a value sent in the last seconds that differs from the angle now is
        such an echo, not a move."""
        new, now = change["new"], time.monotonic()
        if self._syncing or abs(new - self.session.editor.angle) < 0.01:
            return
        if any(abs(new - a) < 0.01 and now - t < ECHO_S for a, t in self._angles_shown):
            self._sync_controls()  # show the angle in force again
            return
        self.set_angle(new)

    def resize(self, width: int, height: int) -> None:
        """Give the canvas ``width`` x ``height`` pixels (the page's size reports decide them)."""
        width, height = max(MIN_CANVAS[0], int(width)), max(MIN_CANVAS[1], int(height))
        if (width, height) == (self.view.canvas_width, self.view.canvas_height):
            return
        self.canvas.width, self.canvas.height = width, height
        self.side.layout.height = f"{height}px"
        zoom = self.view.zoom
        self.view.resize(width, height)
        if zoom == 1:
            self.view.reset()
        self.pictures = Pictures(width, height)
        self.redraw()

    # actions (keys and buttons share them) ---------------------------------------------------------------

    def accept(self) -> None:  # on an image that can't be read: nothing to decide, go on
        self.skip() if self.session.problem else self._decide(self.session.accept)

    def reject(self) -> None:
        self.skip() if self.session.problem else self._decide(self.session.reject)

    def _decide(self, action: Callable[[], list]) -> None:
        started = time.perf_counter()
        if not self._logging(action):  # nothing logged: the panel says why (unreadable, another reviewer's)
            self.update_panel()
            return
        self.show()
        self.latency_ms = (time.perf_counter() - started) * 1000
        s = self.session
        # with no proposer yet: train one after train_after decisions, and again after as many more each time
        # the one trained was not shown better than the starting crop (one version file per try, not per decision)
        first = s.suggester.proposer is None and s.decided - self._first_tried >= self.train_after
        if first or (self.retrain_every and s.decided and s.decided % self.retrain_every == 0):
            if first:
                self._first_tried = s.decided
            self.retrain()

    def _logging(self, action: Callable[[], object]) -> object:
        """Run a logging action; a full disk or a read-only log folder is shown, and the image stays."""
        try:
            result = action()
        except OSError as exc:
            message = explain_os_error(exc, retry="press the key again")
            self.status.value = f"{_NOT_LOGGED} {html.escape(message)}"
            return None
        if self.status.value.startswith((_NOT_LOGGED, _UNDID)):
            self.status.value = ""
        return result

    def skip(self) -> None:
        self.session.skip()
        self.show()

    def previous(self) -> None:
        self.session.previous()
        self.show()

    def review_skipped(self) -> None:
        if self.session.review_skipped():
            self.show()

    def undo(self) -> None:
        """U: take the last decision back, and say which one it was."""
        undone = self._logging(self.session.undo)
        if undone:
            again = (f"; the earlier decision on it ({undone.replaced[1].describe()}) is in force again"
                     if undone.replaced else "")
            n = len(undone.records)
            self.status.value = html.escape(f"{_UNDID}{undone.describe()} on {self.session.image} "
                                            f"({n} logged line{'s' if n != 1 else ''} cancelled){again}")
            self.show()

    def reset_crops(self) -> None:
        """Esc: the keys list closes first; else the crops go back to the suggestion, unturned."""
        if self.show_keys:
            self.toggle_keys()
            return
        self.session.reset_crops()
        self._sync_controls()
        self.redraw()
        self.update_panel()

    def add_crop(self) -> None:
        self.session.add_box()
        self.draw_overlay()
        self.update_panel()

    def remove_crop(self) -> None:
        if not self.session.editor.remove_active():
            self.status.value = "only a crop you added can be deleted; Delete/Backspace rejects the suggestion"
        self.draw_overlay()
        self.update_panel()

    def next_crop(self) -> None:
        self.session.editor.next_active()
        self.draw_overlay()
        self.update_panel()

    def nudge(self, dx: float, dy: float) -> None:
        self.session.editor.nudge(dx, dy)
        self.draw_overlay()
        self.update_panel()

    def set_aspect(self, name: str) -> None:
        self.session.set_aspect(name)
        self._sync_controls()
        self.draw_overlay()
        self.update_panel()

    def toggle_lock(self) -> None:
        self.session.toggle_lock()
        self._sync_controls()
        self.draw_overlay()
        self.update_panel()

    def swap_orientation(self) -> None:
        self.session.swap_orientation()
        self._sync_controls()
        self.draw_overlay()
        self.update_panel()

    def set_angle(self, angle: float) -> None:
        """Straighten the image shown by ``angle`` degrees; the crops shrink to stay on it."""
        self.session.editor.set_angle(angle)
        self._sync_controls()
        self.redraw()
        self.update_panel()

    def turn(self, degrees: float) -> None:
        self.set_angle(self.session.editor.angle + degrees)

    def cycle_overlay(self) -> None:
        self.overlay = OVERLAYS[(OVERLAYS.index(self.overlay) + 1) % len(OVERLAYS)]
        self.draw_overlay()

    def toggle_keys(self) -> None:
        """? shows every key in the side panel, in place of the image's details; ? or Esc again hides them."""
        self.show_keys = not self.show_keys
        self.update_panel()

    def zoom_in(self) -> None:
        self.zoom_by(ZOOM_STEP, self._pointer)

    def zoom_out(self) -> None:
        self.zoom_by(1 / ZOOM_STEP, self._pointer)

    def toggle_zoom(self) -> None:
        """Z: from the fitted view to 1:1 pixels (at least twice as large) at the pointer, and back."""
        if self.view.zoom > 1:
            self.reset_view()
        else:
            self.zoom_by(max(2.0, 1 / self.view.scale), self._pointer)

    def zoom_by(self, factor: float, around: tuple[float, float] | None = None) -> None:
        """Zoom about a canvas point (default: the centre); the crops keep their image coordinates."""
        self.view.zoom_by(factor, around)
        self.redraw()

    def reset_view(self) -> None:
        self.view.reset()
        self.redraw()

    def retrain(self) -> None:
        """Train a new proposer version in a background thread with a progress bar; the widget stays responsive,
        and the panel then says how the new version did and which one suggests from now on."""
        if self.retrain_fn is None or (self._retraining and self._retraining.is_alive()):
            return
        self.status.value = "retraining in the background ..."
        self.progress.value, self.progress.layout.visibility = 0.0, "visible"
        bar = WidgetBar(self.progress)

        def work():
            try:
                outcome = self.retrain_fn(bar)
            except Exception as exc:  # shown in the panel; the review goes on with the current proposer
                self.status.value = (f"retraining failed ({type(exc).__name__}): {html.escape(str(exc))}; "
                                     "still suggesting as before")
                return
            finally:
                self.progress.layout.visibility = "hidden"
            if outcome.proposer is not None:
                self.session.suggester = self.session.suggester.with_proposer(outcome.proposer)
            self.last_retrain = outcome.message
            self.status.value = html.escape(outcome.message)
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

    # keys ------------------------------------------------------------------------------------------------

    def handle_key(self, key: str, shift: bool = False, ctrl: bool = False, alt: bool = False,
                   meta: bool = False, kind: str = "keydown") -> None:
        """One key from the page (see KEYS)."""
        if key == " ":
            self._space = kind == "keydown"
            return
        if kind != "keydown":
            return
        command = ctrl or meta
        if key in ("ArrowLeft", "ArrowRight") and (alt or command):
            (self.previous if key == "ArrowLeft" else self.skip)()
        elif key.startswith("Arrow"):
            step = NUDGE_SHIFT_PX if shift else NUDGE_PX
            dx, dy = {"ArrowLeft": (-step, 0), "ArrowRight": (step, 0), "ArrowUp": (0, -step),
                      "ArrowDown": (0, step)}[key]
            self.nudge(dx, dy)
        elif command and key.lower() == "z":
            self.undo()
        elif key in ("[", "]", "{", "}"):
            self.turn((TURN_SHIFT_DEG if shift or key in "{}" else TURN_DEG) * (-1 if key in "[{" else 1))
        elif not command and not alt:
            action = self._single_keys().get(key if len(key) > 1 else key.lower())
            if action:
                action()

    def _single_keys(self) -> dict[str, Callable[[], None]]:
        return {"Enter": self.accept, "Delete": self.reject, "Backspace": self.reject, "Escape": self.reset_crops,
                "s": self.skip, "u": self.undo, "x": self.swap_orientation, "a": self.toggle_lock,
                "o": self.cycle_overlay, "n": self.add_crop, "d": self.remove_crop, "Tab": self.next_crop,
                "z": self.toggle_zoom, "+": self.zoom_in, "=": self.zoom_in, "-": self.zoom_out,
                "0": self.reset_view, "?": self.toggle_keys, "r": self.review_skipped}

    def _on_page(self, message: dict) -> None:
        kind = message.get("kind")
        if kind in ("keydown", "keyup"):
            self.handle_key(str(message.get("key", "")), bool(message.get("shift")), bool(message.get("ctrl")),
                            bool(message.get("alt")), bool(message.get("meta")), kind)
        elif kind == "pointer":  # the modifiers of the press the canvas reports next
            self._press = {"alt": bool(message.get("alt")), "shift": bool(message.get("shift"))}
        elif kind == "held":
            self.held = bool(message.get("value"))
            self.draw_overlay()
        elif kind == "size":
            width, window = int(message.get("width") or 0), int(message.get("height") or 0)
            if width > 0 and window > 0:
                canvas_width = width - PANEL_PX - 30
                self.resize(canvas_width, min(window - CHROME_PX, round(canvas_width * 0.75)))

    # mouse -----------------------------------------------------------------------------------------------

    def _on_down(self, cx: float, cy: float) -> None:
        """Pan with space held (or in pan mode); else grab an edge, a corner or a crop, or start drawing one."""
        if self.session.done or self.session.problem:
            return
        self._pointer = (cx, cy)
        if self._space or self.pan_mode.value:
            self._panning = (cx, cy)
            return
        x, y = self.view.to_image(cx, cy)
        press, self._press = self._press, {"alt": False, "shift": False}
        self.session.editor.press(x, y, tolerance=GRAB_PX / self.view.scale, add=press["alt"],
                                  keep_ratio=press["shift"])
        self.draw_overlay()

    def _on_move(self, cx: float, cy: float) -> None:
        self._pointer = (cx, cy)
        editor = self.session.editor
        if self._panning:
            self.view.pan_by(cx - self._panning[0], cy - self._panning[1])
            self._panning = (cx, cy)
            self.redraw()
        elif editor.dragging:
            editor.move(*self.view.to_image(cx, cy))
            self.draw_overlay()
        else:
            x, y = self.view.to_image(cx, cy)
            cursor = "grab" if self._space or self.pan_mode.value else editor.cursor(x, y, GRAB_PX / self.view.scale)
            if self.bridge.cursor != cursor:
                self.bridge.cursor = cursor

    def _on_up(self, cx: float, cy: float) -> None:
        editor = self.session.editor
        if self._panning:
            self._panning = None
        elif editor.dragging:
            editor.move(*self.view.to_image(cx, cy))
            editor.release()
            self.draw_overlay()
            self.update_panel()

    def _on_wheel(self, dx: float, dy: float) -> None:
        """The wheel zooms at the pointer."""
        if dy:
            self.zoom_by(ZOOM_STEP ** (-max(-3.0, min(3.0, dy / 100))), self._pointer)
