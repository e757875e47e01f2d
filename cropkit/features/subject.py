"""Where the subject is: a salient-object model (ONNX) turned into a cue map, once per image.

Any salient-object model exported to ONNX with one image input (1, 3, H, W) and a mask output works: ISNet (the
DIS project), U2-Net, the models rembg keeps in ``~/.u2net``. No model ships with cropkit: the user names a file
(``--subject-model FILE.onnx``) or one of rembg's (``rembg:isnet-general-use``). A model exported at a fixed size
(ISNet's Resize nodes carry the sizes of its export) is rewritten on load so that every such size follows the
input's, and runs at ``SUBJECT_SIDE``: the cost falls with the square of the side.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from cropkit.errors import CropkitError, brief
from cropkit.features.store import NpyStore, encoder_folder_name
from cropkit.fileio import read_source_bytes

SUBJECT_VERSION = "s2"  # how the map is made from a model's mask: a change here makes every map be computed again
SUBJECT_SIDE = 512  # ISNet keeps its gain at 512 and loses half of it at 384 (docs/benchmarks.md)
MAP_SIDE = 32  # the cue grid (cropkit.features.cues.CUE_SIDE)
FOUND = 0.5  # the model found a subject when some pixel reaches this mask value; otherwise "none"
MAX_MODEL_BYTES = 1 << 30
INSTALL_HINT = "pip install 'cropkit[subject]' (onnxruntime and onnx)"
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
# How each known model wants its pixels: (mean, std) on x / 255, as rembg feeds them; others as ISNet's export.
NORMALISATION = {"u2net": IMAGENET, "u2netp": IMAGENET, "u2net_human_seg": IMAGENET, "silueta": IMAGENET,
                 "isnet-general-use": ((0.5, 0.5, 0.5), (1.0, 1.0, 1.0))}
ISNET = ((128 / 255,) * 3, (256 / 255,) * 3)  # (x - 128) / 256


def available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None


def model_file(name: str) -> Path:
    """The model file a ``--subject-model`` value names: a path, or ``rembg:NAME`` in rembg's model folder
    (``U2NET_HOME``, else ``~/.u2net``), used as it is there without a download."""
    if name.startswith("rembg:"):
        folder = Path(os.environ.get("U2NET_HOME") or Path.home() / ".u2net").expanduser()
        path = folder / f"{name.removeprefix('rembg:')}.onnx"
        if not path.is_file():
            raise CropkitError(f"--subject-model {brief(name)}: no {path.name} in rembg's model folder {folder} "
                               "(rembg downloads it on first use; or give the .onnx file's path)")
        return path
    path = Path(name).expanduser()
    if not path.is_file():
        raise CropkitError(f"--subject-model {brief(name)}: no such file (give a salient-object model as .onnx, "
                           "or rembg:NAME for a model in rembg's folder)")
    return path


@dataclass(frozen=True)
class SubjectMap:
    """The subject's mass on the cue grid (MAP_SIDE x MAP_SIDE, summing to 1), or no subject found."""

    mass: np.ndarray

    @property
    def found(self) -> bool:
        return bool(self.mass.sum() > 0)

    @classmethod
    def from_mask(cls, mask: np.ndarray) -> SubjectMap:
        """A model's mask (values in 0..1 at any size) as the subject's mass: the whole mask, each pixel weighed by
        the model's confidence (s1 kept only pixels >= FOUND: on the benchmark's 393 views with a subject, the soft
        mass's centroid is nearer the judged subject's centre, 0.067 / 0.091 of the frame against 0.089 / 0.112,
        and its extent follows the judged size more closely, correlation 0.44 / 0.60 against 0.28 / 0.37);
        "none" when no pixel reaches FOUND."""
        found = mask.size > 0 and float(mask.max()) >= FOUND
        weights = np.clip(mask, 0.0, 1.0).astype(np.float64) if found else np.zeros(mask.shape)
        h, w = weights.shape
        ys = np.linspace(0, h, MAP_SIDE + 1).astype(int)
        xs = np.linspace(0, w, MAP_SIDE + 1).astype(int)
        pooled = np.add.reduceat(np.add.reduceat(weights, ys[:-1], axis=0), xs[:-1], axis=1)
        total = pooled.sum()
        return cls(pooled / total if total > 0 else np.zeros((MAP_SIDE, MAP_SIDE)))

    def to_array(self) -> np.ndarray:
        return self.mass.astype(np.float16)

    @classmethod
    def from_array(cls, array: np.ndarray) -> SubjectMap:
        """From a stored map; raises ValueError when it is not one."""
        if array.shape != (MAP_SIDE, MAP_SIDE) or not np.isfinite(array).all() or (array < 0).any():
            raise ValueError(f"subject map of shape {array.shape} is not a non-negative {MAP_SIDE}x{MAP_SIDE} map")
        mass = array.astype(np.float64)
        total = mass.sum()
        return cls(mass / total if total > 0 else mass)


