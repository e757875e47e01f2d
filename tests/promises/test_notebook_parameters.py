"""Notebook parameters are data (issue 11, findings 3, 10, 11 and 20): typed values checked against the notebooks'
parameters cells before any kernel starts; `-p root` is used; relative paths follow the caller's folder."""

from __future__ import annotations

import base64
import shutil

import pytest

from cropkit.cli import main
from cropkit.errors import CropkitError
from tests.conftest import TINY_CONFIG


def test_a_binary_parameter_runs_nothing_and_is_refused(tmp_path, capfd):
    marker = tmp_path / "PWNED"
    code = f'"+str(__import__("os").system("touch {marker}"))+"'
    payload = "!!binary " + base64.b64encode(code.encode()).decode()
    assert main(["notebooks", "--root", str(tmp_path / "root"), "-p", "device", payload]) == 2
    assert not marker.exists()
    assert "parameter device" in capfd.readouterr().err


def test_bad_values_unknown_and_ignored_parameters_are_clear_errors(tmp_path, capfd):
    root = str(tmp_path / "root")
    assert main(["notebooks", "--root", root, "-p", "steps", "[1,"]) == 2
    assert "parameter steps: '[1,' is not a valid value" in capfd.readouterr().err
    for name, value, message in [("steps", "true", "is not a whole number"), ("holdout", ".nan", "not a finite"),
                                 ("device", "{cuda: 1}", "is a mapping"),
                                 ("epochz", "5", "known: arch, arch_config, batch_size"),
                                 ("run_dir", str(tmp_path), "cannot be given")]:
        assert main(["notebooks", "--root", root, "-p", name, value]) == 2
        assert message in capfd.readouterr().err, name
    assert main(["notebooks", "--root", root, "-p", "root", str(tmp_path / "other")]) == 2
    assert "two different roots" in capfd.readouterr().err
    assert not (tmp_path / "root").exists() and not (tmp_path / "other").exists()  # refused before running


def test_a_date_like_path_is_text_relative_to_the_callers_folder(tmp_path, monkeypatch, capfd):
    """`-p images 2024-05-01` once failed with "date is not JSON serializable"; now it names a folder here."""
    (tmp_path / "root").mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(["notebooks", "--root", "root", "-p", "images", "2024-05-01"]) == 2
    err = capfd.readouterr().err
    assert f"images folder not found: {tmp_path / '2024-05-01'}" in err


def test_the_root_parameter_is_used_and_relative_paths_follow_the_caller(tmp_path, monkeypatch, capfd):
    (tmp_path / "cfg").mkdir()
    shutil.copy(TINY_CONFIG, tmp_path / "cfg/tiny.json")
    (tmp_path / "root").mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(["notebooks", "-p", "root", "root", "-p", "arch_config", "cfg/tiny.json"]) == 2
    err = capfd.readouterr().err
    assert f"images folder not found: {tmp_path / 'root/data/training_data'}" in err  # got past arch_config
    assert len(list((tmp_path / "root/data/ai_data/runs").glob("*_01_extract_features.ipynb"))) == 1


def test_a_run_has_no_plain_text_kernel_warning(tmp_path, capfd):
    """Finding 20: "Kernel is running over TCP without encryption" came three times per run; the kernels now talk
    over CurveZMQ, so ipykernel has nothing to warn about (the run stops at once: the root has no photos)."""
    assert main(["notebooks", "--root", str(tmp_path)]) == 2
    err = capfd.readouterr().err
    assert "images folder not found" in err and "without encryption" not in err


def test_values_are_typed_by_the_parameters_cells(tmp_path):
    from cropkit.notebooks import notebook_parameters

    (tmp_path / "weights.pt").write_bytes(b"")
    pairs = [("steps", "5"), ("holdout", "0"), ("learning_curve", "false"), ("max_images", "null"),
             ("arch", "2"), ("weights", "weights.pt"), ("device", '"cpu"'), ("proposer", "~/v1.pth")]
    assert notebook_parameters(pairs, cwd=tmp_path) == {
        "steps": 5, "holdout": 0.0, "learning_curve": False, "max_images": None, "arch": "2",
        "weights": str(tmp_path / "weights.pt"), "device": "cpu",
        "proposer": str((tmp_path.home() / "v1.pth").resolve())}
    assert notebook_parameters([("weights", "none")], cwd=tmp_path) == {"weights": "none"}


