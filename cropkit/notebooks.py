"""Headless batch runs of the notebooks: each run leaves its executed notebooks and figures under
``data/ai_data/runs/`` with a timestamped name.

Notebook parameters are data: typed scalars (and lists of them) checked against the notebooks' parameters
cells, never code. papermill writes each value into the notebook as Python source, so anything else (bytes,
YAML tags, dates, mappings) is refused before a kernel starts.
"""

from __future__ import annotations

import ast
import math
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePath

import yaml

from cropkit.errors import CropkitError, brief, name_options_as_notebook_parameters
from cropkit.fileio import remove_stale_temp_files, temp_path
from cropkit.layout import Layout, claim_generated_root

NOTEBOOKS = ("01_extract_features", "02_train_crop_proposer", "03_evaluate_suggestions")
DEMO_ROOT = "data/demo"
PATH_PARAMETERS = frozenset({"root", "images", "arch_config", "proposer"})  # relative to the caller's folder
RENAMED = {"model": "arch", "pretrained": "weights", "model_config": "arch_config", "model_path": "proposer"}
SET_BY_THE_RUN = {"run_dir": "the run's figure folder is chosen by the run itself",
                  "demo": "ask for the demo with demo=True (cropkit notebooks --demo)"}
SCALARS = (str, int, float, bool)


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


@dataclass(frozen=True)
class Declared:
    """A parameter as the notebooks' parameters cells declare it: its type, whether None is allowed, where."""

    kind: str  # str, int, float, bool or list
    optional: bool
    notebooks: tuple[str, ...]


def _parameters_cell(notebook: str) -> dict[str, tuple[str, object]]:
    """One notebook's parameters: name -> (type, default); the type is the cell's annotation (``max_images: int =
    None``), else the type of the default."""
    import papermill

    found = {}
    for param, info in papermill.inspect_notebook(str(notebooks_dir() / f"{notebook}.ipynb")).items():
        default = ast.literal_eval(info["default"])
        kind = info["inferred_type_name"] if info["inferred_type_name"] != "None" else type(default).__name__
        found[param] = (kind, default)
    return found


def declared_parameters(notebooks: Iterable[str] = NOTEBOOKS) -> dict[str, Declared]:
    """The parameters of ``notebooks`` (default: 01-03), each with the notebooks that declare it."""
    found: dict[str, Declared] = {}
    for name in notebooks:
        for param, (kind, default) in _parameters_cell(name).items():
            earlier = found[param].notebooks if param in found else ()
            found[param] = Declared(kind, default is None, earlier + (name,))
    return found


def _known(declared: dict[str, Declared]) -> str:
    return ", ".join(sorted(set(declared) - set(SET_BY_THE_RUN)))


class _ValueLoader(yaml.SafeLoader):
    """SafeLoader that reads a date-like text (2024-05-01) as text, not as a date."""


_ValueLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def _parse_value(name: str, text: str):
    """One ``-p`` value read as YAML, restricted to plain scalars and a flat list of them."""
    try:
        for event in yaml.parse(text, Loader=_ValueLoader):
            if getattr(event, "tag", None) or getattr(event, "anchor", None) or isinstance(event, yaml.AliasEvent):
                raise CropkitError(f"parameter {_named(name)}: {brief(text)} uses a YAML tag, anchor or alias; "
                                   "give a plain value (a text, a number, true/false, null, or a [list] of those)")
            if isinstance(event, yaml.MappingStartEvent):
                raise CropkitError(f"parameter {_named(name)}: {brief(text)} is a mapping; give a text, a number, "
                                   "true/false, null, or a [list] of those")
        return yaml.load(text, Loader=_ValueLoader)
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        reason = getattr(exc, "problem", None) or (str(exc).splitlines() or [type(exc).__name__])[0]
        raise CropkitError(f"parameter {_named(name)}: {brief(text)} is not a valid value ({reason}); put a "
                           "text that should be taken as it is in quotes") from None


