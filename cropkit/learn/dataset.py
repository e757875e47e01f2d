"""The one loader of what learning reads: logged decisions as examples, joined with their stored features and
split by image, the same way for training, evaluation and the reviewer's retraining.

How each decision teaches: a plain crop and an approved suggestion are positives; a modified suggestion
teaches its final box as a positive and its suggested box as a negative (it was worse); a rejected
suggestion's box is a negative (it was wrong).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from cropkit.decisions import CropDecision, SuggestionDecision, brief, read_crops, read_suggestions
from cropkit.errors import CropkitError
from cropkit.extract.options import ExtractOptions
from cropkit.extract.pipeline import run_extract
from cropkit.features.cache import ProcessedCache
from cropkit.features.cues import Cues, CueStore
from cropkit.features.store import Features, FeatureStore
from cropkit.features.subject import SubjectStore
from cropkit.fileio import BadLine
from cropkit.geometry import STANDARD_ASPECTS, Box, denormalise, nearest_standard_aspect, normalise
from cropkit.layout import Layout
from cropkit.learn.baselines import Target


@dataclass
class Example:
    """Everything the logs say about one image, in normalised coordinates."""

    image: str
    width: int
    height: int
    positives: list[Box] = field(default_factory=list)
    negatives: list[Box] = field(default_factory=list)
    decisions: int = 0  # logged lines behind it

    def targets(self) -> list[Target]:
        return [Target(self.width, self.height, denormalise(b, self.width, self.height)) for b in self.positives]


@dataclass(frozen=True)
class ImageData:
    """The stored features and cues of one image."""

    features: Features
    cues: Cues


def examples_from_decisions(crops: list[CropDecision], suggestions: list[SuggestionDecision]) -> dict[str, Example]:
    """Group decisions by image (later size wins when an image was re-exported) into examples."""
    examples: dict[str, Example] = {}

    def ex(d) -> Example:
        e = examples.get(d.image)
        if e is None or (e.width, e.height) != (d.width, d.height):
            e = examples[d.image] = Example(d.image, d.width, d.height)
        e.decisions += 1
        return e

    for c in crops:
        ex(c).positives.append(normalise(c.crop, c.width, c.height))
    for s in suggestions:
        e = ex(s)
        if s.decision == "approved":
            e.positives.append(normalise(s.final or s.suggested, s.width, s.height))
        elif s.decision == "modified":
            e.positives.append(normalise(s.final, s.width, s.height))
            e.negatives.append(normalise(s.suggested, s.width, s.height))
        else:
            e.negatives.append(normalise(s.suggested, s.width, s.height))
    return examples


def even_sample(items: list, at_most: int) -> list:
    """Every k-th item, the smallest k that leaves at most ``at_most`` (all of them when there are few)."""
    return items[:: math.ceil(len(items) / at_most)] if len(items) > at_most else list(items)


def fingerprint(crops: list[CropDecision], suggestions: list[SuggestionDecision]) -> str:
    """SHA-256 over the decisions used, independent of their order in the logs."""
    lines = sorted(json.dumps(r.to_json(), sort_keys=True) for r in [*crops, *suggestions])
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def preferred_aspects(examples: list[Example], min_share: float = 0.15, most: int = 3) -> list[float]:
    """The standard aspects the photographer uses for at least ``min_share`` of crops (by frequency)."""
    names = [nearest_standard_aspect(denormalise(b, e.width, e.height)) for e in examples for b in e.positives]
    if not names:
        return []
    counts = {n: names.count(n) / len(names) for n in set(names)}
    ranked = sorted(counts, key=counts.get, reverse=True)
    return [STANDARD_ASPECTS[n] for n in ranked[:most] if counts[n] >= min_share] or [STANDARD_ASPECTS[ranked[0]]]


def split_by_image(images: list[str], holdout: float) -> tuple[list[str], list[str]]:
    """Deterministic split by image name (never by line): the same image always lands on the same side."""
    def bucket(name: str) -> float:
        return int(hashlib.sha256(name.encode(errors="surrogateescape")).hexdigest()[:8], 16) / 0xFFFFFFFF

    test = [i for i in images if bucket(i) < holdout]
    train = [i for i in images if bucket(i) >= holdout]
    if not train and test:  # tiny logs: keep at least one image to learn from
        train, test = test[:1], test[1:]
    return train, test


def load_image_data(layout: Layout, images: list[str], opts: ExtractOptions,
                    log: Callable[[str], None]) -> tuple[dict[str, ImageData], dict[str, str], str]:
    """Features and cues (with the subject map, when the root has a subject model) for each image (paths relative
    to the root), extracting what is missing, read-only."""
    paths = [layout.image_path(rel) for rel in images]
    summary = run_extract(ExtractOptions(**{**opts.__dict__, "paths": paths}), log=log)
    cache = ProcessedCache(layout.processed_files, summary.encoder_id)
    store, cues = FeatureStore(layout.embeddings, summary.encoder_id), CueStore(layout.cues)
    subjects = SubjectStore(layout.cues, summary.subject_id) if summary.subject_id else None
    data, skipped = {}, {}
    for rel, path in zip(images, paths):
        entry = cache.get(layout.relative_name(path))
        if entry is None or not entry.ok:
            skipped[rel] = (entry.error or {}).get("message", "not extracted") if entry else "not extracted"
            continue
        try:
            found = cues.load(entry.hash, hands=False)
            if subjects is not None:
                found = replace(found, subject=subjects.load(entry.hash), subject_id=subjects.subject_id)
            data[rel] = ImageData(store.load(entry.hash), found)
        except ValueError as exc:
            skipped[rel] = str(exc)
    if store.pack_problem:  # the images were read from their own files instead (or skipped, saying so)
        log(store.pack_problem)
    return data, skipped, summary.encoder_id


@dataclass
class LoggedData:
    """The decisions of a root joined with their features, split by image into training and held-out examples."""

    crops: list
    suggestions: list
    problems: list[BadLine]
    train: list[Example]
    test: list[Example]
    data: dict[str, ImageData]
    skipped: dict[str, str]
    encoder_id: str


def load_logged_data(layout: Layout, extract_opts: ExtractOptions, holdout: float,
                     log: Callable[[str], None]) -> LoggedData:
    """Read both logs, extract (read-only) features that are missing, and split by image name, the same way for
    training and for evaluation."""
    if not 0.0 <= holdout < 1.0:
        raise CropkitError(f"holdout {holdout}: the held-out share must be at least 0 and below 1 (default 0.2)")
    crops, bad_crops = read_crops(layout.logs)
    suggestions, bad_suggestions = read_suggestions(layout.logs)
    problems = bad_crops + bad_suggestions
    for p in problems[:20]:
        log(f"skipped: {p}")
    examples = examples_from_decisions(crops, suggestions)
    if not examples:
        raise CropkitError(f"no usable decisions in {layout.logs} (training_log.jsonl or suggestions.jsonl); "
                           "log some crops first (the README documents both formats)")
    data, skipped, encoder_id = load_image_data(layout, sorted(examples), extract_opts, log)
    usable = [examples[i] for i in sorted(examples) if i in data]
    if not usable:
        shown = [f"{brief(name)}: {why}" for name, why in list(skipped.items())[:20]]
        for line in shown:
            log(f"skipped image: {line}")
        raise CropkitError(f"none of the {len(examples)} logged images could be read (first: {shown[0]}); "
                           f"{'the first ' if len(shown) < len(skipped) else ''}{len(shown)} listed above")
    _, test_names = split_by_image([e.image for e in usable], holdout)
    held_out = set(test_names)
    train = [e for e in usable if e.image not in held_out]
    test = [e for e in usable if e.image in held_out]
    return LoggedData(crops, suggestions, problems, train, test, data, skipped, encoder_id)