def test_old_parameter_names_still_work(tmp_path):
    from cropkit.notebooks import notebook_parameters

    old = [("model", "2"), ("pretrained", "none"), ("model_path", "v1.pth"), ("model_config", "tiny.json")]
    assert notebook_parameters(old, cwd=tmp_path) == {
        "arch": "2", "weights": "none", "proposer": str(tmp_path / "v1.pth"),
        "arch_config": str(tmp_path / "tiny.json")}
    with pytest.raises(CropkitError, match="given twice"):
        notebook_parameters([("model", "RN50"), ("arch", "ViT-B-32")], cwd=tmp_path)


def test_plain_papermill_takes_an_old_parameter_name(tmp_path):
    """Issue 22, finding 29: plain papermill with an old name (`-p pretrained none`) set a variable nobody read,
    and the run went on with the default weights. The notebooks now take it as the new name, with a note."""
    import nbformat
    import papermill

    from cropkit.notebooks import notebooks_dir

    out = tmp_path / "out.ipynb"
    with pytest.raises(papermill.PapermillExecutionError, match="images folder not found"):  # no photos here
        papermill.execute_notebook(str(notebooks_dir() / "01_extract_features.ipynb"), str(out),
                                   parameters={"root": str(tmp_path), "pretrained": "none"},
                                   cwd=str(notebooks_dir()), progress_bar=False, log_output=False)
    printed = "".join(o.get("text", "") for cell in nbformat.read(out, as_version=4).cells
                      for o in cell.get("outputs", []))
    assert "parameter pretrained is now weights" in printed


def test_a_notebook_maps_old_names_and_checks_values_itself(monkeypatch):
    import cropkit.errors
    from cropkit.notebooks import use_parameters

    monkeypatch.setattr(cropkit.errors, "_in_notebook", False)
    given = {"root": None, "weights": None, "arch": None, "steps": None, "holdout": 0, "pretrained": "none",
             "model": 2}
    use_parameters(given, "02_train_crop_proposer")
    assert given == {"root": None, "weights": "none", "arch": "2", "steps": None, "holdout": 0.0}
    for params, message in [({"weights": "openai", "pretrained": "none"}, "weights is given twice"),
                            ({"model_path": "v1.pth"}, "model_path (now proposer) is not a parameter of 02"),
                            ({"steps": True}, "parameter steps: True is not a whole number"),
                            ({"holdout": float("nan")}, "holdout: nan is not a finite number")]:
        with pytest.raises(CropkitError, match=message.replace("(", r"\(").replace(")", r"\)")):
            use_parameters(params, "02_train_crop_proposer")
    reviewer = {"aspect_choices": ["4:5", "1:1"], "weights": "none", "train_after": 10}
    use_parameters(reviewer, "04_review_crops")  # the reviewer's parameters are typed too
    with pytest.raises(CropkitError, match="aspect_choices: '4:5' is not a"):
        use_parameters({"aspect_choices": "4:5"}, "04_review_crops")


def test_weights_failures_in_a_notebook_name_its_weights_parameter(tmp_path, monkeypatch):
    """Issue 22, finding 26: offline, the reviewer's first training failed with fixes written as command-line flags
    (`--weights none`); in a notebook they name its `weights` parameter."""
    import cropkit.errors
    from cropkit.errors import WeightsUnavailable
    from cropkit.features.encoders import resolve_weights
    from cropkit.notebooks import use_parameters

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(cropkit.errors, "_in_notebook", False)
    with pytest.raises(WeightsUnavailable, match="--weights none"):  # from a shell: the flag
        resolve_weights("ViT-B-32", "openai", cache_dir=str(tmp_path / "cache"))
    use_parameters({"weights": "openai"}, "04_review_crops")
    for weights in ("openai", "no-such-tag"):
        with pytest.raises(WeightsUnavailable) as err:
            resolve_weights("ViT-B-32", weights, cache_dir=str(tmp_path / "cache"))
        assert "weights = 'none'" in str(err.value) and "--weights" not in str(err.value)
