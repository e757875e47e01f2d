"""The package's floors: an import only ever points down, and no command module imports another command."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "cropkit"
FLOORS = ["features", "extract", "learn", "evaluate", "review", "demo", "bench", "notebooks", "cli"]
COMMANDS = {"cropkit.extract.pipeline", "cropkit.learn.train", "cropkit.learn.suggest", "cropkit.evaluate.report"}
SIBLINGS = {"evaluate", "review", "demo", "sources"}  # one floor: none of them imports another


def _module(path: Path) -> str:
    return ".".join(("cropkit", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")


def _floor(module: str) -> int:
    """-1 for the shared words at the top of the package (geometry, decisions, fileio, errors, layout, ...)."""
    part = module.split(".")[1] if module.count(".") else ""
    if part in SIBLINGS:
        return FLOORS.index("evaluate")
    return FLOORS.index(part) if part in FLOORS else -1


def _imports() -> list[tuple[str, str]]:
    found = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cropkit"):
                targets = [node.module] if node.module != "cropkit" else []
                targets += [f"{node.module}.{a.name}" for a in node.names if (PACKAGE / node.module.replace(
                    "cropkit", "", 1).strip(".").replace(".", "/") / f"{a.name}.py").exists()]
                found += [(_module(path), t) for t in targets]
            elif isinstance(node, ast.Import):
                found += [(_module(path), a.name) for a in node.names if a.name.startswith("cropkit.")]
    return found


def test_imports_only_point_down():
    up = [(src, dst) for src, dst in _imports()
          if src not in ("cropkit", "cropkit.__main__") and _floor(dst) > _floor(src)]
    assert up == []


def test_siblings_and_commands_do_not_import_each_other():
    for src, dst in _imports():
        s, d = src.split("."), dst.split(".")
        if len(s) > 1 and len(d) > 1 and s[1] in SIBLINGS and d[1] in SIBLINGS:
            assert s[1] == d[1], f"{src} imports {dst}"
        assert not (src in COMMANDS and dst in COMMANDS and src != dst), f"{src} imports {dst}"
