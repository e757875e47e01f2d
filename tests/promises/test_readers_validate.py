"""Every reader validates at the edge: decision logs, cache lines, proposer files and model configs give a clear
error or a reported skip, never a traceback, a hang, a huge allocation or a non-finite crop (issue 11: 8, 9, 11,
12, 18, 19, 20)."""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import pytest
import torch

from cropkit.cli import main
from cropkit.decisions import CropDecision, read_crops, read_suggestions
from cropkit.errors import CropkitError
from cropkit.features.cues import CUES_SHAPE, Cues, cue_version
from cropkit.features.store import Features
from cropkit.learn.candidates import FEATURE_NAMES
from cropkit.learn.proposer import CropProposer, ProposerNet
from tests.conftest import TINY, TINY_CONFIG
from tests.helpers.deadline import deadline
from tests.promises.learning_root import make_trained_root

BIG = "1" + "0" * 400  # a JSON number no float can hold
GOOD_CROP = {"image": "a.jpg", "width": 400, "height": 300, "crop": [10, 20, 310, 260], "ts": 1700000000}


@pytest.fixture(scope="module")
def trained_root(tmp_path_factory):
    return make_trained_root(tmp_path_factory.mktemp("trained"))


# ---- 9 and 18: decision logs ----------------------------------------------------------------------------------

def test_huge_and_non_finite_log_numbers_are_reported_and_skipped(tmp_path):
    lines = [
        '{"image":"a.jpg","width":400,"height":300,"crop":[10,20,310,BIG],"ts":1}'.replace("BIG", BIG),
        '{"image":"a.jpg","width":BIG,"height":300,"crop":[10,20,310,260],"ts":1}'.replace("BIG", BIG),
        '{"image":"a.jpg","width":400,"height":300,"crop":[10,20,310,260],"ts":BIG}'.replace("BIG", BIG),
        '{"image":"a.jpg","width":400,"height":300,"crop":[10,20,310,260],"ts":NaN}',
        '{"image":"a.jpg","width":400,"height":300,"crop":[10,20,310,260],"ts":Infinity}',
        '{"image":"a.jpg","width":400,"height":300,"crop":[10,20,310,260],"ts":-1e300}',
        '{"image":"a.jpg","undo":BIG,"ts":1}'.replace("BIG", BIG),
        '{"image":"a.jpg","undo":NaN,"ts":1}',
        json.dumps(GOOD_CROP),
    ]
    (tmp_path / "training_log.jsonl").write_text("\n".join(lines) + "\n")
    records, problems = read_crops(tmp_path)
    assert records == [CropDecision.from_json(GOOD_CROP)]
    assert [p.lineno for p in problems] == list(range(1, 9))
    assert all(len(p.reason) < 300 for p in problems)


def test_a_huge_field_of_a_bad_line_is_not_echoed_in_full(tmp_path):
    bad = {**GOOD_CROP, "image": "/" + "x" * 10_000_000}
    (tmp_path / "suggestions.jsonl").write_text(json.dumps({**bad, "decision": "maybe" * 1000}) + "\n")
    (tmp_path / "training_log.jsonl").write_text(json.dumps(bad) + "\n")
    for reader in (read_crops, read_suggestions):
        records, problems = reader(tmp_path)
        assert records == [] and len(problems) == 1
        assert len(str(problems[0])) < len(str(tmp_path)) + 300, str(problems[0])[:400]


def test_train_and_evaluate_skip_a_line_with_a_400_digit_number(tmp_path_factory, capsys):
    root = make_trained_root(tmp_path_factory.mktemp("overflow"), n=8)
    with open(root / "data/ai_data/logs/training_log.jsonl", "a") as f:
        f.write('{"image":"data/training_data/p01.jpg","width":BIG,"height":10,"crop":[0,0,5,5],"ts":1}\n'
                .replace("BIG", BIG))
    from tests.promises.learning_root import FEATURES

    assert main(["train", "--root", str(root), *FEATURES, "--steps", "5", "--no-progress", "--workers", "0"]) == 0
    assert "skipped log lines: 1" in capsys.readouterr().out
    assert main(["evaluate", "--root", str(root), "--arch-config", str(TINY_CONFIG), "--no-progress"]) == 0


# ---- 11: cache lines --------------------------------------------------------------------------------------------

OK_ENTRY = {"path": "data/training_data/a.jpg", "size": 1000, "mtime_ns": 1, "model": "m/x", "status": "ok",
            "hash": "ab" * 32, "phash": "0123456789abcdef", "width": 400, "height": 300,
            "shapes": {"global": [32], "grid": [4, 4, 32]}, "error": None, "ts": 1700000000.0}


