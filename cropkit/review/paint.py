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
from cropkit.review.editor import CropEditor, handle_points, ratio_name
from cropkit.review.viewport import Viewport

if TYPE_CHECKING:
    from cropkit.review.session import ReviewSession

GREEN = "#39ff14"  # the suggestion
ADDED = "#ffb300"  # crops the user added or drew
OUTLINE = "rgba(0, 0, 0, 0.85)"  # under every dashed line, so it shows on green, white and black photos alike
HANDLE_PX = 9  # handle squares, in canvas pixels
GRAB_PX = 10  # how far from an edge (anywhere along it) a press still grabs it, in canvas pixels
MARGIN_PX = 12  # the photo never touches the canvas edge: handles stay whole
BACKGROUND = "#222"
PROBLEM_RED = "#ff8a80"
WARNING = "<b style='color:#c62828'>{}</b>"
OVERLAYS = ("thirds", "golden ratio", "diagonals", "grid", "none")
PHI = (math.sqrt(5) - 1) / 2  # 0.618


def paint_photo(layer, view: Viewport, picture: tuple[bytes, Box] | None, problem: str = "",
                angle: float = 0.0) -> None:
    """The background, then ``picture`` (a JPEG and the image box it shows) where the view puts it, turned
    ``angle`` degrees about the image's centre, or the reason the image cannot be shown."""
    layer.clear()
    layer.fill_style = BACKGROUND
    layer.fill_rect(0, 0, view.canvas_width, view.canvas_height)
    if picture is not None and not problem:
        jpeg, (x0, y0, x1, y1) = picture
        image = widgets.Image(value=jpeg, format="jpeg")
        if angle:
            cx, cy = view.to_canvas(view.image_width / 2, view.image_height / 2)
            layer.save()
            layer.translate(cx, cy)
            layer.rotate(math.radians(angle))
            s = view.scale
            layer.draw_image(image, (x0 - view.image_width / 2) * s, (y0 - view.image_height / 2) * s,
                             (x1 - x0) * s, (y1 - y0) * s)
            layer.restore()
        else:
            cx0, cy0 = view.to_canvas(x0, y0)
            cx1, cy1 = view.to_canvas(x1, y1)
            layer.draw_image(image, cx0, cy0, cx1 - cx0, cy1 - cy0)
    if problem:
        layer.fill_style = PROBLEM_RED
        layer.font = "16px sans-serif"
        layer.fill_text(problem[:110], 20, view.canvas_height / 2)
        layer.fill_text("nothing to accept: Enter, s or → for the next image", 20, view.canvas_height / 2 + 24)


