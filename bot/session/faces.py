"""Faces of one feed become face observations, one per slot.

The face tracker (:class:`analyzers.face.track_state.FaceFeed`) gives each face a
track id that lasts while the face is tracked; a face lost for longer than the
tracker's patience comes back under a new id. The sidebar and the store want
something calmer, so each track is shown in a **slot**: the lowest slot number
not held by a live track. Slot 1 is the participant's own card (a webcam with
one person always lands there); slot ``k >= 2`` is a further face of the same
feed (a meeting-room camera), which the meeting shows as "<name> · face k". A
slot's card stays while its participant is connected and reads "no face" while
no track holds it. Without re-identification a person who leaves and comes back
may get another free slot; the per-face baseline restarts with every new track,
since it may be another person.

Both detectors go through :class:`FaceReader`: with landmarks every face is tracked
and read; without (the Haar detector) the largest face is slot 1's, unread.
Runs on the event loop thread; pure bookkeeping, a few hundred microseconds a face.
"""

from __future__ import annotations

from analyzers.face.track_state import DetectedFace, FaceFeed, FaceReading, FaceTrackParams
from analyzers.face.tracking import TrackerParams
from bot.types import (
    EMOTIONS,
    EmotionScores,
    FaceAnalysis,
    FaceMetrics,
    FaceObservation,
    FaceWindow,
)


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


class FaceReader:
    """Turns each face analysis of one feed into one observation per slot.

    Args:
        participant_id: The feed's participant.
        tracker: Track matching settings.
        tracking: Per-face settings (blinks, filters, baseline, window).
    """

    def __init__(
        self,
        participant_id: str,
        tracker: TrackerParams | None = None,
        tracking: FaceTrackParams | None = None,
    ) -> None:
        self.participant_id = participant_id
        self._feed = FaceFeed(tracker, tracking)
        self._slots = FaceSlots()
        self._shown: set[int] = {1}  # slots with a card: the participant's own, and any seen

    def read(self, analysis: FaceAnalysis) -> list[FaceObservation]:
        """The observations of one analysed frame, slot 1 first."""
        ts = analysis.ts
        if not analysis.has_landmarks:
            # Boxes only: the largest face is the participant's (the analyzer orders them).
            face = analysis.faces[0] if analysis.faces else None
            scores = None
            if face is not None:
                scores = EmotionScores.of(self.participant_id, ts, "face",
                                          dict(zip(EMOTIONS, face.probs, strict=True)))  # fmt: skip
            return [FaceObservation(self.participant_id, 1, ts, scores)]
        detected = [
            DetectedFace(f.box, f.measurement, f.detector_score is not None) for f in analysis.faces
        ]
        readings = self._feed.update(ts, detected)
        out: dict[int, FaceObservation] = {}
        for reading in readings.readings:
            slot = self._slots.assign(reading.track_id)
            self._shown.add(slot)
            scores = None
            if reading.face_visible and reading.emotions:
                scores = EmotionScores.of(self.participant_id, ts, "face", reading.emotions)
            metrics = face_metrics(reading) if scores is not None else None
            out[slot] = FaceObservation(self.participant_id, slot, ts, scores, metrics)
        for track_id in readings.ended:
            self._slots.release(track_id)
        # Slots whose face is gone (and the participant's own card without a face) say so.
        for slot in self._shown:
            out.setdefault(slot, FaceObservation(self.participant_id, slot, ts, None))
        return [out[slot] for slot in sorted(out)]
