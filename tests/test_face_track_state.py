"""One tracked face end to end on a scripted 20 s sequence, and a feed of several faces."""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np
import pytest

from analyzers.face.baseline import AU_INTENSITY_SCALE
from analyzers.face.geometry import landmarks as lm
from analyzers.face.geometry.features import FaceGeometry
from analyzers.face.geometry.pose import (
    MODEL_POINTS_MM,
    POSE_LANDMARKS,
    Gaze,
    HeadPose,
    camera_matrix,
    rotation_from_angles,
)
from analyzers.face.track_state import (
    DetectedFace,
    FaceFeed,
    FaceMeasurement,
    FaceReading,
    FaceTrackParams,
    FaceTrackState,
    measure_face,
)

pytestmark = pytest.mark.unit

FPS = 30.0
OPEN_EAR = 0.30
BLINKS = (4.0, 6.5, 9.0, 13.0, 18.7)
SMILE = (10.0, 12.0)
AWAY = (13.5, 15.5)
MISSING = (16.0, 17.5)
NEUTRAL_EMOTIONS = {"happy": 0.1, "neutral": 0.9}
SMILE_EMOTIONS = {"happy": 0.7, "neutral": 0.3}


def inside(t: float, span: tuple[float, float]) -> bool:
    return span[0] <= t < span[1]


def measurement(
    *,
    ear: float = OPEN_EAR,
    au12: float = -0.01,
    au06: float = -0.35,
    pitch: float = 5.0,
    yaw: float = 0.0,
    emotions: dict[str, float] | None = None,
) -> FaceMeasurement:
    geometry = FaceGeometry(
        iod=160.0,
        ear_right=ear,
        ear_left=ear,
        ear=ear,
        mar=0.05,
        au01_inner_brow_raise_proxy=0.21,
        au02_outer_brow_raise_proxy=0.25,
        au04_brow_lower_proxy=-0.55,
        au06_cheek_raise_proxy=au06,
        au12_lip_corner_pull_proxy=au12,
        au15_lip_corner_depress_proxy=-au12,
        au25_lips_part_proxy=0.02,
        au26_jaw_drop_proxy=0.74,
        au45_blink_proxy=max(0.0, 1.0 - ear / OPEN_EAR),
    )
    pose = HeadPose(pitch, yaw, 0.0, (0.0, 0.0, 650.0))
    return FaceMeasurement(geometry, pose, Gaze(yaw, pitch, True, 0.0, 0.0), emotions)


def scripted(secs: float = 20.0, fps: float = FPS) -> list[tuple[float, FaceMeasurement | None]]:
    """Blinks, a smile, a head turn and a missing face, with seeded noise."""
    rng = np.random.default_rng(0)
    frames: list[tuple[float, FaceMeasurement | None]] = []
    for i in range(int(secs * fps)):
        t = i / fps
        if inside(t, MISSING):
            frames.append((t, None))
            continue
        ear = OPEN_EAR + float(rng.normal(0.0, 0.01))
        for start in BLINKS:
            phase = (t - start) / 0.3
            if 0.0 <= phase <= 1.0:
                ear -= 0.22 * math.sin(math.pi * phase)
        smiling = inside(t, SMILE)
        frames.append(
            (
                t,
                measurement(
                    ear=ear,
                    au12=-0.01 + (0.05 if smiling else 0.0) + float(rng.normal(0.0, 0.002)),
                    au06=-0.35 + (0.03 if smiling else 0.0) + float(rng.normal(0.0, 0.001)),
                    pitch=5.0 + float(rng.normal(0.0, 2.0)),
                    yaw=(40.0 if inside(t, AWAY) else 0.0) + float(rng.normal(0.0, 2.0)),
                    emotions=SMILE_EMOTIONS if smiling else NEUTRAL_EMOTIONS,
                ),
            )
        )
    return frames


def run(frames: Sequence[tuple[float, FaceMeasurement | None]]) -> list[FaceReading]:
    state = FaceTrackState(7)
    return [state.update(t, m) for t, m in frames]


def at(readings: list[FaceReading], t: float) -> FaceReading:
    return min(readings, key=lambda r: abs(r.ts - t))


@pytest.fixture(scope="module")
def readings() -> list[FaceReading]:
    return run(scripted())


