"""Fusion: observations of one participant become that participant's state.

Pure functions, no I/O and no clock: ``now`` is always passed in. Each modality
replaces its own part of the state and keeps the others: a face analysis sets
``face_visible``, ``emotion`` and ``face``; a voice update sets ``voice`` and
``is_speaking``. The composite states of the roadmap plug in here.

Rules, so that readings stay honest:
- No face in the frame -> ``face_visible=False`` and ``emotion=None``. There is
  no neutral default and no carry-over of the previous emotion.
- With several faces, the participant's state uses the largest (the analyzer
  returns them largest first).
- ``confidence`` is the top-class softmax probability, as the model gives it.
- A failed or timed-out analysis keeps the previous reading and sets
  ``stale=True``; the sidebar shows it as stale rather than as fresh data.
- Face and voice arrive on separate clocks (each track's media time anchored to
  the wall clock), a few hundred ms apart at most. A state never goes back in
  time: its ``ts`` is the later of ``now`` and the previous state's.
"""

from __future__ import annotations

import dataclasses

from bot.types import (
    EMOTIONS,
    EmotionScores,
    FaceAnalysis,
    FaceMetrics,
    ParticipantState,
    VoiceMetrics,
)


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


def _next_ts(prev: ParticipantState | None, now: float) -> float:
    return now if prev is None else max(now, prev.ts)


def fuse(prev: ParticipantState | None, face: FaceAnalysis, now: float) -> ParticipantState:
    """The participant's state at ``now`` after a face analysis without tracking.

    The largest face is the participant's (the analyzer orders faces largest first).
    """
    return fuse_face(prev, face.participant_id, face_scores(face), now)


def fuse_face(
    prev: ParticipantState | None,
    participant_id: str,
    emotion: EmotionScores | None,
    now: float,
    metrics: FaceMetrics | None = None,
) -> ParticipantState:
    """The state at ``now`` after one face's reading (``emotion=None``: no face).

    Args:
        prev: The previous state of this participant or face (its voice part is kept).
        participant_id: The participant (or the face's sub-participant).
        emotion: The face's emotion scores, or None when no face was seen.
        now: Meeting-clock seconds.
        metrics: Landmark readings of that face, when the detector gives landmarks.
    """
    return ParticipantState(
        participant_id=participant_id,
        ts=_next_ts(prev, now),
        face_visible=emotion is not None,
        emotion=emotion,
        engagement=None,
        is_speaking=prev.is_speaking if prev else None,
        stale=False,
        face=metrics if emotion is not None else None,
        voice=prev.voice if prev else None,
    )


def fuse_voice(
    prev: ParticipantState | None, participant_id: str, voice: VoiceMetrics, now: float
) -> ParticipantState:
    """The participant's state at ``now`` after a voice update (the face part is kept)."""
    if prev is None:
        # Audio before any video analysis: nothing is known about a face yet.
        return ParticipantState(
            participant_id=participant_id,
            ts=now,
            face_visible=False,
            emotion=None,
            is_speaking=voice.is_speaking,
            voice=voice,
        )
    return dataclasses.replace(
        prev, ts=_next_ts(prev, now), is_speaking=voice.is_speaking, voice=voice
    )


def mark_stale(prev: ParticipantState | None, participant_id: str, now: float) -> ParticipantState:
    """The state after an analysis failed: the last reading, flagged stale."""
    if prev is None:
        return ParticipantState(
            participant_id=participant_id, ts=now, face_visible=False, emotion=None, stale=True
        )
    return dataclasses.replace(prev, ts=_next_ts(prev, now), stale=True)
