"""Stateful reading of one tracked face, and of all the faces in one feed.

The inference worker is stateless: per frame and per face it turns landmarks into a
:class:`FaceMeasurement` (:func:`measure_face`: eye and mouth ratios and AU proxies
from :mod:`~analyzers.face.geometry.features`, head pose and gaze from
:mod:`~analyzers.face.geometry.pose`, plus the emotion model's probabilities if it ran).
Everything that needs memory runs in the main process, per tracked face, in
:class:`FaceTrackState`:

- **Blinks**: a :class:`~analyzers.face.geometry.blinks.BlinkDetector` on the EAR;
  blinks are events (closure then reopening). ``blink_rate_per_min`` is the window's
  blink events per observed second x 60, and None unless every face frame in the
  window was taken at a rate where blinks are observable (the detector's rule: about
  10 fps and up, with its open-eye reference established) and the face was observed
  for at least ``min_blink_observed_secs`` (default 2.5 s) of the window. In practice
  it appears one window length after the face does.
- **Head pose and gaze**: two constant-velocity Kalman filters
  (:class:`~analyzers.filters.kalman.AngleKalman`), pitch/yaw/roll and gaze yaw/pitch.
  A frame without a face (or without a pose) only predicts; past the filter's
  ``max_coast_secs`` (default 1 s) the angles are unknown (None) until the face comes
  back. ``looking_away`` is the smoothed gaze more than ``look_away_deg`` (default 15)
  away from a **reference direction** (:func:`~analyzers.face.geometry.pose.looking_away`
  on the difference). With ``look_away_reference = "baseline"`` (default) the reference
  is the person's own median gaze over the neutral-baseline calibration: in a meeting
  people look at their screen, usually below and beside the camera, and looking away
  from *that* is what matters; until calibration completes ``looking_away`` is None.
  With ``"camera"`` the reference is the line of sight to the camera. While the face is
  missing it comes from the predicted gaze, which is what a head turning out of the
  detector's range looks like.
- **Neutral baseline**: a :class:`~analyzers.face.baseline.NeutralBaseline` calibrates
  the person's resting AU proxies and emotion probabilities over their first 3 s
  (configurable). Until then AU intensities, smiles, rule labels and relative emotions
  are None; afterwards AU intensities are 0-5 relative to the neutral face, rule labels
  come from :data:`~analyzers.face.geometry.au_rules.PROXY_RULES` on those intensities,
  and emotions are also reported as ``p - p_neutral``.
- **Smile**: the AU12 intensity (lip corner pull relative to the neutral face) above
  ``smile_intensity`` (default 1.0, FACS "trace", a corner lift of about 2 mm),
  optionally gated on AU06 (Duchenne) with ``require_au06``.
- **Window**: a :class:`~analyzers.face.geometry.window.FeatureWindow` (default 5 s)
  over the face's frames: blink_freq, smile_freq, avg_head_tilt (smoothed pitch),
  percent_away, emotion_counts (AU-rule labels). Frames without a face are excluded,
  never counted as zeros; frames before calibration are left out of smile_freq and
  emotion_counts.

:class:`FaceFeed` joins a :class:`~analyzers.face.tracking.FaceTracker` to one
:class:`FaceTrackState` per track for one participant feed.

All of it is pure Python and numpy, deterministic, run inline on the event loop thread:
a few hundred microseconds per face per frame.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from analyzers.face.baseline import BaselineParams, NeutralBaseline, au_intensities
from analyzers.face.geometry.au_rules import (
    PROXY_RULE_THRESHOLD,
    PROXY_RULES,
    AuRule,
    apply_au_rules,
    normalize_aus,
)
from analyzers.face.geometry.blinks import BlinkDetector, BlinkParams
from analyzers.face.geometry.features import FaceGeometry, face_geometry
from analyzers.face.geometry.pose import (
    LOOK_AWAY_DEG,
    Gaze,
    HeadPose,
    estimate_gaze,
    head_pose,
    looking_away,
)
from analyzers.face.geometry.window import (
    WINDOW_SECS,
    FeatureWindow,
    FrameFeatures,
    WindowFeatures,
)
from analyzers.face.tracking import FaceTracker, TrackerParams
from analyzers.filters.kalman import AngleKalman, KalmanParams

#: AU12 intensity (0-5, relative to the neutral face) above which a frame is a smile.
SMILE_INTENSITY = PROXY_RULE_THRESHOLD
#: AU06 intensity for the optional Duchenne gate.
SMILE_AU06_INTENSITY = PROXY_RULE_THRESHOLD
#: Observed face time in the window needed before a blink rate is reported, seconds.
MIN_BLINK_OBSERVED_SECS = 2.5
#: Gaze filter process noise, deg^2/s^3: eyes move faster than heads.
GAZE_KALMAN_Q = 1000.0
#: Gaze filter measurement variance, deg^2: head pose jitter (~3 deg) plus the iris
#: angle's (~2-3 deg for half a pixel of iris jitter in a 30 px eye).
GAZE_KALMAN_R = 16.0


def _gaze_kalman_params() -> KalmanParams:
    return KalmanParams(q=GAZE_KALMAN_Q, r=GAZE_KALMAN_R)


def preload() -> None:
    """Import what per-face state imports on its first face: scipy's solver and filterpy.

    About 0.7 s of imports that :mod:`analyzers.face.tracking` and
    :mod:`analyzers.filters.kalman` defer. The server calls this on a worker thread once it
    answers, so that neither its start-up nor a participant's first frame waits for them.
    """
    import filterpy.kalman  # noqa: F401
    import scipy.optimize  # noqa: F401


class FaceTrackParams(BaseModel):
    """Settings for :class:`FaceTrackState`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    window_secs: float = Field(WINDOW_SECS, gt=0, description="Sliding window, seconds.")
    blink: BlinkParams = Field(default_factory=BlinkParams)
    pose_kalman: KalmanParams = Field(
        default_factory=KalmanParams, description="Head pose filter (pitch, yaw, roll)."
    )
    gaze_kalman: KalmanParams = Field(
        default_factory=_gaze_kalman_params, description="Gaze filter (yaw, pitch)."
    )
    baseline: BaselineParams = Field(default_factory=BaselineParams)
    look_away_deg: float = Field(
        LOOK_AWAY_DEG, gt=0, description="Gaze angle off the reference that is 'away'."
    )
    look_away_reference: Literal["baseline", "camera"] = Field(
        "baseline",
        description="Reference gaze for looking away: the person's calibrated usual gaze "
        "(their screen), or the camera.",
    )
    smile_intensity: float = Field(
        SMILE_INTENSITY, ge=0, description="AU12 intensity (0-5) above which a frame smiles."
    )
    require_au06: bool = Field(False, description="Also require AU06 (a Duchenne smile).")
    au06_intensity: float = Field(
        SMILE_AU06_INTENSITY, ge=0, description="AU06 intensity for the Duchenne gate."
    )
    min_blink_observed_secs: float = Field(
        MIN_BLINK_OBSERVED_SECS,
        ge=0,
        description="Observed face seconds in the window before a blink rate is reported.",
    )


