"""Saving one image's results: its feature and cue files, then its cache line. Extraction and suggestion both
save through here."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cropkit.extract.prepare import Failed, Prepared
from cropkit.extract.sidecars import SidecarRegistry
from cropkit.features.cache import CacheEntry, ProcessedCache
from cropkit.features.cues import CueStore
from cropkit.features.people import MODEL_ERROR
from cropkit.features.store import FeatureStore, pack_features
from cropkit.features.subject import SubjectStore
from cropkit.layout import Layout


@dataclass(frozen=True)
class Stores:
    """Where one run writes: the model's feature files and the model-free cue files."""

    features: FeatureStore
    cues: CueStore
    sidecars: SidecarRegistry | None = None  # with --sidecars: the record of the sidecars cropkit wrote
    subject: SubjectStore | None = None  # with a subject model: its maps


NOT_THE_FILES = frozenset({MODEL_ERROR})  # failures of this process, never recorded against the file


def record_failure(f: Failed, layout: Layout, cache: ProcessedCache, stores: Stores) -> bool:
    """Record that a file failed, so later runs skip it until it changes (or ``--retry-failed``); a failure of
    the process (its models) is not the file's and is not recorded: the next run tries the file again."""
    if f.kind in NOT_THE_FILES:
        return False
    cache.append(CacheEntry(layout.relative_name(f.path), f.size, f.mtime_ns, stores.features.encoder_id, "failed",
                            error={"kind": f.kind, "message": f.message}))
    return True


def store_prepared(p: Prepared, global_emb: np.ndarray, grid: np.ndarray, layout: Layout, cache: ProcessedCache,
                   stores: Stores, force: bool = False) -> bool:
    """Write one image's feature and cue files, then its cache line (files first: a kill loses no line).

    Returns False when the features were already stored for identical content.
    """
    features = pack_features(global_emb, grid)
    wrote = force or not stores.features.is_whole(p.hash, features.shape)
    if wrote:
        stores.features.write(p.hash, features)
    if force or not stores.cues.is_whole(p.hash):
        stores.cues.write(p.hash, p.cues)
    if p.subject is not None and stores.subject is not None and (force or not stores.subject.has_valid(p.hash)):
        stores.subject.write(p.hash, p.subject)
    shapes = {"global": list(global_emb.shape), "grid": list(grid.shape)}
    cache.append(CacheEntry(layout.relative_name(p.path), p.size, p.mtime_ns, stores.features.encoder_id, "ok",
                            hash=p.hash, phash=p.phash, width=p.width, height=p.height, shapes=shapes))
    return wrote
