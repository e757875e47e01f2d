"""End to end in a real browser: JupyterLab started here on localhost, the review notebook opened in Debian's
Chromium (1280 x 800) through Playwright, the mouse and keys used as a photographer would, then the JSONL lines and
boxes checked, and the library checked unchanged after every action.

Starts: a JupyterLab server (127.0.0.1, random port, token) and headless /usr/bin/chromium. Two roots: one with a
trained proposer, one with none (the cold start). Benchmark mode (CROPKIT_BENCH=1) accepts more images and prints the
accept-to-next-image latency.
"""

from __future__ import annotations

import os
import re
import secrets
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
from cropkit.decisions import CropDecision, append_decision, read_suggestions
from cropkit.learn.suggest import STARTING_PROPOSER, Suggester
from cropkit.review.widget import PANEL_PX
from tests.conftest import TINY, TINY_CONFIG
from tests.e2e.browser import (
    ARTIFACTS,
    REPO,
    assert_true_proportions,
    free_port,
    launch,
    lines,
    open_and_run,
    wait_for_lines,
)
from tests.libgen import changed_entries, snapshot, square_on_subject, subject_photo

BENCH = os.environ.get("CROPKIT_BENCH") == "1"
N_PENDING = 24 if BENCH else 9
N_COLD = 6
WINDOW = {"width": 1280, "height": 800}


def _notebook(nb_dir: Path, name: str, parameters: dict) -> None:
    source = load_notebook_node(str(REPO / "notebooks/04_review_crops.ipynb"))
    nbformat.write(parameterize_notebook(source, parameters), nb_dir / name)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    base = tmp_path_factory.mktemp("browser")
    root, cold = base / "trained", base / "cold"
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
    (cold / "data/training_data").mkdir(parents=True)
    for i in range(N_COLD):
        subject_photo(800 + i)[0].save(cold / f"data/training_data/c{i}.jpg", quality=90)
    nb_dir = base / "lab"
    nb_dir.mkdir()
    _notebook(nb_dir, "review.ipynb", {"root": str(root), "arch_config": str(TINY_CONFIG)})
    _notebook(nb_dir, "cold.ipynb", {"root": str(cold), "arch_config": str(TINY_CONFIG), "arch": TINY,
                                     "weights": "none", "train_after": 3})
    port, token = free_port(), secrets.token_hex(16)
    home = base / "jupyter-home"  # a fresh Jupyter config and state each run: no dependence on this machine's
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
    before = {r: snapshot(r / "data/training_data") for r in (root, cold)}
    yield root, cold, lambda name: f"{url}/lab/tree/{name}?token={token}"
    server.terminate()
    try:
        server.wait(20)
    except subprocess.TimeoutExpired:
        server.kill()
    for r, snap in before.items():
        assert changed_entries(snap, snapshot(r / "data/training_data")) == {}


