"""The encoder factory: parity with open_clip, whole-frame features, weight loading by file, cache and tag."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from cropkit.errors import CropkitError, WeightsUnavailable
from cropkit.extract.decode import squash_to_square
from cropkit.extract.prepare import prepare_image
from cropkit.features.encoders import build_encoder, resolve_weights
from cropkit.features.encoders.base import FEATURE_BUDGET_BYTES, batch_size_for, grid_side_for, pick_device
from cropkit.features.encoders.open_clip import ClipEncoder
from cropkit.features.store import npy_bytes, pack_features
from tests.conftest import TINY
from tests.libgen import photo_like

CPU = torch.device("cpu")


def tiny_encoder(pretrained: str = "none", precision: str = "fp32") -> ClipEncoder:
    return ClipEncoder(TINY, resolve_weights(TINY, pretrained), CPU, precision)


def batch(*seeds: int, size: int = 64) -> np.ndarray:
    return np.stack([squash_to_square(photo_like(96, 72, s), size) for s in seeds])


def open_clip_reference(seed: int) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return open_clip.create_model(TINY).eval()


def test_global_embedding_equals_open_clip_encode_image():
    enc = tiny_encoder()
    pixels = batch(1, 2, 3)
    global_emb, grid = enc.encode(pixels)
    with torch.no_grad():
        ref = open_clip_reference(0).encode_image(enc.to_input(pixels), normalize=True).numpy()
    np.testing.assert_allclose(global_emb, ref, atol=1e-5)
    assert global_emb.shape == (3, 32) and grid.shape == (3, 4, 4, 32)
    np.testing.assert_allclose(np.linalg.norm(grid, axis=-1), 1.0, atol=1e-5)


def test_random_init_is_reproducible_and_labelled():
    a, b = tiny_encoder(), tiny_encoder()
    assert a.untrained and a.encoder_id == f"{TINY}/random-init-seed0"
    np.testing.assert_array_equal(a.encode(batch(5))[0], b.encode(batch(5))[0])


def test_input_matches_open_clip_squash_preprocessing():
    """Our decode path feeds the model what open_clip's own whole-frame (squash) transform would."""
    _, _, preprocess = open_clip.create_model_and_transforms(TINY, image_resize_mode="squash")
    img = photo_like(150, 90, 9)
    ours = tiny_encoder().to_input(squash_to_square(img, 64)[None])[0]
    theirs = preprocess(img)
    assert ours.shape == theirs.shape
    assert (ours - theirs).abs().mean() < 0.03


def test_a_mark_in_a_corner_changes_the_features(tmp_path: Path):
    """Whole-frame coverage: a centre crop of this wide frame would throw the left edge away."""
    enc = tiny_encoder()
    img = photo_like(300, 100, 4)
    img.save(tmp_path / "plain.png")
    marked = img.copy()
    marked.paste((255, 0, 255), (0, 0, 40, 24))  # inside the top-left cell of the 4x4 grid
    marked.save(tmp_path / "marked.png")
    a = prepare_image(tmp_path / "plain.png", enc.image_size)
    b = prepare_image(tmp_path / "marked.png", enc.image_size)
    (ga, gb), (grid_a, grid_b) = enc.encode(np.stack([a.pixels, b.pixels]))
    assert float(ga @ gb) < 0.9999
    cell_change = 1 - np.sum(grid_a * grid_b, axis=-1)
    assert cell_change[0, 0] == cell_change.max()
    assert cell_change[0, 0] > 10 * cell_change[-1, -1]


def test_checkpoint_file_loads_through_the_real_weights_path(tmp_path: Path):
    trained = open_clip_reference(seed=123)
    ckpt = tmp_path / "my_clip.pt"
    torch.save(trained.state_dict(), ckpt)
    weights = resolve_weights(TINY, str(ckpt))
    enc = ClipEncoder(TINY, weights, CPU, "fp32")
    assert not enc.untrained
    assert enc.encoder_id.startswith(f"{TINY}/file:my_clip.pt#") and len(enc.encoder_id.split("#")[1]) == 16
    pixels = batch(7, 8)
    with torch.no_grad():
        ref = trained.encode_image(enc.to_input(pixels), normalize=True).numpy()
    np.testing.assert_allclose(enc.encode(pixels)[0], ref, atol=1e-5)
    assert not np.allclose(tiny_encoder().encode(pixels)[0], ref, atol=1e-3)


def test_safetensors_checkpoint(tmp_path: Path):
    from safetensors.torch import save_file

    trained = open_clip_reference(seed=5)
    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in trained.state_dict().items()}, str(path))
    enc = ClipEncoder(TINY, resolve_weights(TINY, str(path)), CPU, "fp32")
    with torch.no_grad():
        ref = trained.encode_image(enc.to_input(batch(1)), normalize=True).numpy()
    np.testing.assert_allclose(enc.encode(batch(1))[0], ref, atol=1e-5)


def test_training_checkpoint_wrapped_prefixed_and_in_the_legacy_format(tmp_path: Path):
    """A training script's file: {"state_dict": {"module.visual...": ...}}, saved in the pre-zip format that
    cannot be memory-mapped: the same features as open_clip's own loading."""
    trained = open_clip_reference(seed=9)
    path = tmp_path / "epoch_32.pt"
    wrapped = {"state_dict": {f"module.{k}": v for k, v in trained.state_dict().items()}, "epoch": 32}
    torch.save(wrapped, path, _use_new_zipfile_serialization=False)
    enc = ClipEncoder(TINY, resolve_weights(TINY, str(path)), CPU, "fp32")
    assert not any(t.is_meta for t in [*enc.visual.parameters(), *enc.visual.buffers()])
    with torch.no_grad():
        ref = trained.encode_image(enc.to_input(batch(2)), normalize=True).numpy()
    np.testing.assert_allclose(enc.encode(batch(2))[0], ref, atol=1e-5)


