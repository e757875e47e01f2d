"""The extraction loop: scan, check the cache, decode in workers, encode in batches, store, summarise."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from cropkit.errors import CropkitError
from cropkit.extract.device_decode import pick_decoder, prepare_on_device, read_raw
from cropkit.extract.options import ExtractOptions
from cropkit.extract.prepare import Failed, Prepared, prepare_image
from cropkit.extract.save import Stores, record_failure, store_prepared
from cropkit.extract.scan import Found, Skipped, find_images, stat_image
from cropkit.extract.sidecars import SidecarRegistry, write_image_sidecars
from cropkit.extract.subject_stage import SubjectStage, add_subject, open_subject_stage
from cropkit.features.cache import CacheEntry, ProcessedCache
from cropkit.features.cues import CUE_DECODE_SIZE, Cues, CueStore
from cropkit.features.encoder_id import (
    RANDOM_INIT_SEED,
    UNTRAINED_WARNING,
    concrete_encoder,
    encoder_id,
    is_untrained,
)
from cropkit.features.store import FeatureStore, feature_shape
from cropkit.features.subject import SubjectMap
from cropkit.fileio import remove_stale_temp_files
from cropkit.layout import Layout
from cropkit.remembered import remember, resolve_encoder, weights_spec


@dataclass
class ExtractSummary:
    """What a run did, in numbers, and where its outputs are."""

    encoder_id: str
    untrained: bool
    processed: int = 0
    cached: int = 0
    cues_added: int = 0
    cue_version: str = ""
    subjects_added: int = 0
    subject_id: str | None = None
    deduplicated: int = 0
    failed: Counter = field(default_factory=Counter)
    failed_before: Counter = field(default_factory=Counter)
    left_for_later: int = 0
    sidecars: Counter = field(default_factory=Counter)
    bad_cache_lines: int = 0
    seconds: float = 0.0
    encode_seconds: float = 0.0
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def images_per_s(self) -> float:
        return self.processed / self.encode_seconds if self.encode_seconds > 0 else 0.0

    def lines(self) -> list[str]:
        if self.processed:
            processed = (f"processed:  {self.processed} images in {self.encode_seconds:.1f} s "
                         f"({self.images_per_s:.1f} images/s; whole run {self.seconds:.1f} s)"
                         + (f", {self.deduplicated} of them duplicates of known content" if self.deduplicated else ""))
        else:
            processed = f"processed:  0 new images (whole run {self.seconds:.1f} s)"
        out = [
            f"encoder:    {self.encoder_id}" + ("   (UNTRAINED: random weights)" if self.untrained else ""),
            processed,
            f"cached:     {self.cached} unchanged images skipped without opening them",
        ]
        if self.cues_added:
            out.append(f"cues:       {self.cues_added} cached images gained cues {self.cue_version} "
                       "(their CLIP features were kept)")
        if self.subjects_added:
            out.append(f"subject:    {self.subjects_added} cached images gained subject maps of {self.subject_id} "
                       "(their features were kept)")
        failed = sum(self.failed.values())
        out.append(f"failed:     {failed}" + (f" ({_by_reason(self.failed)})" if failed else ""))
        before = sum(self.failed_before.values())
        if before:
            out.append(
                f"failed before, unchanged since: {before} ({_by_reason(self.failed_before)}); "
                "--retry-failed tries them again"
            )
        if self.left_for_later:
            out.append(f"not yet processed (--max-images): {self.left_for_later}; run again to continue")
        if self.sidecars:
            out.append(f"sidecars:   {_by_reason(self.sidecars)}")
        if self.bad_cache_lines:
            out.append(f"cache:      {self.bad_cache_lines} unreadable cache lines ignored")
        out += [f"{name + ':':11} {where}" for name, where in self.outputs.items()]
        return out


def _by_reason(counts: Counter) -> str:
    return ", ".join(f"{kind}: {n}" for kind, n in sorted(counts.items()))


def default_workers() -> int:
    """One decode worker per core: decoding a camera JPEG costs about as much CPU as encoding it on a CPU,
    and far more than encoding it on a GPU. At most 16 (about 64 MB each); they run at lower priority
    (see ``_decode_worker_init``)."""
    return max(1, min(16, os.cpu_count() or 2))


def effective_workers(requested: int, log: Callable[[str], None] = print) -> int:
    """Decode workers for a request: -1 one per core, 0 in process, else at most ``default_workers()`` (said once
    when capped: more processes than cores only cost memory)."""
    if requested < -1:
        raise CropkitError(f"workers must be 0 (decode in the main process), a positive number, or -1 (one per "
                           f"core), not {requested}")
    cap = default_workers()
    if requested > cap:
        log(f"decode workers: {requested} asked, using {cap} (one per core)")
    return cap if requested == -1 else min(requested, cap)


def _decode_worker_init() -> None:
    """Decode workers yield the CPU to the encoder: a busy encoder thread that is preempted stalls all of
    its siblings (the measured gain: docs/benchmarks.md)."""
    with contextlib.suppress(OSError):
        os.nice(10)


def run_extract(opts: ExtractOptions, log: Callable[[str], None] = print) -> ExtractSummary:
    """Extract features for every image of the library that the cache does not already hold."""
    started = time.perf_counter()
    layout = Layout.from_args(opts.root, opts.images)
    if opts.paths is None:
        layout.require_images()
    arch, weights = concrete_encoder(*resolve_encoder(layout.ai_data, opts.arch, opts.weights))
    opts = replace(opts, arch=arch, weights=weights)
    mid = encoder_id(arch, weights)  # no model is loaded until there is work to do
    if is_untrained(mid):
        log(UNTRAINED_WARNING.format(seed=RANDOM_INIT_SEED))
    opts = replace(opts, workers=effective_workers(opts.workers, log))
    stage = open_subject_stage(layout.ai_data, layout.cues, opts.subject_model)
    stores = Stores(FeatureStore(layout.embeddings, mid), CueStore(layout.cues),
                    SidecarRegistry(layout.ai_data) if opts.sidecars else None, stage.store if stage else None)
    if stores.sidecars is not None:
        stores.sidecars.check_writable()
    cache = ProcessedCache(layout.processed_files, mid)
    summary = ExtractSummary(mid, is_untrained(mid), bad_cache_lines=len(cache.bad_lines),
                             cue_version=stores.cues.version, subject_id=stage.subject_id if stage else None)
    summary.outputs = {"features": str(stores.features.folder), "cues": str(stores.cues.maps.folder),
                       "cache": str(layout.processed_files)}
    if stage is not None:
        summary.outputs["subject"] = str(stage.store.maps.folder)
    for folder in (stores.features.folder, *stores.cues.folders, layout.cache,
                   *([stage.store.maps.folder] if stage else [])):
        remove_stale_temp_files(folder)

    todo, cue_todo = _plan(layout, cache, stores, opts, summary)
    if opts.max_images is not None and len(todo) + len(cue_todo) > opts.max_images:
        summary.left_for_later = len(todo) + len(cue_todo) - opts.max_images
        cue_todo = cue_todo[: opts.max_images]
        todo = todo[: opts.max_images - len(cue_todo)]
    if cue_todo:
        what = f"cues {stores.cues.version}" + (f" or subject maps of {stage.subject_id}" if stage else "")
        log(f"adding {what} to {len(cue_todo)} cached images (their CLIP features are kept)")
        todo += _add_cues(cue_todo, layout, cache, stores, opts, summary, stage)
    if todo and opts.engine == "ray":
        from cropkit.extract.ray_engine import RayOptions, ray_encoded
        from cropkit.features.encoders import image_size_of, resolve_weights

        resolved = resolve_weights(arch, weights)
        batch = opts.batch_size or 32
        ray_opts = opts.ray or RayOptions()
        log(f"encoding {len(todo)} images with {mid} on Ray ({ray_opts.address or 'a local cluster'}, "
            f"{ray_opts.encoders} encoder(s), {ray_opts.gpus_per_encoder:g} GPU each, batch {batch})")
        encode_start = time.perf_counter()
        if stage is not None:
            log("the subject model runs on the local engine: the next cropkit extract adds these images' maps")
        _store_all(todo, ray_encoded(todo, image_size_of(arch), arch, resolved, opts.device, opts.precision, batch,
                                     ray_opts), layout, cache, stores, opts, summary, None)
        summary.encode_seconds = time.perf_counter() - encode_start
    elif todo:
        from cropkit.features.encoders import build_encoder

        encoder = build_encoder(arch, weights, opts.device, opts.precision)
        opts = replace(opts, batch_size=opts.batch_size or encoder.default_batch_size())
        log(f"encoding {len(todo)} images with {mid} on {encoder.device} ({encoder.precision}, "
            f"{encoder.grid_side}x{encoder.grid_side} grid, {encoder.dim}-d, batch {opts.batch_size})")
        encode_start = time.perf_counter()
        _store_all(todo, _encoded(todo, encoder, opts, stage), layout, cache, stores, opts, summary, stage)
        summary.encode_seconds = time.perf_counter() - encode_start
    if opts.paths is None:  # a whole-library run names the root's library and encoder from now on
        subject = {"subject_model": stage.spec if stage else "none", "subject_id": stage and stage.subject_id}
        remember(layout.ai_data, arch=arch, weights=weights_spec(weights), images=layout.images_setting,
                 **(subject if stage or opts.subject_model else {}))
    summary.seconds = time.perf_counter() - started
    return summary


def _plan(layout: Layout, cache: ProcessedCache, stores: Stores, opts: ExtractOptions,
          summary: ExtractSummary) -> tuple[list[Found], list[Found]]:
    """Decide per file: cached (by path, size and mtime, without opening it), failed before, to do, or cached
    but lacking this version's cues (the second list: decoded again for its cues, never encoded again)."""
    store = stores.features
    todo: list[Found] = []
    cue_todo: list[Found] = []
    if opts.paths is None:  # cropkit's own data/ai_data is never taken for photos, even inside the library
        found = find_images(layout.images, prune=layout.ai_data)
    else:
        found = (stat_image(Path(p)) for p in opts.paths)
    for item in found:
        rel = layout.relative_name(item.path)
        if isinstance(item, Skipped):
            summary.failed[item.kind] += 1
            last = cache.get(rel)
            if last is None or last.ok or (last.error or {}).get("kind") != item.kind:
                cache.append(CacheEntry(rel, 0, 0, store.encoder_id, "failed",
                                        error={"kind": item.kind, "message": item.message}))
            continue
        entry = None if opts.force else cache.get(rel)
        if entry is not None and entry.matches(item.size, item.mtime_ns):
            if entry.ok and store.is_whole(entry.hash, feature_shape(entry.shapes)):
                if not stores.cues.is_whole(entry.hash) or (
                        stores.subject is not None and not stores.subject.has_valid(entry.hash)):
                    cue_todo.append(item)
                    continue
                if opts.sidecars:
                    try:
                        global_emb, cues = store.load(entry.hash).global_emb, stores.cues.load(entry.hash)
                    except ValueError:  # whole but unusable (NaN): compute it again
                        todo.append(item)
                        continue
                    subject = stores.subject.load(entry.hash) if stores.subject is not None else None
                    _write_sidecars(item.path, global_emb, entry.phash, cues, stores, summary, subject)
                summary.cached += 1
                continue
            if not entry.ok and not opts.retry_failed:
                summary.failed_before[(entry.error or {}).get("kind", "unknown")] += 1
                continue
        todo.append(item)
    return todo, cue_todo


