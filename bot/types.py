"""Bot-level data types: fused participant state and the events that leave the process.

Per-frame types (``VideoSample``, ``FaceAnalysis``, ``Emotion``) live in
``analyzers.types``; this module adds what fusion produces and what the sidebar
receives. Events are pydantic models with a literal ``type`` so that they
serialise with ``model_dump()`` and can later travel over a message bus.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

from analyzers.types import EMOTIONS, Emotion, FaceAnalysis, FaceEmotion, VideoSample

__all__ = [
    "EMOTIONS",
    "Emotion",
    "EmotionScores",
    "EmotionView",
    "FaceAnalysis",
    "FaceEmotion",
    "HistoryPoint",
    "LeaveReason",
    "ParticipantInfo",
    "ParticipantJoinedEvent",
    "ParticipantLeftEvent",
    "ParticipantState",
    "ParticipantStateEvent",
    "SnapshotEvent",
    "StateView",
    "VideoSample",
]

LeaveReason = Literal["left", "disconnected", "failed", "server_shutdown", "server_restart"]


@dataclass(frozen=True, slots=True)
class EmotionScores:
    """Emotion probabilities from one modality (or fused).

    ``confidence`` is the probability of the top class as the model gives it: a
    softmax output, not a calibrated probability of being right.
    """

    participant_id: str
    ts: float
    source: Literal["face", "voice", "fused"]
    probs: Mapping[Emotion, float]
    confidence: float

    @property
    def dominant(self) -> Emotion:
        """The most probable class."""
        return max(self.probs, key=lambda e: self.probs[e])


@dataclass(frozen=True, slots=True)
class ParticipantState:
    """One participant at one analysis tick, as fusion produced it.

    Frozen: fusion builds a new one each tick, so readers can share it safely.
    ``engagement`` and ``is_speaking`` are ``None`` until an analyzer measures them.
    ``stale`` means the last analysis failed or timed out; the other fields then
    repeat the last good reading.
    """

    participant_id: str
    ts: float
    face_visible: bool
    emotion: EmotionScores | None
    engagement: float | None = None
    is_speaking: bool | None = None
    stale: bool = False


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True)


class EmotionView(_Event):
    """Emotion scores as the sidebar and API see them."""

    source: Literal["face", "voice", "fused"]
    probs: dict[str, float]
    dominant: str
    confidence: float


class StateView(_Event):
    """A participant state as it leaves the process."""

    participant_id: str
    ts: float
    face_visible: bool
    emotion: EmotionView | None
    engagement: float | None
    is_speaking: bool | None
    stale: bool

    @classmethod
    def of(cls, state: ParticipantState) -> StateView:
        """Serialise a state."""
        emotion = None
        if state.emotion is not None:
            e = state.emotion
            emotion = EmotionView(
                source=e.source,
                probs={str(k): float(v) for k, v in e.probs.items()},
                dominant=str(e.dominant),
                confidence=e.confidence,
            )
        return cls(
            participant_id=state.participant_id,
            ts=state.ts,
            face_visible=state.face_visible,
            emotion=emotion,
            engagement=state.engagement,
            is_speaking=state.is_speaking,
            stale=state.stale,
        )


class ParticipantInfo(_Event):
    """Who a participant is and whether they are still here."""

    participant_id: str
    display_name: str
    joined_at: float
    left_at: float | None = None
    leave_reason: str | None = None
    state: StateView | None = None


class HistoryPoint(_Event):
    """One point of a participant's timeline."""

    ts: float
    face_visible: bool
    probs: dict[str, float] | None


class ParticipantStateEvent(_Event):
    """A new state for one participant."""

    type: Literal["participant_state"] = "participant_state"
    state: StateView


class ParticipantJoinedEvent(_Event):
    """A participant joined the meeting."""

    type: Literal["participant_joined"] = "participant_joined"
    participant: ParticipantInfo


class ParticipantLeftEvent(_Event):
    """A participant left, or their connection ended."""

    type: Literal["participant_left"] = "participant_left"
    participant_id: str
    ts: float
    reason: LeaveReason


class MeetingRef(_Event):
    """The meeting a snapshot describes."""

    id: str
    name: str


class SnapshotEvent(_Event):
    """Everything a sidebar needs after it (re)connects."""

    type: Literal["snapshot"] = "snapshot"
    meeting: MeetingRef
    history_secs: int
    server_ts: float
    participants: list[ParticipantInfo]
    history: dict[str, list[HistoryPoint]]


MeetingEvent = ParticipantStateEvent | ParticipantJoinedEvent | ParticipantLeftEvent