def test_review_in_jupyterlab_with_chromium_at_1280x800(lab):
    from playwright.sync_api import sync_playwright

    root, _cold, url = lab
    ARTIFACTS.mkdir(exist_ok=True)
    images = root / "data/training_data"
    before = snapshot(images)
    queue = sorted(images.glob("b*.jpg"))[8:]
    suggester = Suggester.open(root)

    def shown(i: int, aspect: float | None = None):
        return suggester.suggest(queue[i], aspect=aspect, k=1)

    def untouched(after: str) -> None:  # the library is checked after every reviewer action
        assert changed_entries(before, snapshot(images)) == {}, f"after {after}"

    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport=WINDOW)
        screen = open_and_run(page, url("review.ipynb"), f"1 of {N_PENDING}", "review_start.png")
        cw, ch = screen.settle()
        cells = page.locator(".jp-Cell").count()

        # the layout at 1280 x 800: the canvas takes the width; every control is on screen, nothing sideways
        box, whole = screen.canvas.bounding_box(), page.locator(".cropkit-reviewer").bounding_box()
        assert box["width"] >= whole["width"] - PANEL_PX - 40 and cw == round(box["width"])  # drawn 1:1, no blur
        controls = page.locator(".cropkit-reviewer button, .cropkit-reviewer select, .cropkit-reviewer "
                                ".widget-slider, .cropkit-reviewer .widget-html")
        assert controls.count() >= 20
        for i in range(controls.count()):
            b = controls.nth(i).bounding_box()
            assert b is not None and b["x"] >= 0 and b["x"] + b["width"] <= WINDOW["width"], controls.nth(i)
        page.screenshot(path=str(ARTIFACTS / "review_1280x800.png"))
        assert_true_proportions(page, WINDOW, "the first image, the file browser open")

        # 1. the pointer over the reviewer gives it the keyboard (a blue frame); after a button click, Enter accepts
        page.mouse.move(box["x"] + 5, box["y"] + 5)
        page.wait_for_selector(".cropkit-reviewer.cropkit-held", timeout=10_000)
        page.get_by_role("button", name="Overlay (O)").click()
        page.wait_for_selector("text=overlay: golden ratio", timeout=10_000)
        started = time.perf_counter()
        page.keyboard.press("Enter")
        page.wait_for_selector(f"text=2 of {N_PENDING}", timeout=30_000)
        latencies = [(time.perf_counter() - started) * 1000]
        assert [ln["decision"] for ln in wait_for_lines(root, 1)] == ["approved"]
        untouched("a button, then Enter")

        # 2. the aspect control, then X turns 4:5 into 5:4, and Enter accepts (the control gave the keys back)
        aspect = page.locator(".cropkit-reviewer select")
        aspect.select_option("4:5")
        page.keyboard.press("x")
        page.wait_for_function("() => document.querySelector('.cropkit-reviewer select').value === '5:4'",
                               timeout=10_000)
        aspect.select_option("free")  # the crop keeps its shape; the next images are suggested free
        page.keyboard.press("Enter")
        page.wait_for_selector(f"text=3 of {N_PENDING}", timeout=30_000)
        second = wait_for_lines(root, 2)[1]
        fx0, fy0, fx1, fy1 = second["final"]
        assert second["decision"] == "modified" and (fx1 - fx0) / (fy1 - fy0) == pytest.approx(1.25, abs=0.01)
        untouched("the aspect control and X")

        # 3. a crop drawn beside the suggestion replaces it: one modified decision with the drawn box, no extra crop
        s3 = shown(2)
        view = screen.view(s3.width, s3.height)
        x0, y0, x1, y1 = s3.suggestions[0].box
        a = (x1 + (s3.width - x1) * 0.2, y1 + (s3.height - y1) * 0.2)
        b = (x1 + (s3.width - x1) * 0.8, y1 + (s3.height - y1) * 0.8)
        screen.drag(screen.to_page(view, *a), screen.to_page(view, *b))
        page.screenshot(path=str(ARTIFACTS / "review_drawn.png"))
        page.keyboard.press("Enter")
        page.wait_for_selector(f"text=4 of {N_PENDING}", timeout=30_000)
        third = wait_for_lines(root, 3)[2]
        tol = 1.5 / view.scale + 0.2  # a page pixel, in image pixels
        assert third["decision"] == "modified" and third["suggested"] == pytest.approx([x0, y0, x1, y1], abs=0.1)
        assert third["final"] == pytest.approx([*a, *b], abs=tol)
        logged_crops = wait_for_lines(root, 8, name="training_log.jsonl")
        assert not [c for c in logged_crops if c.get("source") == "cropkit-review"]
        untouched("drawing a crop")

        # 4. an edge dragged far from its handle resizes (it does not move the crop); Alt+drag adds another crop
        s4 = shown(3)
        view = screen.view(s4.width, s4.height)
        x0, y0, x1, y1 = s4.suggestions[0].box
        grab = (x1, y0 + 0.2 * (y1 - y0))
        screen.drag(screen.to_page(view, *grab), screen.to_page(view, x1 - 0.2 * (x1 - x0), grab[1] + 15))
        a, b = (x0 * 0.2, y0 * 0.2), (x0 * 0.8, y0 * 0.8)  # above and left of the crop
        page.keyboard.down("Alt")
        screen.drag(screen.to_page(view, *a), screen.to_page(view, *b))
        page.keyboard.up("Alt")
        page.keyboard.press("Enter")
        page.wait_for_selector(f"text=5 of {N_PENDING}", timeout=30_000)
        fourth = wait_for_lines(root, 4)[3]
        assert fourth["decision"] == "modified"
        assert fourth["final"] == pytest.approx([x0, y0, x1 - 0.2 * (x1 - x0), y1], abs=tol)
        drawn = [c for c in wait_for_lines(root, 9, name="training_log.jsonl") if c.get("source") == "cropkit-review"]
        assert len(drawn) == 1 and drawn[0]["crop"] == pytest.approx([*a, *b], abs=tol)
        untouched("an edge drag and an Alt+drag")

        # 5. O cycles the overlay, ? lists the keys, Esc closes the list, arrows move the crop, Esc goes back
        page.keyboard.press("o")
        page.wait_for_selector("text=overlay: diagonals", timeout=10_000)
        page.keyboard.press("?")
        page.wait_for_timeout(400)
        page.screenshot(path=str(ARTIFACTS / "review_keys.png"))
        assert_true_proportions(page, WINDOW, "the keys list")
        page.keyboard.press("Escape")
        for _ in range(3):
            page.keyboard.press("ArrowRight")
        page.keyboard.press("Shift+ArrowDown")
        page.keyboard.press("Escape")
        page.keyboard.press("Enter")
        page.wait_for_selector(f"text=6 of {N_PENDING}", timeout=30_000)
        assert wait_for_lines(root, 5)[4]["decision"] == "approved"  # Esc took the moves back
        untouched("O, ?, arrows and Esc")

        # 6. Ctrl+wheel zooms at the pointer; space + drag pans without moving the crop; an edge drag at the new scale
        s6 = shown(5)
        view = screen.view(s6.width, s6.height)
        x0, y0, x1, y1 = s6.suggestions[0].box
        q = (x1, y0 + 0.3 * (y1 - y0))
        qx, qy = screen.to_page(view, *q)
        page.mouse.move(qx, qy)
        page.wait_for_timeout(200)
        # at fit the wheel alone over the picture scrolls the notebook and leaves the zoom
        reviewer = page.locator(".cropkit-reviewer").last
        scroll_top = "r => (r.closest('.jp-WindowedPanel-outer') || r.closest('.jp-Notebook')).scrollTop"
        page.evaluate("window.cropkitWheels = []; document.addEventListener('wheel', "
                      "e => window.cropkitWheels.push(e.target.tagName), true)")
        top, zoom_text = reviewer.evaluate(scroll_top), reviewer.locator("text=/fit \\d+%/").inner_text()
        page.mouse.wheel(0, -120)
        page.wait_for_timeout(600)
        assert page.evaluate("window.cropkitWheels") == ["CANVAS"]  # it was over the picture
        assert reviewer.evaluate(scroll_top) < top and reviewer.locator("text=/fit \\d+%/").inner_text() == zoom_text
        assert_true_proportions(page, WINDOW, "scrolled back")
        qx, qy = screen.to_page(view, *q)
        page.mouse.move(qx, qy)
        page.wait_for_timeout(200)
        page.keyboard.down("Control")  # Ctrl+wheel zooms; the wheel alone scrolls the notebook
        page.mouse.wheel(0, -100)
        page.keyboard.up("Control")
        page.wait_for_timeout(400)
        sx, sy = screen.css_per_canvas(view)
        view.zoom_by(1.6, view.to_canvas(*q))
        page.keyboard.down("Space")
        screen.drag((qx, qy), (qx - 60, qy + 40))
        page.keyboard.up("Space")
        view.pan_by(-60 / sx, 40 / sy)
        page.screenshot(path=str(ARTIFACTS / "review_zoomed.png"))
        ex, ey = screen.to_page(view, *q)  # the edge point, where zoom and pan put it
        screen.drag((ex, ey), (ex - 30, ey))
        page.keyboard.press("Enter")
        page.wait_for_selector(f"text=7 of {N_PENDING}", timeout=30_000)
        sixth = wait_for_lines(root, 6)[5]
        assert sixth["decision"] == "modified"
        assert sixth["final"] == pytest.approx([x0, y0, x1 - 30 / sx / view.scale, y1], abs=tol)
        untouched("zoom at the pointer and a pan")

        # 7. straighten: ] four times is 2 degrees; the line carries the angle
        page.keyboard.press("0")
        for _ in range(4):
            page.keyboard.press("]")
        page.wait_for_timeout(300)
        page.screenshot(path=str(ARTIFACTS / "review_straightened.png"))
        page.keyboard.press("Enter")
        page.wait_for_selector(f"text=8 of {N_PENDING}", timeout=30_000)
        seventh = wait_for_lines(root, 7)[6]
        assert seventh["decision"] == "modified" and seventh["angle"] == 2.0
        untouched("straightening")

        # 8. back to the straightened image: its decision is shown; a new one replaces it (one effective decision)
        page.keyboard.press("Alt+ArrowLeft")
        page.wait_for_selector(f"text=7 of {N_PENDING}", timeout=30_000)
        page.wait_for_selector("text=decided earlier: modified", timeout=10_000)
        assert_true_proportions(page, WINDOW, "a revisit")
        page.keyboard.press("Escape")
        page.keyboard.press("Enter")
        page.wait_for_selector(f"text=8 of {N_PENDING}", timeout=30_000)
        logged = wait_for_lines(root, 9)
        assert [ln.get("decision", "undo") for ln in logged[6:]] == ["modified", "undo", "approved"]
        assert logged[7]["undo"] == logged[6]["ts"]
        effective = [d for d in read_suggestions(root / "data/ai_data/logs")[0] if d.image == seventh["image"]]
        assert [(d.decision, d.angle) for d in effective] == [("approved", 0.0)]
        untouched("a revisit and a new decision")

        for i in range(8, N_PENDING):  # benchmark mode: accept the rest, timing each next image
            started = time.perf_counter()
            page.keyboard.press("Enter")
            page.wait_for_selector(f"text={i + 1} of {N_PENDING}", timeout=30_000)
            latencies.append((time.perf_counter() - started) * 1000)
            untouched(f"Enter on image {i}")
        # no key reached the notebook: no cell was added, deleted or edited
        assert page.locator(".jp-Cell").count() == cells
        assert "open_reviewer(resolve_root(root)" in page.locator(".jp-Cell").nth(cells - 1).inner_text()
        browser.close()
    if BENCH:
        p95 = sorted(latencies)[max(0, round(0.95 * len(latencies)) - 1)]
        print(f"\naccept -> next image on screen: p50 {statistics.median(latencies):.0f} ms, p95 {p95:.0f} ms, "
              f"max {max(latencies):.0f} ms over {len(latencies)} accepts")


