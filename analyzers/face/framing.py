"""Face framing: cut each face the way its emotion model saw faces in training.

An expression classifier learns faces at one scale and position. FER2013 (the
mini-Xception's training set) holds 48x48 gray faces, upright, with the eyes at
about (15.5, 18.2) and (32.5, 18.2): the product's own landmarker, run over FER2013
crops, put the eye centres there, inter-ocular distance 17.2 +- 3.2 px
(:data:`FER2013_FRAMING`). DeepFace's emotion CNN reads the box of OpenCV's Haar
cascade after DeepFace has rotated the eyes level (``DeepFace.analyze`` with its
defaults, ``detector_backend="opencv"``, ``align=True``, no expansion), letterboxed
to 224x224 (:data:`DEEPFACE_FRAMING`).

So a face is described by its two eye centres (:class:`Eyes`), and each model by
where its training frames put them (:class:`Framing`). :func:`frame_face` maps one
onto the other with the similarity transform (rotation, scale, shift) that takes
the eyes to the reference points: the roll is removed and the face has the size
and position the model expects, wherever it was in the camera frame.

Eye centres come from:

- **Landmarks** (:func:`eyes_from_landmarks`): each eye's centre is the midpoint of
  its two corners (Face Mesh points 33/133 and 362/263). Corners do not move with
  gaze, unlike the iris; on the calibration faces below, the iris centres sit
  0.02 inter-ocular distances higher and 3.5 % further apart, within FER2013's own
  spread.
- **A detector box only** (Haar; :func:`eyes_from_box`): the eyes where the Haar
  cascade puts them in its box on average, :data:`HAAR_EYES`. Calibrated by
  ``scripts/calibrate_face_framing.py``: OpenCV's Haar cascade and the landmarker on
  the same 213 images (scikit-image's 100 LFW faces at two sizes, the astronaut and
  the bench scenes; 204 faces found by both). Medians, as fractions of the box side:
  left eye (0.316, 0.396), right eye (0.664, 0.385), spread (SD) 0.02-0.026; one
  eye height (0.390) is used for both because the difference is head roll, which a
  box cannot show.

The two references agree: FER2013's inter-ocular distance is 0.354 of its frame and
Haar's 0.347 of its box, eyes at 0.379 and 0.390 of the height. A FER2013 face is
about a Haar box, with no margin: fer's own recipe (Haar box grown by 10 px of fill
colour on every side) shrinks a 100 px face by a sixth, and a landmark box (chin to
forehead, ear to ear) grown the same way shrinks it more, which is what the
accuracy measurements showed (see README, "Face framing").

Scaling down uses area averaging (a camera face is usually larger than 48 px):
the region the output frame covers is first shrunk with ``INTER_AREA`` to about the
output scale, then warped bilinearly. Pixels outside the image repeat its edge.

Pure numpy/OpenCV; runs in inference workers and tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from analyzers.face.geometry.landmarks import (
    LEFT_EYE_INNER,
    LEFT_EYE_OUTER,
    RIGHT_EYE_INNER,
    RIGHT_EYE_OUTER,
)

Point = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Eyes:
    """Eye centres of one face, in image pixels.

    Attributes:
        left: The eye on the image's left (the subject's right eye, unmirrored camera).
        right: The eye on the image's right.
    """

    left: Point
    right: Point

    @property
    def distance(self) -> float:
        """Inter-ocular distance in pixels."""
        return math.hypot(self.right[0] - self.left[0], self.right[1] - self.left[1])


@dataclass(frozen=True, slots=True)
class Framing:
    """Where a model's training images put the eyes, in a ``size`` x ``size`` frame."""

    size: int
    left_eye: Point
    right_eye: Point

    def scaled(self, size: int) -> Framing:
        """The same framing in a frame of another size."""
        f = size / self.size
        return Framing(
            size,
            (self.left_eye[0] * f, self.left_eye[1] * f),
            (self.right_eye[0] * f, self.right_eye[1] * f),
        )


#: Eye centres in a FER2013 face, 48x48 (measured with the product's landmarker).
FER2013_FRAMING = Framing(48, (15.5, 18.2), (32.5, 18.2))
#: Eye centres in an OpenCV Haar box, as fractions of its side (calibrated, see above).
HAAR_EYES = Framing(1, (0.316, 0.390), (0.664, 0.390))
#: DeepFace's emotion input before its resize to 48x48: a level Haar box letterboxed to 224.
DEEPFACE_FRAMING = HAAR_EYES.scaled(224)