@pytest.mark.parametrize("change", [
    {"width": 0}, {"width": None}, {"width": "400"}, {"height": True}, {"height": int(BIG)}, {"hash": "xyz"},
    {"hash": None}, {"size": -1}, {"size": 1.5}, {"phash": "zz"}, {"shapes": "big"}, {"shapes": {"g": [-1]}},
    {"error": "x"}, {"ts": float("nan")}, {"path": ""}, {"model": 5},
])
def test_a_cache_line_with_a_bad_field_is_refused(change):
    from cropkit.features.cache import CacheEntry

    assert CacheEntry.from_json(OK_ENTRY).width == 400
    with pytest.raises(ValueError, match=repr(next(iter(change)))):
        CacheEntry.from_json({**OK_ENTRY, **change})


@pytest.mark.parametrize("width", [0, None, "wide"])
def test_suggest_skips_a_cache_line_with_a_bad_width(trained_root, capsys, width):
    cache_file = trained_root / "data/ai_data/cache/processed_files.jsonl"
    entries = [json.loads(line) for line in cache_file.read_text().splitlines()]
    entry = next(e for e in entries if e["path"] == "data/training_data/p03.jpg" and e["status"] == "ok")
    with open(cache_file, "a") as f:
        f.write(json.dumps({**entry, "width": width}) + "\n")
    args = ["suggest", "--root", str(trained_root), "--json", "--arch-config", str(TINY_CONFIG),
            str(trained_root / "data/training_data/p03.jpg")]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["width"], result["height"]) == (entry["width"], entry["height"])


# ---- 11, 12, 18, 19: proposer files -----------------------------------------------------------------------------

@pytest.fixture
def proposer_payload(tmp_path) -> dict:
    net = ProposerNet(len(FEATURE_NAMES), 32)
    meta = {"feature_model": "cropkit-tiny/random-init-seed0", "aspects": [1.0], "cues": cue_version()}
    path = CropProposer(net, meta).save(tmp_path)
    return torch.load(path, weights_only=True)


def _without(d: dict, key: str) -> dict:
    return {k: v for k, v in d.items() if k != key}


def _with_tensor(p: dict, name: str, value: float) -> dict:
    state = {k: v.clone() for k, v in p["state_dict"].items()}
    state[name].fill_(value)
    return {**p, "state_dict": state}


BAD_PROPOSERS = {
    "no config": lambda p: _without(p, "config"),
    "config of about 400 GB": lambda p: {**p, "config": {**p["config"], "hidden": 316_228}},
    "config sizes as text": lambda p: {**p, "config": {**p["config"], "emb_dim": "32"}},
    "empty weights": lambda p: {**p, "state_dict": {}},
    "weights of another shape": lambda p: {**p, "state_dict": {**p["state_dict"], "emb.weight": torch.zeros(8, 16)}},
    "string meta": lambda p: {**p, "meta": "hello"},
    "meta without feature model": lambda p: {**p, "meta": {"name": "x"}},
    "NaN weights": lambda p: _with_tensor(p, "head.weight", float("nan")),
    "zero std": lambda p: _with_tensor(p, "std", 0.0),
    "infinite mean": lambda p: _with_tensor(p, "mean", float("inf")),
}


@pytest.mark.parametrize("kind", list(BAD_PROPOSERS))
def test_a_damaged_proposer_is_refused_with_a_clear_error(tmp_path, proposer_payload, kind):
    path = tmp_path / "crop_proposer_v9.pth"
    torch.save(BAD_PROPOSERS[kind](proposer_payload), path)
    with pytest.raises(CropkitError, match="[Rr]etrain with cropkit train"):
        CropProposer.load(path)


class _RunsCode:
    def __reduce__(self):
        return (os.getpid, ())


def test_unreadable_proposers_say_why_without_torch_advice(tmp_path):
    empty = tmp_path / "crop_proposer_v1.pth"
    empty.write_bytes(b"")
    code = tmp_path / "crop_proposer_v2.pth"
    torch.save({"format": "cropkit-crop-proposer", "meta": _RunsCode()}, code)
    cut = tmp_path / "crop_proposer_v3.pth"
    buf = (tmp_path / "whole.pth")
    torch.save({"x": torch.zeros(100)}, buf)
    cut.write_bytes(buf.read_bytes()[:300])
    for path, why in ((empty, "empty"), (code, "could run code"), (cut, "cut short")):
        with pytest.raises(CropkitError) as err:
            CropProposer.load(path)
        message = str(err.value)
        assert why in message and ": ." not in message and "weights_only" not in message, message


