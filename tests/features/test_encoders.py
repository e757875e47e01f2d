"""Encoder families behind one factory: the registry, ``--arch auto``, and EfficientNet-Lite0 with its real ImageNet
weights (the efficientnet extra, installed by ``make test``)."""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from cropkit.errors import CropkitError, WeightsUnavailable
from cropkit.extract.decode import squash_to_square
from cropkit.features.cues import CUES_SHAPE, Cues
from cropkit.features.encoder_id import encoder_id, is_untrained
from cropkit.features.encoders import (
    build_encoder,
    choose_encoder,
    family_of,
    image_size_of,
    resolve_weights,
)
from cropkit.features.encoders import efficientnet as eff
from cropkit.features.store import Features
from cropkit.learn.proposer import CropProposer, ProposerNet
from tests.conftest import TINY

CPU = torch.device("cpu")
HAS_PACKAGE = importlib.util.find_spec(eff.PACKAGE) is not None
needs_package = pytest.mark.skipif(not HAS_PACKAGE, reason="the efficientnet extra is not installed here: "
                                   "pip install 'cropkit[efficientnet]' (make test installs it)")
ESPRESSO, CUP, COFFEE_MUG = 967, 968, 504  # ImageNet class indices
CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat


def photo(name: str, size: int = eff.IMAGE_SIZE) -> np.ndarray:
    from PIL import Image
    from skimage import data

    return squash_to_square(Image.fromarray(getattr(data, name)()), size)


@pytest.fixture(scope="module")
def imagenet():
    return build_encoder("efficientnet-lite0", "imagenet", CPU, "fp32")


def test_the_registry_resolves_both_families_and_lists_the_known_ones():
    assert family_of("efficientnet-lite0").NAME == "efficientnet"
    assert family_of(TINY).NAME == family_of("ViT-B-32").NAME == "open_clip"
    assert image_size_of("efficientnet-lite0") == eff.IMAGE_SIZE and image_size_of("ViT-B-32") == 224
    with pytest.raises(CropkitError, match="not an encoder cropkit knows") as err:
        family_of("resnet-9000")
    assert "efficientnet-lite0" in str(err.value) and "ViT-B-32" in str(err.value)
    with pytest.raises(CropkitError, match="not an encoder cropkit knows"):
        resolve_weights("resnet-9000", "imagenet")


def test_the_tiny_clip_model_still_builds_through_the_factory():
    enc = build_encoder(TINY, "none", "cpu", "fp32")
    g, grid = enc.encode(np.stack([photo("astronaut", enc.image_size)]))
    assert enc.encoder_id == f"{TINY}/random-init-seed0" and enc.untrained
    assert g.shape == (1, enc.dim) and grid.shape == (1, enc.grid_side, enc.grid_side, enc.dim)


def test_auto_prefers_cached_clip_then_efficientnet_and_never_falls_back_to_random(monkeypatch):
    import cropkit.features.encoders as encoders

    monkeypatch.setattr(encoders, "cached_clip_checkpoint", lambda arch, tag: "/cache/open_clip_model.safetensors")
    assert choose_encoder("auto", "auto") == ("ViT-B-32", "openai")
    monkeypatch.setattr(encoders, "cached_clip_checkpoint", lambda arch, tag: None)
    monkeypatch.setattr(eff, "package_installed", lambda: True)
    assert choose_encoder("auto", "auto") == ("efficientnet-lite0", "imagenet")
    monkeypatch.setattr(eff, "package_installed", lambda: False)
    with pytest.raises(CropkitError, match="no pretrained encoder") as err:
        choose_encoder("auto", "auto")
    assert "pip install 'cropkit[efficientnet]'" in str(err.value) and "--weights none" in str(err.value)
    # named choices are kept; a family's own default fills in --weights auto
    assert choose_encoder("auto", "none") == ("ViT-B-32", "none")
    assert choose_encoder("auto", "imagenet") == ("efficientnet-lite0", "imagenet")
    assert choose_encoder("efficientnet-lite0", "auto") == ("efficientnet-lite0", "imagenet")
    assert choose_encoder("ViT-B-16", "auto") == ("ViT-B-16", "openai")


def test_a_missing_package_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(WeightsUnavailable, match=r"pip install 'cropkit\[efficientnet\]'"):
        resolve_weights("efficientnet-lite0", "imagenet")
    with pytest.raises(WeightsUnavailable, match="neither a file nor a known weights name"):
        resolve_weights("efficientnet-lite0", "openai")


def test_untrained_efficientnet_is_seeded_and_named_untrained():
    a, b = (build_encoder("efficientnet-lite0", "none", CPU, "fp32") for _ in range(2))
    assert a.untrained and a.encoder_id == "efficientnet-lite0/random-init-seed0" == encoder_id("efficientnet-lite0",
                                                                                                 "none")
    assert is_untrained(a.encoder_id)
    x = np.stack([photo("coffee")])
    np.testing.assert_array_equal(a.encode(x)[0], b.encode(x)[0])
    assert a.classify(x).max() < 0.1  # random weights know no class: the sanity check below cannot pass with them


