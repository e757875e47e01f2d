"""A proposer file's calibration is read like every foreign number: finite, in range, whole counts, and a curve that
never falls (a surer suggestion is never shown as less likely to be accepted). Anything else refuses the file with
a clear error, never an OverflowError on opening nor "100% likely" on every suggestion."""

from __future__ import annotations

import pytest

from cropkit.errors import CropkitError
from cropkit.features.cues import cue_version
from cropkit.learn.calibration import Calibration
from cropkit.learn.candidates import FEATURE_NAMES
from cropkit.learn.guard import Guard
from cropkit.learn.proposer import CropProposer, ProposerNet

GOOD = Calibration(0.3, 0.8, -2.0, 40, 25)


def proposer_with(tmp_path, calibration: dict):
    guard = Guard("centre-crop", {"aspect": 0.8, "scale": 0.9}, 0.5, {"images": 40}, GOOD).to_meta()
    meta = {"feature_model": "cropkit-tiny/random-init-seed0", "aspects": [1.0], "cues": cue_version(),
            "guard": {**guard, "calibration": calibration}}
    return CropProposer(ProposerNet(len(FEATURE_NAMES), 32), meta).save(tmp_path)


BAD = {
    "n infinite": {"n": float("inf")},
    "accepted infinite": {"accepted": float("inf")},
    "n of 400 digits": {"n": 10 ** 400},
    "n NaN": {"n": float("nan")},
    "n negative": {"n": -1, "accepted": 0},
    "n a fraction": {"n": 40.5},
    "n as text": {"n": "40"},
    "accepted over n": {"accepted": 41},
    "slope falling": {"slope": -0.5},
    "slope huge": {"slope": 1e300},
    "intercept infinite": {"intercept": float("-inf")},
    "centre above every log score": {"centre": 3.0},
    "slope missing": {"slope": None},
}


@pytest.mark.parametrize("kind", list(BAD))
def test_a_proposer_with_a_bad_calibration_is_refused_with_a_clear_error(tmp_path, kind):
    path = proposer_with(tmp_path, {**GOOD.to_meta(), **BAD[kind]})
    with pytest.raises(CropkitError, match=r"'calibration' .*[Rr]etrain with cropkit train"):
        CropProposer.load(path)


def test_a_falling_curve_is_named_as_such():
    with pytest.raises(ValueError, match="slope is negative: surer suggestions would be shown as less likely"):
        Calibration.from_meta({**GOOD.to_meta(), "slope": -0.5})


def test_a_good_calibration_still_loads_and_rises(tmp_path):
    loaded = CropProposer.load(proposer_with(tmp_path, {**GOOD.to_meta(), "n": 40.0}))  # a whole float is a count
    calibration = loaded.guard().calibration
    assert calibration == GOOD and isinstance(calibration.n, int)
    assert calibration.probability(0.05) < calibration.probability(0.5) < 1.0
