"""The reviewer's link to the browser page (an anywidget with a small ES module, ``bridge.js``): it gives the reviewer
the keyboard while the pointer has been over it, until a click in another cell or outside the notebook (a click in
the margin beside it keeps them), so no key reaches JupyterLab then, frames the reviewer and shows a badge to say
so, lets the wheel scroll the notebook unless Ctrl/Cmd is held or the picture is zoomed in, reports the width the
notebook gives it and the window's height, and sets the canvas cursor.

ipycanvas alone hears keys only while its canvas element has the browser's focus, which a click on a button or the
aspect control takes away, and it lets them on to JupyterLab's shortcuts. ipyevents holds keys only while the
pointer stays over one element, and reports no sizes; anywidget runs these few lines without a build step.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anywidget
import traitlets

READER_CSS = """
.cropkit-reviewer { outline: 4px solid transparent; outline-offset: 2px; border-radius: 4px; }
.cropkit-reviewer.cropkit-held { outline-color: #0288d1; }
.cropkit-reviewer .cropkit-keys-hint { color: #888; font-size: 12px; }
.cropkit-keys-badge { display: inline-block; padding: 2px 8px; border-radius: 10px; font-size: 12px; }
.cropkit-keys-badge.cropkit-keys-on { display: none; background: #0288d1; color: #fff; font-weight: bold; }
.cropkit-keys-badge.cropkit-keys-off { background: #eceff1; color: #546e7a; }
.cropkit-reviewer.cropkit-held .cropkit-keys-on { display: inline-block; }
.cropkit-reviewer.cropkit-held .cropkit-keys-off { display: none; }
"""
KEYS_BADGE = ("<span class='cropkit-keys-badge cropkit-keys-on'>⌨ keys go to the reviewer</span>"
              "<span class='cropkit-keys-badge cropkit-keys-off'>keys go to JupyterLab: point at the picture</span>")


class PageBridge(anywidget.AnyWidget):
    """Messages from the page: ``{"kind": "keydown"|"keyup", "key", "code", "shift", "ctrl", "alt", "meta",
    "repeat"}``, ``{"kind": "held", "value"}``, ``{"kind": "pointer", "alt", "shift", "ctrl", "meta"}`` before each
    press and ``{"kind": "size", "width", "height"}``; ``cursor`` is the CSS cursor of the canvas."""

    _esm = Path(__file__).with_name("bridge.js")
    _css = READER_CSS
    cursor = traitlets.Unicode("default").tag(sync=True)
    wheel_zooms = traitlets.Bool(False).tag(sync=True)  # the plain wheel zooms (zoomed in); else it scrolls the page

    def __init__(self, on_message: Callable[[dict], None]):
        super().__init__()
        self.on_msg(lambda _widget, content, _buffers: on_message(content) if isinstance(content, dict) else None)
