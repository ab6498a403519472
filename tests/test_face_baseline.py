"""Per-person neutral baseline: calibration timing, relative values, 0-5 intensities."""

from __future__ import annotations

import numpy as np
import pytest

from analyzers.face.baseline import (
    AU_INTENSITY_SCALE,
    IOD_MM,
    BaselineParams,
    NeutralBaseline,
    au_intensities,
)

pytestmark = pytest.mark.unit

NEUTRAL = {
    "au01_inner_brow_raise_proxy": 0.21,
    "au06_cheek_raise_proxy": -0.35,
    "au12_lip_corner_pull_proxy": -0.01,
    "au15_lip_corner_depress_proxy": 0.01,
    "au26_jaw_drop_proxy": 0.74,
}
EMOTIONS = {"happy": 0.1, "sad": 0.3, "neutral": 0.6}


def noisy(values: dict[str, float], rng: np.random.Generator) -> dict[str, float]:
    return {k: v + float(rng.normal(0.0, 0.002)) for k, v in values.items()}


def test_not_calibrated_before_calibration_secs() -> None:
    rng = np.random.default_rng(0)
    baseline = NeutralBaseline(BaselineParams(calibration_secs=3.0, min_frames=5))
    ts = np.round(np.arange(0.0, 3.0, 0.1), 10)
    for t in ts:
        baseline.update(float(t), noisy(NEUTRAL, rng), EMOTIONS)
        assert not baseline.is_calibrated
        assert baseline.relative(NEUTRAL) is None
        assert baseline.intensities(NEUTRAL) is None
        assert baseline.relative_emotions(EMOTIONS) is None
        assert baseline.neutral_aus is None
    assert baseline.calibration_progress == pytest.approx(2.9 / 3.0)
    baseline.update(3.0, noisy(NEUTRAL, rng), EMOTIONS)
    assert baseline.is_calibrated
    assert baseline.emotions_calibrated
    assert baseline.calibration_progress == 1.0
    neutral = baseline.neutral_aus
    assert neutral is not None
    assert neutral["AU12"] == pytest.approx(-0.01, abs=0.002)
    assert neutral["AU26"] == pytest.approx(0.74, abs=0.002)


def test_relative_values_right_after_calibration() -> None:
    baseline = NeutralBaseline(BaselineParams(calibration_secs=1.0, min_frames=5))
    for i in range(11):
        baseline.update(i * 0.1, NEUTRAL, EMOTIONS)
    assert baseline.is_calibrated
    smiling = dict(NEUTRAL)
    smiling["au12_lip_corner_pull_proxy"] = -0.01 + 0.05
    smiling["au15_lip_corner_depress_proxy"] = 0.01 - 0.05
    relative = baseline.relative(smiling)
    assert relative is not None
    assert set(relative) == {"AU01", "AU06", "AU12", "AU15", "AU26"}
    assert relative["AU12"] == pytest.approx(0.05)
    assert relative["AU15"] == pytest.approx(-0.05)
    assert relative["AU01"] == pytest.approx(0.0)
    emotions = baseline.relative_emotions({"happy": 0.5, "sad": 0.1, "neutral": 0.4})
    assert emotions == pytest.approx({"happy": 0.4, "sad": -0.2, "neutral": -0.2})
    assert sum(emotions.values()) == pytest.approx(0.0, abs=1e-12)


def test_intensities_on_the_zero_to_five_scale() -> None:
    baseline = NeutralBaseline(BaselineParams(calibration_secs=0.4, min_frames=5))
    for i in range(5):
        baseline.update(i * 0.1, NEUTRAL)
    k12 = AU_INTENSITY_SCALE["AU12"]
    frame = dict(NEUTRAL)
    frame["au12_lip_corner_pull_proxy"] = -0.01 + 2.0 * k12  # corners up 2 units
    frame["au15_lip_corner_depress_proxy"] = 0.01 - 2.0 * k12
    frame["au26_jaw_drop_proxy"] = 0.74 + 100.0  # absurd: clipped at 5
    frame["au01_inner_brow_raise_proxy"] = 0.21 - 0.05  # below neutral: 0, not negative
    intensities = baseline.intensities(frame)
    assert intensities is not None
    assert intensities["AU12"] == pytest.approx(2.0)
    assert intensities["AU15"] == 0.0
    assert intensities["AU26"] == 5.0
    assert intensities["AU01"] == 0.0
    assert intensities["AU06"] == 0.0
    # Mouth corners pulled down from rest read as AU15.
    frown = dict(NEUTRAL)
    frown["au12_lip_corner_pull_proxy"] = -0.01 - 0.02
    frown["au15_lip_corner_depress_proxy"] = 0.01 + 0.02
    frown_intensities = baseline.intensities(frown)
    assert frown_intensities is not None
    assert frown_intensities["AU15"] == pytest.approx(0.02 / AU_INTENSITY_SCALE["AU15"])