class _RunsCode:
    def __reduce__(self):
        import os

        return (os.system, (f"touch {_RunsCode.marker}",))


def test_checkpoint_whose_pickle_would_run_code_is_refused(tmp_path: Path):
    _RunsCode.marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    torch.save({"visual.proj": _RunsCode()}, evil)
    with pytest.raises(WeightsUnavailable):
        ClipEncoder(TINY, resolve_weights(TINY, str(evil)), CPU)
    assert not _RunsCode.marker.exists()


def test_tag_found_in_the_hugging_face_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A tag resolves from the local hub cache without any network, and keeps the tag as the weights id."""
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, TINY, {"cachedtag": {"hf_hub": "cropkit/tiny-test/"}})
    snapshot = tmp_path / "models--cropkit--tiny-test" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (tmp_path / "models--cropkit--tiny-test" / "refs").mkdir()
    (tmp_path / "models--cropkit--tiny-test" / "refs" / "main").write_text("abc123")
    trained = open_clip_reference(seed=77)
    torch.save(trained.state_dict(), snapshot / "open_clip_pytorch_model.bin")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    weights = resolve_weights(TINY, "cachedtag", cache_dir=str(tmp_path))
    assert weights.checkpoint == str(snapshot / "open_clip_pytorch_model.bin")
    enc = ClipEncoder(TINY, weights, CPU, "fp32")
    assert enc.encoder_id == f"{TINY}/cachedtag"
    with torch.no_grad():
        ref = trained.encode_image(enc.to_input(batch(2)), normalize=True).numpy()
    np.testing.assert_allclose(enc.encode(batch(2))[0], ref, atol=1e-5)


def test_missing_weights_fail_at_once_naming_the_fixes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsUnavailable) as err:
        resolve_weights("ViT-B-32", "openai", cache_dir=str(tmp_path))
    text = str(err.value)
    assert "not in the local cache" in text
    for fix in ("--weights /path/to", "huggingface", "--weights none"):
        assert fix in text


def test_unknown_tag_lists_known_tags():
    with pytest.raises(WeightsUnavailable, match="known tags: .*openai"):
        resolve_weights("ViT-B-32", "no-such-tag")


def test_unknown_model_and_absent_device_are_clear_errors():
    with pytest.raises(CropkitError, match="not an encoder cropkit knows"):
        build_encoder("ViT-Nope", "none", CPU)
    if not torch.cuda.is_available():
        with pytest.raises(CropkitError, match="no CUDA GPU"):
            pick_device("cuda")
    assert pick_device("cpu") == CPU
    assert pick_device("auto").type in ("cpu", "cuda", "mps")


def test_vit_b_32_features_fit_the_budget():
    assert grid_side_for(7, 512) == 7
    assert grid_side_for(14, 512) == 7
    assert grid_side_for(16, 768) == 6
    enc = ClipEncoder("ViT-B-32", resolve_weights("ViT-B-32", "none"), CPU)
    g, grid = enc.encode(np.zeros((1, 224, 224, 3), np.uint8))
    size = len(npy_bytes(pack_features(g[0], grid[0])))
    assert grid.shape == (1, 7, 7, 512)
    assert size <= FEATURE_BUDGET_BYTES


def test_grid_cells_follow_image_layout():
    """Grid row 0 is the top of the image and column 0 the left: a bright top-left block lights cell (0, 0)."""
    enc = tiny_encoder()
    base = np.full((1, 64, 64, 3), 90, np.uint8)
    marked = base.copy()
    marked[0, :16, :16] = 255
    _, g0 = enc.encode(base)
    _, g1 = enc.encode(marked)
    change = 1 - np.sum(g0[0] * g1[0], axis=-1)
    assert np.unravel_index(change.argmax(), change.shape) == (0, 0)
    Image.fromarray(marked[0])  # a valid image: the mark is really in the top-left corner


def test_reduced_precision_stays_close_to_fp32():
    pixels = batch(1, 2)
    exact = tiny_encoder(precision="fp32").encode(pixels)[0]
    for precision in ("bf16", "auto"):
        approx = tiny_encoder(precision=precision).encode(pixels)[0]
        assert (approx * exact).sum(axis=1).min() > 0.999
    with pytest.raises(CropkitError, match="--precision"):
        tiny_encoder(precision="int4")


def test_gpu_batch_size_uses_half_the_free_memory_in_powers_of_two():
    mib = 2**20
    assert batch_size_for(80_000 * mib, 20 * mib) == 1024  # an H100: capped
    assert batch_size_for(4_000 * mib, 20 * mib) == 64  # 2000 MiB allowed: 100 images fit, 64 is used
    assert batch_size_for(8_000 * mib, 20 * mib) == 128
    assert batch_size_for(100 * mib, 20 * mib) == 32  # never below the CPU default
    assert batch_size_for(4_000 * mib, 0) == 1024  # a probe that measured nothing


def test_cpu_batch_size_is_32_and_cpu_input_is_not_pinned():
    enc = tiny_encoder()
    assert enc.default_batch_size() == 32
    x = enc.to_input(batch(1))
    assert x.device == CPU and not x.is_pinned()
