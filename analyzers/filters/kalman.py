"""Constant-velocity Kalman filter for angles (head pose, gaze), with variable dt.

State for ``n`` angles, ordered by dimension: ``x = [a1, a1', a2, a2', ...]``
(degrees and degrees per second); the measurement is the ``n`` angles.

- Motion model ``F``: per angle ``[[1, dt], [0, 1]]``, rebuilt every step from the
  timestamps, because sampled frames do not arrive on a fixed clock.
- Process noise ``Q``: the continuous white-noise acceleration model discretised
  over each step, filterpy's ``Q_continuous_white_noise(dim=2, dt, spectral_density=q)``,
  per angle ``q * [[dt^3/3, dt^2/2], [dt^2/2, dt]]``. ``q`` is the power spectral
  density of the angular acceleration, in deg^2/s^3: over any stretch of time ``T`` the
  velocity's random walk has variance ``q * T`` and the angle's ``q * T^3 / 3``, whatever
  the number of steps ``T`` is cut into. So one ``q`` means the same motion prior at
  2 fps and at 30 fps, and irregular frame spacing is handled exactly. (filterpy's
  ``Q_discrete_white_noise`` holds the acceleration constant over each step instead:
  velocity variance ``q * dt^2`` per step, ``q * dt`` per second, so the same ``q``
  would smooth more the higher the frame rate.)
  Larger ``q`` follows fast head turns sooner, smaller ``q`` smooths more. The default,
  300 deg^2/s^3, is a compromise from a sweep on synthetic head motion with 3 degree
  measurement noise at 2, 5, 10 and 30 fps (the best ``q`` hardly moved with the rate):
  slow sway (10-20 degrees at 0.1-0.2 Hz) is tracked best with ``q`` of 30-100, 30 degree
  head turns in 0.6 s with ``q`` of 1000 or more; 300 stays within 10 % of the best RMS
  error on the sway and within 25 % on the turns from 5 fps up. At 2 fps little
  smoothing is possible at any ``q``.
- Measurement noise ``R = r * I``: ``r`` is the variance of one measured angle in
  deg^2 (landmark PnP jitter is a few degrees, so ``r`` of 4-10).

Two forms that compute the same numbers: :class:`AngleKalman` wraps filterpy's
``KalmanFilter`` and adds coasting and reset; :func:`kalman_step` is the plain numpy
step written out equation by equation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from filterpy.kalman import KalmanFilter

#: Default spectral density of the white angular acceleration, deg^2/s^3.
KALMAN_Q = 300.0
#: Default measurement variance, deg^2.
KALMAN_R = 9.0
#: Default longest gap bridged by prediction alone, seconds.
KALMAN_MAX_COAST_SECS = 1.0
#: Default initial velocity variance, (deg/s)^2: at the first measurement the
#: velocity is unknown, so it starts at 0 with a wide spread.
KALMAN_VELOCITY_VAR0 = 100.0


class KalmanParams(BaseModel):
    """Settings for :class:`AngleKalman`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    q: float = Field(
        KALMAN_Q,
        gt=0,
        description="Process noise: spectral density of the continuous white angular "
        "acceleration, deg^2/s^3 (filterpy Q_continuous_white_noise spectral_density); "
        "independent of the frame rate.",
    )
    r: float = Field(
        KALMAN_R,
        gt=0,
        description="Measurement noise: variance of one measured angle, deg^2 (R = r I).",
    )
    max_coast_secs: float = Field(
        KALMAN_MAX_COAST_SECS,
        ge=0,
        description="Longest time without a measurement that prediction bridges; "
        "after it the filter resets and returns None.",
    )
    velocity_var0: float = Field(
        KALMAN_VELOCITY_VAR0,
        gt=0,
        description="Initial velocity variance at (re)start, (deg/s)^2.",
    )