def _add_cues(cue_todo: list[Found], layout: Layout, cache: ProcessedCache, stores: Stores, opts: ExtractOptions,
              summary: ExtractSummary, stage: SubjectStage | None) -> list[Found]:
    """Compute this version's cues and the subject maps that cached images lack (decode only, no encoder); returns
    those whose content turned out to differ from the cached one, which need encoding after all."""
    changed: list[Found] = []
    bar = tqdm(total=len(cue_todo), unit="img", desc="cues", disable=not opts.progress, dynamic_ncols=True)
    try:
        for item, result in zip(cue_todo, _prepared(cue_todo, CUE_DECODE_SIZE, opts.workers,
                                                    window=4 * max(opts.workers, 1), stage=stage)):
            bar.update(1)
            entry = cache.get(layout.relative_name(item.path))
            if isinstance(result, Failed) or entry is None or result.hash != entry.hash:
                changed.append(item)  # the full path records the failure or encodes the new content
                continue
            if not stores.cues.is_whole(result.hash):
                stores.cues.write(result.hash, result.cues)
                summary.cues_added += 1
            if stores.subject is not None and not stores.subject.has_valid(result.hash):
                subject = add_subject(result, stage, summary.failed).subject
                if subject is not None:
                    stores.subject.write(result.hash, subject)
                    summary.subjects_added += 1
            summary.cached += 1
            if opts.sidecars:
                try:
                    global_emb = stores.features.load(entry.hash).global_emb
                except ValueError:
                    changed.append(item)
                    continue
                subject = stores.subject.load(result.hash) if stores.subject is not None else None
                _write_sidecars(item.path, global_emb, entry.phash, result.cues, stores, summary, subject)
    finally:
        bar.close()
    return changed


