"""Head pose (pitch, yaw, roll) and a gaze estimate from face landmarks.

**Head pose** comes from ``cv2.solvePnP`` between six landmarks and a generic 3D face
(:data:`MODEL_POINTS_MM`). The model is the six-point head model of S. Mallick,
"Head Pose Estimation using OpenCV and Dlib" (LearnOpenCV, 2016), scaled by 0.2 so
that the outer eye corners are 90 mm apart (adult biocular width is about 86-96 mm,
Farkas, *Anthropometry of the Head and Face*, 1994), and written in camera axes
(x to the image's right, y down, z away from the camera) so a face looking into the
camera has rotation identity. The scale only changes the translation, not the angles.

**Camera**: no calibration is available from a meeting stream, so the intrinsics are
approximated from the image size: focal length = image width in pixels (a horizontal
field of view of about 53 degrees, typical of webcams), principal point = image centre,
no lens distortion. Errors in these shift the angles by a few degrees, mostly pitch
and yaw for faces far from the image centre.

**Sign conventions** (degrees, the rotation is ``R = Rz(roll) @ Ry(-yaw) @ Rx(pitch)``
in camera axes):

- pitch > 0: looking down (the nose moves down in the image);
- yaw > 0: face turned towards the image's right (the subject's left for an
  unmirrored camera);
- roll > 0: head tilted clockwise as seen in the image (top of the head to the
  image's right).

Angles are relative to the camera's optical axis, not to the line from the face to the
camera; for a face near the image centre the two agree within a few degrees. A generic
model also leaves a per-person pitch offset of several degrees, so compare pitch with
the person's own baseline where it matters.

**Gaze**: with iris landmarks (478-point mesh), the iris centre's offset inside each eye
(:func:`iris_offsets`) is turned into an eye-in-head angle with a spherical eyeball
(:data:`EYEBALL_RADIUS_MM`, :data:`EYE_WIDTH_MM`) and added to head yaw/pitch (a
small-angle approximation). Without iris landmarks the gaze is the head pose.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from analyzers.face.geometry import landmarks as lm

#: Landmarks matched to :data:`MODEL_POINTS_MM`, in the same order.
POSE_LANDMARKS = (
    lm.NOSE_TIP,
    lm.CHIN,
    lm.RIGHT_EYE_OUTER,
    lm.LEFT_EYE_OUTER,
    lm.MOUTH_RIGHT,
    lm.MOUTH_LEFT,
)

#: Generic 3D face in mm, camera axes (x image-right, y down, z away from the camera),
#: origin at the nose tip. LearnOpenCV's six-point model x 0.2 (see module docstring).
MODEL_POINTS_MM = np.array(
    [
        (0.0, 0.0, 0.0),  # nose tip (1)
        (0.0, 66.0, 13.0),  # chin (152)
        (-45.0, -34.0, 27.0),  # subject's right eye outer corner (33), image left
        (45.0, -34.0, 27.0),  # subject's left eye outer corner (263), image right
        (-30.0, 30.0, 25.0),  # subject's right mouth corner (61)
        (30.0, 30.0, 25.0),  # subject's left mouth corner (291)
    ],
    dtype=np.float64,
)

#: Human eyeball radius, mm (axial length about 24 mm; Bekerman et al. 2014).
EYEBALL_RADIUS_MM = 12.0
#: Palpebral fissure length (eye corner to eye corner), mm (adult mean about 28-30 mm).
EYE_WIDTH_MM = 30.0
#: Default gaze angle beyond which a person counts as looking away (seed B used 15).
LOOK_AWAY_DEG = 15.0


@dataclass(frozen=True, slots=True)
class HeadPose:
    """Head rotation in degrees (conventions in the module docstring).

    Attributes:
        pitch: + looking down.
        yaw: + face turned towards the image's right.
        roll: + clockwise in the image.
        translation_mm: Nose tip position in camera coordinates, mm (model scale).
    """

    pitch: float
    yaw: float
    roll: float
    translation_mm: tuple[float, float, float]


@dataclass(frozen=True, slots=True)
class Gaze:
    """Estimated gaze direction relative to the camera axis, degrees.

    Attributes:
        yaw: + towards the image's right.
        pitch: + downwards.
        from_iris: True when iris landmarks contributed; False = head pose only.
        iris_horizontal: Mean iris offset across the eye, fraction of eye width
            (+ towards the image's right, 0 = centred), or None without iris landmarks.
        iris_vertical: Mean iris offset along the face's down axis, fraction of eye
            width (+ down), or None without iris landmarks.
    """

    yaw: float
    pitch: float
    from_iris: bool
    iris_horizontal: float | None
    iris_vertical: float | None


def camera_matrix(image_size: tuple[int, int]) -> np.ndarray:
    """Approximate intrinsics: focal = image width, principal point = image centre.

    Args:
        image_size: ``(width, height)`` in pixels.

    Returns:
        The 3x3 camera matrix.
    """
    width, height = image_size
    focal = float(width)
    return np.array(
        [[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]],
        dtype=np.float64,
    )


def rotation_from_angles(pitch: float, yaw: float, roll: float) -> np.ndarray:
    """Rotation matrix for angles in degrees, ``R = Rz(roll) @ Ry(-yaw) @ Rx(pitch)``.

    Args:
        pitch: Degrees, + looking down.
        yaw: Degrees, + towards the image's right.
        roll: Degrees, + clockwise in the image.

    Returns:
        3x3 rotation in camera axes (x right, y down, z forward).
    """
    a, b, c = math.radians(pitch), math.radians(-yaw), math.radians(roll)
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    rotation: np.ndarray = rz @ ry @ rx
    return rotation


def angles_from_rotation(rotation: np.ndarray) -> tuple[float, float, float]:
    """Inverse of :func:`rotation_from_angles`.

    Args:
        rotation: 3x3 rotation matrix.

    Returns:
        ``(pitch, yaw, roll)`` in degrees.
    """
    r = rotation
    # R = Rz(c) Ry(b) Rx(a): R[2,0] = -sin b, R[2,1:] = cos b (sin a, cos a),
    # R[:2,0] = cos b (cos c, sin c).
    b = math.atan2(-r[2, 0], math.hypot(r[2, 1], r[2, 2]))
    a = math.atan2(r[2, 1], r[2, 2])
    c = math.atan2(r[1, 0], r[0, 0])
    return math.degrees(a), -math.degrees(b), math.degrees(c)


def head_pose(points: np.ndarray, image_size: tuple[int, int]) -> HeadPose | None:
    """Head pose from landmarks with ``cv2.solvePnP`` against :data:`MODEL_POINTS_MM`.

    Args:
        points: ``(N, 2)`` or ``(N, 3)`` landmarks in pixels; only ``x, y`` are used.
        image_size: ``(width, height)`` of the image the landmarks are in.

    Returns:
        The pose, or None when PnP fails.
    """
    image_points = np.ascontiguousarray(
        np.asarray(points, dtype=np.float64)[list(POSE_LANDMARKS), :2]
    )
    ok, rvec, tvec = cv2.solvePnP(
        MODEL_POINTS_MM,
        image_points,
        camera_matrix(image_size),
        np.zeros(4),
        flags=cv2.SOLVEPNP_SQPNP,
    )
    if not ok:
        return None
    rotation, _ = cv2.Rodrigues(rvec)
    pitch, yaw, roll = angles_from_rotation(rotation)
    t = tvec.ravel()
    return HeadPose(pitch, yaw, roll, (float(t[0]), float(t[1]), float(t[2])))


def iris_offsets(points: np.ndarray) -> tuple[float, float] | None:
    """Iris centre offset inside the eye, averaged over both eyes.

    For each eye, with ``m`` the midpoint of the eye corners, ``u`` the unit vector from
    the image-left corner to the image-right corner and ``d`` the face's down axis
    (``u`` turned 90 degrees clockwise in image coordinates):
    ``h = dot(iris - m, u) / width`` and ``v = dot(iris - m, d) / width``. The vertical
    offset is divided by the eye *width* because the eye's height changes with blinks.

    Args:
        points: ``(478, 2|3)`` landmarks including the iris points.

    Returns:
        ``(horizontal, vertical)`` fractions of eye width (+ image right, + down), or
        None without iris landmarks.
    """
    if points.shape[0] < lm.NUM_LANDMARKS_WITH_IRIS:
        return None
    xy = np.asarray(points, dtype=np.float64)[:, :2]
    offsets = []
    for left_corner, right_corner, centre in (
        (lm.RIGHT_EYE_OUTER, lm.RIGHT_EYE_INNER, lm.RIGHT_IRIS_CENTER),
        (lm.LEFT_EYE_INNER, lm.LEFT_EYE_OUTER, lm.LEFT_IRIS_CENTER),
    ):
        axis = xy[right_corner] - xy[left_corner]
        width = float(np.linalg.norm(axis))
        if width <= 0.0:
            return None
        u = axis / width
        d = np.array([-u[1], u[0]])
        rel = xy[centre] - (xy[left_corner] + xy[right_corner]) / 2.0
        offsets.append((float(np.dot(rel, u)) / width, float(np.dot(rel, d)) / width))
    h, v = np.mean(offsets, axis=0)
    return float(h), float(v)


def _eye_angle_deg(offset: float) -> float:
    # The iris sits on a sphere: lateral shift = r sin(angle).
    ratio = offset * EYE_WIDTH_MM / EYEBALL_RADIUS_MM
    return math.degrees(math.asin(max(-1.0, min(1.0, ratio))))


def estimate_gaze(points: np.ndarray, pose: HeadPose) -> Gaze:
    """Gaze angles: head pose plus the eye-in-head angle from the irises, if present.

    ``gaze_yaw = head_yaw + asin(h * EYE_WIDTH_MM / EYEBALL_RADIUS_MM)`` and
    ``gaze_pitch = head_pitch + asin(v * EYE_WIDTH_MM / EYEBALL_RADIUS_MM)`` with
    ``h, v`` from :func:`iris_offsets`. Adding angles is a small-angle approximation;
    without per-person calibration expect errors of 5-10 degrees.

    Args:
        points: Landmarks (468 or 478 rows).
        pose: The frame's head pose.

    Returns:
        The gaze estimate; head pose only when there are no iris landmarks.
    """
    offsets = iris_offsets(np.asarray(points))
    if offsets is None:
        return Gaze(pose.yaw, pose.pitch, False, None, None)
    h, v = offsets
    return Gaze(pose.yaw + _eye_angle_deg(h), pose.pitch + _eye_angle_deg(v), True, h, v)


def gaze_angle_deg(gaze_yaw: float, gaze_pitch: float) -> float:
    """Angle between the gaze direction and the camera axis, degrees.

    Args:
        gaze_yaw: Degrees.
        gaze_pitch: Degrees.

    Returns:
        ``acos(cos(yaw) cos(pitch))`` in degrees, always >= 0.
    """
    c = math.cos(math.radians(gaze_yaw)) * math.cos(math.radians(gaze_pitch))
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))


def looking_away(gaze_yaw: float, gaze_pitch: float, threshold_deg: float = LOOK_AWAY_DEG) -> bool:
    """Whether the gaze is more than ``threshold_deg`` off the camera axis.

    Args:
        gaze_yaw: Degrees.
        gaze_pitch: Degrees.
        threshold_deg: Cone half-angle around the camera axis that counts as "looking".

    Returns:
        True when :func:`gaze_angle_deg` exceeds the threshold.
    """
    return gaze_angle_deg(gaze_yaw, gaze_pitch) > threshold_deg
