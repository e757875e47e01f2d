"""The reviewer's link to the browser page (an anywidget with a small ES module, ``bridge.js``): it gives the
reviewer the keyboard while the pointer has been over it, so no key reaches JupyterLab then, frames the reviewer to
show it, reports the width the notebook gives it and the window's height, and sets the canvas cursor.

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
.cropkit-reviewer { outline: 3px solid transparent; outline-offset: 2px; border-radius: 4px; }
.cropkit-reviewer.cropkit-held { outline-color: #4fc3f7; }
.cropkit-reviewer .cropkit-keys-hint { color: #888; font-size: 12px; }
"""


class PageBridge(anywidget.AnyWidget):
    """Messages from the page: ``{"kind": "keydown"|"keyup", "key", "code", "shift", "ctrl", "alt", "meta",
    "repeat"}``, ``{"kind": "held", "value"}`` and ``{"kind": "size", "width", "height"}``; ``cursor`` is the
    CSS cursor of the canvas."""

    _esm = Path(__file__).with_name("bridge.js")
    _css = READER_CSS
    cursor = traitlets.Unicode("default").tag(sync=True)

    def __init__(self, on_message: Callable[[dict], None]):
        super().__init__()
        self.on_msg(lambda _widget, content, _buffers: on_message(content) if isinstance(content, dict) else None)
