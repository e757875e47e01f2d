"""``cropkit suggest``: ranked crops for images, from cached features when present, computed otherwise.

Images are only read; computed features are stored under data/ai_data like ``cropkit extract`` does.
"""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from cropkit.decisions import Suggestion
from cropkit.errors import CropkitError, explain_os_error
from cropkit.extract.decode import decode_oriented_rgb
from cropkit.extract.prepare import Failed, Prepared, prepare_image, read_image
from cropkit.extract.save import Stores, store_prepared
from cropkit.extract.scan import Skipped, stat_image
from cropkit.extract.subject_stage import SubjectStage, add_subject, open_subject_stage
from cropkit.features.cache import ProcessedCache
from cropkit.features.cues import CUE_DECODE_SIZE, CueStore
from cropkit.features.encoder_id import parse_encoder_id
from cropkit.features.encoders import Encoder, build_encoder, resolve_weights
from cropkit.features.store import FeatureStore, pack_features, unpack_features
from cropkit.fileio import json_text
from cropkit.geometry import largest_centred_box
from cropkit.layout import Layout
from cropkit.learn.dataset import ImageData
from cropkit.learn.proposer import CropProposer, latest_proposer, subject_advice
from cropkit.learn.threads import on_one_thread


@dataclass(frozen=True)
class ImageSuggestions:
    """What ``suggest`` says about one image: its name (as the logs name it), upright size, the proposer version
    and the ranked suggestions."""

    image: str
    width: int
    height: int
    proposer: str
    suggestions: tuple[Suggestion, ...]

    def to_json(self) -> dict:
        """The ``suggest --json`` object (boxes to 0.1 px, scores to 4 digits; "model" names the proposer)."""
        return {"image": self.image, "width": self.width, "height": self.height, "model": self.proposer,
                "suggestions": [{"box": [round(v, 1) for v in s.box], "score": round(s.score, 4)}
                                for s in self.suggestions]}


@dataclass
class Suggester:
    """A loaded proposer plus, only when an image is not cached yet, the encoder its features came from."""

    layout: Layout
    proposer: CropProposer
    device: str = "auto"
    subject_model: str | None = None  # FILE.onnx or rembg:NAME; None: the root's remembered one
    not_stored: list[str] = field(default_factory=list, init=False)  # new images whose features were not kept
    _encoder: Encoder | None = field(default=None, init=False)
    _stores: Stores | None = field(default=None, init=False)
    _subject: SubjectStage | None = field(default=None, init=False)

    @classmethod
    def open(cls, root: str | Path = ".", proposer: str | Path | None = None, device: str = "auto",
             subject_model: str | None = None) -> Suggester:
        """The proposer file given, else the latest version in ROOT/data/ai_data/models."""
        layout = Layout.from_args(root)
        return cls(layout, CropProposer.load(Path(proposer) if proposer else latest_proposer(layout.models)), device,
                   subject_model)

    @property
    def encoder_id(self) -> str:
        return self.proposer.encoder_id

    def stores(self) -> Stores:
        """The stores of this suggester's encoder, opened once (a packed index is not reopened per image)."""
        if self._stores is None:
            stage = self.subject_stage()
            self._stores = Stores(FeatureStore(self.layout.embeddings, self.encoder_id), CueStore(self.layout.cues),
                                  subject=stage.store if stage else None)
        return self._stores

    def subject_stage(self) -> SubjectStage | None:
        """The subject model the proposer was trained with, as this root names it (None when it reads no subject
        maps); a root whose subject model is another one, or none, is refused."""
        wanted = self.proposer.subject_id
        if wanted is None:
            return None
        if self._subject is None:
            stage = open_subject_stage(self.layout.ai_data, self.layout.cues, self.subject_model)
            if stage is None or stage.subject_id != wanted:
                raise CropkitError(f"{self.proposer.name} was trained with subject maps of {wanted}, but this root's "
                                   f"subject model gives {stage.subject_id if stage else 'none'}: "
                                   + subject_advice(wanted))
            self._subject = stage
        return self._subject

    def encoder(self) -> Encoder:
        """Rebuild the encoder the proposer was trained on; refuse other weights."""
        if self._encoder is None:
            arch, _ = parse_encoder_id(self.encoder_id)
            weights = resolve_weights(arch, self.proposer.meta.get("pretrained", "none"))
            if f"{arch}/{weights.weights_id}" != self.encoder_id:
                raise CropkitError(
                    f"{self.proposer.name} needs features of {self.encoder_id}, but its weights "
                    f"({self.proposer.meta.get('pretrained')}) now give {arch}/{weights.weights_id}; "
                    "extract with the original weights or retrain")
            self._encoder = build_encoder(arch, weights, self.device)
        return self._encoder

    def image_data(self, path: Path, cache: ProcessedCache) -> tuple[ImageData, int, int]:
        """Features, cues and upright size of one image: from the cache when unchanged, else computed now."""
        found = stat_image(path)
        if isinstance(found, Skipped):
            raise CropkitError(f"{path}: {found.message}")
        stores, stage = self.stores(), self.subject_stage()
        side = stage.side if stage else 0
        entry = cache.get(self.layout.relative_name(path))
        features = None
        if (entry is not None and entry.ok and entry.matches(found.size, found.mtime_ns)
                and stores.features.has(entry.hash)):
            try:
                features = stores.features.load(entry.hash)
                if stores.cues.is_whole(entry.hash) and (stage is None or stage.store.has_valid(entry.hash)):
                    cues = self._with_subject(stores.cues.load(entry.hash), entry.hash)
                    return ImageData(features, cues), entry.width, entry.height
            except ValueError:
                pass  # a corrupt stored file: compute it again, which replaces it
        if features is not None:  # cached features, cues of another version or no subject map: decode for those
            prepared = add_subject(prepare_image(path, CUE_DECODE_SIZE, subject_side=side), stage, Counter()) \
                if side else prepare_image(path, CUE_DECODE_SIZE)
            if isinstance(prepared, Prepared) and prepared.hash == entry.hash and (stage is None or prepared.subject):
                with contextlib.suppress(OSError):  # not kept: computed again next time
                    stores.cues.write(prepared.hash, prepared.cues)
                    if stage is not None:
                        stage.store.write(prepared.hash, prepared.subject)
                return ImageData(features, self._prepared_cues(prepared)), entry.width, entry.height
        enc = self.encoder()
        prepared = prepare_image(path, enc.image_size, subject_side=side)
        if isinstance(prepared, Failed):
            raise CropkitError(f"{path}: {prepared.message}")
        if stage is not None and add_subject(prepared, stage, Counter()).subject is None:
            raise CropkitError(f"{path}: the subject model {stage.spec} failed on this picture")
        g, grid = enc.encode(prepared.pixels[None])
        try:
            store_prepared(prepared, g[0], grid[0], self.layout, cache, stores, force=True)
        except OSError as exc:  # a full disk or read-only data/ai_data: suggest anyway, say what was not kept
            self.not_stored.append(f"{path.name}: {explain_os_error(exc)}")
        features = unpack_features(pack_features(g[0], grid[0]))  # exactly what a cached read would give
        return ImageData(features, self._prepared_cues(prepared)), prepared.width, prepared.height

    def _with_subject(self, cues, content_hash: str):
        """Cues with the stored subject map of the proposer's subject model, when it reads one."""
        stage = self.subject_stage()
        if stage is None:
            return cues
        return replace(cues, subject=stage.store.load(content_hash), subject_id=stage.subject_id)

    def _prepared_cues(self, prepared: Prepared):
        stage = self.subject_stage()
        if stage is None:
            return prepared.cues
        return replace(prepared.cues, subject=prepared.subject, subject_id=stage.subject_id)

    def with_proposer(self, proposer: CropProposer) -> Suggester:
        """This suggester with a newer proposer (the loaded encoder is kept when it is the same)."""
        if proposer.encoder_id == self.encoder_id and proposer.subject_id == self.proposer.subject_id:
            self.proposer = proposer
            return self
        return Suggester(self.layout, proposer, self.device, self.subject_model)

    def suggest(self, path: Path, aspect: float | None = None, k: int = 3,
                cache: ProcessedCache | None = None) -> ImageSuggestions:
        """The ranked suggestions for one image, best first."""
        cache = cache or ProcessedCache(self.layout.processed_files, self.encoder_id)
        path = _as_extract_names_it(path)
        data, width, height = self.image_data(path, cache)
        with on_one_thread():
            ranked = self.proposer.propose(width, height, data.cues, data.features, aspect=aspect, k=k)
        return ImageSuggestions(self.layout.relative_name(path), width, height, self.proposer.name, tuple(ranked))


