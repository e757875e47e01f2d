"""The people models under two threads (the reviewer's background retrain extracts while the foreground computes a
new picture's features): one set of MediaPipe graphs, used by one caller at a time, rebuilt when in error, and a
failure of the models never recorded as the file's."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skimage_data

from cropkit.extract.options import ExtractOptions
from cropkit.extract.pipeline import run_extract
from cropkit.features import people
from cropkit.features.cues import compute_cues
from cropkit.fileio import read_jsonl
from tests.conftest import TINY
from tests.libgen import save_photo

pytestmark = pytest.mark.skipif(not people.available(), reason="the people extra (MediaPipe) is not installed")


def portraits() -> list[Image.Image]:
    """A real portrait (a face, a person, a hand candidate: all three graphs run), mirrored and cut."""
    a = skimage_data.astronaut()
    return [Image.fromarray(np.ascontiguousarray(x)) for x in (a, a[:, ::-1], a[40:470, 20:480], a[:, 60:])]


def fd2_identity() -> tuple[int, int]:
    st = os.fstat(2)
    return st.st_dev, st.st_ino


def at_once(work, n: int = 2) -> list[BaseException]:
    """Run ``work(i)`` on ``n`` threads released together; the exceptions they raised."""
    start, errors = threading.Barrier(n), []

    def run(i: int) -> None:
        start.wait()
        try:
            work(i)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_two_threads_computing_people_cues_at_once_get_what_one_thread_gets_and_fd2_is_restored():
    pictures = portraits()
    alone = [compute_cues(p, with_people=True) for p in pictures]
    fd2 = fd2_identity()
    got: dict[int, list] = {}

    def work(i: int) -> None:
        got[i] = [compute_cues(p, with_people=True) for p in pictures * 2]

    assert at_once(work) == []
    assert fd2_identity() == fd2, "file descriptor 2 was left pointing elsewhere (/dev/null)"
    for cues in got.values():
        for one, want in zip(cues, alone * 2):
            for name in ("person", "faces"):
                np.testing.assert_allclose(one.channel(name), want.channel(name), atol=1e-3)
            assert len(one.hands) == len(want.hands)
    assert alone[0].channel("faces").max() > 0.5  # the models did see her


def test_two_extract_runs_at_once_record_no_failure(tmp_path: Path):
    roots = [tmp_path / "a", tmp_path / "b"]
    for k, root in enumerate(roots):
        lib = root / "data" / "training_data"
        for i, picture in enumerate(portraits()):
            lib.mkdir(parents=True, exist_ok=True)
            picture.save(lib / f"portrait{i}.jpg", quality=90)
        for i in range(3):
            save_photo(lib / f"plain{i}.jpg", seed=10 * k + i)
    summaries = {}
    fd2 = fd2_identity()

    def work(i: int) -> None:
        summaries[i] = run_extract(ExtractOptions(root=roots[i], arch=TINY, weights="none", workers=0,
                                                  progress=False), log=lambda _m: None)

    assert at_once(work) == []
    assert fd2_identity() == fd2
    for i, root in enumerate(roots):
        assert summaries[i].processed == 7 and not summaries[i].failed
        lines = [obj for _, obj in read_jsonl(root / "data/ai_data/cache/processed_files.jsonl")]
        assert len(lines) == 7 and all(obj["status"] == "ok" for obj in lines), [o.get("error") for o in lines]


def test_a_graph_in_error_is_built_afresh():
    picture = np.asarray(portraits()[0])
    people.detect_people(picture)
    with people._LOCK:
        graph = people._models().faces
        graph._simulated_timestamp = 0  # the next picture comes "before" the last one: the graph errs for good
        with pytest.raises(Exception, match="timestamp"):
            graph.process(picture)
    seen = people.detect_people(picture)
    assert seen.faces and seen.person.mean() > 0.1


def test_a_failure_of_the_models_is_not_recorded_against_the_file(tmp_path: Path):
    from cropkit.extract.prepare import Failed
    from cropkit.extract.save import Stores, record_failure
    from cropkit.features.cache import ProcessedCache
    from cropkit.features.cues import CueStore
    from cropkit.features.store import FeatureStore
    from cropkit.layout import Layout

    layout = Layout.from_args(tmp_path, None)
    photo = save_photo(layout.images / "p.jpg")
    st = photo.stat()
    stores = Stores(FeatureStore(layout.embeddings, "m"), CueStore(layout.cues))
    cache = ProcessedCache(layout.processed_files, "m")
    assert not record_failure(Failed(photo, st.st_size, st.st_mtime_ns, people.MODEL_ERROR, "graph"), layout, cache,
                              stores)
    name = layout.relative_name(photo)
    assert ProcessedCache(layout.processed_files, "m").get(name) is None  # tried again on the next run
    assert record_failure(Failed(photo, st.st_size, st.st_mtime_ns, "not-an-image", "no"), layout, cache, stores)
    assert ProcessedCache(layout.processed_files, "m").get(name).error["kind"] == "not-an-image"
