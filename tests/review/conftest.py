"""Shared by the reviewer tests: a library with a trained proposer v1, sessions and reviewers on it whose logs are
restored after each test, and synthetic canvas events."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cropkit.cli import main
from cropkit.decisions import CropDecision, append_decision
from cropkit.layout import Layout
from cropkit.learn.suggest import Suggester
from cropkit.learn.train import TrainOptions
from cropkit.review.queue import order_queue, pending_images
from cropkit.review.session import ReviewSession
from cropkit.review.start import retrainer
from cropkit.review.widget import CropReviewer
from tests.conftest import TINY, TINY_CONFIG
from tests.libgen import changed_entries, snapshot, square_on_subject, subject_photo

FEATURES = ["--arch", TINY, "--weights", "none", "--arch-config", str(TINY_CONFIG)]


@pytest.fixture(scope="package")
def library(tmp_path_factory):
    """16 photos, 10 already cropped by the photographer, a proposer v1 trained on them; two companions, one of
    them with a YAML tag that would run a command. Checked unchanged at the end."""
    root = tmp_path_factory.mktemp("review")
    images = root / "data/training_data"
    images.mkdir(parents=True)
    for i in range(16):
        img, subject = subject_photo(300 + i)
        img.save(images / f"r{i:02d}.jpg", quality=90)
        if i < 10:
            append_decision(root / "data/ai_data/logs", CropDecision(
                f"data/training_data/r{i:02d}.jpg", *img.size, square_on_subject(*img.size, subject), float(i)))
    (images / "r12.yaml").write_text("rating: 4\ntags: [harbour, dusk]\n")
    (images / "r13.yaml").write_text("!!python/object/apply:os.system ['touch pwned']\n")
    assert main(["train", "--root", str(root), *FEATURES, "--steps", "60", "--no-progress", "--workers", "0"]) == 0
    before = snapshot(images)
    yield root
    assert changed_entries(before, snapshot(images)) == {}
    assert not (images / "pwned").exists() and not Path("pwned").exists()


@pytest.fixture
def fresh_logs(library):
    """Each test starts from the library's logs and proposer v1 only."""
    logs = library / "data/ai_data/logs"
    backup = {p.name: p.read_bytes() for p in logs.glob("*.jsonl")}
    yield
    for p in logs.glob("*.jsonl"):
        p.write_bytes(backup.get(p.name, b""))
    for p in (library / "data/ai_data/models").glob("crop_proposer_v*.pth"):
        if p.name != "crop_proposer_v1.pth":
            p.unlink()


def new_session(root: Path) -> ReviewSession:
    """A session over the pending images of ``root`` in file order, showing the first one."""
    session = ReviewSession(Suggester.open(root), order_queue(pending_images(Layout.from_args(root)), "file"))
    session.go_to(0)
    return session


@pytest.fixture
def session(library, fresh_logs):
    s = new_session(library)
    yield s
    s.close()


def train_options(root: Path) -> TrainOptions:
    return TrainOptions(root=root, arch=TINY, weights="none", steps=40, progress=False, workers=0)


@pytest.fixture
def reviewer(library, fresh_logs):
    session = new_session(library)
    rv = CropReviewer(session, retrain=retrainer(session, train_options(library)))
    yield rv
    rv.wait_for_retrain()
    rv.close()


def send(rv: CropReviewer, event: str, **content) -> None:
    """A canvas event, as ipycanvas's front end sends it."""
    rv.canvas[-1]._handle_frontend_event(None, {"event": event, **content}, [])


def page(rv: CropReviewer, **message) -> None:
    """A message from the page bridge, as its front end sends it."""
    rv.bridge._handle_custom_msg(message, [])


def key(rv: CropReviewer, name: str, kind: str = "keydown", **modifiers) -> None:
    """A key pressed while the reviewer holds the keyboard (shift, ctrl, alt, meta: False unless given)."""
    page(rv, **{"kind": kind, "key": name, "code": "", "shift": False, "ctrl": False, "alt": False, "meta": False,
                "repeat": False, **modifiers})


def drag_canvas(rv: CropReviewer, start: tuple[float, float], end: tuple[float, float], steps: int = 3) -> None:
    """Press at canvas point ``start``, move in steps, release at canvas point ``end``."""
    (sx, sy), (ex, ey) = start, end
    send(rv, "mouse_down", x=sx, y=sy)
    for i in range(1, steps + 1):
        send(rv, "mouse_move", x=sx + (ex - sx) * i / steps, y=sy + (ey - sy) * i / steps)
    send(rv, "mouse_up", x=ex, y=ey)


def drag(rv: CropReviewer, start: tuple[float, float], end: tuple[float, float], steps: int = 3) -> None:
    """Press at image point ``start``, move in steps, release at image point ``end`` (canvas events)."""
    drag_canvas(rv, rv.view.to_canvas(*start), rv.view.to_canvas(*end), steps)


def lines(root: Path, name: str = "suggestions.jsonl") -> list[dict]:
    path = root / "data/ai_data/logs" / name
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