def test_before_calibration_nothing_is_invented(readings: list[FaceReading]) -> None:
    early = [r for r in readings if r.ts < 2.9]
    assert all(r.track_id == 7 for r in readings)
    for r in early:
        assert not r.baseline_calibrated
        assert r.au_proxies is not None  # raw measurements are real numbers
        assert r.au_relative is None
        assert r.au_intensities is None
        assert r.smile_intensity is None and r.is_smiling is None and r.labels is None
        assert r.emotions_relative is None
        assert r.window.smile_freq is None and r.window.emotion_counts is None
        assert r.blink_rate_per_min is None
        # Away from what? The usual gaze is calibrated with the neutral face.
        assert r.head_pitch is not None and r.looking_away is None
    assert at(readings, 3.5).baseline_calibrated


def test_blink_events_count_and_rate(readings: list[FaceReading]) -> None:
    assert readings[-1].blink_count_total == len(BLINKS)
    blink_ts = [r.ts for r in readings if r.blink]
    assert len(blink_ts) == len(BLINKS)
    for ts, start in zip(blink_ts, BLINKS, strict=True):
        assert start < ts < start + 0.35
    # No rate until a whole window was observed at a blink-observable rate.
    assert at(readings, 4.5).blink_rate_per_min is None
    # Last window (15, 20]: the face was missing for 1.5 s, one blink in 3.5 s observed.
    last = readings[-1]
    assert last.window.observed_secs == pytest.approx(3.5, abs=0.04)
    assert last.blink_rate_per_min == pytest.approx(60.0 / 3.5, rel=0.02)
    # Window (7, 12]: the blink at 9.0 only.
    assert at(readings, 12.0).blink_rate_per_min == pytest.approx(60.0 / 5.0, rel=0.02)


def test_smile_intensity_and_smile_freq(readings: list[FaceReading]) -> None:
    mid = at(readings, 11.0)
    assert mid.is_smiling is True
    assert mid.smile_intensity == pytest.approx(0.05 / AU_INTENSITY_SCALE["AU12"], rel=0.1)
    assert mid.labels == ("joy",)
    assert mid.emotions_relative == pytest.approx({"happy": 0.6, "neutral": -0.6})
    assert at(readings, 9.5).is_smiling is False
    assert at(readings, 9.5).labels == ("neutral",)
    # Window ending just before the smile ends: 2 s of smile in 5 s.
    end = at(readings, 11.99)
    assert end.window.smile_freq == pytest.approx(2.0 / 5.0, abs=0.01)
    counts = end.window.emotion_counts
    assert counts is not None
    assert counts["joy"] == pytest.approx(60, abs=1)
    assert counts["joy"] + counts["neutral"] == end.window.face_frames


def test_head_turn_looks_away(readings: list[FaceReading]) -> None:
    assert at(readings, 13.0).looking_away is False
    turned = at(readings, 15.0)
    assert turned.looking_away is True
    assert turned.head_yaw == pytest.approx(40.0, abs=4.0)
    assert turned.gaze_yaw == pytest.approx(40.0, abs=4.0)
    assert at(readings, 15.9).looking_away is False
    # Window (10.5, 15.5]: 2 s of 5 away (the filter's lag shifts the span a frame or two).
    percent = at(readings, 15.5).window.percent_away
    assert percent == pytest.approx(40.0, abs=3.0)
    assert at(readings, 12.0).window.avg_head_tilt == pytest.approx(5.0, abs=0.5)


def test_missing_face_is_predicted_then_unknown_and_excluded(
    readings: list[FaceReading],
) -> None:
    gone = at(readings, 16.5)
    assert not gone.face_visible
    assert gone.ear is None and gone.au_proxies is None and gone.au_intensities is None
    assert gone.angles_predicted
    assert gone.head_yaw is not None and gone.looking_away is not None
    # Past the filter's 1 s coast the angles are unknown.
    lost = at(readings, 17.2)
    assert lost.head_yaw is None and lost.gaze_yaw is None and lost.looking_away is None
    assert not lost.angles_predicted
    back = at(readings, 17.6)
    assert back.face_visible and not back.angles_predicted and back.head_yaw is not None
    # Window ending at 17.4: the 43 missing frames (16.0-17.4) are excluded, not zeros.
    end = at(readings, 17.4)
    window = end.window
    assert window.frames - window.face_frames == 43
    in_window = [r for r in readings if window.window_start < r.ts <= end.ts and r.face_visible]
    assert len(in_window) == window.face_frames
    expected = 100.0 * sum(bool(r.looking_away) for r in in_window) / len(in_window)
    assert window.percent_away == pytest.approx(expected)


