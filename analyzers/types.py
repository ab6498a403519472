"""Per-frame data types shared by the analyzers and the bot.

These live in ``analyzers`` because dependencies point one way: ``bot`` imports
from here, never the reverse. They are frozen, slotted dataclasses: cheap to
build, cheap to pickle across the inference process boundary, no validation.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from analyzers.face.track_state import FaceMeasurement


class Emotion(StrEnum):
    """The seven FER2013 classes, in the order the shipped models output them."""

    ANGRY = "angry"
    DISGUST = "disgust"
    FEAR = "fear"
    HAPPY = "happy"
    SAD = "sad"
    SURPRISE = "surprise"
    NEUTRAL = "neutral"


#: Model output order; index ``i`` of a probability vector is ``EMOTIONS[i]``.
EMOTIONS: tuple[Emotion, ...] = tuple(Emotion)


@dataclass(frozen=True, slots=True)
class VideoSample:
    """One decoded video frame picked for analysis.

    Attributes:
        participant_id: Whose camera the frame came from.
        ts: Seconds on the meeting clock (anchored media time, never re-read per frame).
        image: H x W x 3 uint8 RGB, already downscaled to the analysis size.
        face_rois: Where the faces of the previous frame will be (their
            :attr:`FaceEmotion.next_roi`): the landmark detector follows them instead
            of searching the frame. ``None`` runs the face detector.
    """

    participant_id: str
    ts: float
    image: np.ndarray
    face_rois: tuple[object, ...] | None = None


@dataclass(frozen=True, slots=True)
class FaceEmotion:
    """One detected face and the emotion model's output for it.

    Attributes:
        box: ``(x, y, w, h)`` in pixels of the analysed image.
        probs: Seven softmax probabilities in ``EMOTIONS`` order; they sum to 1.
        detector_score: The detector's own confidence where it gives one
            (the Haar cascade gives none, so ``None``).
        measurement: Per-frame landmark geometry (EAR, AU proxies, head pose, gaze)
            when the detector gives landmarks; ``None`` with the Haar detector or
            when the landmarks were degenerate.
        next_roi: Where to look for this face in the next frame (landmark detector
            only; opaque to the bot, which hands it back in :attr:`VideoSample.face_rois`).
    """

    box: tuple[int, int, int, int]
    probs: tuple[float, ...]
    detector_score: float | None = None
    measurement: FaceMeasurement | None = None
    next_roi: object | None = None


@dataclass(frozen=True, slots=True)
class FaceAnalysis:
    """What the face analyzer found in one :class:`VideoSample`.

    ``faces`` is empty when no face was found: that means "no face", never neutral.
    Faces are ordered largest first. ``has_landmarks`` says whether the detector
    gives landmarks (then faces are tracked and read one by one).
    """

    participant_id: str
    ts: float
    image_size: tuple[int, int]  # (width, height) of the analysed image
    faces: tuple[FaceEmotion, ...]
    model: str
    inference_ms: float
    has_landmarks: bool = False
