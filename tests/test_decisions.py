"""Decision logs: round trips, and every malformed line reported with file and line number, never fatal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


def test_a_straightening_angle_is_kept_and_older_lines_read_as_zero(tmp_path: Path):
    assert CropDecision.from_json(CROP).angle == 0.0 and SuggestionDecision.from_json(SUGGESTION).angle == 0.0
    turned = SuggestionDecision.from_json({**SUGGESTION, "angle": -12.5})
    append_decision(tmp_path, turned)
    assert json.loads((tmp_path / SUGGESTIONS_LOG).read_text())["angle"] == -12.5
    assert read_suggestions(tmp_path)[0] == [turned]
    for bad in (46, -90, "3", True, float("nan"), None):
        with pytest.raises(ValueError, match="'angle'"):
            CropDecision.from_json({**CROP, "angle": bad})


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


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=20)
near_records = st.fixed_dictionaries({}, optional={
    "image": st.sampled_from(["a.jpg", "../a.jpg", "/a.jpg", "d/b.jpg", "", 5]),
    "width": st.integers(-5, 500) | st.floats(), "height": st.integers(-5, 500),
    "crop": st.lists(st.integers(-10, 600) | st.floats(), max_size=5), "ts": st.integers(0, 10) | st.text(max_size=5),
    "suggested": st.lists(st.integers(-10, 600), max_size=5), "final": st.none() | st.lists(st.integers(0, 600),
                                                                                              max_size=5),
    "decision": st.sampled_from(["approved", "modified", "rejected", "maybe"]), "model": st.text(max_size=5),
    "undo": st.integers(0, 10) | st.text(max_size=3)})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(near_records, json_values.map(lambda v: v), st.binary(max_size=30)), max_size=12))
def test_log_readers_never_raise_and_return_only_valid_records(tmp_path_factory, lines):
    folder = tmp_path_factory.mktemp("logs")
    raw = [x if isinstance(x, bytes) else json.dumps(x).encode() for x in lines]
    for name in (TRAINING_LOG, SUGGESTIONS_LOG):
        (folder / name).write_bytes(b"\n".join(r.replace(b"\n", b" ") for r in raw))
    for reader, kind in ((read_crops, CropDecision), (read_suggestions, SuggestionDecision)):
        records, problems = reader(folder)
        assert all(isinstance(r, kind) for r in records)
        for r in records:  # each record is exactly what its own validation accepts again
            assert kind.from_json(r.to_json()) == r
        assert len({p.lineno for p in problems}) == len(problems)
        assert all(1 <= p.lineno <= len(raw) for p in problems)
        assert len(records) + len(problems) <= len(raw)