def test_low_frame_rate_gives_no_blink_rate() -> None:
    readings = run(scripted(fps=2.0))
    assert all(r.blink_rate_per_min is None for r in readings)
    assert readings[-1].window.smile_freq is not None  # the rest still works


def test_update_rejects_time_going_backwards() -> None:
    state = FaceTrackState(1)
    state.update(1.0, None)
    with pytest.raises(ValueError, match="backwards"):
        state.update(0.5, measurement())


def test_params_are_configurable() -> None:
    params = FaceTrackParams.model_validate(
        {"baseline": {"calibration_secs": 0.5}, "look_away_deg": 50.0, "window_secs": 2.0}
    )
    state = FaceTrackState(1, params)
    readings = [state.update(i / FPS, measurement(yaw=40.0)) for i in range(30)]
    assert readings[-1].baseline_calibrated
    assert readings[-1].looking_away is False
    assert readings[-1].window.window_start == pytest.approx(29 / FPS - 2.0)


def box(cx: float) -> tuple[float, float, float, float]:
    return (cx - 30.0, 70.0, 60.0, 60.0)


def test_feed_reads_each_face_under_its_own_id() -> None:
    feed = FaceFeed()
    frames = []
    for i in range(150):  # 15 s at 10 fps
        t = i / 10.0
        faces = [DetectedFace(box(100.0), measurement())]
        if t < 10.0:  # face 2 smiles from 4 s (after its 3 s calibration), leaves at 10 s
            faces.append(DetectedFace(box(300.0), measurement(au12=0.2 if t > 4.0 else -0.01)))
        frames.append(feed.update(t, faces))
    assert frames[0].readings == ()  # both tentative
    assert [r.track_id for r in frames[1].readings] == [1, 2]
    one, two = frames[99].readings
    assert one.face_visible and two.face_visible
    assert one.is_smiling is False and two.is_smiling is True
    # Face 2 is missing for 2 s (read as not visible), then ended and dropped.
    assert [(r.track_id, r.face_visible) for r in frames[115].readings] == [(1, True), (2, False)]
    ended_at = [i for i, f in enumerate(frames) if f.ended]
    assert len(ended_at) == 1 and frames[ended_at[0]].ended == (2,)
    assert frames[ended_at[0]].readings[0].ts == pytest.approx(9.9 + 2.0, abs=0.15)
    assert [r.track_id for r in frames[-1].readings] == [1]
    assert set(feed.states) == {1}


def project(pitch: float, yaw: float, roll: float) -> np.ndarray:
    """Pose landmarks of the generic head, projected; the rest of the mesh at zero."""
    size = (640, 480)
    rvec, _ = cv2.Rodrigues(rotation_from_angles(pitch, yaw, roll))
    tvec = np.array([0.0, 0.0, 650.0])
    image, _ = cv2.projectPoints(MODEL_POINTS_MM, rvec, tvec, camera_matrix(size), np.zeros(4))
    points = np.zeros((lm.NUM_LANDMARKS_WITH_IRIS, 3))
    points[list(POSE_LANDMARKS), :2] = image.reshape(-1, 2)
    return points


def test_measure_face_from_landmarks() -> None:
    m = measure_face(project(10.0, -20.0, 5.0), (640, 480), {"happy": 1.0})
    assert m.pose is not None and m.gaze is not None
    assert (m.pose.pitch, m.pose.yaw, m.pose.roll) == pytest.approx((10.0, -20.0, 5.0), abs=1.0)
    assert m.geometry.iod > 0
    assert m.emotions == {"happy": 1.0}
    reading = FaceTrackState(1).update(0.0, m)
    assert reading.head_yaw == pytest.approx(m.pose.yaw)


def test_looking_away_is_relative_to_the_persons_usual_gaze() -> None:
    # Someone whose screen sits 20 degrees below the camera looks there all along:
    # not "away". Against the camera they would always read as looking away.
    screen = measurement(pitch=20.0)
    up = measurement(pitch=-5.0)  # looks up at the camera: 25 degrees off usual
    frames = [(i / 10, screen) for i in range(60)] + [(6.0 + i / 10, up) for i in range(20)]
    readings = run(frames)
    after = [r for r in readings if 3.5 < r.ts < 6.0]
    assert after and all(r.looking_away is False for r in after)
    assert readings[-1].looking_away is True
    camera = FaceTrackState(1, FaceTrackParams(look_away_reference="camera"))
    assert camera.update(0.0, screen).looking_away is True