def transition_matrix(n: int, dt: float) -> np.ndarray:
    """``F`` for ``n`` constant-velocity angles, state ordered by dimension.

    Args:
        n: Number of angles.
        dt: Step in seconds.

    Returns:
        ``(2n, 2n)`` block-diagonal matrix of ``[[1, dt], [0, 1]]``.
    """
    # Filled in place rather than with np.kron: this runs on every frame.
    F = np.eye(2 * n)
    angle = np.arange(0, 2 * n, 2)
    F[angle, angle + 1] = dt
    return F


def process_noise(n: int, dt: float, q: float) -> np.ndarray:
    """``Q``, equal to ``Q_continuous_white_noise(2, dt, q, block_size=n)``.

    Args:
        n: Number of angles.
        dt: Step in seconds.
        q: Spectral density of the white angular acceleration, deg^2/s^3.

    Returns:
        ``(2n, 2n)`` block-diagonal matrix of ``q [[dt^3/3, dt^2/2], [dt^2/2, dt]]``.
    """
    Q = np.zeros((2 * n, 2 * n))
    angle = np.arange(0, 2 * n, 2)
    Q[angle, angle] = q * dt**3 / 3.0
    Q[angle, angle + 1] = Q[angle + 1, angle] = q * dt**2 / 2.0
    Q[angle + 1, angle + 1] = q * dt
    return Q


def measurement_matrix(n: int) -> np.ndarray:
    """``H``: picks the angles out of the state.

    Args:
        n: Number of angles.

    Returns:
        ``(n, 2n)`` matrix.
    """
    return np.kron(np.eye(n), np.array([[1.0, 0.0]]))


def initial_state(z: np.ndarray, r: float, velocity_var0: float) -> tuple[np.ndarray, np.ndarray]:
    """``x, P`` at the first measurement: angles = ``z``, velocities 0.

    Args:
        z: ``(n,)`` first measurement.
        r: Measurement variance (the angles' initial variance).
        velocity_var0: Initial velocity variance.

    Returns:
        ``x`` of shape ``(2n,)`` and ``P`` of shape ``(2n, 2n)``.
    """
    z = np.asarray(z, dtype=np.float64).ravel()
    n = z.size
    x = np.zeros(2 * n)
    x[0::2] = z
    P = np.diag(np.tile([r, velocity_var0], n))
    return x, P


def kalman_step(
    x: np.ndarray, P: np.ndarray, z: np.ndarray | None, dt: float, q: float, r: float
) -> tuple[np.ndarray, np.ndarray]:
    """One predict (+ update) step in plain numpy; the same maths as :class:`AngleKalman`.

    Args:
        x: ``(2n,)`` state, ordered by dimension.
        P: ``(2n, 2n)`` state covariance.
        z: ``(n,)`` measurement, or None for predict only.
        dt: Seconds since the previous step.
        q: Spectral density of the white angular acceleration, deg^2/s^3.
        r: Measurement variance, deg^2.

    Returns:
        The new ``(x, P)``; the inputs are not modified.
    """
    n = x.size // 2
    F = transition_matrix(n, dt)
    Q = process_noise(n, dt, q)
    # x = F x
    x = F @ x
    # P = F P F' + Q
    P = F @ P @ F.T + Q
    if z is None:
        return x, P
    H = measurement_matrix(n)
    R = np.eye(n) * r
    # y = z - H x
    y = np.asarray(z, dtype=np.float64).ravel() - H @ x
    # S = H P H' + R
    S = H @ P @ H.T + R
    # K = P H' S^-1
    K = P @ H.T @ np.linalg.inv(S)
    # x = x + K y
    x = x + K @ y
    # P = (I - K H) P (I - K H)' + K R K'  (Joseph form, as filterpy)
    I_KH = np.eye(2 * n) - K @ H
    P = I_KH @ P @ I_KH.T + K @ R @ K.T
    return x, P


