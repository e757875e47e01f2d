"""Which images the reviewer shows and in what order."""

from __future__ import annotations

import os

import pytest

from cropkit.decisions import read_crops
from cropkit.layout import Layout
from cropkit.learn.suggest import Suggester
from cropkit.review.queue import order_queue, pending_images
from tests.libgen import save_photo


def test_queue_orders(library):
    layout = Layout.from_args(library)
    suggester = Suggester.open(library)
    pending = pending_images(layout)
    assert [p.name for p in pending] == [f"r{i:02d}.jpg" for i in range(10, 16)]
    assert order_queue(pending, "file") == sorted(pending)
    scores = {p: suggester.suggest(p, k=1).suggestions[0].score for p in pending}
    uncertain = order_queue(pending, "uncertain", suggester)
    assert [scores[p] for p in uncertain] == sorted(scores.values())
    with pytest.raises(ValueError, match="queue order"):
        order_queue(pending, "random")
    assert read_crops(layout.logs)[1] == []


def test_newest_first_and_files_gone_last(tmp_path):
    paths = [save_photo(tmp_path / f"{name}.jpg", 40, 30) for name in ("a", "b", "c")]
    for path, age in zip(paths, (300, 100, 200)):
        os.utime(path, (1_700_000_000 - age, 1_700_000_000 - age))
    gone = tmp_path / "gone.jpg"
    assert [p.name for p in order_queue([gone, *paths], "newest")] == ["b.jpg", "c.jpg", "a.jpg", "gone.jpg"]
    assert [p.name for p in order_queue([paths[2], gone, paths[0]], "file")] == ["a.jpg", "c.jpg", "gone.jpg"]