def subject_version_of(subject_id: str) -> str:
    """The SUBJECT_VERSION a subject_id was made with (``<model>-<digest>-<version>-<side>``)."""
    parts = subject_id.rsplit("-", 2)
    return parts[1] if len(parts) == 3 else ""


def model_digest(path: Path) -> str:
    """The first 12 hex digits of the model file's SHA-256, as its subject_id names it."""
    data, _ = read_source_bytes(path, max_bytes=MAX_MODEL_BYTES)
    return hashlib.sha256(data).hexdigest()[:12]


class SubjectStore:
    """The subject maps of one model under ``data/ai_data/cues/subject/<subject_id>``, one per image content; each
    map read is checked (SubjectMap.from_array): a damaged one counts as missing and is computed again."""

    def __init__(self, cues_root: Path, subject_id: str):
        self.subject_id = subject_id
        self.maps = NpyStore(cues_root / "subject" / encoder_folder_name(subject_id))

    def load(self, content_hash: str) -> SubjectMap:
        """One image's map; raises ValueError (saying what to do) when it is missing or damaged."""
        array = self.maps.load_array(content_hash)
        try:
            return SubjectMap.from_array(array)
        except ValueError as exc:
            raise ValueError(f"damaged subject map {self.maps.path_for(content_hash)}: {exc}; delete it and rerun "
                             "cropkit extract") from None

    def has_valid(self, content_hash: str) -> bool:
        try:
            self.load(content_hash)
        except ValueError:
            return False
        return True

    def write(self, content_hash: str, found: SubjectMap) -> None:
        self.maps.write(content_hash, found.to_array())


