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
    "FACE_AUS",
    "FaceMetrics",
    "FaceView",
    "FaceWindow",
    "FaceWindowView",
    "NoticeEvent",
    "TalkEvent",
    "TalkParticipantView",
    "VoiceEmotionStatus",
    "VoiceMetrics",
    "VoiceView",
    "FaceAnalysis",
    "FaceEmotion",
    "HistoryPoint",
    "LeaveReason",
    "MeetingEvent",
    "MeetingRef",
    "ParticipantInfo",
    "ParticipantJoinedEvent",
    "ParticipantLeftEvent",
    "ParticipantState",
    "ParticipantStateEvent",
    "SnapshotEvent",
    "StateView",
    "VideoSample",
]

#: Where the speech-emotion reading stands (see :class:`VoiceMetrics`).
VoiceEmotionStatus = Literal["ok", "waiting", "unavailable", "disabled"]
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


#: Action units whose geometric proxies are reported (FACS numbers).
FACE_AUS: tuple[str, ...] = ("AU01", "AU02", "AU04", "AU06", "AU12", "AU15", "AU25", "AU26")


@dataclass(frozen=True, slots=True)
class FaceWindow:
    """Seed B's windowed features of one face (face-less frames excluded)."""

    window_secs: float
    face_frames: int
    blink_freq: float | None  # blinks per observed second
    smile_freq: float | None  # share of face frames smiling, 0-1
    avg_head_tilt: float | None  # mean pitch, degrees
    percent_away: float | None  # 0-100
    emotion_counts: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class FaceMetrics:
    """Landmark readings of one tracked face; ``None`` wherever it cannot be known.

    Attributes:
        track_id: The tracker's id of the face in this feed (a new id when a face is
            lost for longer than the tracker's patience and comes back).
        calibrated: Whether the person's neutral baseline is complete; the
            baseline-relative fields are ``None`` before.
        blinks: Blink events counted since the face was first tracked.
        blink_rate_per_min: Blinks per minute over the feature window; ``None`` when
            the sampling rate is too low to see blinks or too little face time was seen.
        ear: Mean eye aspect ratio of this frame.
        smile: AU12 proxy intensity (0-5, relative to the neutral baseline).
        is_smiling: Whether the AU12 intensity is over the smile threshold.
        head_pitch: Smoothed head pitch, degrees (+ = looking down).
        head_yaw: Smoothed head yaw, degrees (+ = turned to the camera's right).
        head_roll: Smoothed head roll, degrees.
        gaze_yaw: Smoothed gaze yaw, degrees (0 = towards the camera).
        gaze_pitch: Smoothed gaze pitch, degrees.
        looking_away: Whether the gaze is off the camera by more than the threshold.
        aus: AU proxy intensities 0-5 relative to the neutral baseline, by FACS name.
        au_labels: EMFACS-style rule labels that fired on this frame.
        emotion_relative: Face emotion probabilities minus the person's neutral
            baseline probabilities, per class (-1..1); ``None`` before calibration.
        window: Windowed features over the last ``window_secs`` (seed B's set).
    """

    track_id: int
    calibrated: bool
    blinks: int
    blink_rate_per_min: float | None
    ear: float | None
    smile: float | None
    is_smiling: bool | None
    head_pitch: float | None
    head_yaw: float | None
    head_roll: float | None
    gaze_yaw: float | None
    gaze_pitch: float | None
    looking_away: bool | None
    aus: Mapping[str, float] | None
    au_labels: tuple[str, ...]
    window: FaceWindow | None
    emotion_relative: Mapping[str, float] | None = None


@dataclass(frozen=True, slots=True)
class VoiceMetrics:
    """One participant's voice: speaking activity, prosody and voice emotion.

    Attributes:
        is_speaking: Whether the voice activity detector hears speech now.
        talk_secs: Seconds of speech since joining.
        talk_share: This participant's share of all speech in the meeting, 0-1;
            ``None`` while nobody has spoken.
        turns: Times this participant took the floor.
        arousal: Activation of the last voiced segment against the speaker's own
            baseline, -1..1; ``None`` until the baseline has enough segments.
        pitch_hz: Median F0 of the last voiced segment.
        loudness_dbfs: RMS level of the last voiced segment.
        emotion: The speech-emotion model's scores for the last classified segment.
        emotion_status: ``ok`` (scores present), ``waiting`` (no segment of 1-4 s
            yet), ``unavailable`` (model could not be loaded) or ``disabled``.
    """

    is_speaking: bool
    talk_secs: float
    talk_share: float | None
    turns: int
    arousal: float | None
    pitch_hz: float | None
    loudness_dbfs: float | None
    emotion: EmotionScores | None
    emotion_status: VoiceEmotionStatus


