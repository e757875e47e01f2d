"""Other reviewers on the same root: the lines they append to the logs, and their registrations."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import time
from pathlib import Path

from cropkit.decisions import CropDecision, SuggestionDecision, append_decision, append_undo
from cropkit.review.others import (
    REVIEWERS,
    decided_elsewhere,
    lines_since,
    log_sizes,
    other_reviewers,
    register_reviewer,
)


def test_lines_since_reads_the_whole_json_objects_appended_after_the_mark(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text('{"old": 1}\n')
    mark = log.stat().st_size
    with open(log, "a") as f:
        f.write('{"new": 1}\nnot json\n[1, 2]\n{"new": 2}\n')
    assert lines_since(log, mark) == [{"new": 1}, {"new": 2}]
    log.write_text('{"r": 1}\n')  # shorter than the mark: read from the start
    assert lines_since(log, mark) == [{"r": 1}]
    assert lines_since(tmp_path / "missing.jsonl", 0) == []


def test_decided_elsewhere_names_only_others_decisions_on_that_image_not_undone(tmp_path):
    logs = tmp_path / "logs"
    append_decision(logs, CropDecision("a.jpg", 40, 30, (0, 0, 20, 20), 1.0))  # before the mark: not news
    marks = log_sizes(logs)
    ts = time.time()
    own = SuggestionDecision("a.jpg", 40, 30, (0, 0, 20, 20), None, "rejected", "v1", ts)
    undone = SuggestionDecision("a.jpg", 40, 30, (0, 0, 20, 20), None, "rejected", "v1", ts + 1)
    for record in (own, undone, SuggestionDecision("b.jpg", 40, 30, (0, 0, 20, 20), None, "rejected", "v1", ts)):
        append_decision(logs, record)
    append_undo(logs, undone, ts + 2)
    assert decided_elsewhere(logs, marks, "a.jpg", own={("a.jpg", ts)}) == ""
    append_decision(logs, SuggestionDecision("a.jpg", 40, 30, (0, 0, 20, 20), (0, 0, 20, 20), "approved", "v1",
                                             ts + 3))
    append_decision(logs, CropDecision("a.jpg", 40, 30, (0, 0, 10, 10), ts + 4))
    clock = time.strftime("%H:%M:%S", time.localtime(ts + 3))
    assert decided_elsewhere(logs, marks, "a.jpg", own={("a.jpg", ts)}).startswith(f"approved at {clock}; a crop at")


class Reviewer:  # anything a registration can be tied to
    pass


def test_registrations_are_listed_for_other_live_processes_and_withdrawn_at_close(tmp_path):
    folder = tmp_path / REVIEWERS
    mine = Reviewer()
    close = register_reviewer(mine, tmp_path)
    (path,) = folder.glob("*.json")
    assert json.loads(path.read_text())["pid"] == os.getpid()
    assert other_reviewers(tmp_path) == []  # this process's own reviewers are not listed
    other = subprocess.Popen(["sleep", "60"])
    try:
        stat = Path(f"/proc/{other.pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
        (folder / "live.json").write_text(json.dumps({"pid": other.pid, "started": 0.0, "process_start": stat}))
        (folder / "reused.json").write_text(json.dumps({"pid": other.pid, "started": 0.0, "process_start": "0"}))
        (folder / "bad.json").write_text("{")
        (listed,) = other_reviewers(tmp_path)
        assert listed.startswith(f"another reviewer (pid {other.pid}) is open on this root since ")
        assert not (folder / "reused.json").exists()  # that pid is another process now: stale, removed
        assert (folder / "bad.json").exists()  # not ours to judge: left alone
    finally:
        other.kill()
        other.wait()
    assert other_reviewers(tmp_path) == [] and not (folder / "live.json").exists()  # its process ended
    close()
    assert not path.exists()
    register_reviewer(Reviewer(), tmp_path)
    gc.collect()  # a reviewer garbage-collected withdraws its registration too
    assert sorted(p.name for p in folder.iterdir()) == ["bad.json"]
