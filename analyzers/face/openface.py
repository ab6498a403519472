"""OpenFace FeatureExtraction rows in our units, and the reading of one face over time.

OpenFace (Baltrusaitis et al.; its CSV format in ``SEEDS.md`` section 3) measures action
units, head pose and gaze itself; an import reads those numbers instead of running our
landmark pipeline. This module is pure: :func:`openface_pose` and :func:`openface_gaze`
convert OpenFace's angles to ours, :class:`OpenFaceFrame` is one face in one CSV row
(already converted), and :class:`OpenFaceFaceState` turns a face's frames into the same
:class:`~analyzers.face.track_state.FaceReading` our landmark path produces, reusing its
parts: the blink state machine, the Kalman filters, the seed-B window and the AU rules.

**Action units**: ``AUxx_r`` is OpenFace's intensity on the FACS-like 0-5 scale, the
scale our baseline-relative intensities imitate (:mod:`analyzers.face.baseline`), so
it is used as is, gated by its presence column (``AUxx_c == 0`` reads 0,
:func:`~analyzers.face.geometry.au_rules.normalize_aus`). OpenFace already normalises
per person when it processes a video (median of the person's appearance features), so
there is no second neutral baseline here: the face counts as calibrated from its first
frame. All 17 intensities are reported (our landmark proxies have 9); rule labels use
:data:`~analyzers.face.geometry.au_rules.DEFAULT_RULES`, whose thresholds are on this
scale, so anger, surprise and confusion are measurable too.

**Head pose**: OpenFace's ``pose_Rx, pose_Ry, pose_Rz`` (radians) are the Euler angles of
``R = Rx(a) @ Ry(b) @ Rz(c)`` (standard right-handed matrices, OpenFace's
``Euler2RotationMatrix``) in camera axes, x to the image's right, y down, z away from the
camera, identity for a face looking along the optical axis; those are our axes too
(:mod:`analyzers.face.geometry.pose`). The matrix is taken relative to the line of sight
to the camera (``pose_Tx..Tz``, mm) as our head pose is, then decomposed in our
convention. To first order: pitch = Rx (+ down), yaw = -Ry (+ towards the image's
right), roll = Rz (+ clockwise), in degrees.

**Gaze**: ``gaze_angle_x/y`` (radians, both eyes, ``atan2(g_x, -g_z)`` and
``atan2(g_y, -g_z)`` of the mean gaze vector) or, without them (OpenFace 1.x), the mean
of the unit vectors ``gaze_0`` and ``gaze_1``. The direction is taken relative to the
line of sight like the head pose, so 0/0 means "looking at the camera": yaw + towards the
image's right, pitch + down, degrees.

**Blinks** (seed B's definition, done right): a blink is an *event* of ``AU45`` (blink),
not a frame count. The eye's openness on AU45's scale, ``5 - AU45``, goes through our
blink state machine (:class:`~analyzers.face.geometry.blinks.BlinkDetector`): with the
open reference near 5 a closure starts above AU45 = 1.25 and ends below 0.75 (around
seed B's threshold of 1.0), lasts 0.05-0.5 s, and is counted once, on reopening; below
10 frames a second the blink rate reads "not measurable".

**Eye aspect ratio**: from the 68 2D landmarks (``x_36..x_47``, ``y_36..y_47``) when the
CSV has them, else ``None``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from analyzers.face.baseline import MAX_INTENSITY, _Calibration
from analyzers.face.geometry.au_rules import DEFAULT_RULES, AuRule, normalize_aus
from analyzers.face.geometry.blinks import BlinkDetector
from analyzers.face.geometry.pose import angles_from_rotation, line_of_sight_rotation, looking_away
from analyzers.face.geometry.window import FeatureWindow
from analyzers.face.track_state import FaceReading, FaceTrackParams, window_step
from analyzers.filters.kalman import AngleKalman

#: The 68-point model's eyes, each in EAR order (corner, top, top, corner, bottom, bottom).
_EYES_68 = ((36, 37, 38, 39, 40, 41), (42, 43, 44, 45, 46, 47))


def _rotation_xyz(rx: float, ry: float, rz: float) -> np.ndarray:
    """OpenFace's ``Euler2RotationMatrix``: ``Rx(rx) @ Ry(ry) @ Rz(rz)``, radians."""
    ca, sa = math.cos(rx), math.sin(rx)
    cb, sb = math.cos(ry), math.sin(ry)
    cc, sc = math.cos(rz), math.sin(rz)
    x = np.array([[1.0, 0.0, 0.0], [0.0, ca, -sa], [0.0, sa, ca]])
    y = np.array([[cb, 0.0, sb], [0.0, 1.0, 0.0], [-sb, 0.0, cb]])
    z = np.array([[cc, -sc, 0.0], [sc, cc, 0.0], [0.0, 0.0, 1.0]])
    rotation: np.ndarray = x @ y @ z
    return rotation


