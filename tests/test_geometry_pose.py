"""Head pose recovered from projected model points, gaze from iris offsets."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from analyzers.face.geometry import landmarks as lm
from analyzers.face.geometry.pose import (
    MODEL_POINTS_MM,
    POSE_LANDMARKS,
    HeadPose,
    angles_from_rotation,
    camera_matrix,
    estimate_gaze,
    gaze_angle_deg,
    head_pose,
    iris_offsets,
    line_of_sight_rotation,
    looking_away,
    rotation_from_angles,
)

pytestmark = pytest.mark.unit

SIZE = (640, 480)


def project(
    pitch: float,
    yaw: float,
    roll: float,
    n: int = lm.NUM_FACE_LANDMARKS,
    tvec: tuple[float, float, float] = (0.0, 0.0, 650.0),
) -> np.ndarray:
    """Model points seen by the camera, rotated relative to the line of sight."""
    t = np.array(tvec)
    rvec, _ = cv2.Rodrigues(line_of_sight_rotation(t) @ rotation_from_angles(pitch, yaw, roll))
    image, _ = cv2.projectPoints(MODEL_POINTS_MM, rvec, t, camera_matrix(SIZE), np.zeros(4))
    points = np.zeros((n, 3))
    points[list(POSE_LANDMARKS), :2] = image.reshape(-1, 2)
    return points


@pytest.mark.parametrize(
    ("pitch", "yaw", "roll"),
    [(0, 0, 0), (10, -20, 5), (-15, 30, -10), (25, 5, 20), (-5, -35, 0), (20, 25, -15)],
)
def test_head_pose_recovers_known_rotation(pitch: float, yaw: float, roll: float) -> None:
    for tvec in ((0.0, 0.0, 650.0), (-120.0, -150.0, 700.0), (90.0, 60.0, 600.0)):
        pose = head_pose(project(pitch, yaw, roll, tvec=tvec), SIZE)
        assert pose is not None
        assert pose.pitch == pytest.approx(pitch, abs=1.0)
        assert pose.yaw == pytest.approx(yaw, abs=1.0)
        assert pose.roll == pytest.approx(roll, abs=1.0)
        assert pose.translation_mm[2] == pytest.approx(tvec[2], rel=0.01)


def test_a_face_facing_the_camera_off_centre_is_not_turned() -> None:
    # Top left of the frame, facing the camera: turned by the line of sight on the
    # optical axis (about 12 and 9 degrees), but 0/0 relative to the camera.
    tvec = np.array([-120.0, -150.0, 700.0])
    rvec, _ = cv2.Rodrigues(line_of_sight_rotation(tvec))
    image, _ = cv2.projectPoints(MODEL_POINTS_MM, rvec, tvec, camera_matrix(SIZE), np.zeros(4))
    points = np.zeros((lm.NUM_FACE_LANDMARKS, 3))
    points[list(POSE_LANDMARKS), :2] = image.reshape(-1, 2)
    pose = head_pose(points, SIZE)
    assert pose is not None
    assert abs(pose.pitch) < 0.5 and abs(pose.yaw) < 0.5 and abs(pose.roll) < 0.5
    pitch, yaw, _ = angles_from_rotation(line_of_sight_rotation(tvec))
    assert pitch > 10 and yaw > 8  # looking down and to the image's right, at the camera


def test_sign_conventions() -> None:
    nose_forward = np.array([0.0, 0.0, -1.0])
    # pitch + : the face turns down (+y in the image); yaw + : towards the image's right.
    assert (rotation_from_angles(20, 0, 0) @ nose_forward)[1] > 0
    assert (rotation_from_angles(0, 20, 0) @ nose_forward)[0] > 0
    # roll + : the top of the head moves to the image's right.
    assert (rotation_from_angles(0, 0, 20) @ np.array([0.0, -1.0, 0.0]))[0] > 0
    # Looking down: the nose tip (in front of the eyes) drops further below them.
    down = project(20, 0, 0)
    level = project(0, 0, 0)
    eye = lm.RIGHT_EYE_OUTER
    assert down[lm.NOSE_TIP, 1] - down[eye, 1] > level[lm.NOSE_TIP, 1] - level[eye, 1]


def test_angles_round_trip() -> None:
    rng = np.random.default_rng(0)
    for pitch, yaw, roll in rng.uniform(-60, 60, size=(20, 3)):
        back = angles_from_rotation(rotation_from_angles(pitch, yaw, roll))
        np.testing.assert_allclose(back, (pitch, yaw, roll), atol=1e-9)


def with_iris(points: np.ndarray, dx: float, dy: float) -> np.ndarray:
    out = np.zeros((lm.NUM_LANDMARKS_WITH_IRIS, 3))
    out[: points.shape[0]] = points
    for a, b, centre in (
        (lm.RIGHT_EYE_OUTER, lm.RIGHT_EYE_INNER, lm.RIGHT_IRIS_CENTER),
        (lm.LEFT_EYE_INNER, lm.LEFT_EYE_OUTER, lm.LEFT_IRIS_CENTER),
    ):
        out[a] = (0.0, 100.0, 0.0) if a == lm.RIGHT_EYE_OUTER else (140.0, 100.0, 0.0)
        out[b] = (out[a, 0] + 60.0, 100.0, 0.0)
        out[centre] = (out[a, 0] + 30.0 + dx, 100.0 + dy, 0.0)
    return out


def test_gaze_without_iris_is_head_pose() -> None:
    pose = HeadPose(pitch=5.0, yaw=-12.0, roll=0.0, translation_mm=(0.0, 0.0, 600.0))
    gaze = estimate_gaze(np.zeros((468, 3)), pose)
    assert (gaze.yaw, gaze.pitch, gaze.from_iris) == (-12.0, 5.0, False)
    assert gaze.iris_horizontal is None


def test_gaze_with_iris_offsets() -> None:
    pose = HeadPose(pitch=0.0, yaw=10.0, roll=0.0, translation_mm=(0.0, 0.0, 600.0))
    centred = estimate_gaze(with_iris(np.zeros((468, 3)), 0.0, 0.0), pose)
    assert centred.from_iris
    assert centred.yaw == pytest.approx(10.0)
    assert centred.pitch == pytest.approx(0.0)
    # Iris 6 px right in a 60 px eye = 0.1 eye widths = 3 mm on a 12 mm eyeball.
    right = estimate_gaze(with_iris(np.zeros((468, 3)), 6.0, 0.0), pose)
    assert right.iris_horizontal == pytest.approx(0.1)
    assert right.yaw == pytest.approx(10.0 + np.degrees(np.arcsin(0.25)))
    down = estimate_gaze(with_iris(np.zeros((468, 3)), 0.0, 6.0), pose)
    assert down.pitch > 0
    assert iris_offsets(np.zeros((468, 3))) is None


def test_looking_away_threshold() -> None:
    assert not looking_away(0.0, 0.0)
    assert not looking_away(10.0, 10.0)  # about 14.1 degrees off axis
    assert looking_away(12.0, 12.0)
    assert looking_away(-20.0, 0.0)
    assert not looking_away(-20.0, 0.0, threshold_deg=25.0)
    assert gaze_angle_deg(0.0, -30.0) == pytest.approx(30.0)