def _named(name: str) -> str:
    """A parameter name for a message: as it is when it looks like one, else cut short (a ``-p`` name is the
    caller's text)."""
    return name if name.isidentifier() and len(name) <= 40 else brief(name)


def _plain_list(value) -> bool:
    return type(value) is list and all(type(v) in SCALARS and (type(v) is not float or math.isfinite(v))
                                       for v in value)


ACCEPTS: dict[str, Callable] = {
    "str": lambda v: type(v) is str, "int": lambda v: type(v) is int, "bool": lambda v: type(v) is bool,
    "float": lambda v: type(v) in (int, float) and math.isfinite(v), "list": _plain_list}
WANTED = {"str": "a text", "int": "a whole number", "float": "a finite number", "bool": "true or false",
          "list": "a [list] of texts and numbers"}


def _typed(name: str, value, decl: Declared, text: str | None):
    """``value`` as the declared type, or a CropkitError that says what the parameter takes."""
    if value is None and decl.optional:
        return None
    if decl.kind == "str" and isinstance(value, PurePath):
        value = str(value)
    if decl.kind == "str" and type(value) in (int, float, bool) and text is not None:  # `-p arch 2`: a name
        value = text.strip()
    if decl.kind in ACCEPTS and ACCEPTS[decl.kind](value):
        return float(value) if decl.kind == "float" else value
    raise CropkitError(f"parameter {name}: {brief(value if text is None else text)} is not "
                       f"{WANTED.get(decl.kind, decl.kind)}"
                       + (" (or null)" if decl.optional else ""))


def check_parameters(parameters: dict, cwd: str | Path | None = None, texts: dict[str, str] | None = None) -> dict:
    """Notebook parameters checked against the parameters cells: known names, declared types, and paths made
    absolute against ``cwd`` (default: the current folder). Raises CropkitError naming the known parameters."""
    declared = declared_parameters()
    base = Path(cwd or os.getcwd())
    texts = {RENAMED.get(k, k): v for k, v in (texts or {}).items()}
    checked = {}
    for name, value in parameters.items():
        name = RENAMED.get(name, name)  # an old name, kept for one release
        if name in checked:
            raise CropkitError(f"parameter {name} is given twice (once by its old name)")
        if name in SET_BY_THE_RUN:
            raise CropkitError(f"parameter {name} cannot be given: {SET_BY_THE_RUN[name]}; known: {_known(declared)}")
        if name not in declared:
            raise CropkitError(f"no notebook has the parameter {_named(name)}; known: {_known(declared)}")
        value = _typed(name, value, declared[name], texts.get(name))
        if name in PATH_PARAMETERS and value is not None:
            if not value.strip():
                raise CropkitError(f"parameter {name} is empty; leave it out for the default")
            value = str((base / Path(value).expanduser()).resolve())
        elif name == "weights" and value and (base / Path(value).expanduser()).is_file():  # a checkpoint file
            value = str((base / Path(value).expanduser()).resolve())
        checked[name] = value
    return checked


def notebook_parameters(pairs: Iterable[tuple[str, str]], cwd: str | Path | None = None) -> dict:
    """``-p NAME VALUE`` pairs (values read as plain YAML: no tags, no dates, no mappings) as checked parameters;
    relative paths resolve against ``cwd``, the caller's folder (default: the current folder)."""
    texts: dict[str, str] = {}
    for name, text in pairs:
        if name in texts and texts[name] != text:
            raise CropkitError(f"parameter {_named(name)} is given twice with different values: "
                               f"{brief(texts[name])}, {brief(text)}")
        texts[name] = text
    values = {name: _parse_value(name, text) for name, text in texts.items()}
    return check_parameters(values, cwd, texts)