def openface_pose(
    rx: float, ry: float, rz: float, translation_mm: tuple[float, float, float] | None
) -> tuple[float, float, float]:
    """Our head pose from OpenFace's, see the module docstring.

    Args:
        rx: ``pose_Rx``, radians.
        ry: ``pose_Ry``, radians.
        rz: ``pose_Rz``, radians.
        translation_mm: ``(pose_Tx, pose_Ty, pose_Tz)``, or None (then relative to the
            optical axis).

    Returns:
        ``(pitch, yaw, roll)`` in degrees, relative to the line of sight to the camera.
    """
    rotation = _rotation_xyz(rx, ry, rz)
    if translation_mm is not None:
        rotation = line_of_sight_rotation(np.array(translation_mm)).T @ rotation
    return angles_from_rotation(rotation)


def openface_gaze(
    direction: tuple[float, float, float], translation_mm: tuple[float, float, float] | None
) -> tuple[float, float] | None:
    """Gaze yaw and pitch (degrees) of a gaze direction in camera axes.

    Args:
        direction: Gaze direction, camera axes (about ``(0, 0, -1)`` towards the camera).
        translation_mm: The head's position, or None (then relative to the optical axis).

    Returns:
        ``(yaw, pitch)``: + towards the image's right, + down; None for a zero vector or
        one pointing away from the camera.
    """
    g = np.asarray(direction, dtype=np.float64)
    if translation_mm is not None:
        g = line_of_sight_rotation(np.array(translation_mm)).T @ g
    if not np.all(np.isfinite(g)) or g[2] >= 0:
        return None
    return math.degrees(math.atan2(g[0], -g[2])), math.degrees(math.atan2(g[1], -g[2]))


def gaze_direction_from_angles(angle_x: float, angle_y: float) -> tuple[float, float, float]:
    """The gaze direction behind ``gaze_angle_x/y`` (radians): ``(tan x, tan y, -1)``."""
    return math.tan(angle_x), math.tan(angle_y), -1.0


def eye_aspect_ratio_68(xs: Mapping[int, float], ys: Mapping[int, float]) -> float | None:
    """Mean eye aspect ratio of both eyes from 68-point 2D landmarks (Soukupova & Cech).

    Args:
        xs: Landmark index -> x (pixels); needs 36-47.
        ys: Landmark index -> y.

    Returns:
        ``(|p2 - p6| + |p3 - p5|) / (2 |p1 - p4|)`` averaged over the eyes, or None.
    """
    ears = []
    for eye in _EYES_68:
        if any(i not in xs or i not in ys for i in eye):
            return None
        p = [np.array((xs[i], ys[i])) for i in eye]
        width = float(np.linalg.norm(p[0] - p[3]))
        if width <= 0:
            return None
        height = float(np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4]))
        ears.append(height / (2.0 * width))
    return float(np.mean(ears))


@dataclass(frozen=True, slots=True)
class OpenFaceFrame:
    """One successfully tracked face in one OpenFace row, in our units.

    Attributes:
        aus: AU columns as OpenFace names them (``AU12_r``, ``AU12_c``), as read.
        pose: ``(pitch, yaw, roll)`` degrees (:func:`openface_pose`), or None without
            pose columns.
        gaze: ``(yaw, pitch)`` degrees (:func:`openface_gaze`), or None without gaze
            columns.
        ear: Mean eye aspect ratio from the 2D landmarks, or None.
    """

    aus: Mapping[str, float]
    pose: tuple[float, float, float] | None
    gaze: tuple[float, float] | None
    ear: float | None = None


