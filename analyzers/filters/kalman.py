"""Constant-velocity Kalman filter for angles (head pose, gaze), with variable dt.

State for ``n`` angles, ordered by dimension: ``x = [a1, a1', a2, a2', ...]``
(degrees and degrees per second); the measurement is the ``n`` angles.

- Motion model ``F``: per angle ``[[1, dt], [0, 1]]``, rebuilt every step from the
  timestamps, because sampled frames do not arrive on a fixed clock.
- Process noise ``Q``: filterpy's ``Q_discrete_white_noise(dim=2, dt, var=q)``, the
  piecewise-constant white acceleration model, per angle
  ``q * [[dt^4/4, dt^3/2], [dt^3/2, dt^2]]``. ``q`` is the variance of the acceleration
  held over one step, in (deg/s^2)^2: larger ``q`` follows fast head turns sooner,
  smaller ``q`` smooths more. In this model the velocity's random walk per second is
  ``q * dt``, so the same ``q`` smooths more at higher frame rates: tune it for the
  analysis rate (the default, 300, was checked at 2-30 fps on smooth head motion).
- Measurement noise ``R = r * I``: ``r`` is the variance of one measured angle in
  deg^2 (landmark PnP jitter is a few degrees, so ``r`` of 4-10).

Two forms that compute the same numbers: :class:`AngleKalman` wraps filterpy's
``KalmanFilter`` and adds coasting and reset; :func:`kalman_step` is the plain numpy
step written out equation by equation.
"""

from __future__ import annotations

import numpy as np
from filterpy.common import Q_discrete_white_noise
from filterpy.kalman import KalmanFilter
from pydantic import BaseModel, ConfigDict, Field

#: Default acceleration variance, (deg/s^2)^2.
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
        description="Process noise: variance of the white acceleration held over one step, "
        "(deg/s^2)^2 (filterpy Q_discrete_white_noise var).",
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
    return np.kron(np.eye(n), np.array([[1.0, dt], [0.0, 1.0]]))


def process_noise(n: int, dt: float, q: float) -> np.ndarray:
    """``Q``, equal to ``Q_discrete_white_noise(2, dt, q, block_size=n)``.

    Args:
        n: Number of angles.
        dt: Step in seconds.
        q: Acceleration variance, (deg/s^2)^2.

    Returns:
        ``(2n, 2n)`` block-diagonal matrix of ``q [[dt^4/4, dt^3/2], [dt^3/2, dt^2]]``.
    """
    block = np.array([[0.25 * dt**4, 0.5 * dt**3], [0.5 * dt**3, dt**2]]) * q
    return np.kron(np.eye(n), block)


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
        q: Acceleration variance, (deg/s^2)^2.
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
        # F and Q depend on dt, so they are rebuilt for every step.
        kf.F = transition_matrix(self.n, dt)
        kf.Q = Q_discrete_white_noise(
            dim=2, dt=dt, var=self.params.q, block_size=self.n, order_by_dim=True
        )
        kf.predict()
        if z is not None:
            kf.update(z.reshape(-1, 1))
            self._last_measured_ts = ts
        self._last_ts = ts
        x: np.ndarray = kf.x.ravel()
        return x[0::2].copy()
