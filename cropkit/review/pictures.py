"""Reading the library's files for the reviewer, read-only: display-size previews (cached, the next one prepared
in a background thread), the full-resolution part under the canvas once zoomed in, and the companion YAML.

Every read goes through ``read_source_bytes`` (read-only, non-blocking, no atime; images refused over extract's size
limit before reading, as extract does): nothing here writes.
"""

from __future__ import annotations

import contextlib
import io
import threading
from pathlib import Path

import yaml
from PIL import Image

from cropkit.extract.decode import decode_oriented_rgb
from cropkit.fileio import NotRegularFile, read_source_bytes
from cropkit.geometry import Box
from cropkit.learn.suggest import read_image_bytes
from cropkit.review.viewport import Viewport

KEEP_PREVIEWS = 3  # previews kept in memory: flat on long queues
COMPANION_MAX_BYTES = 256 * 1024
COMPANION_MAX_DEPTH = 50


def preview_jpeg(path: Path, width: int, height: int, quality: int = 85) -> tuple[bytes, int, int]:
    """A JPEG of the whole upright frame fitted to width x height (decoded reduced, read-only)."""
    img, _ = decode_oriented_rgb(read_image_bytes(path), max(width, height) // 2)
    img.thumbnail((width, height))
    return _jpeg(img, quality), img.width, img.height


def _jpeg(img: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


class Pictures:
    """The pictures of a queue's images for a ``width`` x ``height`` canvas: the last few previews, and the image
    shown at full resolution once zoomed past its preview."""

    def __init__(self, width: int, height: int):
        self.width, self.height = width, height
        self.full: tuple[Path, Image.Image] | None = None  # the image shown, at full resolution, once zoomed in
        self._previews: dict[Path, tuple[bytes, int, int]] = {}
        self._lock = threading.Lock()  # the prefetch thread and the widget both fill the cache

    def preview(self, path: Path) -> tuple[bytes, int, int]:
        """The display-size JPEG of ``path`` and its size; raises what reading or decoding raises."""
        with self._lock:
            cached = self._previews.get(path)
        if cached is not None:
            return cached
        made = preview_jpeg(path, self.width, self.height)
        with self._lock:
            self._previews[path] = made
            for old in list(self._previews)[:-KEEP_PREVIEWS]:
                del self._previews[old]
        return made

    def cached(self) -> list[Path]:
        """The images whose previews are in memory, oldest first."""
        with self._lock:
            return list(self._previews)

    def prefetch(self, path: Path) -> threading.Thread:
        """Prepare the preview of ``path`` in a background thread (the next image, while this one is reviewed).
        An unreadable image is left out: it says why when it is shown."""

        def work() -> None:
            with contextlib.suppress(Exception):
                self.preview(path)

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        return thread

    def for_view(self, path: Path, view: Viewport, angle: float = 0.0) -> tuple[bytes, Box] | None:
        """What to draw of ``path`` in ``view``: a JPEG and the image box it covers (None: the image is panned off
        the canvas). The preview covers the whole image; zoomed past its resolution, the visible part comes from
        the full-resolution image (the preview while the image is straightened: the part turns with it)."""
        jpeg, width, _ = self.preview(path)
        if angle or view.scale <= 1.05 * width / view.image_width:
            return jpeg, (0, 0, view.image_width, view.image_height)
        x0, y0, x1, y1 = view.visible()
        return self.visible_region(path, view) if x1 > x0 and y1 > y0 else None

    def visible_region(self, path: Path, view: Viewport) -> tuple[bytes, tuple[int, int, int, int]]:
        """The part of ``path`` at full resolution under the canvas, as a JPEG at canvas scale, and its box."""
        if self.full is None or self.full[0] != path:
            data = read_image_bytes(path)
            self.full = (path, decode_oriented_rgb(data, max(view.image_width, view.image_height))[0])
        img = self.full[1]
        x0, y0, x1, y1 = view.visible()
        x1, y1 = min(img.width, x1), min(img.height, y1)
        region = img.crop((x0, y0, x1, y1))
        region = region.resize((max(1, round((x1 - x0) * view.scale)), max(1, round((y1 - y0) * view.scale))))
        return _jpeg(region, 90), (x0, y0, x1, y1)


def read_companion(image: Path) -> str:
    """The image's companion YAML as text (bounded size and nesting, validated with safe_load), or a note saying
    why it cannot be shown; read through a read-only, non-blocking, no-atime descriptor, never written."""
    for candidate in (image.with_suffix(".yaml"), image.with_suffix(".yml")):
        try:
            data, _ = read_source_bytes(candidate, max_bytes=COMPANION_MAX_BYTES)
        except FileNotFoundError:
            continue
        except NotRegularFile:
            return f"(companion {candidate.name} is not a regular file (a pipe, device or folder): not read)"
        except (OSError, ValueError) as exc:
            return f"(companion {candidate.name} cannot be read: {exc})"
        text = data.decode("utf-8", errors="replace")
        problem = _yaml_problem(text)
        return f"(companion {candidate.name} {problem})\n{text}" if problem else text
    return "(no companion .yaml)"


def _yaml_problem(text: str) -> str:
    """Why ``text`` is no plain YAML document to show (too deeply nested, invalid), or ''."""
    try:
        depth = 0
        for event in yaml.parse(text, Loader=yaml.SafeLoader):  # the event parser keeps no Python stack
            depth += isinstance(event, yaml.CollectionStartEvent) - isinstance(event, yaml.CollectionEndEvent)
            if depth > COMPANION_MAX_DEPTH:
                return f"is nested more than {COMPANION_MAX_DEPTH} levels deep: shown as text only"
        yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        return f"is not valid YAML: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    return ""
