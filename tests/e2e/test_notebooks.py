"""The notebooks: committed clean, and executed headless with papermill on a generated library."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from PIL import Image

from cropkit.decisions import read_suggestions
from cropkit.demo.photographer import build_demo_root
from cropkit.notebooks import NOTEBOOKS, notebooks_dir, run_notebooks
from tests.conftest import REPO, TINY, TINY_CONFIG
from tests.libgen import changed_entries, snapshot

NB_DIR = REPO / "notebooks"


@pytest.mark.parametrize("name", sorted(p.stem for p in NB_DIR.glob("*.ipynb")))
def test_committed_notebooks_have_no_outputs_and_one_parameters_cell(name):
    nb = nbformat.read(NB_DIR / f"{name}.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code), f"{name} is committed with outputs"
    assert sum("parameters" in c.metadata.get("tags", []) for c in nb.cells) == 1
    assert nb.metadata.kernelspec.name == "python3"
    header = nb.cells[0].source
    assert nb.cells[0].cell_type == "markdown" and "**Reads**" in header
    assert "new files" in header or "new lines" in header
    for cell in code[1:]:  # thin: calls into cropkit, no loops of logic of their own
        assert len(cell.source.splitlines()) <= 14


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("nbroot")
    from cropkit.features.encoders.open_clip import register_arch_configs

    register_arch_configs(TINY_CONFIG)
    assert build_demo_root(root, n_crops=30, n_review=8, arch=TINY, weights="none", log=lambda _m: None)
    assert not build_demo_root(root, n_crops=30, n_review=8, arch=TINY, weights="none",
                               log=lambda _m: None)  # never twice
    before = snapshot(root / "data/training_data")
    yield root
    assert changed_entries(before, snapshot(root / "data/training_data")) == {}


def test_run_notebooks_executes_all_three_and_keeps_a_record(demo_root):
    params = {"arch": TINY, "weights": "none", "arch_config": str(TINY_CONFIG), "steps": 60, "window": 5}
    result = run_notebooks(demo_root, params, log=lambda _m: None)
    runs = demo_root / "data/ai_data/runs"
    assert [p.parent for p in result.executed] == [runs] * 3
    stamp = result.executed[0].name.split("_")[0]
    assert [p.name for p in result.executed] == [f"{stamp}_{n}.ipynb" for n in NOTEBOOKS]
    for path in result.executed:
        nb = nbformat.read(path, as_version=4)
        assert any(c.get("outputs") for c in nb.cells if c.cell_type == "code")
        assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    fig_dir = runs / f"{stamp}_figures"
    names = {p.name for p in result.figures}
    assert names == {"learning_curve_iou.png", "learning_curve_acceptance.png", "iou_by_method.png",
                     "acceptance_over_time.png", "decisions_by_model.png", "examples_worst_first.png"}
    for fig in result.figures:
        assert fig.parent == fig_dir
        with Image.open(fig) as img:
            assert img.format == "PNG" and img.width >= 600
    report = json.loads((fig_dir / "report.json").read_text())
    assert set(report["methods"]) == {"proposer", "full-frame", "centre-crop", "usual-box", "mean-box", "saliency"}
    logged, _ = read_suggestions(demo_root / "data/ai_data/logs")
    by_model = report["suggestions"]["by_model"]
    assert set(by_model) == {"crop_proposer_v1", "crop_proposer_v2"}
    assert sum(sum(v for k, v in c.items() if k != "acceptance_rate") for c in by_model.values()) == len(logged) == 16
    assert report["proposer"] == "crop_proposer_v3.pth"  # notebook 02 trained a new version, 03 evaluated it
    curve = json.loads((fig_dir / "learning_curve.json").read_text())
    assert list(curve)[0] == "10" and set(curve["10"]) == set(report["methods"])
    out_02 = nbformat.read(result.executed[1], as_version=4)
    text = "".join(o.get("text", "") for c in out_02.cells if c.cell_type == "code" for o in c.outputs)
    assert "crop_proposer_v3.pth" in text and "mean IoU" in text


def test_unknown_parameters_are_refused(demo_root):
    from cropkit.errors import CropkitError

    with pytest.raises(CropkitError, match="no notebook has the parameter"):
        run_notebooks(demo_root, {"epochz": 5}, log=lambda _m: None)


def test_papermill_command_from_the_issue_works_as_written(tmp_path):
    """`papermill notebooks/02_train_crop_proposer.ipynb out.ipynb -p root /path -p epochs 5`, with defaults."""
    root = tmp_path / "root"
    assert build_demo_root(root, n_crops=16, n_review=4, weights="none", log=lambda _m: None)  # ViT-B-32, untrained
    papermill = Path(sys.executable).with_name("papermill")
    out = tmp_path / "out.ipynb"
    result = subprocess.run([str(papermill), str(notebooks_dir() / "02_train_crop_proposer.ipynb"), str(out),
                             "-p", "root", str(root), "-p", "epochs", "5"], capture_output=True, text=True,
                            timeout=600, cwd=notebooks_dir().parent)
    assert result.returncode == 0, result.stderr[-3000:]
    nb = nbformat.read(out, as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "crop_proposer_v3.pth" in text
    assert (root / "data/ai_data/models/crop_proposer_v3.pth").is_file()


def test_review_notebook_runs_headless_and_builds_the_widget(demo_root, tmp_path):
    """Without a browser no event fires, but the widget is built over the pending images and displayed."""
    import papermill

    out = tmp_path / "04.ipynb"
    papermill.execute_notebook(str(notebooks_dir() / "04_review_crops.ipynb"), str(out), cwd=str(notebooks_dir()),
                               parameters={"root": str(demo_root), "arch_config": str(TINY_CONFIG),
                                           "queue_order": "uncertain", "aspect": "4:5"},
                               progress_bar=False)
    nb = nbformat.read(out, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
