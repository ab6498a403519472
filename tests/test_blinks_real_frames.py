"""Blinks on real frames: the astronaut, then the same photo with her eyes painted shut.

No blinking video ships offline, so the closed-eye frame is made here: each eye (the
mesh's eye ring) is filled with the skin tone just below it and a lash line is drawn
between the corners. The real landmark model reads the lids as closed (EAR drops by
about 40 %), and the whole per-face path counts exactly one blink for open, shut, open.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from analyzers.face.emotion import FaceEmotionAnalyzer
from analyzers.face.geometry import landmarks as lm
from analyzers.face.mediapipe.landmarker import FaceLandmarker
from analyzers.face.track_state import DetectedFace, FaceFeed
from analyzers.types import FaceEmotion, VideoSample
from tests.media import face_frame_rgb

pytestmark = pytest.mark.model

RIGHT_EYE_RING = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
LEFT_EYE_RING = (362, 382, 381, 380, 374, 373, 390, 249, 263, 466, 388, 387, 386, 385, 384, 398)


def eyes_shut(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    out = image.copy()
    for ring, (a, b) in (
        (RIGHT_EYE_RING, (lm.RIGHT_EYE_OUTER, lm.RIGHT_EYE_INNER)),
        (LEFT_EYE_RING, (lm.LEFT_EYE_INNER, lm.LEFT_EYE_OUTER)),
    ):
        poly = points[list(ring), :2].astype(np.int32)
        x, y, w, h = cv2.boundingRect(poly)
        skin = image[y + h + 4 : y + h + 10, x : x + w].reshape(-1, 3).mean(axis=0)
        mask = np.zeros(image.shape[:2], np.uint8)
        cv2.fillPoly(mask, [cv2.convexHull(poly)], 255)
        out[cv2.dilate(mask, np.ones((5, 5), np.uint8)) > 0] = skin.astype(np.uint8)
        start = tuple(int(v) for v in points[a, :2])
        end = tuple(int(v) for v in points[b, :2])
        cv2.line(out, start, end, (60, 40, 40), 2)
    return out


@pytest.fixture(scope="module")
def faces(face_analyzer: FaceEmotionAnalyzer) -> tuple[FaceEmotion, FaceEmotion]:
    image = face_frame_rgb()
    (found,) = FaceLandmarker("cpu").process([image])[0]
    shut = eyes_shut(image, found.landmarks)
    (open_face,) = face_analyzer.analyze(VideoSample("p1", 0.0, image)).faces
    (shut_face,) = face_analyzer.analyze(VideoSample("p1", 0.0, shut)).faces
    return open_face, shut_face


def test_painted_shut_eyes_read_as_closed(faces: tuple[FaceEmotion, FaceEmotion]) -> None:
    open_face, shut_face = faces
    assert open_face.measurement is not None and shut_face.measurement is not None
    open_ear = open_face.measurement.geometry.ear
    shut_ear = shut_face.measurement.geometry.ear
    assert shut_ear < 0.7 * open_ear


@pytest.mark.parametrize("fps", [15.0, 30.0])
def test_one_blink_is_one_event(faces: tuple[FaceEmotion, FaceEmotion], fps: float) -> None:
    open_face, shut_face = faces
    # 2 s open, about 130 ms shut (a typical blink), 1.5 s open.
    n_shut = max(2, round(0.13 * fps))
    sequence = [open_face] * int(2 * fps) + [shut_face] * n_shut + [open_face] * int(1.5 * fps)
    feed = FaceFeed()
    readings = []
    for i, face in enumerate(sequence):
        update = feed.update(i / fps, [DetectedFace(face.box, face.measurement)])
        readings += update.readings
    assert readings[-1].blink_count_total == 1
    assert sum(r.blink for r in readings) == 1  # an event on one frame, not a frame count
