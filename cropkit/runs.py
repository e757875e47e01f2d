"""Headless batch runs of the notebooks: each run leaves its executed notebooks and figures under
``data/ai_data/runs/`` with a timestamped name."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cropkit.errors import CropkitError
from cropkit.fileio import remove_stale_temp_files, temp_path
from cropkit.layout import Layout

NOTEBOOKS = ("01_extract_features", "02_train_crop_proposer", "03_evaluate_suggestions")
DEMO_ROOT = "data/demo"


def notebooks_dir() -> Path:
    """The notebooks/ folder of the cropkit checkout (they are not installed as package data)."""
    folder = Path(__file__).resolve().parent.parent / "notebooks"
    if not all((folder / f"{name}.ipynb").is_file() for name in NOTEBOOKS):
        raise CropkitError(f"notebooks not found in {folder}; run from a cropkit checkout (pip install -e .)")
    return folder


def resolve_root(root: str | Path | None) -> Path:
    """The root a notebook works on: as given, else the demo root of this checkout."""
    return Path(root).expanduser().resolve() if root else (notebooks_dir().parent / DEMO_ROOT).resolve()


def figures_dir(root: Path, run_dir: str | Path | None, step: str) -> Path:
    """Where a notebook saves its PNGs: the batch run's folder, else a timestamped one for an interactive run."""
    if run_dir:
        return Path(run_dir)
    return Layout.from_args(root).ai_data / "runs" / f"{time.strftime('%Y%m%d-%H%M%S')}_{step}_figures"


@dataclass
class NotebookRun:
    executed: list[Path]
    figures: list[Path]


def run_notebooks(root: str | Path, parameters: dict | None = None,
                  log: Callable[[str], None] = print) -> NotebookRun:
    """Execute the three notebooks in order with papermill; a failing cell stops the run with its error."""
    import papermill

    nb_dir = notebooks_dir()
    root = Path(root).resolve()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    runs = Layout.from_args(root).ai_data / "runs"
    fig_dir = runs / f"{stamp}_figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    given = {**(parameters or {}), "root": str(root), "run_dir": str(fig_dir)}
    declared = {name: set(papermill.inspect_notebook(str(nb_dir / f"{name}.ipynb"))) for name in NOTEBOOKS}
    unknown = set(given) - set().union(*declared.values())
    if unknown:
        raise CropkitError(f"no notebook has the parameter(s) {', '.join(sorted(unknown))}; "
                           f"known: {', '.join(sorted(set().union(*declared.values())))}")
    remove_stale_temp_files(runs)
    executed = []
    for name in NOTEBOOKS:
        out = runs / f"{stamp}_{name}.ipynb"
        log(f"running {name} -> {out}")
        params = {k: v for k, v in given.items() if k in declared[name]}
        # papermill rewrites its output after every cell: it writes a temp file, renamed once it stops
        tmp = temp_path(out, suffix=".ipynb")
        try:
            papermill.execute_notebook(nb_dir / f"{name}.ipynb", tmp, parameters=params, cwd=str(nb_dir),
                                       progress_bar=False, log_output=False)
        except papermill.PapermillExecutionError as exc:
            raise CropkitError(f"{name} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}\n"
                               f"the executed notebook with the error is {out}") from None
        finally:
            if tmp.exists():
                os.replace(tmp, out)
        executed.append(out)
    return NotebookRun(executed, sorted(fig_dir.glob("*.png")))
