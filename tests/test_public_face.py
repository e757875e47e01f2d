"""The public face: what notebooks and scripts call is importable from ``cropkit`` itself, lazily."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import cropkit
from tests.conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def test_every_public_name_is_the_object_of_its_module():
    import importlib

    for name, module in cropkit._PUBLIC.items():
        assert getattr(cropkit, name) is getattr(importlib.import_module(module), name), name
    assert set(cropkit.__all__) == {"__version__", *cropkit._PUBLIC} and sorted(cropkit.__all__) == dir(cropkit)


def test_import_cropkit_loads_no_torch():
    code = "import sys, cropkit; from cropkit import Layout; print('torch' in sys.modules, 'open_clip' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_an_unknown_name_is_an_attribute_error():
    try:
        cropkit.no_such_thing  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:
        raise AssertionError("no error for an unknown name")


def test_notebooks_import_only_from_cropkit():
    assert len(NOTEBOOKS) == 4
    for nb in NOTEBOOKS:
        for cell in json.loads(nb.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            for node in ast.walk(ast.parse("".join(cell["source"]))):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cropkit"):
                    assert node.module == "cropkit", f"{nb.name} imports from {node.module}"
                    assert all(alias.name in cropkit.__all__ for alias in node.names), nb.name
                elif isinstance(node, ast.Import):
                    assert not any(a.name.startswith("cropkit.") for a in node.names), nb.name