def eyes_from_landmarks(points: np.ndarray) -> Eyes:
    """Eye centres from Face Mesh landmarks (``(468 or 478, 2 or 3)``, image pixels)."""
    right = (points[RIGHT_EYE_OUTER, :2] + points[RIGHT_EYE_INNER, :2]) / 2.0
    left = (points[LEFT_EYE_OUTER, :2] + points[LEFT_EYE_INNER, :2]) / 2.0
    # The subject's right eye is on the image's left in an unmirrored camera; order by x
    # so that a mirrored image (or a face upside down) still gives left < right.
    a = (float(right[0]), float(right[1]))
    b = (float(left[0]), float(left[1]))
    return Eyes(a, b) if a[0] <= b[0] else Eyes(b, a)


def eyes_from_box(box: tuple[int, int, int, int]) -> Eyes:
    """Where the eyes are, on average, in a Haar-style face box ``(x, y, w, h)``."""
    x, y, w, h = box
    return Eyes(
        (x + HAAR_EYES.left_eye[0] * w, y + HAAR_EYES.left_eye[1] * h),
        (x + HAAR_EYES.right_eye[0] * w, y + HAAR_EYES.right_eye[1] * h),
    )


def frame_transform(eyes: Eyes, framing: Framing) -> np.ndarray:
    """The 2x3 similarity transform (image -> frame) taking the eyes to the framing's.

    Raises:
        ValueError: If the two eyes coincide.
    """
    src = np.subtract(eyes.right, eyes.left)
    dst = np.subtract(framing.right_eye, framing.left_eye)
    src_len = float(np.hypot(*src))
    if src_len < 1e-6:
        raise ValueError("the eyes coincide: no framing")
    scale = float(np.hypot(*dst)) / src_len
    angle = math.atan2(dst[1], dst[0]) - math.atan2(src[1], src[0])
    c, s = scale * math.cos(angle), scale * math.sin(angle)
    a = np.array([[c, -s], [s, c]])
    t = np.asarray(framing.left_eye) - a @ np.asarray(eyes.left)
    return np.hstack([a, t[:, None]])


def frame_face(image: np.ndarray, eyes: Eyes, framing: Framing) -> np.ndarray:
    """The face cut as the framing says: ``(size, size)`` (or ``(size, size, C)``), image dtype.

    Raises:
        ValueError: If the two eyes coincide.
    """
    m = frame_transform(eyes, framing)
    size = framing.size
    scale = math.hypot(m[0, 0], m[1, 0])
    if scale >= 0.5:
        return cv2.warpAffine(
            image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
    # Shrinking by more than 2: average the covered region down first, so that the
    # bilinear warp does not skip pixels (aliasing).
    inverse = cv2.invertAffineTransform(m)
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], dtype=float)
    footprint = corners @ inverse.T
    height, width = image.shape[:2]
    x0 = max(0, math.floor(footprint[:, 0].min()) - 2)
    y0 = max(0, math.floor(footprint[:, 1].min()) - 2)
    x1 = min(width, math.ceil(footprint[:, 0].max()) + 2)
    y1 = min(height, math.ceil(footprint[:, 1].max()) + 2)
    if x1 - x0 < 2 or y1 - y0 < 2:
        # The frame lies (almost) wholly outside the image: the edge repeats anyway.
        return cv2.warpAffine(
            image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
    region = image[y0:y1, x0:x1]
    new_w = max(2, round((x1 - x0) * scale))
    new_h = max(2, round((y1 - y0) * scale))
    small = cv2.resize(region, (new_w, new_h), interpolation=cv2.INTER_AREA)
    fx, fy = new_w / (x1 - x0), new_h / (y1 - y0)
    # small pixel u sits at image x = (u + 0.5) / fx - 0.5 + x0 (OpenCV's pixel centres).
    a = m[:, :2] @ np.diag([1.0 / fx, 1.0 / fy])
    t = m[:, :2] @ np.array([0.5 / fx - 0.5 + x0, 0.5 / fy - 0.5 + y0]) + m[:, 2]
    return cv2.warpAffine(
        small,
        np.hstack([a, t[:, None]]),
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


def fit_square(image: np.ndarray, size: int) -> np.ndarray:
    """An already framed face resized to ``size`` x ``size`` (area-averaged when shrinking)."""
    height, width = image.shape[:2]
    if (height, width) == (size, size):
        return image
    shrinking = height > size or width > size
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interpolation)
