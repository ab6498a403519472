"""Head pose on real landmarks: the astronaut's face turned in the image plane by known angles.

``test_geometry_pose.py`` projects the pose model's own points and recovers them, so a
wrong landmark index there goes unnoticed (the projection and the recovery use the same
indices). Here the 478 points come from the real landmark model on a real photo: a
wrong index in :data:`~analyzers.face.geometry.pose.POSE_LANDMARKS` (or a swapped eye)
reads a different roll, pitch or yaw. Turning the photo by an angle changes only the
roll, by that angle; pitch and yaw stay where they were.

Measured today (640 x 480 canvas): upright pitch 7.7, yaw -0.7, roll 2.3 (her head is
slightly tilted; the generic face model reads a few degrees of pitch for most people);
turned by -30, -15, +15, +30 degrees (counter-clockwise positive, as OpenCV) the roll
reads 33.4, 17.6, -12.7, -28.0.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from analyzers.face.geometry.pose import HeadPose, head_pose
from analyzers.face.mediapipe.landmarker import FaceLandmarker
from tests.media import face_frame_rgb

pytestmark = pytest.mark.model

SIZE = (640, 480)


@pytest.fixture(scope="module")
def landmarker() -> FaceLandmarker:
    return FaceLandmarker("cpu")


def pose_of(landmarker: FaceLandmarker, image: np.ndarray) -> HeadPose:
    (face,) = landmarker.process([image])[0]
    pose = head_pose(face.landmarks, SIZE)
    assert pose is not None
    return pose


def turned(image: np.ndarray, degrees: float) -> np.ndarray:
    """The image turned counter-clockwise by ``degrees`` about its centre, grey corners."""
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(image, m, (w, h), borderValue=(128, 128, 128))


@pytest.fixture(scope="module")
def upright(landmarker: FaceLandmarker) -> HeadPose:
    return pose_of(landmarker, face_frame_rgb())


def test_upright_face_reads_its_own_pose(upright: HeadPose) -> None:
    # Facing the camera: yaw near 0, her slight head tilt, the generic model's pitch offset.
    assert upright.yaw == pytest.approx(-0.7, abs=1.5)
    assert upright.roll == pytest.approx(2.3, abs=1.5)
    assert upright.pitch == pytest.approx(7.7, abs=2.0)
    # Her face (eye corners about 90 px apart) in a 640 px wide webcam-like view: about 1 m.
    assert upright.translation_mm[2] == pytest.approx(970, rel=0.1)


@pytest.mark.parametrize("degrees", [-30.0, -15.0, 15.0, 30.0])
def test_turning_the_photo_changes_roll_by_that_angle(
    landmarker: FaceLandmarker, upright: HeadPose, degrees: float
) -> None:
    pose = pose_of(landmarker, turned(face_frame_rgb(), degrees))
    # Counter-clockwise in the image is a negative roll (roll + = top of the head to the right).
    assert pose.roll - upright.roll == pytest.approx(-degrees, abs=2.0)
    # An in-plane turn leaves where the face points alone.
    assert pose.pitch == pytest.approx(upright.pitch, abs=2.0)
    assert pose.yaw == pytest.approx(upright.yaw, abs=2.0)


def test_mirrored_face_mirrors_roll_and_yaw(landmarker: FaceLandmarker, upright: HeadPose) -> None:
    # A mirror swaps the subject's left and right eye in the image: a swapped eye index
    # (or an asymmetric model point) would not give back the mirrored angles.
    image = face_frame_rgb()
    for degrees in (0.0, 15.0):
        straight = pose_of(landmarker, turned(image, degrees))
        mirrored = pose_of(landmarker, np.ascontiguousarray(turned(image, degrees)[:, ::-1]))
        assert mirrored.roll == pytest.approx(-straight.roll, abs=1.5)
        assert mirrored.yaw == pytest.approx(-straight.yaw, abs=1.5)
        assert mirrored.pitch == pytest.approx(straight.pitch, abs=1.5)