def use_parameters(namespace: dict, notebook: str) -> None:
    """Check a notebook's parameters in ``namespace`` (its globals) right after its parameters cell, however it
    runs (Jupyter, plain papermill, cropkit notebooks).

    An old name (``papermill -p pretrained none``) is taken as the new one with a note, or refused when the new
    one is given too or this notebook has no such parameter; every value must be of its declared type. From then
    on cropkit's messages name these parameters instead of command-line flags.
    """
    name_options_as_notebook_parameters()
    cell = _parameters_cell(notebook)
    for old, new in RENAMED.items():
        value = namespace.get(old)
        if old not in namespace or not (value is None or type(value) in (*SCALARS, list)):  # data, as papermill gives
            continue
        if new not in cell:
            raise CropkitError(f"parameter {old} (now {new}) is not a parameter of {notebook}; its parameters: "
                               f"{', '.join(sorted(set(cell) - set(SET_BY_THE_RUN)))}")
        if namespace.get(new, cell[new][1]) not in (cell[new][1], value):
            raise CropkitError(f"parameter {new} is given twice (once by its old name {old}); give it once, as {new}")
        print(f"cropkit: note: parameter {old} is now {new}; the old name will be removed in a later release",
              file=sys.stderr)
        namespace[new] = namespace.pop(old)
    for name, (kind, default) in cell.items():
        if name in namespace:
            value = namespace[name]
            text = str(value) if kind == "str" and type(value) in (int, float) else None  # `-p arch 2`: a number
            namespace[name] = _typed(name, value, Declared(kind, default is None, (notebook,)), text)


def kernel_options() -> dict:
    """papermill options for cropkit's own kernels: CurveZMQ-encrypted transport where pyzmq has it (the kernel
    spec declares support), so nothing crosses TCP in plain text and ipykernel has no cause to warn about it."""
    import zmq
    from traitlets.config import Config

    return {"config": Config({"KernelManager": {"transport_encryption": "auto"}})} if zmq.has("curve") else {}


@dataclass
class NotebookRun:
    executed: list[Path]
    figures: list[Path]


def run_notebooks(root: str | Path | None, parameters: dict | None = None, demo: bool = False,
                  log: Callable[[str], None] = print) -> NotebookRun:
    """Execute the three notebooks in order with papermill; a failing cell stops the run with its error.

    ``root`` None: the ``root`` parameter, else this checkout's demo root. ``demo``: build the demo library first,
    which only happens in a folder cropkit generated, a new or empty one, or one under this checkout's data/.
    """
    import papermill

    nb_dir = notebooks_dir()
    params = check_parameters(parameters or {})
    named = params.pop("root", None)
    if root is not None and named is not None and Path(root).expanduser().resolve() != Path(named):
        raise CropkitError(f"two different roots given: {Path(root).expanduser().resolve()} and the root "
                           f"parameter {named}; give it once")
    root = resolve_root(root if root is not None else named)
    if demo:
        claim_generated_root(root, "demo")  # refuses a user's root before anything is written there
    declared = declared_parameters()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    runs = Layout.from_args(root).ai_data / "runs"
    fig_dir = runs / f"{stamp}_figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    given = {**params, "root": str(root), "run_dir": str(fig_dir), "demo": demo}
    remove_stale_temp_files(runs)
    executed = []
    for name in NOTEBOOKS:
        out = runs / f"{stamp}_{name}.ipynb"
        log(f"running {name} -> {out}")
        values = {k: v for k, v in given.items() if name in declared[k].notebooks}
        # papermill rewrites its output after every cell: it writes a temp file, renamed once it stops
        tmp = temp_path(out, suffix=".ipynb")
        try:
            papermill.execute_notebook(nb_dir / f"{name}.ipynb", tmp, parameters=values, cwd=str(nb_dir),
                                       progress_bar=False, log_output=False, **kernel_options())
        except papermill.PapermillExecutionError as exc:
            raise CropkitError(f"{name} failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}\n"
                               f"the executed notebook with the error is {out}") from None
        finally:
            if tmp.exists():
                os.replace(tmp, out)
        executed.append(out)
    return NotebookRun(executed, sorted(fig_dir.glob("*.png")))
