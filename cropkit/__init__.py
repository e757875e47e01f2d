"""cropkit: learn a photographer's crop taste and propose the crops they would make.

The names below are what notebooks and scripts call (``from cropkit import run_extract``). They load on first use,
so ``import cropkit`` stays light (no torch) until one is needed.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {  # module -> the names it gives the public face
    "cropkit.extract.options": ("ExtractOptions",),
    "cropkit.extract.pipeline": ("run_extract",),  # photos -> features, read-only
    "cropkit.features.encoders.open_clip": ("register_arch_configs",),
    "cropkit.learn.train": ("TrainOptions", "run_train"),  # decisions -> a proposer
    "cropkit.learn.suggest": ("Suggester",),
    "cropkit.evaluate.report": ("EvaluateOptions", "run_evaluate", "report_lines"),  # held-out reports, figures
    "cropkit.evaluate.curves": ("learning_curve_figures",),
    "cropkit.review.start": ("open_reviewer",),  # the crop reviewer
    "cropkit.layout": ("Layout",),
    "cropkit.notebooks": ("resolve_root", "figures_dir", "run_notebooks", "use_parameters"),
    "cropkit.demo.photographer": ("build_demo_root",),
}
_PUBLIC = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'cropkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