def overlay_lines(kind: str, box: Box) -> list[tuple[float, float, float, float]]:
    """The guide lines of overlay ``kind`` inside ``box`` (canvas pixels), as (x0, y0, x1, y1) segments."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    if kind == "thirds":
        fractions = (1 / 3, 2 / 3)
    elif kind == "golden ratio":
        fractions = (1 - PHI, PHI)
    elif kind == "grid":
        fractions = tuple(i / 8 for i in range(1, 8))
    elif kind == "fine grid":
        fractions = tuple(i / 16 for i in range(1, 16))
    elif kind == "diagonals":  # corner to corner, and from each corner square to the opposite side (45 degrees)
        side = min(w, h)
        return [(x0, y0, x1, y1), (x0, y1, x1, y0), (x0, y0, x0 + side, y0 + side), (x1, y0, x1 - side, y0 + side),
                (x0, y1, x0 + side, y1 - side), (x1, y1, x1 - side, y1 - side)]
    else:
        return []
    return ([(x0 + f * w, y0, x0 + f * w, y1) for f in fractions]
            + [(x0, y0 + f * h, x1, y0 + f * h) for f in fractions])


def paint_crops(layer, view: Viewport, editor: CropEditor, overlay: str = "thirds", held: bool = False) -> None:
    """Every crop as a dashed frame on a dark outline with its handles (the suggestion green, added crops amber);
    outside the active crop dimmed, inside it the overlay (a finer grid while dragging) and, while editing, its
    size and ratio; a frame when the reviewer has the keyboard (``held``)."""
    layer.clear()
    cw, ch = view.canvas_width, view.canvas_height
    if held:
        layer.stroke_style = "#4fc3f7"
        layer.line_width = 3
        layer.set_line_dash([])
        layer.stroke_rect(1.5, 1.5, cw - 3, ch - 3)
    if editor.boxes:
        _paint_boxes(layer, view, editor, overlay)


def _paint_boxes(layer, view: Viewport, editor: CropEditor, overlay: str) -> None:
    cw, ch = view.canvas_width, view.canvas_height
    active = editor.boxes[editor.active].box
    ax0, ay0 = view.to_canvas(*active[:2])
    ax1, ay1 = view.to_canvas(*active[2:])
    layer.fill_style = "rgba(0, 0, 0, 0.5)"  # dim what the active crop cuts away
    layer.fill_rect(0, 0, cw, ay0)
    layer.fill_rect(0, ay1, cw, ch - ay1)
    layer.fill_rect(0, ay0, ax0, ay1 - ay0)
    layer.fill_rect(ax1, ay0, cw - ax1, ay1 - ay0)
    layer.stroke_style = "rgba(255, 255, 255, 0.6)"
    layer.line_width = 1
    layer.set_line_dash([])
    lines = overlay_lines(overlay, (ax0, ay0, ax1, ay1))
    if editor.dragging:
        lines += overlay_lines("fine grid", (ax0, ay0, ax1, ay1))
    for segment in lines:
        layer.stroke_line(*segment)
    for i, b in enumerate(editor.boxes):
        x0, y0 = view.to_canvas(*b.box[:2])
        x1, y1 = view.to_canvas(*b.box[2:])
        width = 3 if i == editor.active else 2
        layer.set_line_dash([])
        layer.stroke_style = OUTLINE
        layer.line_width = width + 3
        layer.stroke_rect(x0, y0, x1 - x0, y1 - y0)
        colour = ADDED if b.added else GREEN
        layer.stroke_style = colour
        layer.line_width = width
        layer.set_line_dash([6, 4])
        layer.stroke_rect(x0, y0, x1 - x0, y1 - y0)
        layer.set_line_dash([])
        for hx, hy in handle_points((x0, y0, x1, y1)).values():
            layer.fill_style = OUTLINE
            layer.fill_rect(hx - HANDLE_PX / 2 - 1, hy - HANDLE_PX / 2 - 1, HANDLE_PX + 2, HANDLE_PX + 2)
            layer.fill_style = colour
            layer.fill_rect(hx - HANDLE_PX / 2, hy - HANDLE_PX / 2, HANDLE_PX, HANDLE_PX)
    if editor.dragging:
        x0, y0, x1, y1 = active
        text = f"{x1 - x0:.0f} × {y1 - y0:.0f} px · {ratio_name(active)}"
        layer.font = "bold 14px sans-serif"
        layer.fill_style = OUTLINE
        layer.fill_rect(ax0 + 4, ay1 - 26, 8.5 * len(text), 22)
        layer.fill_style = "#fff"
        layer.fill_text(text, ax0 + 10, ay1 - 10)


def view_text(view: Viewport, editor: CropEditor, overlay: str) -> str:
    """The view under the canvas: zoom (of the image's own pixels), straightening and overlay."""
    if not editor.width:
        return ""
    angle = f" · straightened {editor.angle:+.1f}°" if editor.angle else ""
    return f"{'fit' if view.zoom == 1 else 'zoom'} {view.scale * 100:.0f}%{angle} · overlay: {overlay}"


def keys_html(keys: tuple[tuple[str, str], ...]) -> str:
    """The keys list the side panel shows on ? (Esc or ? again hides it)."""
    rows = "".join(f"<tr><td style='padding-right:8px;white-space:nowrap'><b>{html.escape(k)}</b></td>"
                   f"<td>{html.escape(what)}</td></tr>" for k, what in keys)
    return f"<b>Keys</b> (? or Esc hides this)<table style='font-size:12px;line-height:1.3'>{rows}</table>"


def panel_html(session: ReviewSession, retrained: str = "") -> str:
    """The side panel: where the review is, what is shown and who suggested it, an earlier decision on it, why an
    image cannot be decided, the last retraining, and the warnings (other reviewers, what the last key did not do).
    Names are escaped."""
    s = session
    warnings = "".join(f"<br>{WARNING.format(html.escape(w))}" for w in [*s.others, s.notice] if w)
    retrained = f"<br><i>{html.escape(retrained)}</i>" if retrained else ""
    if s.done:
        left = len(s.undecided)
        more = (f"<br>{_count(left, 'image')} skipped{_unreadable(s, ', ')}: <b>Review skipped (r)</b> to go "
                "through them" if left else "<br>every image has a decision")
        return (f"<b>End of the queue ({_count(len(s.queue), 'image')}).</b><br>{_tally(s)}" + more + retrained
                + warnings)
    head = (f"<b>{s.index + 1} of {len(s.queue)}</b> · {_tally(s)}{_unreadable(s, ' · ')}"
            f"<br><code>{html.escape(s.image)}</code>")
    if s.problem:
        body = (f"<br>{WARNING.format(html.escape(s.problem))}<br>"
                "nothing to accept or reject: Enter, s or → goes on")
    else:
        score = s.boxes[0].score if s.boxes and not s.boxes[0].added else None
        chance = (f"<b>{score:.0%}</b> chance you keep it (the proposer's estimate from your held-out decisions)"
                  if score is not None and math.isfinite(score) else "no estimate yet (no trained proposer)")
        active = s.boxes[s.editor.active].box if s.boxes else None
        crop = (f"<br>crop {active[2] - active[0]:.0f}×{active[3] - active[1]:.0f} ({ratio_name(active)})"
                if active else "")
        earlier = s.revisiting
        again = (f"<br><b style='color:#1565c0'>decided earlier: {html.escape(earlier.describe())}</b>; "
                 "a new decision replaces it" if earlier else "")
        body = (f" ({s.width}×{s.height})<br>suggested by <b>{html.escape(s.proposer_name)}</b>: {chance}"
                f"<br>aspect lock: {s.aspect_name}{crop}" + again)
    return head + body + retrained + warnings


def _tally(s: ReviewSession) -> str:
    """'3 decided: 2 kept as suggested (67%), 1 adjusted, 0 rejected'."""
    if not s.decided:
        return "0 decided"
    cropped = s.count("cropped")
    return (f"{s.decided} decided: {s.approved} kept as suggested ({s.acceptance_rate:.0%}), "
            f"{s.count('modified')} adjusted, {s.count('rejected')} rejected" + (f", {cropped} crops only"
                                                                                  if cropped else ""))


def _unreadable(s: ReviewSession, sep: str) -> str:
    """'<sep>2 can't be read' when going on passed over unreadable images, else ''."""
    return f"{sep}{len(s.unreadable)} can't be read" if s.unreadable else ""


def _count(n: int, noun: str) -> str:
    """'1 image', '2 images'."""
    return f"{n} {noun}" + ("" if n == 1 else "s")