STARTING_PROPOSER = "centre (no proposer yet)"


@dataclass
class StartingSuggester:
    """Suggestions before any proposer is trained: the largest crop of the locked aspect centred in the frame (the
    whole frame when free), so a photographer can start cropping at once. Reads only the image's header and a
    reduced decode; no features, no encoder."""

    layout: Layout
    device: str = "auto"
    proposer: None = None

    def with_proposer(self, proposer: CropProposer) -> Suggester:
        """The first trained proposer takes over."""
        return Suggester(self.layout, proposer, self.device)

    def suggest(self, path: Path, aspect: float | None = None, k: int = 1,
                cache: ProcessedCache | None = None) -> ImageSuggestions:
        path = _as_extract_names_it(path)
        found = stat_image(path)
        if isinstance(found, Skipped):
            raise CropkitError(f"{path}: {found.message}")
        data = read_image_bytes(path)  # refused over extract's size limit before reading
        _, (width, height) = decode_oriented_rgb(data, 64)  # raises DecodeError with the reason for a bad file
        box = largest_centred_box(aspect, width, height)
        return ImageSuggestions(self.layout.relative_name(path), width, height, STARTING_PROPOSER,
                                (Suggestion(box, math.nan),))


def read_image_bytes(path: Path) -> bytes:
    """An image's bytes, read as extract reads them: read-only, no atime, and a file over extract's size limit
    (MAX_FILE_BYTES) refused before reading; raises CropkitError saying why."""
    read = read_image(path)
    if isinstance(read, Failed):
        raise CropkitError(f"{path}: {read.message}")
    return read[0]


def result_json(result: ImageSuggestions) -> str:
    """One result as a line of strict JSON (never NaN); a file name that is not valid UTF-8 is written with \\u
    escapes, so the line always prints."""
    return json_text(result.to_json(), allow_nan=False)


def display_name(name: str) -> str:
    """A file name as it can be printed: bytes that are not valid UTF-8 are shown as U+FFFD."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _as_extract_names_it(path: str | Path) -> Path:
    """An absolute path with its folder resolved and the file itself not followed (it may be a link, even a
    looping one: stat_image then says so), as the library scan names files."""
    p = Path(path).expanduser().absolute()
    try:
        return p.parent.resolve() / p.name
    except (OSError, RuntimeError) as exc:  # a folder that is a link loop
        raise CropkitError(f"{path}: cannot resolve its folder: {exc}") from None