def test_a_pipe_named_like_a_proposer_is_refused_not_waited_on(trained_root, tmp_path, capsys):
    models = trained_root / "data/ai_data/models"
    fifo = models / "crop_proposer_v50.pth"
    os.mkfifo(fifo)
    try:
        with deadline(20, "the reader"):
            assert main(["evaluate", "--root", str(trained_root), "--arch-config", str(TINY_CONFIG),
                         "--no-progress", "--out", str(tmp_path / "report")]) == 2
            assert main(["suggest", "--root", str(trained_root), "--arch-config", str(TINY_CONFIG),
                         str(trained_root / "data/training_data/p01.jpg")]) == 2
    finally:
        fifo.unlink()
    err = capsys.readouterr().err
    assert err.count("crop_proposer_v50.pth") == 2 and "not a regular file" in err


def test_features_of_another_model_are_refused_not_a_matmul_error(trained_root):
    proposer = CropProposer.load(trained_root / "data/ai_data/models/crop_proposer_v1.pth")
    rng = np.random.default_rng(0)
    other = Features(rng.standard_normal(16).astype(np.float32), rng.standard_normal((4, 4, 16)).astype(np.float32))
    cues = Cues.from_arrays(np.zeros(CUES_SHAPE, np.float32))
    with pytest.raises(CropkitError, match="trained on 32-dimensional features"):
        proposer.propose(400, 300, cues, other)


def test_a_proposer_never_returns_a_non_finite_crop(trained_root):
    proposer = CropProposer.load(trained_root / "data/ai_data/models/crop_proposer_v1.pth")
    nan = Features(np.full(32, np.nan, np.float32), np.full((4, 4, 32), np.nan, np.float32))
    cues = Cues.from_arrays(np.zeros(CUES_SHAPE, np.float32))
    with pytest.raises(CropkitError, match="not finite"):
        proposer.propose(400, 300, cues, nan)
    with pytest.raises((CropkitError, ValueError), match="aspect"):
        proposer.propose(400, 300, cues, Features(np.ones(32, np.float32) / 6, np.ones((4, 4, 32), np.float32)),
                         aspect=1e-20)


# ---- 12: aspects ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("aspect", ["1e-20:1", "1e300:1e-300", "21:1", "1:21", "inf:1"])
def test_suggest_refuses_an_absurd_aspect(trained_root, capsys, aspect):
    args = ["suggest", "--root", str(trained_root), "--json", "--aspect", aspect, "--arch-config", str(TINY_CONFIG),
            str(trained_root / "data/training_data/p02.jpg")]
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "--aspect" in captured.err


def test_suggest_accepts_the_extreme_aspects_it_allows(trained_root, capsys):
    for aspect in ("1:20", "20:1"):
        args = ["suggest", "--root", str(trained_root), "--json", "--aspect", aspect, "--arch-config",
                str(TINY_CONFIG), str(trained_root / "data/training_data/p02.jpg")]
        assert main(args) == 0
        result = json.loads(capsys.readouterr().out, parse_constant=lambda c: pytest.fail(f"{c} in the output"))
        assert all(np.isfinite(s["box"]).all() for s in result["suggestions"])


# ---- 11, 18, 19: --arch-config ---------------------------------------------------------------------------------

def test_a_model_config_with_a_syntax_error_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "mine.json"
    bad.write_text('{"embed_dim": 32,\n "vision_cfg": {"width": 64,,}}')
    assert main(["suggest", "--root", str(tmp_path), "--arch-config", str(bad), "x.jpg"]) == 2
    err = capsys.readouterr().err
    assert "mine.json is not valid JSON (line 2" in err and "Traceback" not in err


def test_a_deeply_nested_model_config_is_a_clear_error(tmp_path, capsys):
    for name, text in (("deep", "[" * 100_000 + "]" * 100_000),
                       ("nested", '{"embed_dim": 32, "text_cfg": {}, "vision_cfg": ' + "{\"a\": " * 50 + "1"
                        + "}" * 51)):
        (tmp_path / f"{name}.json").write_text(text)
        assert main(["suggest", "--root", str(tmp_path), "--arch-config", str(tmp_path / f"{name}.json"),
                     "x.jpg"]) == 2
        err = capsys.readouterr().err
        assert f"{name}.json" in err and "open_clip model config" in err


def test_a_pipe_in_a_model_config_folder_is_refused_not_waited_on(tmp_path, capsys):
    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "cropkit-tiny-copy.json").write_text(TINY_CONFIG.read_text())
    os.mkfifo(folder / "waiting.json")
    with deadline(20, "the reader"):
        assert main(["suggest", "--root", str(tmp_path), "--arch-config", str(folder), "x.jpg"]) == 2
    err = capsys.readouterr().err
    assert "waiting.json" in err and "not a regular file" in err