class SubjectModel:
    """A salient-object model in onnxruntime on the CPU, with a stable ``subject_id`` (file name and content)."""

    def __init__(self, path: Path, side: int = SUBJECT_SIDE, threads: int | None = None):
        if not available():
            raise CropkitError(f"--subject-model needs onnxruntime and onnx: {INSTALL_HINT}")
        import onnx
        import onnxruntime as ort

        try:
            data, _ = read_source_bytes(path, max_bytes=MAX_MODEL_BYTES)
            model = onnx.load_from_string(data)
            inputs = [i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
            if len(inputs) != 1 or len(inputs[0].type.tensor_type.shape.dim) != 4:
                raise ValueError("it needs exactly one image input of shape (1, 3, H, W)")
            self.side = _follow_input_size(model, side)
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
            options.log_severity_level = 3  # onnxruntime's notes about unused initialisers stay off the terminal
            self.session = ort.InferenceSession(model.SerializeToString(), options,
                                                providers=["CPUExecutionProvider"])
        except CropkitError:
            raise
        except Exception as exc:  # a damaged file, protobuf or onnxruntime errors: the file is at fault
            raise CropkitError(f"--subject-model {path}: not a usable salient-object model "
                               f"({type(exc).__name__}: {brief(str(exc))})") from None
        self.input = inputs[0].name
        mean, std = NORMALISATION.get(path.stem, ISNET)
        self._mean = np.array(mean, np.float32).reshape(3, 1, 1) * 255
        self._std = np.array(std, np.float32).reshape(3, 1, 1) * 255
        digest = hashlib.sha256(data).hexdigest()[:12]
        self.subject_id = f"{path.stem}-{digest}-{SUBJECT_VERSION}-{self.side}"

    def mask(self, img: Image.Image) -> np.ndarray:
        """The model's mask of an upright image (squashed to the model's side), values in 0..1."""
        x = np.asarray(img.convert("RGB").resize((self.side, self.side), Image.Resampling.BILINEAR), np.float32)
        x = ((x.transpose(2, 0, 1) - self._mean) / self._std)[None]
        out = np.asarray(self.session.run(None, {self.input: x})[0], np.float32)
        mask = out.reshape(out.shape[-2:])
        if not np.isfinite(mask).all():
            raise ValueError("the subject model gave a mask with NaN or infinite values")
        lo, hi = float(mask.min()), float(mask.max())
        if lo < 0 or hi > 1:  # logits or unscaled scores: spread over 0..1 as rembg does
            mask = (mask - lo) / (hi - lo) if hi > lo else np.zeros_like(mask)
        return mask

    def subject_map(self, img: Image.Image) -> SubjectMap:
        return SubjectMap.from_mask(self.mask(img))


def _follow_input_size(model, side: int) -> int:
    """Make a fixed-size export run at ``side``: each Resize whose target size is a constant of the export (as
    ISNet's ``Concat(Shape(x)[:2], [h, w])``) gets ceil(input side x h / export side) instead, which is what the
    network's own down-sampling (ceil-mode pooling, stride-2 convolutions) gives at any size. Returns the side
    the model then takes: ``side``, or the export's own when its sizes cannot be made to follow."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    image = graph.input[0]
    dims = image.type.tensor_type.shape.dim
    export = dims[2].dim_value if dims[2].HasField("dim_value") else 0
    if not export:  # the size is free already
        return side
    constants = {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in graph.node
                 if n.op_type == "Constant" and n.attribute and n.attribute[0].type == n.attribute[0].TENSOR}
    constants |= {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    producers = {o: n for n in graph.node for o in n.output}
    fixed = []
    for node in graph.node:
        if node.op_type != "Resize" or len(node.input) < 4 or not node.input[3]:
            continue
        concat = producers.get(node.input[3])
        hw = [i for i in concat.input if i in constants and constants[i].shape == (2,)] if concat else []
        if concat is None or concat.op_type != "Concat" or len(hw) != 1:
            return export  # a Resize of another kind: the export's size is the safe one
        fixed.append((concat, hw[0], constants[hw[0]].astype(np.float64)))
    if not fixed:
        return export
    added = [helper.make_node("Shape", [image.name], ["cropkit_side"], start=2, end=4),
             helper.make_node("Cast", ["cropkit_side"], ["cropkit_side_f"], to=TensorProto.FLOAT)]
    for k, (concat, name, hw) in enumerate(fixed):
        share = numpy_helper.from_array((hw / export).astype(np.float32), f"cropkit_share_{k}")
        graph.initializer.append(share)
        added += [helper.make_node("Mul", ["cropkit_side_f", share.name], [f"cropkit_scaled_{k}"]),
                  helper.make_node("Ceil", [f"cropkit_scaled_{k}"], [f"cropkit_ceil_{k}"]),
                  helper.make_node("Cast", [f"cropkit_ceil_{k}"], [f"cropkit_size_{k}"], to=TensorProto.INT64)]
        concat.input[list(concat.input).index(name)] = f"cropkit_size_{k}"
    for value in (image, *graph.output):
        for dim in list(value.type.tensor_type.shape.dim)[2:]:
            dim.dim_param = "side"
    del graph.value_info[:]  # shapes inferred at the export's size no longer hold
    nodes = _in_order([*added, *graph.node], {i.name for i in graph.input} | {t.name for t in graph.initializer})
    del graph.node[:]
    graph.node.extend(nodes)
    return side


def _in_order(nodes: list, known: set[str]) -> list:
    """The nodes in an order where each one's inputs are made before it (ONNX requires it; some exports are not)."""
    known = set(known) | {""}
    ordered, pending = [], list(nodes)
    while pending:
        ready = [n for n in pending if all(i in known for i in n.input)]
        if not ready:
            raise ValueError("the graph has a node whose input nothing makes")
        for n in ready:
            known.update(n.output)
        taken = {id(n) for n in ready}
        ordered += ready
        pending = [n for n in pending if id(n) not in taken]
    return ordered