def _encoded(todo: list[Found], encoder, opts: ExtractOptions,
             stage: SubjectStage | None = None) -> Iterator[tuple[Prepared | Failed, object, object]]:
    """The local engine: images prepared in worker processes, encoded here in batches; (prepared or failed, global
    embedding, grid) in ``todo``'s order. With a subject model the CPU decodes (its pixels come from that decode)."""
    batch: list[Prepared] = []
    window = max(2 * opts.batch_size, 4 * opts.workers)
    if pick_decoder(opts.decoder, encoder.device.type) == "device" and stage is None:
        results = _decoded_on_device(todo, encoder, opts, window)
    else:
        results = _prepared(todo, encoder.image_size, opts.workers, window, stage)
    for result in results:
        if isinstance(result, Failed):
            yield result, None, None
            continue
        batch.append(result)
        if len(batch) >= opts.batch_size:
            yield from _encode_batch(batch, encoder)
            batch = []
    if batch:
        yield from _encode_batch(batch, encoder)


DEVICE_DECODE_BATCH = 32  # JPEGs per device decode: 24 MP frames take 72 MB each there, and the encoder waits less


def _decoded_on_device(todo: list[Found], encoder, opts: ExtractOptions, window: int) -> Iterator[Prepared | Failed]:
    """Workers read, hash and parse headers; JPEGs are decoded and resized on the encoder's device in batches."""
    raws: list = []
    for raw in _mapped(read_raw, todo, (), opts.workers, window):
        if isinstance(raw, Failed):
            yield raw
            continue
        raws.append(raw)
        if len(raws) >= min(opts.batch_size, DEVICE_DECODE_BATCH):
            yield from prepare_on_device(raws, encoder.image_size, encoder.device)
            raws = []
    if raws:
        yield from prepare_on_device(raws, encoder.image_size, encoder.device)