def test_cold_start_with_no_proposer_in_chromium(lab):
    from playwright.sync_api import sync_playwright

    _root, cold, url = lab
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport=WINDOW)
        screen = open_and_run(page, url("cold.ipynb"), f"1 of {N_COLD}", "review_cold_start.png")
        screen.settle()
        page.wait_for_selector("text=no estimate yet", timeout=10_000)
        box = screen.canvas.bounding_box()
        page.mouse.move(box["x"] + 5, box["y"] + 5)
        page.wait_for_selector(".cropkit-reviewer.cropkit-held", timeout=10_000)
        for i in range(3):
            page.keyboard.press("Enter")
            page.wait_for_selector(f"text={i + 2} of {N_COLD}", timeout=30_000)
        logged = wait_for_lines(cold, 3)
        assert [(ln["decision"], ln["model"]) for ln in logged] == [("approved", STARTING_PROPOSER)] * 3
        page.wait_for_selector("text=crop_proposer_v1 trained", timeout=240_000)  # trained in the background
        assert (cold / "data/ai_data/models/crop_proposer_v1.pth").is_file()
        page.screenshot(path=str(ARTIFACTS / "review_cold_trained.png"))
        assert_true_proportions(page, WINDOW, "the cold start's training message")
        browser.close()


def test_the_photo_keeps_its_proportions_at_1920x1080(lab):
    from playwright.sync_api import sync_playwright

    root, _cold, url = lab
    window = {"width": 1920, "height": 1080}
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport=window)
        screen = open_and_run(page, url("review.ipynb"), "/\\d+ of \\d+/", "review_1920x1080.png")
        screen.settle()
        assert_true_proportions(page, window, "the first image")
        box = screen.canvas.bounding_box()
        page.mouse.move(box["x"] + 5, box["y"] + 5)
        page.wait_for_selector(".cropkit-reviewer.cropkit-held", timeout=10_000)
        page.keyboard.press("?")
        page.wait_for_selector("text=? or Esc hides this", timeout=10_000)
        assert_true_proportions(page, window, "the keys list")
        page.keyboard.press("Escape")
        reviewer = page.locator(".cropkit-reviewer").last
        badge_on, badge_off = reviewer.locator(".cropkit-keys-on"), reviewer.locator(".cropkit-keys-off")
        assert badge_on.is_visible() and not badge_off.is_visible()

        # a click in the margin of the reviewer's own cell keeps the keys: O cycles the overlay, no cell is touched
        cells, rb = page.locator(".jp-Cell").count(), reviewer.bounding_box()
        cell_x = reviewer.evaluate("r => r.closest('.jp-Cell').getBoundingClientRect().x")
        page.mouse.click(cell_x + 20, rb["y"] + 100)  # the output prompt's margin, left of the reviewer
        page.keyboard.press("o")
        reviewer.locator("text=overlay: golden ratio").wait_for(timeout=10_000)
        assert "cropkit-held" in reviewer.get_attribute("class")
        assert page.locator(".jp-Cell").count() == cells and not page.locator(".jp-mod-editMode").count()
        page.mouse.click(cell_x + 20, rb["y"] + 100)  # JupyterLab folds a clicked output into a scroll box: unfold
        assert "cropkit-held" in reviewer.get_attribute("class")
        assert_true_proportions(page, window, "the margin clicked twice")

        # Shift while dragging a corner keeps the crop's ratio (within 0.5%), as in Lightroom
        name = re.search(r"data/training_data/b\d+\.jpg", reviewer.inner_text()).group(0)
        shown = Suggester.open(root).suggest(root / name, k=1)
        view, (x0, y0, x1, y1) = screen.view(shown.width, shown.height), shown.suggestions[0].box
        page.keyboard.down("Shift")
        screen.drag(screen.to_page(view, x1, y1), screen.to_page(view, x1 - 0.3 * (x1 - x0), y1 - 0.05 * (y1 - y0)))
        page.keyboard.up("Shift")
        page.screenshot(path=str(ARTIFACTS / "review_shift_resize.png"))
        page.keyboard.press("Enter")
        for _ in range(100):  # the line the Enter logged
            logged = (lines(root) or [{}])[-1]
            if logged.get("image") == name and logged.get("final"):
                break
            page.wait_for_timeout(100)
        fx0, fy0, fx1, fy1 = logged["final"]
        assert logged["decision"] == "modified" and fx1 < x1 - 10
        assert (fx1 - fx0) / (fy1 - fy0) == pytest.approx((x1 - x0) / (y1 - y0), rel=0.005)
        page.keyboard.press("0")
        page.get_by_role("button", name="Retrain").click()
        reviewer = page.locator(".cropkit-reviewer").last
        reviewer.locator("text=/mean IoU|too few to compare|retraining failed/").first.wait_for(timeout=240_000)
        assert reviewer.locator("text=retraining failed").count() == 0
        assert_true_proportions(page, window, "a Retrain's message")
        page.keyboard.press("Enter")
        page.wait_for_timeout(500)
        page.keyboard.press("Alt+ArrowLeft")
        reviewer.locator("text=decided earlier >> visible=true").first.wait_for(timeout=30_000)
        assert_true_proportions(page, window, "a revisit")
        page.screenshot(path=str(ARTIFACTS / "review_1920x1080_revisit.png"))
        browser.close()
