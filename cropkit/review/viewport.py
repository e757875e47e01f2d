"""Where the image sits on the canvas: fitted and centred, then zoomed and panned; canvas <-> image pixels.

Pure arithmetic: no canvas, no image, so every conversion is testable alone.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_ZOOM = 16.0


@dataclass
class Viewport:
    """An image of ``image_width`` x ``image_height`` pixels on a canvas of ``canvas_width`` x ``canvas_height``:
    at zoom 1 the whole image fits, centred, ``margin`` canvas pixels clear of every edge (so handles on the
    image's border are whole); ``pan`` moves it by canvas pixels."""

    canvas_width: int
    canvas_height: int
    image_width: int = 0
    image_height: int = 0
    zoom: float = 1.0
    pan: tuple[float, float] = (0.0, 0.0)
    margin: float = 0.0

    @property
    def scale(self) -> float:
        """Canvas pixels per image pixel (1 while there is no image)."""
        if not self.image_width or not self.image_height:
            return 1.0
        fit_w, fit_h = max(1.0, self.canvas_width - 2 * self.margin), max(1.0, self.canvas_height - 2 * self.margin)
        return min(fit_w / self.image_width, fit_h / self.image_height) * self.zoom

    def origin(self) -> tuple[float, float]:
        """Where the image's top-left corner is on the canvas."""
        s = self.scale
        return ((self.canvas_width - self.image_width * s) / 2 + self.pan[0],
                (self.canvas_height - self.image_height * s) / 2 + self.pan[1])

    def to_image(self, cx: float, cy: float) -> tuple[float, float]:
        ox, oy = self.origin()
        return (cx - ox) / self.scale, (cy - oy) / self.scale

    def to_canvas(self, x: float, y: float) -> tuple[float, float]:
        ox, oy = self.origin()
        return ox + x * self.scale, oy + y * self.scale

    def show(self, image_width: int, image_height: int) -> None:
        """Another image: fitted and centred."""
        self.image_width, self.image_height = image_width, image_height
        self.reset()

    def resize(self, canvas_width: int, canvas_height: int) -> None:
        """The canvas changed size: the whole image again, fitted to it."""
        self.canvas_width, self.canvas_height = canvas_width, canvas_height
        self.reset()

    def reset(self) -> None:
        """The whole image, fitted and centred."""
        self.zoom, self.pan = 1.0, (0.0, 0.0)

    def zoom_by(self, factor: float, around: tuple[float, float] | None = None) -> None:
        """Zoom (between 1 and MAX_ZOOM) keeping the image point under canvas point ``around`` (default: the
        centre) where it is; back at zoom 1 the image is centred again."""
        cx, cy = around or (self.canvas_width / 2, self.canvas_height / 2)
        x, y = self.to_image(cx, cy)
        self.zoom = min(MAX_ZOOM, max(1.0, self.zoom * factor))
        nx, ny = self.to_canvas(x, y)
        self.pan = (self.pan[0] + cx - nx, self.pan[1] + cy - ny) if self.zoom > 1 else (0.0, 0.0)

    def pan_by(self, dx: float, dy: float) -> None:
        """Move the image by (dx, dy) canvas pixels."""
        self.pan = (self.pan[0] + dx, self.pan[1] + dy)

    def visible(self) -> tuple[int, int, int, int]:
        """The whole image pixels under the canvas, (x0, y0, x1, y1), within the image; empty (x1 == x0 or
        y1 == y0) when the image is panned off the canvas."""
        x0, y0 = self.to_image(0, 0)
        x1, y1 = self.to_image(self.canvas_width, self.canvas_height)
        x0, y0 = min(self.image_width, max(0, int(x0))), min(self.image_height, max(0, int(y0)))
        return x0, y0, max(x0, min(self.image_width, int(x1) + 1)), max(y0, min(self.image_height, int(y1) + 1))