@dataclass(frozen=True, slots=True)
class FaceMeasurement:
    """One face in one frame, as the stateless inference worker measures it.

    Attributes:
        geometry: EAR, MAR and the AU proxies.
        pose: Head pose, or None when PnP failed.
        gaze: Gaze estimate, or None without a pose.
        emotions: Emotion model probabilities by class name, or None when the model
            did not run on this face this frame.
    """

    geometry: FaceGeometry
    pose: HeadPose | None
    gaze: Gaze | None
    emotions: Mapping[str, float] | None = None


def measure_face(
    points: np.ndarray,
    image_size: tuple[int, int],
    emotions: Mapping[str, float] | None = None,
) -> FaceMeasurement:
    """Per-frame measurement of one face from its landmarks; for the inference worker.

    Args:
        points: ``(468|478, 3)`` MediaPipe landmarks in pixels.
        image_size: ``(width, height)`` of the image the landmarks are in.
        emotions: The emotion model's probabilities for this face, if it ran.

    Returns:
        The measurement.

    Raises:
        ValueError: If the landmarks are malformed or degenerate
            (:func:`~analyzers.face.geometry.features.face_geometry`).
    """
    geometry = face_geometry(points)
    pose = head_pose(points, image_size)
    gaze = None if pose is None else estimate_gaze(points, pose)
    return FaceMeasurement(geometry, pose, gaze, emotions)