@dataclass(frozen=True, slots=True)
class ParticipantState:
    """One participant (or one face of a room camera) at one tick, as fusion produced it.

    Frozen: fusion builds a new one each tick, so readers can share it safely.
    ``emotion`` is the face emotion model's output; ``face`` the landmark readings
    (``None`` without landmarks: no face, or the Haar detector); ``voice`` the
    voice readings (``None`` until an audio track is analysed). ``engagement`` stays
    ``None`` until a documented engagement score exists. ``stale`` means the last
    analysis failed or timed out; the other fields then repeat the last good reading.
    """

    participant_id: str
    ts: float
    face_visible: bool
    emotion: EmotionScores | None
    engagement: float | None = None
    is_speaking: bool | None = None
    stale: bool = False
    face: FaceMetrics | None = None
    voice: VoiceMetrics | None = None


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True)


class EmotionView(_Event):
    """Emotion scores as the sidebar and API see them."""

    source: Literal["face", "voice", "fused"]
    probs: dict[str, float]
    dominant: str
    confidence: float

    @classmethod
    def of(cls, scores: EmotionScores | None) -> EmotionView | None:
        """Serialise emotion scores (``None`` stays ``None``)."""
        if scores is None:
            return None
        return cls(
            source=scores.source,
            probs={str(k): float(v) for k, v in scores.probs.items()},
            dominant=str(scores.dominant),
            confidence=scores.confidence,
        )


class FaceWindowView(_Event):
    """:class:`FaceWindow` as it leaves the process."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    window_secs: float
    face_frames: int
    blink_freq: float | None
    smile_freq: float | None
    avg_head_tilt: float | None
    percent_away: float | None
    emotion_counts: dict[str, int]


class FaceView(_Event):
    """:class:`FaceMetrics` as it leaves the process (same fields)."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    track_id: int
    calibrated: bool
    blinks: int
    blink_rate_per_min: float | None
    ear: float | None
    smile: float | None
    is_smiling: bool | None
    head_pitch: float | None
    head_yaw: float | None
    head_roll: float | None
    gaze_yaw: float | None
    gaze_pitch: float | None
    looking_away: bool | None
    aus: dict[str, float] | None
    au_labels: tuple[str, ...]
    window: FaceWindowView | None
    emotion_relative: dict[str, float] | None = None


class VoiceView(_Event):
    """:class:`VoiceMetrics` as it leaves the process."""

    is_speaking: bool
    talk_secs: float
    talk_share: float | None
    turns: int
    arousal: float | None
    pitch_hz: float | None
    loudness_dbfs: float | None
    emotion: EmotionView | None
    emotion_status: VoiceEmotionStatus

    @classmethod
    def of(cls, voice: VoiceMetrics | None) -> VoiceView | None:
        """Serialise voice readings (``None`` stays ``None``)."""
        if voice is None:
            return None
        return cls(
            is_speaking=voice.is_speaking,
            talk_secs=voice.talk_secs,
            talk_share=voice.talk_share,
            turns=voice.turns,
            arousal=voice.arousal,
            pitch_hz=voice.pitch_hz,
            loudness_dbfs=voice.loudness_dbfs,
            emotion=EmotionView.of(voice.emotion),
            emotion_status=voice.emotion_status,
        )


class StateView(_Event):
    """A participant state as it leaves the process."""

    participant_id: str
    ts: float
    face_visible: bool
    emotion: EmotionView | None
    engagement: float | None
    is_speaking: bool | None
    stale: bool
    face: FaceView | None = None
    voice: VoiceView | None = None

    @classmethod
    def of(cls, state: ParticipantState) -> StateView:
        """Serialise a state."""
        return cls(
            participant_id=state.participant_id,
            ts=state.ts,
            face_visible=state.face_visible,
            emotion=EmotionView.of(state.emotion),
            engagement=state.engagement,
            is_speaking=state.is_speaking,
            stale=state.stale,
            face=None if state.face is None else FaceView.model_validate(state.face),
            voice=VoiceView.of(state.voice),
        )


class ParticipantInfo(_Event):
    """Who a participant is and whether they are still here.

    A face of a room camera beyond the first is its own participant
    ("Room A · face 2") with ``parent_id`` naming the feed's participant.
    """

    participant_id: str
    display_name: str
    joined_at: float
    left_at: float | None = None
    leave_reason: str | None = None
    state: StateView | None = None
    parent_id: str | None = None
    face_track: int | None = None


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


class TalkParticipantView(_Event):
    """One participant's share of the conversation (see ``analyzers.voice.talk``)."""

    participant_id: str
    is_speaking: bool
    talk_secs: float
    talk_share: float | None
    turns: int
    interruptions: int
    overlap_secs: float
    longest_turn_secs: float


class TalkEvent(_Event):
    """Who is speaking now and the meeting's conversation figures (about once a second)."""

    type: Literal["talk"] = "talk"
    ts: float
    speaking: list[str]
    participants: list[TalkParticipantView]
    duration_secs: float
    speech_secs: float
    silence_secs: float
    long_silences: int
    overlap_secs: float


class NoticeEvent(_Event):
    """A meeting-wide notice for the host, said once (e.g. a model that is unavailable)."""

    type: Literal["notice"] = "notice"
    code: str
    text: str


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
    talk: TalkEvent | None = None
    notices: list[NoticeEvent] = []


MeetingEvent = (
    ParticipantStateEvent | ParticipantJoinedEvent | ParticipantLeftEvent | TalkEvent | NoticeEvent
)
