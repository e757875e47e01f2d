"""Drawing the reviewer: the photo layer and the crops overlay on canvas layers, and the side panel's HTML.

A layer is anything with ipycanvas's drawing calls (a recording fake in the tests); positions come from a
``Viewport``, crops from a ``CropEditor``, the panel from the session's state. Nothing here reads or decides.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING

import ipywidgets as widgets

from cropkit.geometry import Box
from cropkit.review.editor import CropEditor, handle_points
from cropkit.review.viewport import Viewport

if TYPE_CHECKING:
    from cropkit.review.session import ReviewSession

GREEN = "#39ff14"
HANDLE_PX = 9  # handle squares (and the grab tolerance), in canvas pixels
BACKGROUND = "#222"
PROBLEM_RED = "#ff8a80"
WARNING = "<b style='color:#c62828'>{}</b>"


def paint_photo(layer, view: Viewport, picture: tuple[bytes, Box] | None, problem: str = "") -> None:
    """The background, then ``picture`` (a JPEG and the image box it shows) where the view puts it, or the reason
    the image cannot be shown."""
    layer.clear()
    layer.fill_style = BACKGROUND
    layer.fill_rect(0, 0, view.canvas_width, view.canvas_height)
    if picture is not None and not problem:
        jpeg, (x0, y0, x1, y1) = picture
        cx0, cy0 = view.to_canvas(x0, y0)
        cx1, cy1 = view.to_canvas(x1, y1)
        layer.draw_image(widgets.Image(value=jpeg, format="jpeg"), cx0, cy0, cx1 - cx0, cy1 - cy0)
    if problem:
        layer.fill_style = PROBLEM_RED
        layer.font = "16px sans-serif"
        layer.fill_text(problem[:110], 20, view.canvas_height / 2)
        layer.fill_text("nothing to accept: press s or → for the next image", 20, view.canvas_height / 2 + 24)


def paint_crops(layer, view: Viewport, editor: CropEditor) -> None:
    """Every crop as a dashed green frame with its handles; outside the active crop dimmed, inside it the rule of
    thirds."""
    layer.clear()
    if not editor.boxes:
        return
    cw, ch = view.canvas_width, view.canvas_height
    active = editor.boxes[editor.active].box
    ax0, ay0 = view.to_canvas(*active[:2])
    ax1, ay1 = view.to_canvas(*active[2:])
    layer.fill_style = "rgba(0, 0, 0, 0.5)"  # dim what the active crop cuts away
    layer.fill_rect(0, 0, cw, ay0)
    layer.fill_rect(0, ay1, cw, ch - ay1)
    layer.fill_rect(0, ay0, ax0, ay1 - ay0)
    layer.fill_rect(ax1, ay0, cw - ax1, ay1 - ay0)
    layer.stroke_style = "rgba(255, 255, 255, 0.6)"  # rule of thirds inside the active crop
    layer.line_width = 1
    layer.set_line_dash([])
    for f in (1 / 3, 2 / 3):
        layer.stroke_line(ax0 + f * (ax1 - ax0), ay0, ax0 + f * (ax1 - ax0), ay1)
        layer.stroke_line(ax0, ay0 + f * (ay1 - ay0), ax1, ay0 + f * (ay1 - ay0))
    for i, b in enumerate(editor.boxes):
        x0, y0 = view.to_canvas(*b.box[:2])
        x1, y1 = view.to_canvas(*b.box[2:])
        layer.stroke_style = GREEN
        layer.line_width = 3 if i == editor.active else 2
        layer.set_line_dash([6, 4])
        layer.stroke_rect(x0, y0, x1 - x0, y1 - y0)
        layer.set_line_dash([])
        layer.fill_style = GREEN
        for hx, hy in handle_points((x0, y0, x1, y1)).values():
            layer.fill_rect(hx - HANDLE_PX / 2, hy - HANDLE_PX / 2, HANDLE_PX, HANDLE_PX)


def panel_html(session: ReviewSession, retrained: str = "") -> str:
    """The side panel: where the review is, what is shown and who suggested it, why an image cannot be decided,
    the last retraining, and the warnings (other reviewers, what the last key did not do). Names are escaped."""
    s = session
    warnings = "".join(f"<br>{WARNING.format(html.escape(w))}" for w in [*s.others, s.notice] if w)
    if s.done:
        return (f"<b>All {_count(len(s.queue), 'image')} reviewed.</b><br>"
                f"{_count(s.decided, 'decision')} this session, {s.acceptance_rate:.0%} accepted." + warnings)
    head = (f"<b>{s.index + 1} of {len(s.queue)}</b> · {_count(s.decided, 'decision')}, "
            f"{s.acceptance_rate:.0%} accepted<br><code>{html.escape(s.image)}</code>")
    if s.problem:
        body = (f"<br>{WARNING.format(html.escape(s.problem))}<br>"
                "nothing to accept or reject: skip (s or →) to go on")
    else:
        score = s.boxes[0].score if s.boxes else None
        chance = f"{score:.0%} likely to be accepted" if score is not None and math.isfinite(score) else "no score"
        body = (f" ({s.width}×{s.height})<br>suggested by <b>{html.escape(s.proposer_name)}</b>, {chance}"
                f"<br>aspect lock: {s.aspect_name}")
    retrained = f"<br><i>{html.escape(retrained)}</i>" if retrained else ""
    return head + body + retrained + warnings


def _count(n: int, noun: str) -> str:
    """'1 image', '2 images'."""
    return f"{n} {noun}" + ("" if n == 1 else "s")