@dataclass(frozen=True, slots=True)
class FaceReading:
    """One tracked face at one frame; None wherever a value cannot be known.

    AU dicts are keyed by canonical names (``"AU12"``).

    Attributes:
        track_id: The face's id within its feed (1, 2, ...).
        ts: Frame time, seconds.
        face_visible: The face was detected and measured this frame.
        ear: Mean eye aspect ratio this frame, or None.
        blink: A blink ended on this frame.
        blink_count_total: Blinks since the track started.
        blink_rate_per_min: Blinks per minute over the window, or None (see the module
            docstring for when).
        baseline_calibrated: The neutral AU baseline is known.
        au_proxies: Raw AU proxies this frame, or None without a face.
        au_relative: ``raw - neutral`` per AU, or None (no face or not calibrated).
        au_intensities: 0-5 intensities relative to the neutral face, or None.
        smile_intensity: AU12 intensity, or None.
        is_smiling: Smile flag, or None.
        labels: AU-rule labels this frame (``("neutral",)`` when none fired), or None.
        head_pitch: Smoothed pitch, degrees (+ down), or None.
        head_yaw: Smoothed yaw, degrees (+ image right), or None.
        head_roll: Smoothed roll, degrees (+ clockwise), or None.
        gaze_yaw: Smoothed gaze yaw, degrees, or None.
        gaze_pitch: Smoothed gaze pitch, degrees, or None.
        angles_predicted: The angles are a prediction only (no measurement this frame).
        looking_away: Smoothed gaze beyond ``look_away_deg``, or None.
        emotions: The emotion model's probabilities this frame, or None.
        emotions_relative: ``p - p_neutral`` per class, or None (no probabilities this
            frame, or the emotion baseline not calibrated yet).
        window: Features over the sliding window ending at ``ts``.
    """

    track_id: int
    ts: float
    face_visible: bool
    ear: float | None
    blink: bool
    blink_count_total: int
    blink_rate_per_min: float | None
    baseline_calibrated: bool
    au_proxies: Mapping[str, float] | None
    au_relative: Mapping[str, float] | None
    au_intensities: Mapping[str, float] | None
    smile_intensity: float | None
    is_smiling: bool | None
    labels: tuple[str, ...] | None
    head_pitch: float | None
    head_yaw: float | None
    head_roll: float | None
    gaze_yaw: float | None
    gaze_pitch: float | None
    angles_predicted: bool
    looking_away: bool | None
    emotions: Mapping[str, float] | None
    emotions_relative: Mapping[str, float] | None
    window: WindowFeatures


@dataclass(frozen=True, slots=True)
class WindowStep:
    """One frame's expression reading and the window after it (see :func:`window_step`)."""

    labels: tuple[str, ...] | None
    smile: float | None
    smiling: bool | None
    window: WindowFeatures
    blink_rate: float | None