@needs_package
def test_imagenet_weights_load_every_tensor_in_order(imagenet):
    state = torch.load(eff.package_file(), map_location="cpu", weights_only=True)
    head = {f"classifier.{k}": v for k, v in imagenet.classifier.state_dict().items()}
    ours = {**imagenet.model.state_dict(), **head}
    assert len(state) == 296 and sum(v.numel() for v in state.values()) == 4_694_073
    by_position = dict(zip(imagenet_keys(), state.values()))
    assert set(by_position) == set(ours)
    for key, value in by_position.items():
        assert torch.equal(ours[key].to(value.dtype), value), key
    assert not imagenet.untrained and imagenet.encoder_id == "efficientnet-lite0/imagenet"


def imagenet_keys() -> list[str]:
    import timm

    return list(timm.create_model("tf_efficientnet_lite0").state_dict())


@needs_package
def test_two_photos_give_different_unit_vectors_of_the_right_shape(imagenet):
    g, grid = imagenet.encode(np.stack([photo("astronaut"), photo("coffee")]))
    side = imagenet.grid_side
    assert g.shape == (2, 1280) and grid.shape == (2, side, side, 1280) and side >= 2
    np.testing.assert_allclose(np.linalg.norm(g, axis=-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(grid, axis=-1), 1.0, atol=1e-5)
    assert float(g[0] @ g[1]) < 0.9


@needs_package
def test_imagenet_top_classes_are_what_the_photos_show(imagenet):
    probs = imagenet.classify(np.stack([photo("coffee"), photo("chelsea")]))
    coffee, cat = probs.argmax(axis=1)
    assert coffee in (ESPRESSO, CUP, COFFEE_MUG) and probs[0, coffee] > 0.2, (coffee, probs[0, coffee])
    assert cat in CATS and probs[1, CATS].sum() > 0.5, (cat, probs[1, CATS].sum())


@needs_package
def test_a_local_state_dict_file_loads_and_is_named_by_its_content(imagenet, tmp_path: Path):
    path = tmp_path / "lite0.pth"
    torch.save(torch.load(eff.package_file(), map_location="cpu", weights_only=True), path)
    enc = build_encoder("efficientnet-lite0", str(path), CPU, "fp32")
    assert enc.encoder_id.startswith("efficientnet-lite0/file:lite0.pth#") and not enc.untrained
    x = np.stack([photo("chelsea")])
    np.testing.assert_array_equal(enc.encode(x)[0], imagenet.encode(x)[0])


def test_a_state_dict_of_another_shape_is_refused_clearly(tmp_path: Path):
    import timm

    state = timm.create_model("tf_efficientnet_lite0").state_dict()
    short = tmp_path / "short.pth"
    torch.save(dict(list(state.items())[:-2]), short)
    with pytest.raises(WeightsUnavailable, match="holds 294 tensors, but EfficientNet-Lite0 has 296"):
        build_encoder("efficientnet-lite0", str(short), CPU)
    state["conv_stem.weight"] = torch.zeros(8, 3, 3, 3)
    wrong = tmp_path / "wrong.pth"
    torch.save(state, wrong)
    with pytest.raises(WeightsUnavailable, match=r"tensor 0 \(conv_stem.weight\) has shape \(8, 3, 3, 3\)"):
        build_encoder("efficientnet-lite0", str(wrong), CPU)


class _RunsCode:
    def __reduce__(self):
        return (print, ("this ran while loading",))


def test_a_pickle_that_runs_code_is_refused(tmp_path: Path, capsys):
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"conv_stem.weight": _RunsCode()}))
    with pytest.raises(WeightsUnavailable, match="only plain tensors|Only plain tensors"):
        build_encoder("efficientnet-lite0", str(evil), CPU)
    assert "this ran" not in capsys.readouterr().out


def test_a_proposer_refuses_features_of_the_other_family():
    cues = Cues.from_arrays(np.zeros(CUES_SHAPE, np.float32))
    rng = np.random.default_rng(0)
    for trained_on, dim, other_dim in (("efficientnet-lite0/imagenet", 1280, 512), ("ViT-B-32/openai", 512, 1280)):
        proposer = CropProposer(ProposerNet(12, dim).eval(), {"feature_model": trained_on})
        other = Features(rng.standard_normal(other_dim).astype(np.float32),
                         rng.standard_normal((4, 4, other_dim)).astype(np.float32))
        with pytest.raises(CropkitError, match=f"trained on {dim}-dimensional features of {trained_on}"):
            proposer.propose(400, 300, cues, other)