def _encode_batch(batch: list[Prepared], encoder) -> Iterator[tuple[Prepared, object, object]]:
    global_emb, grid = encoder.encode(np.stack([p.pixels for p in batch]))
    for i, p in enumerate(batch):
        yield p, global_emb[i], grid[i]


def _store_all(todo: list[Found], results: Iterator[tuple[Prepared | Failed, object, object]], layout: Layout,
               cache: ProcessedCache, stores: Stores, opts: ExtractOptions, summary: ExtractSummary,
               stage: SubjectStage | None) -> None:
    """Store each image's results as they come (either engine): the subject map (computed here, in the main
    process), files, then the cache line."""
    bar = tqdm(total=len(todo), unit="img", desc="extract", disable=not opts.progress, dynamic_ncols=True)
    try:
        for result, global_emb, grid in results:
            bar.update(1)
            if isinstance(result, Failed):
                summary.failed[result.kind] += 1
                record_failure(result, layout, cache, stores)
                continue
            add_subject(result, stage, summary.failed)
            if not store_prepared(result, global_emb, grid, layout, cache, stores, force=opts.force):
                summary.deduplicated += 1
            if opts.sidecars:
                _write_sidecars(result.path, global_emb, result.phash, result.cues, stores, summary, result.subject)
            summary.processed += 1
    finally:
        bar.close()


def _prepared(todo: list[Found], size: int, workers: int, window: int,
              stage: SubjectStage | None = None) -> Iterator[Prepared | Failed]:
    """Prepare images in worker processes, in order, with at most ``window`` in flight (with the subject model's
    pixels from the same decode when ``stage`` is given)."""
    fn = partial(prepare_image, subject_side=stage.side) if stage is not None else prepare_image
    return _mapped(fn, todo, (size,), workers, window)


def _mapped(fn, todo: list[Found], args: tuple, workers: int, window: int) -> Iterator:
    """``fn(path, *args, size, mtime_ns)`` for each image, in worker processes (none: here), in order, with at most
    ``window`` in flight."""
    if workers == 0:
        for item in todo:
            yield fn(item.path, *args, item.size, item.mtime_ns)
        return
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_decode_worker_init) as pool:
        yield from _bounded_map(pool, fn, todo, args, window)


def _bounded_map(pool: Executor, fn, todo: Iterable[Found], args: tuple, window: int) -> Iterator:
    pending: deque[Future] = deque()
    try:
        for item in todo:
            pending.append(pool.submit(fn, item.path, *args, item.size, item.mtime_ns))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for fut in pending:
            fut.cancel()


def _write_sidecars(image: Path, global_emb, phash: str | None, cues: Cues, stores: Stores,
                    summary: ExtractSummary, subject: SubjectMap | None = None) -> None:
    write_image_sidecars(image, global_emb, phash, cues, stores.sidecars, summary.sidecars, subject)