def window_step(
    window: FeatureWindow,
    params: FaceTrackParams,
    rules: tuple[AuRule, ...],
    ts: float,
    intensities: Mapping[str, float] | None,
    *,
    visible: bool,
    blink: bool,
    blinks_observable: bool,
    head_pitch_deg: float | None,
    looking_away: bool | None,
) -> WindowStep:
    """AU-rule labels and the smile from one frame's AU intensities, folded into the window.

    Shared by every source of per-face AU intensities (the landmark proxies here, an
    OpenFace import): the smile is AU12 above ``smile_intensity`` (with AU6 when
    ``require_au06``); the blink rate is reported once ``min_blink_observed_secs`` of
    blink-observable face time are in the window.
    """
    labels: tuple[str, ...] | None = None
    smile: float | None = None
    smiling: bool | None = None
    if intensities is not None:
        labels = apply_au_rules(intensities, rules).labels
        smile = intensities.get("AU12")
        if smile is not None:
            smiling = smile > params.smile_intensity and (
                not params.require_au06 or intensities.get("AU06", 0.0) > params.au06_intensity
            )
    window.add(
        FrameFeatures(
            ts=ts,
            face_present=visible,
            blink=blink,
            blinks_observable=blinks_observable,
            au12=smile,
            au06=None if intensities is None else intensities.get("AU06"),
            head_pitch_deg=head_pitch_deg,
            looking_away=looking_away,
            labels=labels or (),
        )
    )
    features = window.features(ts)
    blink_rate = None
    if features.blink_freq is not None and features.observed_secs >= params.min_blink_observed_secs:
        blink_rate = 60.0 * features.blink_freq
    return WindowStep(labels, smile, smiling, features, blink_rate)


class FaceTrackState:
    """Everything stateful about one tracked face; see the module docstring.

    Runs inline on the main process's event loop thread; not thread-safe.

    Args:
        track_id: The face's id within its feed.
        params: Settings.
        rules: AU rules applied to the baseline-relative intensities.
    """

    def __init__(
        self,
        track_id: int,
        params: FaceTrackParams | None = None,
        rules: tuple[AuRule, ...] = PROXY_RULES,
    ) -> None:
        """Start with empty state: no blinks, filters idle, baseline uncalibrated."""
        self.track_id = track_id
        self.params = params or FaceTrackParams()
        self.rules = rules
        self.blinks = BlinkDetector(self.params.blink)
        self.pose_filter = AngleKalman(3, self.params.pose_kalman)
        self.gaze_filter = AngleKalman(2, self.params.gaze_kalman)
        self.baseline = NeutralBaseline(self.params.baseline)
        self.window = FeatureWindow(
            self.params.window_secs,
            smile_threshold=self.params.smile_intensity,
            require_au06=self.params.require_au06,
            au06_threshold=self.params.au06_intensity,
        )
        self.blink_count = 0
        self._last_ts: float | None = None
        # Measured (smoothed) gaze during calibration, then its median: the usual gaze.
        self._gaze_samples: list[tuple[float, float]] = []
        self.gaze_reference: tuple[float, float] | None = (
            (0.0, 0.0) if self.params.look_away_reference == "camera" else None
        )

    def update(self, ts: float, measurement: FaceMeasurement | None) -> FaceReading:
        """Fold in one frame and read the face.

        Args:
            ts: Frame time, seconds; must not go backwards.
            measurement: This face's measurement, or None when the face is missing
                this frame.

        Returns:
            The face's reading at ``ts``.

        Raises:
            ValueError: If ``ts`` is earlier than the previous frame's.
        """
        if self._last_ts is not None and ts < self._last_ts:
            raise ValueError("timestamps must not go backwards")
        self._last_ts = ts
        p = self.params
        m = measurement
        visible = m is not None

        ear = None if m is None else m.geometry.ear
        blink = self.blinks.update(ear, ts) is not None
        self.blink_count += blink

        pose_z = None if m is None or m.pose is None else (m.pose.pitch, m.pose.yaw, m.pose.roll)
        gaze_z = None if m is None or m.gaze is None else (m.gaze.yaw, m.gaze.pitch)
        pose = self.pose_filter.update(None if pose_z is None else np.array(pose_z), ts)
        gaze = self.gaze_filter.update(None if gaze_z is None else np.array(gaze_z), ts)

        proxies = None if m is None else normalize_aus(m.geometry.au_proxies())
        emotions = None if m is None else m.emotions
        was_calibrated = self.baseline.is_calibrated
        self.baseline.update(ts, proxies, emotions)
        if self.gaze_reference is None:
            if gaze is not None and gaze_z is not None:
                self._gaze_samples.append((float(gaze[0]), float(gaze[1])))
            if self.baseline.is_calibrated and not was_calibrated and self._gaze_samples:
                yaw, pitch = np.median(np.array(self._gaze_samples), axis=0)
                self.gaze_reference = (float(yaw), float(pitch))
                self._gaze_samples.clear()
        away = None
        if gaze is not None and self.gaze_reference is not None:
            ref_yaw, ref_pitch = self.gaze_reference
            away = looking_away(
                float(gaze[0]) - ref_yaw, float(gaze[1]) - ref_pitch, p.look_away_deg
            )
        relative = None if proxies is None else self.baseline.relative(proxies)
        intensities = None if relative is None else au_intensities(relative, self.baseline.scales)
        emotions_relative = None if emotions is None else self.baseline.relative_emotions(emotions)
        step = window_step(
            self.window,
            p,
            self.rules,
            ts,
            intensities,
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
            ear=ear,
            blink=blink,
            blink_count_total=self.blink_count,
            blink_rate_per_min=blink_rate,
            baseline_calibrated=self.baseline.is_calibrated,
            au_proxies=proxies,
            au_relative=relative,
            au_intensities=intensities,
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
            emotions=None if emotions is None else dict(emotions),
            emotions_relative=emotions_relative,
            window=window,
        )


