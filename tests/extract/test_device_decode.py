"""Decoding on the encoder's device, tested where there is no GPU: the same batched code runs on the CPU (libjpeg
through torchvision). Which decoder is chosen, what goes back to the CPU path, the orientation, and features close
to the CPU decoder's."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from cropkit.cli import main
from cropkit.errors import CropkitError
from cropkit.extract.device_decode import device_decodable, pick_decoder, prepare_on_device, read_raw
from cropkit.extract.prepare import Failed, Prepared, prepare_image
from tests.conftest import tiny_args
from tests.libgen import photo_like


def test_the_decoder_is_chosen_by_the_device():
    assert pick_decoder("auto", "cuda") == "cpu" and pick_decoder("auto", "cpu") == "cpu"  # measured: see docs
    assert pick_decoder("cpu", "cuda") == "cpu" and pick_decoder("device", "cuda") == "device"
    with pytest.raises(CropkitError, match="nvJPEG on a CUDA GPU"):
        pick_decoder("device", "cpu")


def _bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, **kw)
    return buf.getvalue()


def test_only_baseline_rgb_or_gray_jpegs_go_to_the_device():
    img = photo_like(64, 48, 1)
    assert device_decodable(_bytes(img, format="JPEG"))[0]
    assert device_decodable(_bytes(img.convert("L"), format="JPEG"))[0]
    assert not device_decodable(_bytes(img, format="JPEG", progressive=True))[0]
    assert not device_decodable(_bytes(img.convert("CMYK"), format="JPEG"))[0]
    assert not device_decodable(_bytes(img, format="PNG"))[0]
    assert not device_decodable(b"\xff\xd8 not a jpeg")[0]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_device_decode_turns_upright_and_matches_the_cpu_path(tmp_path, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "a.jpg"
    photo_like(320, 200, orientation).save(path, "JPEG", quality=92, exif=exif.tobytes())
    (dev,) = prepare_on_device([read_raw(path)], 64, "cpu")
    cpu = prepare_image(path, 64)
    assert isinstance(dev, Prepared) and (dev.width, dev.height, dev.hash) == (cpu.width, cpu.height, cpu.hash)
    diff = np.abs(dev.pixels.astype(int) - cpu.pixels.astype(int))
    assert diff.mean() < 3 and np.percentile(diff, 99) < 20  # the same picture, upright, by another resampler
    assert dev.cues.version == cpu.cues.version


def test_files_the_device_refuses_take_the_cpu_path_and_bad_ones_fail_with_their_reason(tmp_path):
    img = photo_like(96, 64, 3)
    (tmp_path / "p.png").write_bytes(_bytes(img, format="PNG"))
    (tmp_path / "prog.jpg").write_bytes(_bytes(img, format="JPEG", progressive=True))
    (tmp_path / "ok.jpg").write_bytes(_bytes(img, format="JPEG"))
    whole = _bytes(img, format="JPEG")
    (tmp_path / "cut.jpg").write_bytes(whole[: len(whole) * 6 // 10])  # passes the header check, then fails
    raws = [read_raw(tmp_path / n) for n in ("p.png", "prog.jpg", "ok.jpg", "cut.jpg")]
    assert [r.device_ok for r in raws] == [False, False, True, True]
    out = prepare_on_device(raws, 64, "cpu")
    assert [type(o).__name__ for o in out] == ["Prepared", "Prepared", "Prepared", "Failed"]
    assert isinstance(out[3], Failed) and out[3].kind in ("truncated", "decode-error")
    assert isinstance(read_raw(tmp_path / "missing.jpg"), Failed)


def test_extract_with_the_device_decoder_on_a_cpu_run_is_refused_with_what_to_do(root, capsys):
    assert main(tiny_args(root, "--decoder", "device")) == 2
    assert "use --decoder cpu" in capsys.readouterr().err
