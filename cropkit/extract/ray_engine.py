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
import math
import os
import pickle
import socket
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from cropkit.decisions import brief
from cropkit.errors import CropkitError
from cropkit.extract.prepare import Failed, Prepared, prepare_image
from cropkit.extract.scan import Found

ENCODER_CPUS = 0.5  # an encoder actor's CPU share: not the decode tasks' 1, so Ray never fuses the two stages
INSTALL_HINT = "pip install 'cropkit[ray]' (ray[data] 2.60 and a pyarrow that works with numpy < 2)"
ADDRESS_TIMEOUT_S = 5.0  # a cluster's address must answer within this (Ray itself retries an unreachable one for ever)
MIN_SHARE = 1e-4  # Ray's finest fractional resource
MAX_COUNT = 4096  # more CPUs, GPUs or actors than any cluster cropkit would run on: a typo
HTTP2_HELLO = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes(3) + b"\x04" + bytes(5)  # preface + empty SETTINGS


@dataclass(frozen=True)
class RayOptions:
    """Where and how to run: the cluster's address (None: start a local one), CPUs per decode task, encoder
    actors and the GPUs each one takes."""

    address: str | None = None
    cpus_per_task: float = 1.0
    encoders: int = 1
    gpus_per_encoder: float = 0.0
    local_cpus: int | None = None  # a local cluster's CPUs (None: all)

    def __post_init__(self):
        """Checked here, at the edge, so a bad value is a clear error rather than a Ray traceback or hang."""
        _check_share("--cpus-per-task", self.cpus_per_task, zero_ok=False)
        _check_share("--num-gpus", self.gpus_per_encoder, zero_ok=True)
        for flag, value, least in (("--encoders", self.encoders, 1), ("local cpus", self.local_cpus, 1)):
            if value is not None and not (type(value) is int and least <= value <= MAX_COUNT):
                raise CropkitError(f"{flag} must be a whole number from {least} to {MAX_COUNT}, not {brief(value)}")
        if self.address is not None:
            _host_port(self.address)


def _check_share(flag: str, value: object, zero_ok: bool) -> None:
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and ((zero_ok and value == 0) or MIN_SHARE <= value <= MAX_COUNT)):
        low = "0 (none)" if zero_ok else f"{MIN_SHARE:g}"
        raise CropkitError(f"{flag} must be a number from {low} to {MAX_COUNT} (fractions down to {MIN_SHARE:g} "
                           f"share a device), not {brief(value)}")


def _host_port(address: str) -> tuple[str, int] | None:
    """The host and port of ``HOST:PORT`` or ``ray://HOST:PORT``; None for ``auto`` and ``local``, which Ray
    resolves on this machine; a CropkitError for anything else."""
    if address in ("auto", "local"):
        return None
    host, _, port = address.removeprefix("ray://").rpartition(":")
    host = host.removeprefix("[").removesuffix("]")  # [::1]:6379
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535 or any(c.isspace() for c in host):
        raise CropkitError(f"--address must be auto, local, HOST:PORT or ray://HOST:PORT (the address `ray start "
                           f"--head` printed), not {brief(address)}")
    return host, int(port)


def check_reachable(address: str, timeout: float = ADDRESS_TIMEOUT_S) -> None:
    """Refuse, within ``timeout`` seconds, an address where no Ray cluster answers: nothing listening, or
    something that does not speak gRPC (Ray's protocol) there. Ray would retry it for ever, warning every 5 s."""
    where = _host_port(address)
    if where is None:
        return
    what = f"no Ray cluster answers at {brief(address)}"
    try:
        with socket.create_connection(where, timeout=timeout) as conn:
            if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
                return  # TLS first: the connection is all that can be checked without its keys
            conn.settimeout(timeout)
            conn.sendall(HTTP2_HELLO)
            head = conn.recv(9)
    except OSError as exc:
        reason = f"no answer within {timeout:g} s" if isinstance(exc, TimeoutError) else exc.strerror or str(exc)
        raise CropkitError(f"{what} ({reason}): check the address (`ray status` on the head "
                           "node prints it), that the cluster is running and that no firewall is in the way") from None
    if len(head) < 4 or head[3] != 0x04:  # a gRPC server's first frame is its SETTINGS
        raise CropkitError(f"{what}: something else listens on that port. Use the address `ray start --head` "
                           "printed (its GCS port, 6379 unless changed), or ray://HOST:10001 for Ray Client")


def _check_fits(ray, opts: RayOptions) -> None:
    """Refuse resources no node of the cluster has: Ray would wait for them for ever."""
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    for flag, name, need in (("--cpus-per-task", "CPU", opts.cpus_per_task),
                             ("--num-gpus", "GPU", opts.gpus_per_encoder)):
        most = max((r.get(name, 0.0) for r in nodes), default=0.0)
        if need > most:
            raise CropkitError(f"{flag} {need:g}: no node of the cluster has that many {name}s (the most on one "
                               f"node is {most:g}); lower {flag} or add nodes that have them")


def ray_available() -> bool:
    return importlib.util.find_spec("ray") is not None and importlib.util.find_spec("pyarrow") is not None


def _init(opts: RayOptions):
    if not ray_available():
        raise CropkitError(f"--engine ray needs Ray: {INSTALL_HINT}")
    import ray

    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")  # the C++ core's notes about actor restarts
    if not ray.is_initialized():
        if opts.address:
            check_reachable(opts.address)
        kwargs = {"address": opts.address} if opts.address else {"num_cpus": opts.local_cpus}
        try:
            ray.init(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR, **kwargs)
        except ConnectionError as exc:  # "auto" with no cluster started here, among others
            raise CropkitError(f"cannot join the Ray cluster at {brief(opts.address)}: {exc}") from None
    _check_fits(ray, opts)
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

        from cropkit.features.encoders import build_encoder

        if arch_config is not None:
            open_clip.factory._MODEL_CONFIGS[arch] = arch_config
        self.encoder = build_encoder(arch, weights, device, precision)

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
