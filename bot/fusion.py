"""Fusion: observations of one participant become that participant's state.

Pure functions, no I/O and no clock: ``now`` is always passed in. Today the only
modality is the face; the voice and the composite states of the roadmap plug in
here.

Rules, so that readings stay honest:
- No face in the frame -> ``face_visible=False`` and ``emotion=None``. There is
  no neutral default and no carry-over of the previous emotion.
- With several faces, the participant's state uses the largest (the analyzer
  returns them largest first).
- ``confidence`` is the top-class softmax probability, as the model gives it.
- A failed or timed-out analysis keeps the previous reading and sets
  ``stale=True``; the sidebar shows it as stale rather than as fresh data.
"""

from __future__ import annotations

from bot.types import EMOTIONS, EmotionScores, FaceAnalysis, ParticipantState


def face_scores(analysis: FaceAnalysis) -> EmotionScores | None:
    """The emotion scores of the largest face, or None without a face."""
    if not analysis.faces:
        return None
    face = analysis.faces[0]
    probs = dict(zip(EMOTIONS, face.probs, strict=True))
    return EmotionScores(
        participant_id=analysis.participant_id,
        ts=analysis.ts,
        source="face",
        probs=probs,
        confidence=max(face.probs),
    )


def fuse(prev: ParticipantState | None, face: FaceAnalysis, now: float) -> ParticipantState:
    """The participant's state at ``now`` after a face analysis."""
    emotion = face_scores(face)
    return ParticipantState(
        participant_id=face.participant_id,
        ts=now,
        face_visible=emotion is not None,
        emotion=emotion,
        engagement=None,
        is_speaking=prev.is_speaking if prev else None,
        stale=False,
    )


def mark_stale(prev: ParticipantState | None, participant_id: str, now: float) -> ParticipantState:
    """The state after an analysis failed: the last reading, flagged stale."""
    if prev is None:
        return ParticipantState(
            participant_id=participant_id, ts=now, face_visible=False, emotion=None, stale=True
        )
    return ParticipantState(
        participant_id=prev.participant_id,
        ts=now,
        face_visible=prev.face_visible,
        emotion=prev.emotion,
        engagement=prev.engagement,
        is_speaking=prev.is_speaking,
        stale=True,
    )