@dataclass(frozen=True, slots=True)
class DetectedFace:
    """One face box in a frame and its measurement.

    Attributes:
        box: ``(x, y, w, h)`` in pixels.
        measurement: The face's measurement, or None when the landmarks failed; the
            track then reads as not visible this frame.
        detected: Whether the detector found it this frame (False: followed from the
            previous frame's landmarks); a new face needs detector evidence.
    """

    box: tuple[float, float, float, float]
    measurement: FaceMeasurement | None
    detected: bool = True


@dataclass(frozen=True, slots=True)
class FeedReadings:
    """One frame's readings for a feed.

    Attributes:
        readings: One per confirmed live track (seen or missing), by ascending id.
        ended: Ids of the tracks that ended at this frame.
    """

    readings: tuple[FaceReading, ...]
    ended: tuple[int, ...]


class FaceFeed:
    """All the faces of one participant feed: tracker plus one state per track.

    Runs inline on the main process's event loop thread; not thread-safe.

    Args:
        tracker_params: Track matching and lifecycle settings.
        params: Per-face settings.
        rules: AU rules for every face.
    """

    def __init__(
        self,
        tracker_params: TrackerParams | None = None,
        params: FaceTrackParams | None = None,
        rules: tuple[AuRule, ...] = PROXY_RULES,
    ) -> None:
        """Start with no faces."""
        self.tracker = FaceTracker(tracker_params)
        self.params = params or FaceTrackParams()
        self.rules = rules
        self.states: dict[int, FaceTrackState] = {}

    def update(self, ts: float, faces: Sequence[DetectedFace]) -> FeedReadings:
        """Track one frame's faces and read every live track.

        Args:
            ts: Frame time, seconds; must not go backwards.
            faces: The frame's faces; empty when none was found.

        Returns:
            The readings of the confirmed tracks and the ids that ended. Faces on
            tentative tracks (the first frames of a new face) are not read.
        """
        update = self.tracker.update(
            ts, [face.box for face in faces], [face.detected for face in faces]
        )
        readings: list[FaceReading] = []
        for face, track_id in zip(faces, update.ids, strict=True):
            if track_id is None:
                continue
            state = self.states.get(track_id)
            if state is None:
                state = self.states[track_id] = FaceTrackState(track_id, self.params, self.rules)
            readings.append(state.update(ts, face.measurement))
        for track_id in update.missing:
            readings.append(self.states[track_id].update(ts, None))
        for track_id in update.ended:
            self.states.pop(track_id, None)
        readings.sort(key=lambda r: r.track_id)
        return FeedReadings(tuple(readings), update.ended)
