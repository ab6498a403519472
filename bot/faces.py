"""Several faces in one feed: tracks become slots, slots become (sub-)participants.

The face tracker (:class:`analyzers.face.track_state.FaceFeed`) gives each face a
track id that lasts while the face is tracked; a face lost for longer than the
tracker's patience comes back under a new id. The sidebar and the store want
something calmer, so each track is shown in a **slot**: the lowest slot number
not held by a live track. Slot 1 is the participant's own card (a webcam with
one person always lands there); slot ``k >= 2`` is a sub-participant
"<name> · face k" (a meeting-room camera). A slot's card stays while its
participant is connected and reads "no face" while no track holds it. Without
re-identification a person who leaves and comes back may get another free slot;
the per-face baseline restarts with every new track, since it may be another person.

Runs on the event loop thread; everything here is pure bookkeeping.
"""

from __future__ import annotations

from analyzers.face.track_state import FaceReading
from bot.types import EMOTIONS, EmotionScores, FaceMetrics, FaceWindow

#: Separates a participant id from its face slot in a sub-participant's id.
SLOT_SEPARATOR = "~face"


def sub_participant_id(participant_id: str, slot: int) -> str:
    """The id of slot ``slot`` of a participant's feed (slot 1 is the participant)."""
    return participant_id if slot == 1 else f"{participant_id}{SLOT_SEPARATOR}{slot}"


class FaceSlots:
    """Which slot each live face track is shown in."""

    def __init__(self) -> None:
        """Start with every slot free."""
        self._slot_of: dict[int, int] = {}

    def assign(self, track_id: int) -> int:
        """The slot of ``track_id``: its own, or the lowest free one for a new track."""
        slot = self._slot_of.get(track_id)
        if slot is None:
            taken = set(self._slot_of.values())
            slot = next(k for k in range(1, len(taken) + 2) if k not in taken)
            self._slot_of[track_id] = slot
        return slot

    def release(self, track_id: int) -> int | None:
        """Free the slot of a track that ended; returns it (None if it had none)."""
        return self._slot_of.pop(track_id, None)


def face_emotion(participant_id: str, reading: FaceReading) -> EmotionScores | None:
    """The face emotion scores of a reading, or None without a visible face or model output."""
    if not reading.face_visible or not reading.emotions:
        return None
    probs = {e: float(reading.emotions.get(e.value, 0.0)) for e in EMOTIONS}
    total = sum(probs.values())
    if total <= 0:
        return None
    probs = {e: p / total for e, p in probs.items()}
    return EmotionScores(
        participant_id=participant_id,
        ts=reading.ts,
        source="face",
        probs=probs,
        confidence=max(probs.values()),
    )


def face_metrics(reading: FaceReading) -> FaceMetrics:
    """The landmark readings of one tracked face, as the state carries them."""
    w = reading.window
    window = None
    if w.face_frames:
        window = FaceWindow(
            window_secs=w.window_end - w.window_start,
            face_frames=w.face_frames,
            blink_freq=w.blink_freq,
            smile_freq=w.smile_freq,
            avg_head_tilt=w.avg_head_tilt,
            percent_away=w.percent_away,
            emotion_counts=dict(w.emotion_counts or {}),
        )
    relative = reading.emotions_relative
    return FaceMetrics(
        track_id=reading.track_id,
        calibrated=reading.baseline_calibrated,
        blinks=reading.blink_count_total,
        blink_rate_per_min=reading.blink_rate_per_min,
        ear=reading.ear,
        smile=reading.smile_intensity,
        is_smiling=reading.is_smiling,
        head_pitch=reading.head_pitch,
        head_yaw=reading.head_yaw,
        head_roll=reading.head_roll,
        gaze_yaw=reading.gaze_yaw,
        gaze_pitch=reading.gaze_pitch,
        looking_away=reading.looking_away,
        aus=dict(reading.au_intensities) if reading.au_intensities is not None else None,
        au_labels=tuple(reading.labels or ()),
        window=window,
        emotion_relative=None if relative is None else {k: float(v) for k, v in relative.items()},
    )
