"""The subject model's stage of an extraction: its one owner in the main process (loaded once, on first use, never
per decode worker), its id without loading it, and each image's map from the decode the other cues use."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from cropkit.errors import CropkitError
from cropkit.extract.prepare import Failed, Prepared
from cropkit.features.subject import (
    SUBJECT_VERSION,
    SubjectMap,
    SubjectModel,
    SubjectStore,
    model_digest,
    model_file,
)
from cropkit.remembered import read_remembered, resolve_subject_model

SUBJECT_FAILED = "subject-model-error"  # the model failed on a picture: its map is tried again on the next run


@dataclass
class SubjectStage:
    """A subject model named by a root (``spec``: FILE.onnx as an absolute path, or rembg:NAME) and its maps."""

    spec: str
    path: Path
    subject_id: str
    store: SubjectStore
    _model: SubjectModel | None = field(default=None, repr=False)

    @property
    def side(self) -> int:
        """The side the model runs at: the decode must be at least this large."""
        return int(self.subject_id.rsplit("-", 1)[1])

    def model(self) -> SubjectModel:
        if self._model is None:
            model = SubjectModel(self.path, side=self.side)
            if model.subject_id != self.subject_id:
                raise CropkitError(f"--subject-model {self.spec} now gives {model.subject_id}, not the "
                                   f"{self.subject_id} this run started with; rerun cropkit extract")
            self._model = model
        return self._model

    def map_of(self, prepared: Prepared) -> SubjectMap:
        """The map of a picture prepared with ``subject_side=self.side``."""
        if prepared.subject_pixels is None:
            raise ValueError(f"{prepared.path.name} was decoded without the subject model's pixels")
        return self.model().subject_map(Image.fromarray(prepared.subject_pixels))


def open_subject_stage(ai_data: Path, cues_root: Path, given: str | None) -> SubjectStage | None:
    """The stage for ``--subject-model`` (None: the root's remembered one, else none); None when it is off. A file
    the root remembers that is gone is refused with what to do; a known file is named without loading it."""
    spec = resolve_subject_model(ai_data, given)
    if spec == "none":
        return None
    try:
        path = model_file(spec)
    except CropkitError as exc:
        if given:
            raise
        raise CropkitError(f"this root's extract used {exc} Put it back, name another with --subject-model "
                           "FILE.onnx, or turn it off with --subject-model none") from None
    known = read_remembered(ai_data)
    remembered = known.subject_id if known.subject_model == spec else None
    if remembered and remembered.startswith(f"{path.stem}-{model_digest(path)}-{SUBJECT_VERSION}-"):
        return SubjectStage(spec, path, remembered, SubjectStore(cues_root, remembered))
    model = SubjectModel(path)  # a new or changed file: its id needs the model (the side it can run at)
    return SubjectStage(spec, path, model.subject_id, SubjectStore(cues_root, model.subject_id), model)


def add_subject(prepared: Prepared | Failed, stage: SubjectStage | None, failed: Counter) -> Prepared | Failed:
    """Run the subject model on one prepared picture (in the main process, beside the encoder) and keep its map
    on ``prepared``; a failure of the model on this picture is counted, and its map is left for the next run."""
    if stage is None or not isinstance(prepared, Prepared) or prepared.subject_pixels is None:
        return prepared
    stage.model()  # a model that cannot load at all stops the run with its message
    try:
        prepared.subject = stage.map_of(prepared)
    except Exception:  # onnxruntime errors or a non-finite mask on this picture
        failed[SUBJECT_FAILED] += 1
    prepared.subject_pixels = None  # not needed any more: the memory goes back at once
    return prepared
