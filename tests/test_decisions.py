"""Decision logs: round trips, and every malformed line reported with file and line number, never fatal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cropkit.decisions import (
    SUGGESTIONS_LOG,
    TRAINING_LOG,
    CropDecision,
    SuggestionDecision,
    append_decision,
    append_undo,
    read_crops,
    read_suggestions,
    safe_image_path,
)

CROP = {"image": "data/training_data/a.jpg", "width": 400, "height": 300, "crop": [10, 20, 310, 260],
        "ts": 1700000000.5}
SUGGESTION = {"image": "data/training_data/b.jpg", "width": 400, "height": 300, "suggested": [0, 0, 200, 150],
              "final": [10, 10, 210, 160], "decision": "modified", "model": "crop_proposer_v1", "ts": 1700000001}


def test_round_trip_through_the_logs(tmp_path: Path):
    crop = CropDecision.from_json({**CROP, "source": "lightroom", "hash": "ab" * 32})
    rejected = SuggestionDecision.from_json({**SUGGESTION, "decision": "rejected", "final": None})
    for record in (crop, SuggestionDecision.from_json(SUGGESTION), rejected):
        append_decision(tmp_path, record)
    crops, bad = read_crops(tmp_path)
    assert crops == [crop] and bad == []
    suggestions, bad = read_suggestions(tmp_path)
    assert [s.decision for s in suggestions] == ["modified", "rejected"] and bad == []
    assert suggestions[1].final is None and suggestions[0].final == (10.0, 10.0, 210.0, 160.0)
    line = json.loads((tmp_path / TRAINING_LOG).read_text().splitlines()[0])
    assert line["crop"] == [10.0, 20.0, 310.0, 260.0] and line["source"] == "lightroom"


def test_iso_timestamps_are_accepted():
    rec = CropDecision.from_json({**CROP, "ts": "2026-11-25T10:00:00Z"})
    assert rec.ts == pytest.approx(1795600800.0)


BAD_CROPS = {
    "missing image": {k: v for k, v in CROP.items() if k != "image"},
    "absolute path": {**CROP, "image": "/etc/passwd"},
    "escaping path": {**CROP, "image": "data/../../secret.jpg"},
    "windows path": {**CROP, "image": "data\\training_data\\a.jpg"},
    "drive letter": {**CROP, "image": "C:/photos/a.jpg"},
    "NUL in path": {**CROP, "image": "a\x00.jpg"},
    "width zero": {**CROP, "width": 0},
    "width float": {**CROP, "width": 400.5},
    "height bool": {**CROP, "height": True},
    "crop outside": {**CROP, "crop": [10, 20, 410, 260]},
    "crop negative": {**CROP, "crop": [-1, 20, 300, 260]},
    "crop inverted": {**CROP, "crop": [300, 20, 10, 260]},
    "crop empty": {**CROP, "crop": [10, 20, 10, 260]},
    "crop three numbers": {**CROP, "crop": [10, 20, 310]},
    "crop strings": {**CROP, "crop": ["10", 20, 310, 260]},
    "crop NaN": {**CROP, "crop": [10, 20, float("nan"), 260]},
    "no ts": {k: v for k, v in CROP.items() if k != "ts"},
    "bad ts": {**CROP, "ts": "yesterday"},
    "source not text": {**CROP, "source": 5},
}

BAD_SUGGESTIONS = {
    "unknown decision": {**SUGGESTION, "decision": "maybe"},
    "rejected with final": {**SUGGESTION, "decision": "rejected"},
    "approved without final": {**SUGGESTION, "decision": "approved", "final": None},
    "suggested outside": {**SUGGESTION, "suggested": [0, 0, 500, 150]},
    "final outside": {**SUGGESTION, "final": [0, 0, 200, 301]},
    "no model": {k: v for k, v in SUGGESTION.items() if k != "model"},
    "escaping path": {**SUGGESTION, "image": "../b.jpg"},
}


@pytest.mark.parametrize(("log", "reader", "cases", "good"), [
    (TRAINING_LOG, read_crops, BAD_CROPS, CROP),
    (SUGGESTIONS_LOG, read_suggestions, BAD_SUGGESTIONS, SUGGESTION),
])
def test_every_malformed_line_is_reported_with_its_line_number_and_skipped(tmp_path, log, reader, cases, good):
    raw_lines = [json.dumps(good)]
    expected_bad = {}
    for name, obj in cases.items():
        raw_lines.append(json.dumps(obj))
        expected_bad[len(raw_lines)] = name
    raw_lines += ["not json at all", "[1, 2, 3]", json.dumps(good), '{"image": "torn']
    (tmp_path / log).write_text("\n".join(raw_lines))  # no final newline: a torn last line
    records, problems = reader(tmp_path)
    assert len(records) == 2
    by_line = {p.lineno: p for p in problems}
    n = len(raw_lines)
    assert set(by_line) == set(expected_bad) | {n - 3, n - 2, n}
    assert "torn last line" in by_line[n].reason
    for p in problems:
        assert str(p).startswith(f"{tmp_path / log}:{p.lineno}: ")
    escaping = next(k for k, v in expected_bad.items() if v == "escaping path")
    assert "escapes the library root" in by_line[escaping].reason


def test_safe_image_path_accepts_plain_relative_paths():
    assert safe_image_path("data/training_data/2024/café.jpg") == "data/training_data/2024/café.jpg"
    assert safe_image_path("./a.jpg") == "./a.jpg"


def test_undo_lines_cancel_exactly_their_decision(tmp_path: Path):
    first = SuggestionDecision.from_json(SUGGESTION)
    second = SuggestionDecision.from_json({**SUGGESTION, "decision": "rejected", "final": None, "ts": 1700000002})
    crop = CropDecision.from_json(CROP)
    for record in (first, second, crop):
        append_decision(tmp_path, record)
    append_undo(tmp_path, second, ts=1700000003)
    append_undo(tmp_path, crop, ts=1700000004)
    suggestions, bad = read_suggestions(tmp_path)
    assert suggestions == [first] and bad == []
    assert read_crops(tmp_path) == ([], [])
    lines = (tmp_path / SUGGESTIONS_LOG).read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[-1]) == {"image": first.image, "undo": 1700000002.0,
                                                          "ts": 1700000003}
    with open(tmp_path / SUGGESTIONS_LOG, "a") as f:
        f.write(json.dumps({"image": "../x.jpg", "undo": 1, "ts": 2}) + "\n")
        f.write(json.dumps({"image": "a.jpg", "undo": "yesterday", "ts": 2}) + "\n")
    _, bad = read_suggestions(tmp_path)
    assert [b.lineno for b in bad] == [4, 5]