def test_a_config_that_cannot_be_built_is_not_blamed_on_weights(tmp_path):
    from cropkit.features.encoders import resolve_weights
    from cropkit.features.encoders.open_clip import ClipEncoder, register_arch_configs

    cfg = json.loads(TINY_CONFIG.read_text())
    cfg["vision_cfg"]["width"] = "wide"
    (tmp_path / "cropkit-unbuildable.json").write_text(json.dumps(cfg))
    register_arch_configs(tmp_path / "cropkit-unbuildable.json")
    with pytest.raises(CropkitError) as err:
        ClipEncoder("cropkit-unbuildable", resolve_weights("cropkit-unbuildable", "none"), torch.device("cpu"))
    assert "unpickle" not in str(err.value) and "--arch-config" in str(err.value)


# ---- 20: noise ----------------------------------------------------------------------------------------------------

def test_a_random_encoder_on_purpose_does_not_log_open_clips_warning(caplog):
    from cropkit.features.encoders import resolve_weights
    from cropkit.features.encoders.open_clip import ClipEncoder

    with caplog.at_level(logging.WARNING):
        ClipEncoder(TINY, resolve_weights(TINY, "none"), torch.device("cpu"))
    assert not [r for r in caplog.records if "No pretrained weights loaded" in r.getMessage()]


def test_one_decision_is_singular(tmp_path_factory, capsys):
    root = make_trained_root(tmp_path_factory.mktemp("one"), n=1)
    out = capsys.readouterr().out
    assert "trained on: 1 decision, " in out and "1 decisions" not in out
    from cropkit.evaluate.report import report_lines

    report = {"proposer": "p", "held_out_images": 1, "methods": {}, "suggestions": {"by_model": {}},
              "figures": {}}
    assert report_lines(report, root)[0] == "proposer p on 1 held-out image:"


# ---- 8: names that are not valid UTF-8 ------------------------------------------------------------------------------

def test_a_surrogate_escaped_name_maps_to_its_file_and_splits(tmp_path):
    from cropkit.decisions import safe_image_path
    from cropkit.layout import Layout
    from cropkit.learn.dataset import split_by_image

    images = tmp_path / "data/training_data"
    images.mkdir(parents=True)
    (images / os.fsdecode(b"caf\xe9.jpg")).write_bytes(b"x")
    name = "data/training_data/" + os.fsdecode(b"caf\xe9.jpg")
    logged = json.loads(json.dumps({**GOOD_CROP, "image": name}))  # how a log line carries it
    assert safe_image_path(logged["image"]) == name
    assert Layout.from_args(tmp_path).image_path(CropDecision.from_json(logged).image).is_file()
    train, test = split_by_image([name, "data/training_data/b.jpg"], 0.5)
    assert sorted(train + test) == sorted([name, "data/training_data/b.jpg"])


def test_suggest_json_lines_print_for_any_name():
    from cropkit.decisions import Suggestion
    from cropkit.learn.suggest import ImageSuggestions, result_json

    name = "d/" + os.fsdecode(b"caf\xe9.jpg") + " é"
    line = result_json(ImageSuggestions(name, 40, 30, "crop_proposer_v1", ()))
    line.encode("utf-8")  # printable on a UTF-8 stdout
    assert json.loads(line)["image"] == name
    with pytest.raises(ValueError):
        result_json(ImageSuggestions(name, 40, 30, "crop_proposer_v1", (Suggestion((0, 0, float("nan"), 30), 1.0),)))


def test_train_and_suggest_handle_a_file_name_that_is_not_utf8(tmp_path, capsys):
    from tests.libgen import square_on_subject, subject_photo
    from tests.promises.learning_root import FEATURES

    images, logs = tmp_path / "data/training_data", tmp_path / "data/ai_data/logs"
    images.mkdir(parents=True)
    names = [os.fsdecode(b"caf\xe9.jpg"), "b.jpg", "c.jpg", "d.jpg"]
    for i, name in enumerate(names):
        img, subject = subject_photo(400 + i)
        img.save(images / name)
        (logs / "training_log.jsonl").parent.mkdir(parents=True, exist_ok=True)
        with open(logs / "training_log.jsonl", "a") as f:  # what a tool that logs such names writes
            f.write(json.dumps({"image": f"data/training_data/{name}", "width": img.width, "height": img.height,
                                "crop": list(square_on_subject(*img.size, subject)), "ts": i + 1}) + "\n")
    assert main(["train", "--root", str(tmp_path), *FEATURES, "--steps", "5", "--no-progress", "--workers", "0"]) == 0
    assert "trained on: 4 decisions" in capsys.readouterr().out
    from cropkit.learn.suggest import Suggester, result_json

    suggester = Suggester.open(tmp_path)
    line = result_json(suggester.suggest(images / names[0]))
    result = json.loads(line.encode("utf-8"))
    assert suggester.layout.image_path(result["image"]) == images / names[0] and result["suggestions"]
