"""What the browser tests share: Chromium as Debian ships it, a notebook run in JupyterLab, the reviewer's canvas on
the page, and the logs the reviewer writes."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

from cropkit.review.paint import MARGIN_PX
from cropkit.review.viewport import Viewport

CHROMIUM = "/usr/bin/chromium"
REPO = Path(__file__).resolve().parents[2]  # the checkout
ARTIFACTS = REPO / "test-artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lines(root: Path, name: str = "suggestions.jsonl") -> list[dict]:
    path = root / "data/ai_data/logs" / name
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def wait_for_lines(root: Path, n: int, timeout: float = 30, name: str = "suggestions.jsonl") -> list[dict]:
    deadline = time.time() + timeout
    while len(lines(root, name)) < n and time.time() < deadline:
        time.sleep(0.05)
    return lines(root, name)


def open_and_run(page, url: str, first: str, screenshot: str) -> Screen:
    """Open a notebook, Run All, wait until the reviewer shows its first image (the page saved as ``screenshot``
    either way), and bring its canvas into view."""
    try:
        run_all(page, url, first)
    finally:
        page.screenshot(path=str(ARTIFACTS / screenshot))
    screen = Screen(page)
    screen.canvas.scroll_into_view_if_needed()
    return screen


def run_all(page, url: str, first: str) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.goto(url)
    page.wait_for_selector(".jp-Notebook", timeout=120_000)
    page.wait_for_selector("text=| Idle", timeout=120_000)  # the kernel is up
    for attempt in range(6):  # on a cold start the menu can answer before the notebook is wired up
        try:
            select = page.locator(".jp-Dialog button:has-text('Select')")  # "Select Kernel", on a second notebook
            if select.count():
                select.first.click()
                page.wait_for_timeout(500)
            page.click("text=Run", timeout=20_000)
            page.click("text=Run All Cells", timeout=20_000)
            page.wait_for_selector(f"text={first} >> visible=true", timeout=40_000)
            break
        except PlaywrightTimeout:
            if attempt == 5:
                raise
    news = page.locator(".jp-toast-button:has-text('No')")
    if news.count():
        news.first.click()


class Screen:
    """The reviewer's canvas on the page: its pixel size (which follows the page) and image -> page points."""

    def __init__(self, page):
        self.page = page
        self.canvas = page.locator("canvas.cropkit-canvas").last

    def settle(self) -> tuple[int, int]:
        """Wait until the canvas has taken the size the page gave it (the same for half a second)."""
        last, stable_since = None, time.time()
        deadline = time.time() + 20
        while time.time() < deadline:
            size = tuple(self.canvas.evaluate("c => [c.width, c.height]"))
            if size != last:
                last, stable_since = size, time.time()
            elif time.time() - stable_since > 0.5:
                return last
            time.sleep(0.1)
        return last

    def view(self, width: int, height: int) -> Viewport:
        cw, ch = self.canvas.evaluate("c => [c.width, c.height]")
        view = Viewport(cw, ch, margin=MARGIN_PX)
        view.show(width, height)
        return view

    def css_per_canvas(self, view: Viewport) -> tuple[float, float]:
        b = self.canvas.bounding_box()
        return b["width"] / view.canvas_width, b["height"] / view.canvas_height

    def to_page(self, view: Viewport, x: float, y: float) -> tuple[float, float]:
        b = self.canvas.bounding_box()
        cx, cy = view.to_canvas(x, y)
        return b["x"] + cx * b["width"] / view.canvas_width, b["y"] + cy * b["height"] / view.canvas_height

    def drag(self, start: tuple[float, float], end: tuple[float, float]) -> None:
        self.page.mouse.move(*start)
        self.page.mouse.down()
        self.page.mouse.move(*end, steps=8)
        self.page.mouse.up()
        self.page.wait_for_timeout(300)


def launch(p):
    return p.chromium.launch(executable_path=CHROMIUM, args=[
        "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"])


def assert_true_proportions(page, window: dict, when: str) -> None:
    """The reviewer scrolled to its top: the canvas is shown at the proportions it is drawn at (within 1%), and
    every control lies inside the window (above JupyterLab's status bar)."""
    page.locator(".cropkit-reviewer").last.evaluate("r => r.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(300)
    canvas = page.locator("canvas.cropkit-canvas").last
    drawn_w, drawn_h = canvas.evaluate("c => [c.width, c.height]")
    shown = canvas.bounding_box()
    ratio = (shown["width"] / shown["height"]) / (drawn_w / drawn_h)
    assert abs(ratio - 1) <= 0.01, f"{when}: drawn {drawn_w}x{drawn_h}, shown {shown['width']}x{shown['height']}"
    bottom = page.locator(".jp-StatusBar").bounding_box()["y"] if page.locator(".jp-StatusBar").count() \
        else window["height"]
    controls = page.locator(".cropkit-reviewer").last.locator("button, select, .widget-slider >> visible=true")
    assert controls.count() >= 15, f"{when}: only {controls.count()} controls shown"
    for i in range(controls.count()):
        b = controls.nth(i).bounding_box()
        assert b is not None and b["x"] >= 0 and b["x"] + b["width"] <= window["width"] and b["y"] >= 0 \
            and b["y"] + b["height"] <= bottom, f"{when}: {controls.nth(i).inner_text()!r} at {b} is off screen"
