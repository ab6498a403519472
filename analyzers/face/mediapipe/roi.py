"""Crop geometry of MediaPipe's face graphs: rotated square ROIs, crops and projections.

MediaPipe describes every crop as a rotated rectangle (``NormalizedRect``) and
feeds it to ``ImageToTensorCalculator``, whose CPU path maps the rectangle's
corners onto the corners of the output tensor with ``cv::warpPerspective``
(bilinear). The network's outputs, in tensor pixels, are mapped back with the
same rectangle (``LandmarkProjectionCalculator``). Here everything is in image
pixels and the rectangles are squares, because every ROI in these graphs is made
square (``square_long: true``) before use; a square in pixels keeps the
projection a pure rotation + scale, so it can be done with one 2 x 3 matrix.

Rules reproduced from the mediapipe 0.10.21 graphs:

- detector input: the whole frame padded to a centred square (``keep_aspect_ratio``)
  with black borders (``BORDER_ZERO``), 128 x 128;
- face ROI (``face_detection_front_detection_to_roi``): the detection box centre,
  rotation from keypoint 0 (subject's right eye) to keypoint 1 (left eye) so the
  eyes end up level, side 1.5 x the longer box side; 192 x 192, edges replicated;
- eye ROI (``iris_landmark_landmarks_to_roi``): from the two eye-corner mesh
  landmarks, centre between them, rotation along them, side 2.3 x the longer
  side of their axis-aligned bounding box; 64 x 64, edges replicated.

Rotations are in radians, positive clockwise on screen (image y points down),
as in MediaPipe. Pure numpy/OpenCV; runs in whatever process calls it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

#: Face ROI side relative to the longer detection-box side.
FACE_ROI_SCALE = 1.5
#: Eye ROI side relative to the longer side of the two eye corners' bounding box.
EYE_ROI_SCALE = 2.3

Border = Literal["zero", "replicate"]
_BORDERS = {"zero": cv2.BORDER_CONSTANT, "replicate": cv2.BORDER_REPLICATE}


@dataclass(frozen=True, slots=True)
class Roi:
    """A rotated square region of an image, in pixels.

    Attributes:
        center_x: Centre x in image pixels.
        center_y: Centre y in image pixels.
        size: Side length in image pixels.
        rotation: Radians; positive turns the crop's x axis clockwise on screen.
    """

    center_x: float
    center_y: float
    size: float
    rotation: float

    def crop_to_image(self, out_size: int) -> np.ndarray:
        """Return the 2 x 3 matrix taking crop coordinates (0..out_size) to image pixels.

        Crop corner ``(0, 0)`` maps to the ROI's top-left corner and ``(out_size,
        out_size)`` to its bottom-right one, the corner-to-corner convention of
        MediaPipe's ``ImageToTensorCalculator`` and ``LandmarkProjectionCalculator``.

        Args:
            out_size: Side of the square crop in pixels.
        """
        cos, sin = math.cos(self.rotation), math.sin(self.rotation)
        scale = self.size / out_size
        # image = centre + size * R @ (crop / out_size - 0.5)
        linear = np.array([[cos, -sin], [sin, cos]]) * scale
        offset = np.array([self.center_x, self.center_y]) - linear @ np.array(
            [out_size / 2, out_size / 2]
        )
        return np.hstack([linear, offset[:, None]])


def normalize_radians(angle: float) -> float:
    """Wrap ``angle`` into [-pi, pi), like MediaPipe's ``NormalizeRadians``."""
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


def _rotation(start: np.ndarray, end: np.ndarray) -> float:
    # DetectionsToRectsCalculator::ComputeRotation with target angle 0: the angle that
    # makes start -> end point along +x in the crop. Image y points down, hence the minus.
    return normalize_radians(-math.atan2(-(end[1] - start[1]), end[0] - start[0]))


def letterbox_roi(height: int, width: int) -> Roi:
    """The detector's ROI: the whole frame padded to a centred square.

    Args:
        height: Frame height in pixels.
        width: Frame width in pixels.
    """
    return Roi(width / 2, height / 2, float(max(height, width)), 0.0)


def face_roi(box: np.ndarray, keypoints: np.ndarray) -> Roi:
    """The Face Mesh ROI for one detection.

    Args:
        box: ``(xmin, ymin, xmax, ymax)`` of the detection in image pixels.
        keypoints: ``(6, 2)`` detector keypoints in image pixels.
    """
    width, height = float(box[2] - box[0]), float(box[3] - box[1])
    return Roi(
        float(box[0]) + width / 2,
        float(box[1]) + height / 2,
        max(width, height) * FACE_ROI_SCALE,
        _rotation(keypoints[0], keypoints[1]),
    )


def eye_roi(start: np.ndarray, end: np.ndarray) -> Roi:
    """The iris-model ROI for one eye, from its two corner landmarks.

    Args:
        start: ``(x, y)`` of the image-left corner landmark (33 or 362), pixels.
        end: ``(x, y)`` of the image-right corner landmark (133 or 263), pixels.
    """
    # LandmarksToDetectionCalculator: the axis-aligned bounding box of the two points.
    width, height = abs(float(end[0] - start[0])), abs(float(end[1] - start[1]))
    return Roi(
        (float(start[0]) + float(end[0])) / 2,
        (float(start[1]) + float(end[1])) / 2,
        max(width, height) * EYE_ROI_SCALE,
        _rotation(start, end),
    )


def crop(image: np.ndarray, roi: Roi, out_size: int, border: Border) -> np.ndarray:
    """Cut ``roi`` out of ``image`` into an ``out_size`` square, bilinear.

    Args:
        image: H x W x 3 uint8.
        roi: The region.
        out_size: Output side in pixels.
        border: ``"zero"`` pads with black, ``"replicate"`` repeats edge pixels.

    Returns:
        ``out_size x out_size x 3`` uint8.
    """
    # WARP_INVERSE_MAP: the matrix maps output pixels to source pixels, which is what
    # crop_to_image gives; OpenCV then samples the source at that point.
    out: np.ndarray = cv2.warpAffine(
        image,
        roi.crop_to_image(out_size),
        (out_size, out_size),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=_BORDERS[border],
        borderValue=(0, 0, 0),
    )
    return out


def project(points: np.ndarray, roi: Roi, out_size: int) -> np.ndarray:
    """Map network outputs in crop pixels back to image pixels.

    ``x, y`` go through the ROI's rotation, scale and offset; ``z`` is scaled
    like ``x`` (MediaPipe's ``LandmarkProjectionCalculator`` multiplies the
    normalised z by the ROI width).

    Args:
        points: ``(k, 3)`` ``x, y, z`` in crop pixels.
        roi: The ROI the crop was cut from.
        out_size: Side of that crop.

    Returns:
        ``(k, 3)`` float32 ``x, y, z`` in image pixels.
    """
    matrix = roi.crop_to_image(out_size)
    xy = points[:, :2].astype(np.float64) @ matrix[:, :2].T + matrix[:, 2]
    z = points[:, 2:3].astype(np.float64) * (roi.size / out_size)
    return np.hstack([xy, z]).astype(np.float32)