class OpenFaceFaceState:
    """Everything stateful about one OpenFace face; see the module docstring.

    The counterpart of :class:`~analyzers.face.track_state.FaceTrackState` for input that
    is already measured, with the same settings (window, Kalman filters, gaze
    reference, blink detector). Runs inline on the event loop thread; not thread-safe.

    Args:
        track_id: The face's id within its file (1, 2, ... in order of appearance).
        params: Settings, the landmark path's (the default smile threshold, AU12 above
            1.0, is FACS "trace" and seed B's threshold on OpenFace's scale too).
        rules: AU rules (default: :data:`DEFAULT_RULES`, OpenFace thresholds).
    """

    def __init__(
        self,
        track_id: int,
        params: FaceTrackParams | None = None,
        rules: tuple[AuRule, ...] = DEFAULT_RULES,
    ) -> None:
        """Start with empty state: no blinks, filters idle, no gaze reference."""
        self.track_id = track_id
        self.params = params or FaceTrackParams()
        self.rules = rules
        self.blinks = BlinkDetector(self.params.blink)
        self.pose_filter = AngleKalman(3, self.params.pose_kalman)
        self.gaze_filter = AngleKalman(2, self.params.gaze_kalman)
        self.window = FeatureWindow(
            self.params.window_secs,
            smile_threshold=self.params.smile_intensity,
            require_au06=self.params.require_au06,
            au06_threshold=self.params.au06_intensity,
        )
        self.blink_count = 0
        self._last_ts: float | None = None
        # The person's usual gaze, as the landmark path learns it: the median smoothed
        # gaze over the baseline's calibration time; or the camera.
        self._gaze_calibration = _Calibration(self.params.baseline, robust=True)
        self.gaze_reference: tuple[float, float] | None = (
            (0.0, 0.0) if self.params.look_away_reference == "camera" else None
        )

    def update(self, ts: float, frame: OpenFaceFrame | None) -> FaceReading:
        """Fold in one row of this face and read it.

        Args:
            ts: Row time, seconds; must not go backwards.
            frame: The face's measurement, or None when OpenFace did not track it in
                this row (``success = 0``, low confidence, or no row for this face).

        Returns:
            The face's reading at ``ts``.

        Raises:
            ValueError: If ``ts`` is earlier than the previous row's.
        """
        if self._last_ts is not None and ts < self._last_ts:
            raise ValueError("timestamps must not go backwards")
        self._last_ts = ts
        p = self.params
        visible = frame is not None
        intensities = None if frame is None else normalize_aus(frame.aus)

        au45 = None if intensities is None else intensities.get("AU45")
        openness = None if au45 is None else MAX_INTENSITY - min(max(au45, 0.0), MAX_INTENSITY)
        blink = self.blinks.update(openness, ts) is not None
        self.blink_count += blink

        pose_z = None if frame is None else frame.pose
        gaze_z = None if frame is None else frame.gaze
        pose = self.pose_filter.update(None if pose_z is None else np.array(pose_z), ts)
        gaze = self.gaze_filter.update(None if gaze_z is None else np.array(gaze_z), ts)

        if self.gaze_reference is None:
            sample = None
            if gaze is not None and gaze_z is not None:
                sample = {"yaw": float(gaze[0]), "pitch": float(gaze[1])}
            self._gaze_calibration.add(ts, sample, face_present=visible)
            ref = self._gaze_calibration.reference
            if ref is not None:
                self.gaze_reference = (ref["yaw"], ref["pitch"])
        away = None
        if gaze is not None and self.gaze_reference is not None:
            ref_yaw, ref_pitch = self.gaze_reference
            away = looking_away(
                float(gaze[0]) - ref_yaw, float(gaze[1]) - ref_pitch, p.look_away_deg
            )

        step = window_step(
            self.window,
            p,
            self.rules,
            ts,
            intensities or None,
            visible=visible,
            blink=blink,
            blinks_observable=self.blinks.observable and self.blinks.open_ear is not None,
            head_pitch_deg=None if pose is None or pose_z is None else float(pose[0]),
            looking_away=None if gaze_z is None else away,
        )
        labels, smile, smiling = step.labels, step.smile, step.smiling
        window, blink_rate = step.window, step.blink_rate

        return FaceReading(
            track_id=self.track_id,
            ts=ts,
            face_visible=visible,
            ear=None if frame is None else frame.ear,
            blink=blink,
            blink_count_total=self.blink_count,
            blink_rate_per_min=blink_rate,
            baseline_calibrated=True,
            au_proxies=None,
            au_relative=None,
            au_intensities=intensities or None,
            smile_intensity=smile,
            is_smiling=smiling,
            labels=labels,
            head_pitch=None if pose is None else float(pose[0]),
            head_yaw=None if pose is None else float(pose[1]),
            head_roll=None if pose is None else float(pose[2]),
            gaze_yaw=None if gaze is None else float(gaze[0]),
            gaze_pitch=None if gaze is None else float(gaze[1]),
            angles_predicted=(pose is not None and pose_z is None)
            or (gaze is not None and gaze_z is None),
            looking_away=away,
            emotions=None,
            emotions_relative=None,
            window=window,
        )