class AngleKalman:
    """Constant-velocity Kalman filter over ``n`` angles, one per tracked face.

    Runs inline on whichever thread handles the participant's frames (a step takes
    microseconds); not thread-safe.

    :meth:`update` takes the measured angles, or None when there is no face this tick.
    Without measurements the filter predicts ("coasts") for up to ``max_coast_secs``,
    then resets and returns None until the next measurement restarts it.

    Args:
        n: Number of angles (3 for pitch, yaw, roll).
        params: Noise and coasting settings.
    """

    def __init__(self, n: int, params: KalmanParams | None = None) -> None:
        """Create an uninitialised filter; the first measurement starts it."""
        self.n = n
        self.params = params or KalmanParams()
        self._kf: KalmanFilter | None = None
        self._last_ts: float | None = None
        self._last_measured_ts: float | None = None

    @property
    def is_tracking(self) -> bool:
        """True between the first measurement and a reset."""
        return self._kf is not None

    @property
    def x(self) -> np.ndarray | None:
        """Current state ``(2n,)``, or None when not tracking."""
        return None if self._kf is None else self._kf.x.ravel().copy()

    @property
    def P(self) -> np.ndarray | None:  # noqa: N802 - filterpy's symbol
        """Current covariance ``(2n, 2n)``, or None when not tracking."""
        return None if self._kf is None else self._kf.P.copy()

    def reset(self) -> None:
        """Forget the track; the next measurement starts a new one."""
        self._kf = None
        self._last_ts = None
        self._last_measured_ts = None

    def _start(self, z: np.ndarray, ts: float) -> None:
        # filterpy imports scipy.stats (about 0.4 s): imported on first use (or ahead of it,
        # off the event loop, by analyzers.face.track_state.preload), not with this module,
        # which the server imports before it can answer.
        from filterpy.kalman import KalmanFilter

        kf = KalmanFilter(dim_x=2 * self.n, dim_z=self.n)
        x, P = initial_state(z, self.params.r, self.params.velocity_var0)
        kf.x = x.reshape(-1, 1)
        kf.P = P
        kf.H = measurement_matrix(self.n)
        kf.R = np.eye(self.n) * self.params.r
        self._kf = kf
        self._last_ts = ts
        self._last_measured_ts = ts

    def update(self, z: np.ndarray | None, ts: float) -> np.ndarray | None:
        """Advance to ``ts`` and fold in ``z``.

        Args:
            z: ``(n,)`` measured angles, or None when there is no measurement.
            ts: Timestamp in seconds; must not go backwards.

        Returns:
            The filtered angles ``(n,)``, or None when not tracking (never started, or
            reset after coasting longer than ``max_coast_secs``).

        Raises:
            ValueError: If ``ts`` is earlier than the previous step's, or ``z`` has the
                wrong size.
        """
        if z is not None:
            z = np.asarray(z, dtype=np.float64).ravel()
            if z.size != self.n:
                raise ValueError(f"expected {self.n} angles, got {z.size}")
        kf = self._kf
        if kf is None or self._last_ts is None or self._last_measured_ts is None:
            if z is None:
                return None
            self._start(z, ts)
            return z.copy()
        dt = ts - self._last_ts
        if dt < 0:
            raise ValueError("timestamps must not go backwards")
        if ts - self._last_measured_ts > self.params.max_coast_secs:
            # Too long without a measurement: the prediction is meaningless, start over.
            self.reset()
            if z is None:
                return None
            self._start(z, ts)
            return z.copy()
        # F and Q depend on dt, so they are rebuilt for every step. process_noise is
        # filterpy's Q_continuous_white_noise(2, dt, q, block_size=n) (the tests check
        # it), built without scipy's block_diag, which costs ~0.25 ms a call.
        kf.F = transition_matrix(self.n, dt)
        kf.Q = process_noise(self.n, dt, self.params.q)
        kf.predict()
        if z is not None:
            kf.update(z.reshape(-1, 1))
            self._last_measured_ts = ts
        self._last_ts = ts
        x: np.ndarray = kf.x.ravel()
        return x[0::2].copy()
