"""End to end in a real browser: JupyterLab started here on localhost, the review notebook opened in Debian's
Chromium through Playwright, keys pressed and a handle dragged on the canvas, then the JSONL lines checked.

Starts: a JupyterLab server (127.0.0.1, random port, token) and headless /usr/bin/chromium.
Benchmark mode (CROPKIT_BENCH=1) accepts more images and prints the accept-to-next-image latency.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook

from cropkit.cli import main
from cropkit.decisions import CropDecision, append_decision
from cropkit.learn.suggest import Suggester
from tests.conftest import TINY, TINY_CONFIG
from tests.libgen import changed_entries, snapshot, square_on_subject, subject_photo

CHROMIUM = "/usr/bin/chromium"
REPO = Path(__file__).resolve().parents[2]  # the checkout
ARTIFACTS = REPO / "test-artifacts"
BENCH = os.environ.get("CROPKIT_BENCH") == "1"
N_PENDING = 12 if BENCH else 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    images = root / "data/training_data"
    images.mkdir(parents=True)
    for i in range(8 + N_PENDING):
        img, subject = subject_photo(700 + i)
        img.save(images / f"b{i:02d}.jpg", quality=90)
        if i < 8:
            append_decision(root / "data/ai_data/logs", CropDecision(
                f"data/training_data/b{i:02d}.jpg", *img.size, square_on_subject(*img.size, subject), float(i)))
    args = ["--arch", TINY, "--weights", "none", "--arch-config", str(TINY_CONFIG)]
    assert main(["extract", "--root", str(root), *args, "--no-progress", "--workers", "0"]) == 0
    assert main(["train", "--root", str(root), *args, "--steps", "60", "--no-progress", "--workers", "0"]) == 0
    nb_dir = root / "lab"
    nb_dir.mkdir()
    source = load_notebook_node(str(REPO / "notebooks/04_review_crops.ipynb"))
    nb = parameterize_notebook(source, {"root": str(root), "arch_config": str(TINY_CONFIG)})
    nbformat.write(nb, nb_dir / "review.ipynb")
    port, token = _free_port(), secrets.token_hex(16)
    home = root / "jupyter-home"  # a fresh Jupyter config and state each run: no dependence on this machine's
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_DATA_DIR": str(home / "data"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces")}
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={nb_dir}",
         "--allow-root", "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         "--LabApp.extension_manager=readonly"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if time.time() > deadline or server.poll() is not None:
                server.kill()
                raise RuntimeError("JupyterLab did not start") from None
            time.sleep(0.5)
    before = snapshot(images)
    yield root, f"{url}/lab/tree/review.ipynb?token={token}"
    server.terminate()
    try:
        server.wait(20)
    except subprocess.TimeoutExpired:
        server.kill()
    assert changed_entries(before, snapshot(images)) == {}


def _lines(root: Path) -> list[dict]:
    path = root / "data/ai_data/logs/suggestions.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def _wait_for_lines(root: Path, n: int, timeout: float = 30) -> list[dict]:
    deadline = time.time() + timeout
    while len(_lines(root)) < n and time.time() < deadline:
        time.sleep(0.05)
    return _lines(root)


def test_review_in_jupyterlab_with_chromium(lab):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    root, url = lab
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1600, "height": 1100})
        page.goto(url)
        page.wait_for_selector(".jp-Notebook", timeout=120_000)
        page.wait_for_selector("text=| Idle", timeout=120_000)  # the kernel is up
        try:
            for attempt in range(6):  # on a cold start the menu can answer before the notebook is wired up
                page.click("text=Run", timeout=30_000)
                page.click("text=Run All Cells", timeout=30_000)
                try:
                    page.wait_for_selector(f"text=1 of {N_PENDING}", timeout=40_000)
                    break
                except PlaywrightTimeout:
                    if attempt == 5:
                        raise
        finally:
            page.screenshot(path=str(ARTIFACTS / "review_start.png"))
        news = page.locator(".jp-toast-button:has-text('No')")
        if news.count():
            news.first.click()
        canvas = page.locator("canvas").last
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()

        def to_page(x: float, y: float, width: int, height: int) -> tuple[float, float]:
            """Image pixel -> page pixel, with the widget's fit-to-canvas view (900x600, centred)."""
            box = canvas.bounding_box()  # where the canvas is now (the notebook may have scrolled)
            scale = min(900 / width, 600 / height)
            cx, cy = (900 - width * scale) / 2 + x * scale, (600 - height * scale) / 2 + y * scale
            return box["x"] + cx * box["width"] / 900, box["y"] + cy * box["height"] / 600

        images = root / "data/training_data"
        before = snapshot(images)

        def untouched(after: str) -> None:  # the library is checked after every reviewer action
            assert changed_entries(before, snapshot(images)) == {}, f"after {after}"

        page.mouse.click(box["x"] + 3, box["y"] + 3)  # focus the canvas (a corner: no crop there)
        page.wait_for_timeout(300)
        started = time.perf_counter()
        page.keyboard.press("Enter")
        page.wait_for_selector(f"text=2 of {N_PENDING}", timeout=30_000)
        latencies = [(time.perf_counter() - started) * 1000]
        (first,) = _wait_for_lines(root, 1)
        assert first["decision"] == "approved"
        untouched("Enter")

        # the second image: drag the south-east handle of the suggestion up and left
        suggester = Suggester.open(root)
        queue = sorted((root / "data/training_data").glob("b*.jpg"))[8:]
        shown = suggester.suggest(queue[1], k=1)
        x0, y0, x1, y1 = shown.suggestions[0].box
        hx, hy = to_page(x1, y1, shown.width, shown.height)
        tx, ty = to_page(x1 - 40, y1 - 30, shown.width, shown.height)
        page.mouse.move(hx, hy)
        page.mouse.down()
        page.mouse.move(tx, ty, steps=6)
        page.mouse.up()
        untouched("dragging a handle")
        page.screenshot(path=str(ARTIFACTS / "review_modified.png"))
        page.keyboard.press("Enter")
        page.wait_for_selector(f"text=3 of {N_PENDING}", timeout=30_000)
        second = _wait_for_lines(root, 2)[1]
        assert second["decision"] == "modified" and second["image"] == shown.image
        assert second["suggested"][:2] == [round(x0, 1), round(y0, 1)]
        assert second["final"][:2] == pytest.approx([x0, y0], abs=0.15)
        assert second["final"][2] == pytest.approx(x1 - 40, abs=2.5)
        assert second["final"][3] == pytest.approx(y1 - 30, abs=2.5)
        untouched("Enter after a drag")

        page.keyboard.press("Delete")
        page.wait_for_selector(f"text=4 of {N_PENDING}", timeout=30_000)
        third = _wait_for_lines(root, 3)[2]
        assert third["decision"] == "rejected" and third["final"] is None
        untouched("Delete")
        page.screenshot(path=str(ARTIFACTS / "review.png"))

        for i in range(4, N_PENDING):  # benchmark mode: accept the rest, timing each next image
            started = time.perf_counter()
            page.keyboard.press("Enter")
            page.wait_for_selector(f"text={i + 1} of {N_PENDING}", timeout=30_000)
            latencies.append((time.perf_counter() - started) * 1000)
            untouched(f"Enter on image {i}")
        browser.close()
    if BENCH:
        print(f"\naccept -> next image on screen: p50 {statistics.median(latencies):.0f} ms, "
              f"max {max(latencies):.0f} ms over {len(latencies)} accepts")