def test_intensity_scale_constants() -> None:
    # 10 mm of corner lift at a 90 mm IOD is the top of the scale.
    assert AU_INTENSITY_SCALE["AU12"] == pytest.approx(10.0 / IOD_MM / 5.0)
    assert AU_INTENSITY_SCALE["AU45"] == pytest.approx(0.2)
    assert au_intensities({"AU12": 10.0 / IOD_MM, "AU99": 1.0}) == pytest.approx({"AU12": 5.0})


def test_needs_min_frames_as_well_as_time() -> None:
    baseline = NeutralBaseline(BaselineParams(calibration_secs=3.0, min_frames=5))
    for t in (0.0, 1.0, 2.0, 3.0):  # 3 s observed, only 4 frames
        baseline.update(t, NEUTRAL)
    assert not baseline.is_calibrated
    baseline.update(4.0, NEUTRAL)
    assert baseline.is_calibrated


def test_missing_face_time_does_not_count() -> None:
    baseline = NeutralBaseline(BaselineParams(calibration_secs=2.0, min_frames=5))
    for i in range(11):  # 1 s of face
        baseline.update(i * 0.1, NEUTRAL)
    for i in range(11, 60):  # 5 s without a face
        baseline.update(i * 0.1, None)
    assert not baseline.is_calibrated
    t = 6.0
    while not baseline.is_calibrated:
        baseline.update(t, NEUTRAL)
        t = round(t + 0.1, 10)
    # 1 s before the gap plus 1 s after it.
    assert t - 0.1 == pytest.approx(7.0)


def test_median_ignores_a_brief_expression() -> None:
    baseline = NeutralBaseline(BaselineParams(calibration_secs=2.0, min_frames=5))
    for i in range(21):
        frame = dict(NEUTRAL)
        if 5 <= i < 9:  # a 0.4 s grin inside the calibration window
            frame["au12_lip_corner_pull_proxy"] = 0.2
        baseline.update(i * 0.1, frame)
    neutral = baseline.neutral_aus
    assert neutral is not None
    assert neutral["AU12"] == pytest.approx(-0.01)


def test_emotions_calibrate_on_their_own_samples() -> None:
    baseline = NeutralBaseline(BaselineParams(calibration_secs=1.0, min_frames=5))
    # The emotion model runs on every other frame; AUs calibrate first.
    for i in range(21):
        probs = {"happy": 0.2, "neutral": 0.8} if i % 2 == 0 else None
        baseline.update(i * 0.1, NEUTRAL, probs)
        if i == 10:
            assert baseline.is_calibrated
            assert baseline.emotions_calibrated  # 6 samples over 1.0 s
    assert baseline.neutral_emotions == pytest.approx({"happy": 0.2, "neutral": 0.8})
    # Without an emotion model there is never an emotion baseline.
    no_model = NeutralBaseline(BaselineParams(calibration_secs=1.0, min_frames=5))
    for i in range(30):
        no_model.update(i * 0.1, NEUTRAL)
    assert no_model.is_calibrated
    assert not no_model.emotions_calibrated
    assert no_model.relative_emotions({"happy": 1.0}) is None


def test_reset_starts_over() -> None:
    baseline = NeutralBaseline(BaselineParams(calibration_secs=0.4, min_frames=5))
    for i in range(5):
        baseline.update(i * 0.1, NEUTRAL)
    assert baseline.is_calibrated
    baseline.reset()
    assert not baseline.is_calibrated
    assert baseline.relative(NEUTRAL) is None
