"""Constant-velocity Kalman filter: smoothing, coasting, reset, class vs procedural form,
rate-independent process noise."""

from __future__ import annotations

import numpy as np
import pytest
from filterpy.common import Q_continuous_white_noise

from analyzers.filters.kalman import (
    AngleKalman,
    KalmanParams,
    initial_state,
    kalman_step,
    process_noise,
    transition_matrix,
)

pytestmark = pytest.mark.unit

FPS = 30.0
NOISE_DEG = 3.0


def trajectory(ts: np.ndarray) -> np.ndarray:
    """Smooth head pose (pitch, yaw, roll) in degrees."""
    return np.stack(
        [
            10.0 * np.sin(2 * np.pi * 0.2 * ts),
            20.0 * np.sin(2 * np.pi * 0.1 * ts + 0.5),
            5.0 * np.cos(2 * np.pi * 0.15 * ts),
        ],
        axis=1,
    )


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


def filter_errors(fps: float, q: float) -> tuple[float, float]:
    """(raw, filtered) RMS error on the smooth trajectory at ``fps``, 3 degree noise."""
    rng = np.random.default_rng(0)
    ts = np.arange(0.0, 10.0, 1.0 / fps)
    truth = trajectory(ts)
    measured = truth + rng.normal(0.0, NOISE_DEG, truth.shape)
    kf = AngleKalman(3, KalmanParams(q=q, r=NOISE_DEG**2))
    filtered = np.array([kf.update(z, float(t)) for t, z in zip(ts, measured, strict=True)])
    return rmse(measured, truth), rmse(filtered, truth)


def test_filter_beats_raw_measurements() -> None:
    raw_error, filtered_error = filter_errors(FPS, q=300.0)
    assert raw_error == pytest.approx(NOISE_DEG, rel=0.1)
    assert filtered_error < 0.6 * raw_error


@pytest.mark.parametrize("fps", [5.0, 30.0])
def test_same_q_smooths_at_different_frame_rates(fps: float) -> None:
    # One q, no retuning per rate: the filter beats the raw measurements at both rates.
    raw_error, filtered_error = filter_errors(fps, q=100.0)
    assert raw_error == pytest.approx(NOISE_DEG, rel=0.2)
    assert filtered_error < (0.8 if fps < 10 else 0.6) * raw_error


def test_process_noise_does_not_depend_on_step_count() -> None:
    # Predicting over 1 s in 2 steps or in 30 steps adds the same uncertainty:
    # the continuous white-noise acceleration model is exact under subdivision.
    q, total = 300.0, 1.0
    P_one = process_noise(2, total, q)
    for steps in (2, 30):
        dt = total / steps
        F = transition_matrix(2, dt)
        P = np.zeros((4, 4))
        for _ in range(steps):
            P = F @ P @ F.T + process_noise(2, dt, q)
        np.testing.assert_allclose(P, P_one, rtol=1e-12, atol=1e-12)
    # Velocity variance grows by q per second, angle variance by q T^3 / 3.
    assert P_one[1, 1] == pytest.approx(q * total)
    assert P_one[0, 0] == pytest.approx(q * total**3 / 3)


def test_predict_only_bridges_a_half_second_gap() -> None:
    rng = np.random.default_rng(0)
    ts = np.arange(0.0, 6.0, 1.0 / FPS)
    truth = trajectory(ts)
    measured = truth + rng.normal(0.0, NOISE_DEG, truth.shape)
    gap = (ts >= 4.0) & (ts < 4.5)
    kf = AngleKalman(3, KalmanParams(q=300.0, r=NOISE_DEG**2, max_coast_secs=1.0))
    out, sigma = [], []
    for t, z, missing in zip(ts, measured, gap, strict=True):
        out.append(kf.update(None if missing else z, float(t)))
        sigma.append(np.sqrt(np.diag(kf.P)[0::2]))
    coasted = np.array([o for o, missing in zip(out, gap, strict=True) if missing])
    coast_sigma = np.array(sigma)[gap]
    assert coasted.shape == (int(gap.sum()), 3)
    error = np.abs(coasted - truth[gap])
    # Bounded: within a few degrees, and within the filter's own growing uncertainty.
    assert error.max() < 8.0
    assert np.all(error < 4.0 * coast_sigma)
    assert np.all(np.diff(coast_sigma, axis=0) > 0)
    assert kf.is_tracking


def test_reset_after_max_coast() -> None:
    kf = AngleKalman(2, KalmanParams(max_coast_secs=1.0))
    assert kf.update(None, 0.0) is None  # nothing to predict from yet
    for i in range(10):
        assert kf.update(np.array([1.0, 2.0]), i / FPS) is not None
    last = 9 / FPS
    assert kf.update(None, last + 0.5) is not None
    assert kf.update(None, last + 0.99) is not None
    assert kf.update(None, last + 1.01) is None
    assert not kf.is_tracking
    assert kf.x is None
    restarted = kf.update(np.array([30.0, -4.0]), last + 1.5)
    np.testing.assert_allclose(restarted, [30.0, -4.0])


def test_long_gap_then_measurement_restarts() -> None:
    kf = AngleKalman(1, KalmanParams(max_coast_secs=0.5))
    kf.update(np.array([0.0]), 0.0)
    kf.update(np.array([10.0]), 0.1)
    np.testing.assert_allclose(kf.update(np.array([50.0]), 3.0), [50.0])
    np.testing.assert_allclose(kf.x, [50.0, 0.0])


def test_class_and_procedural_form_agree() -> None:
    rng = np.random.default_rng(0)
    params = KalmanParams(q=50.0, r=4.0, max_coast_secs=1.0)
    kf = AngleKalman(3, params)
    # Jittered timestamps so F and Q change every step.
    ts = np.cumsum(rng.uniform(0.02, 0.06, 200))
    truth = trajectory(ts)
    x = P = None
    for i, (t, z_true) in enumerate(zip(ts, truth, strict=True)):
        z = None if 80 <= i < 90 else z_true + rng.normal(0.0, 2.0, 3)
        out = kf.update(z, float(t))
        if i == 0:
            x, P = initial_state(z, params.r, params.velocity_var0)
        else:
            x, P = kalman_step(x, P, z, float(t - ts[i - 1]), params.q, params.r)
        np.testing.assert_allclose(kf.x, x, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(kf.P, P, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(out, x[0::2], rtol=1e-9, atol=1e-9)


def test_process_noise_matches_filterpy() -> None:
    for dt in (0.01, 0.033, 0.5):
        np.testing.assert_allclose(
            process_noise(3, dt, 7.0),
            Q_continuous_white_noise(
                dim=2, dt=dt, spectral_density=7.0, block_size=3, order_by_dim=True
            ),
        )


def test_rejects_time_going_backwards_and_wrong_size() -> None:
    kf = AngleKalman(2)
    kf.update(np.array([0.0, 0.0]), 1.0)
    with pytest.raises(ValueError, match="backwards"):
        kf.update(np.array([0.0, 0.0]), 0.5)
    with pytest.raises(ValueError, match="angles"):
        kf.update(np.array([0.0]), 2.0)
