"""cropkit: learn a photographer's crop taste and propose the crops they would make.

The names below are what notebooks and scripts call (``from cropkit import run_extract``). They load on first use,
so ``import cropkit`` stays light (no torch) until one is needed.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_PUBLIC = {
    # extract: photos -> features, read-only
    "ExtractOptions": "cropkit.extract", "run_extract": "cropkit.extract",
    "register_model_configs": "cropkit.encoder",
    # learn: decisions -> a proposer -> suggestions
    "TrainOptions": "cropkit.train", "run_train": "cropkit.train", "learning_curve_figures": "cropkit.train",
    "Suggester": "cropkit.suggest",
    # evaluate: held-out reports and figures
    "EvaluateOptions": "cropkit.evaluate", "run_evaluate": "cropkit.evaluate", "report_lines": "cropkit.evaluate",
    # review: the crop reviewer widget
    "open_reviewer": "cropkit.review",
    # roots, notebooks and the demo
    "Layout": "cropkit.layout", "resolve_root": "cropkit.runs", "figures_dir": "cropkit.runs",
    "run_notebooks": "cropkit.runs", "build_demo_root": "cropkit.simulate",
}
__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'cropkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
