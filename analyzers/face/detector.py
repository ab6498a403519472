"""Face detectors: find face boxes in one RGB frame.

A detector is anything that satisfies :class:`FaceDetector`; the emotion
analyzer only relies on that protocol, so a better detector (BlazeFace through
mediapipe's Tasks API, for instance) can be added next to
:class:`HaarFaceDetector` without touching the analyzer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

logger = logging.getLogger(__name__)

#: OpenCV's bundled frontal-face cascade (ships in every opencv-*-python 4.x wheel).
HAAR_CASCADE_FILE = "haarcascade_frontalface_default.xml"
#: Faces smaller than this many pixels (box side) are ignored.
MIN_FACE_PX = 40
#: Image pyramid step. 1.2 finds the same faces as deepface's 1.1 at a fraction of the cost.
HAAR_SCALE_FACTOR = 1.2
#: Overlapping raw detections needed to keep a box; suppresses most false positives.
HAAR_MIN_NEIGHBORS = 5


@dataclass(frozen=True, slots=True)
class DetectedFace:
    """One face box from a detector.

    Attributes:
        box: ``(x, y, w, h)`` in pixels of the frame the detector was given.
        score: The detector's confidence where it has one, else ``None``.
    """

    box: tuple[int, int, int, int]
    score: float | None = None


class FaceDetector(Protocol):
    """What the emotion analyzer needs from a face detector.

    Implementations run in the inference worker process that owns them and are
    not shared between threads.
    """

    def detect(self, rgb: np.ndarray, gray: np.ndarray) -> list[DetectedFace]:
        """Return the faces in one frame, largest first.

        Args:
            rgb: H x W x 3 uint8 RGB frame (for detectors that want colour).
            gray: The same frame as H x W uint8 grayscale (for detectors that want gray);
                passed in because the caller needs it anyway and converting twice is waste.
        """
        ...


def sort_largest_first(faces: list[DetectedFace]) -> list[DetectedFace]:
    """Order faces by box area, largest first; ties go top-left first so the order is stable."""
    return sorted(faces, key=lambda f: (-f.box[2] * f.box[3], f.box[1], f.box[0]))


class HaarFaceDetector:
    """OpenCV's Viola-Jones frontal-face cascade with cheap parameters.

    Runs in the inference worker process that created it (an OpenCV cascade is
    not meant to be shared between threads). About 20–45 ms per 512² frame on
    one core. It gives no confidence, so every ``score`` is ``None``.
    """

    def __init__(
        self,
        min_face_px: int = MIN_FACE_PX,
        scale_factor: float = HAAR_SCALE_FACTOR,
        min_neighbors: int = HAAR_MIN_NEIGHBORS,
    ) -> None:
        """Load the bundled cascade.

        Args:
            min_face_px: Smallest face side to report, in pixels.
            scale_factor: Pyramid step (> 1); larger is faster and misses more.
            min_neighbors: Raw detections needed to keep a box.

        Raises:
            ValueError: If a parameter is out of range.
            RuntimeError: If OpenCV's bundled cascade file cannot be loaded.
        """
        if min_face_px < 1:
            raise ValueError("min_face_px must be at least 1")
        if scale_factor <= 1.0:
            raise ValueError("scale_factor must be greater than 1")
        if min_neighbors < 0:
            raise ValueError("min_neighbors must not be negative")
        path = cv2.data.haarcascades + HAAR_CASCADE_FILE  # type: ignore[attr-defined]
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            # opencv 5 wheels stopped shipping cv2/data/*.xml; 4.x is required.
            raise RuntimeError(f"could not load OpenCV's Haar cascade from {path}")
        self._min_face_px = min_face_px
        self._scale_factor = scale_factor
        self._min_neighbors = min_neighbors

    def detect(self, rgb: np.ndarray, gray: np.ndarray) -> list[DetectedFace]:
        """Return the faces in ``gray``, largest first (``rgb`` is not used)."""
        # Histogram equalisation makes the cascade far less sensitive to exposure.
        equalized = cv2.equalizeHist(gray)
        boxes = self._cascade.detectMultiScale(
            equalized,
            scaleFactor=self._scale_factor,
            minNeighbors=self._min_neighbors,
            minSize=(self._min_face_px, self._min_face_px),
        )
        faces = [
            DetectedFace(box=(int(x), int(y), int(w), int(h))) for x, y, w, h in np.asarray(boxes)
        ]
        return sort_largest_first(faces)
