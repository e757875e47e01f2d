"""What ``cropkit extract`` can be told: one options record that the CLI, the notebooks, training and evaluation
fill and pass down."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cropkit.decisions import brief
from cropkit.errors import CropkitError

ENGINES = ("local", "ray")


@dataclass
class ExtractOptions:
    """Everything ``cropkit extract`` can be told; the CLI and notebooks fill the same fields."""

    root: str | Path = "."
    images: str | Path | None = None
    arch: str | None = None  # None: the root's remembered encoder (cropkit.remembered), else ViT-B-32
    weights: str | None = None  # a tag, a checkpoint file or none; None: the root's remembered weights, else openai
    device: str = "auto"
    precision: str = "auto"  # auto: fp16 on CUDA, bf16 on CPUs with native bf16, else fp32
    batch_size: int | None = None  # None: 32 on CPU, sized to the free memory on CUDA
    workers: int = -1  # -1: one per core; never more than default_workers()
    max_images: int | None = None
    force: bool = False
    retry_failed: bool = False
    sidecars: bool = False
    subject_model: str | None = None  # FILE.onnx, rembg:NAME or none; None: the root's remembered one, else none
    progress: bool = True
    paths: list[Path] | None = None  # just these files instead of scanning the library
    decoder: str = "auto"  # cpu, device (nvJPEG on CUDA) or auto (the CPU: faster on camera JPEGs, as measured)
    engine: str = "local"  # local (worker processes on this machine) or ray (a Ray cluster)
    ray: object | None = None  # cropkit.extract.ray_engine.RayOptions for the ray engine (None: a local cluster)

    def __post_init__(self):
        if self.engine not in ENGINES:  # anything else would silently run the local engine
            raise CropkitError(f"engine must be one of {', '.join(ENGINES)}, not {brief(self.engine)}")
        if self.engine != "ray" and self.ray is not None:
            raise CropkitError("Ray options were given for the local engine: pass engine='ray' too")
