"""The subject map: a salient-object model in ONNX, rewritten to run at any size, as a cue of where the subject is.

The tests build their own tiny model with ISNet's pattern: an export at a fixed size whose Resize takes its target
size from ``Concat(Shape(x)[:2], constant [h, w])``. It marks bright pixels as the subject."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cropkit.errors import CropkitError
from cropkit.features import subject
from cropkit.features.subject import MAP_SIDE, SubjectMap, SubjectModel, model_file

pytestmark = pytest.mark.skipif(not subject.available(), reason="the subject extra (onnxruntime, onnx) is not "
                                "installed; make test installs it")
EXPORT = 64


def tiny_isnet(path, export: int = EXPORT, scale: float = 40.0):
    """(x - 128) / 256 in, a mask out: sigmoid(scale * mean over channels), pooled by 2 (ceil mode) and resized
    back to a size fixed at export, the way ISNet's decoder resizes."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.full((1, 3, 1, 1), scale / 3, np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["input", "w"], ["lit"]),
        helper.make_node("MaxPool", ["lit"], ["half"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1),
        helper.make_node("Shape", ["half"], ["shape"]),
        helper.make_node("Slice", ["shape", "zero", "two", "zero"], ["nc"]),
        helper.make_node("Concat", ["nc", "hw"], ["size"], axis=0),
        helper.make_node("Resize", ["half", "", "", "size"], ["back"], mode="linear"),
        helper.make_node("Sigmoid", ["back"], ["output"]),
    ]
    consts = [numpy_helper.from_array(np.array([0], np.int64), "zero"),
              numpy_helper.from_array(np.array([2], np.int64), "two"),
              numpy_helper.from_array(np.array([export, export], np.int64), "hw")]
    graph = helper.make_graph(nodes, "tiny-isnet",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, export, export])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, export, export])],
                              [weight, *consts])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def picture_with_subject(box: tuple[int, int, int, int], size=(300, 200)) -> Image.Image:
    """A dark picture with one bright rectangle: the subject."""
    img = np.full((size[1], size[0], 3), 30, np.uint8)
    x0, y0, x1, y1 = box
    img[y0:y1, x0:x1] = 230
    return Image.fromarray(img)


def centroid(mass: np.ndarray) -> tuple[float, float]:
    yy, xx = np.mgrid[0:MAP_SIDE, 0:MAP_SIDE]
    return float((mass * (xx + 0.5)).sum() / MAP_SIDE), float((mass * (yy + 0.5)).sum() / MAP_SIDE)


def test_a_fixed_size_export_runs_at_the_chosen_side_and_finds_the_subject(tmp_path):
    path = tiny_isnet(tmp_path / "tiny.onnx")
    for side in (32, 48, 96):
        model = SubjectModel(path, side=side)
        assert model.side == side
        found = model.subject_map(picture_with_subject((180, 50, 270, 150)))
        assert found.found and found.mass.shape == (MAP_SIDE, MAP_SIDE)
        assert found.mass.sum() == pytest.approx(1.0)
        cx, cy = centroid(found.mass)
        assert cx == pytest.approx(225 / 300, abs=0.05) and cy == pytest.approx(100 / 200, abs=0.06)


def test_the_rewrite_changes_nothing_at_the_export_size(tmp_path):
    import onnxruntime as ort

    path = tiny_isnet(tmp_path / "tiny.onnx")
    x = np.random.default_rng(0).normal(0, 0.5, (1, 3, EXPORT, EXPORT)).astype(np.float32)
    as_exported = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    rewritten = SubjectModel(path, side=EXPORT).session.run(None, {"input": x})[0]
    np.testing.assert_allclose(rewritten, as_exported, atol=1e-6)


def test_an_image_with_no_subject_records_none_not_a_guess(tmp_path):
    model = SubjectModel(tiny_isnet(tmp_path / "tiny.onnx"), side=32)
    dark = Image.fromarray(np.full((120, 160, 3), 20, np.uint8))
    found = model.subject_map(dark)
    assert not found.found and not found.mass.any()
    again = SubjectMap.from_array(found.to_array())
    assert not again.found


def test_the_map_weighs_each_pixel_by_the_models_confidence_once_a_subject_is_found():
    mask = np.zeros((64, 64))
    mask[8:24, 8:24] = 0.9  # a confident subject, top left
    mask[40:56, 40:56] = 0.3  # a doubtful one, bottom right: a third of the weight, not nothing
    found = SubjectMap.from_mask(mask)
    quarter = MAP_SIDE // 2
    assert found.found
    assert found.mass[:quarter, :quarter].sum() == pytest.approx(0.75)
    assert found.mass[quarter:, quarter:].sum() == pytest.approx(0.25)
    doubtful = SubjectMap.from_mask(np.where(mask > 0, 0.45, 0.0))  # no pixel reaches FOUND: "none"
    assert not doubtful.found and not doubtful.mass.any()


def test_stored_maps_are_checked_at_the_edge():
    for bad in (np.zeros((31, 32)), np.full((32, 32), np.nan), -np.ones((32, 32))):
        with pytest.raises(ValueError, match="subject map"):
            SubjectMap.from_array(bad.astype(np.float16))


def test_a_file_that_is_no_model_is_refused_clearly(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x08\x07not a model at all" * 50)
    with pytest.raises(CropkitError, match="not a usable salient-object model"):
        SubjectModel(junk)
    with pytest.raises(CropkitError, match="no such file"):
        model_file(str(tmp_path / "missing.onnx"))


def test_rembg_models_are_taken_from_its_folder_without_a_download(tmp_path, monkeypatch):
    monkeypatch.setenv("U2NET_HOME", str(tmp_path))
    with pytest.raises(CropkitError, match="rembg's model folder"):
        model_file("rembg:isnet-general-use")
    tiny_isnet(tmp_path / "isnet-general-use.onnx")
    path = model_file("rembg:isnet-general-use")
    assert path == tmp_path / "isnet-general-use.onnx"
    model = SubjectModel(path, side=32)
    assert model.subject_id.startswith("isnet-general-use-") and model.subject_map(
        picture_with_subject((20, 20, 120, 120))).found


def test_the_subject_id_changes_with_the_file_and_the_side(tmp_path):
    a = SubjectModel(tiny_isnet(tmp_path / "m.onnx"), side=32).subject_id
    b = SubjectModel(tiny_isnet(tmp_path / "m.onnx", scale=20.0), side=32).subject_id
    c = SubjectModel(tmp_path / "m.onnx", side=48).subject_id
    assert len({a, b, c}) == 3
