"""The Ray engine for ``cropkit extract --engine ray``: the same per-image work as the local engine on a Ray
cluster. A Ray Data pipeline reads, hashes and decodes in CPU tasks (``prepare_image``, as the local engine's
workers do) and feeds a pool of encoder actors (one model load per actor, a GPU each where asked); the driver
receives each image's features in order and stores them exactly as the local engine does (``store_prepared``),
so a killed driver loses only what it had not stored yet and a rerun's cache check goes on from there.

Ray is an extra: ``pip install 'cropkit[ray]'``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pickle
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from cropkit.errors import CropkitError
from cropkit.extract.prepare import Failed, Prepared, prepare_image
from cropkit.extract.scan import Found

ENCODER_CPUS = 0.5  # an encoder actor's CPU share: not the decode tasks' 1, so Ray never fuses the two stages
INSTALL_HINT = "pip install 'cropkit[ray]' (ray[data] 2.60 and a pyarrow that works with numpy < 2)"


@dataclass(frozen=True)
class RayOptions:
    """Where and how to run: the cluster's address (None: start a local one), CPUs per decode task, encoder
    actors and the GPUs each one takes."""

    address: str | None = None
    cpus_per_task: float = 1.0
    encoders: int = 1
    gpus_per_encoder: float = 0.0
    local_cpus: int | None = None  # a local cluster's CPUs (None: all)


def ray_available() -> bool:
    return importlib.util.find_spec("ray") is not None and importlib.util.find_spec("pyarrow") is not None


def _init(opts: RayOptions):
    if not ray_available():
        raise CropkitError(f"--engine ray needs Ray: {INSTALL_HINT}")
    import ray

    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")  # the C++ core's notes about actor restarts
    if not ray.is_initialized():
        kwargs = {"address": opts.address} if opts.address else {"num_cpus": opts.local_cpus}
        ray.init(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING, **kwargs)
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # the driver stores in scan order, as the local engine does
    ctx.enable_progress_bars = False
    for name in ("ray", "ray.data"):  # Ray's own progress notes stay off the terminal; cropkit's bar says it
        logging.getLogger(name).setLevel(logging.ERROR)
    return ray


class _Encoder:
    """A Ray actor: builds the encoder once, then encodes batches of prepared images."""

    def __init__(self, arch: str, weights, device: str, precision: str, arch_config: dict | None):
        import open_clip

        from cropkit.features.encoder import ClipEncoder, pick_device

        if arch_config is not None:
            open_clip.factory._MODEL_CONFIGS[arch] = arch_config
        self.encoder = ClipEncoder(arch, weights, pick_device(device), precision)

    def __call__(self, batch: dict) -> dict:
        items = [pickle.loads(b) for b in batch["item"]]
        ready = [i for i, it in enumerate(items) if isinstance(it, Prepared)]
        g_out, grid_out = [None] * len(items), [None] * len(items)
        if ready:
            g, grid = self.encoder.encode(np.stack([items[i].pixels for i in ready]))
            for k, i in enumerate(ready):
                g_out[i], grid_out[i] = np.asarray(g[k]), np.asarray(grid[k])
        out = []
        for it, g, grid in zip(items, g_out, grid_out):
            if isinstance(it, Prepared):
                it = replace(it, pixels=np.zeros((0, 0, 3), np.uint8))  # the driver needs no pixels back
            out.append(pickle.dumps((it, g, grid)))
        return {"i": batch["i"], "item": np.array(out, dtype=object)}


def _prepare_row(row: dict, size: int) -> dict:
    result = prepare_image(Path(row["path"]), size, int(row["size"]), int(row["mtime_ns"]))
    return {"i": row["i"], "item": pickle.dumps(result)}


def ray_encoded(todo: list[Found], image_size: int, arch: str, weights, device: str, precision: str,
                batch_size: int, opts: RayOptions) -> Iterator[tuple[Prepared | Failed, np.ndarray | None,
                                                                    np.ndarray | None]]:
    """Each image of ``todo`` prepared in Ray tasks and encoded by Ray actors: (prepared or failed, global
    embedding, grid), in ``todo``'s order."""
    if not todo:
        return
    ray = _init(opts)
    import open_clip

    config = open_clip.factory._MODEL_CONFIGS.get(arch)
    rows = [{"i": i, "path": str(f.path), "size": f.size, "mtime_ns": f.mtime_ns} for i, f in enumerate(todo)]
    ds = ray.data.from_items(rows)
    ds = ds.map(_prepare_row, fn_kwargs={"size": image_size}, num_cpus=opts.cpus_per_task)
    ds = ds.map_batches(_Encoder, fn_constructor_args=(arch, weights, device, precision, config),
                        batch_size=batch_size, batch_format="numpy",
                        compute=ray.data.ActorPoolStrategy(size=max(1, opts.encoders)),
                        # other resources than the decode tasks': Ray then keeps them apart (no operator fusion)
                        num_gpus=opts.gpus_per_encoder or None, num_cpus=ENCODER_CPUS)
    for row in ds.iter_rows():
        yield pickle.loads(row["item"])
