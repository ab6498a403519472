"""The bot's data types in one home: observations in, fused states out, events to sinks.

Flow: a :class:`~bot.session.ParticipantSession` turns a participant's media into
**observations** (:class:`FaceObservation` per face slot, :class:`VoiceObservation`,
:class:`SpeakingObservation`); the meeting adds :class:`TalkObservation` from its talk
tracker; :func:`bot.fusion.fuse` folds them into a :class:`ParticipantState`, whose
``readings`` hold every derived quantity of :data:`bot.fusion.registry.REGISTRY`; the
meeting fuses the room (:class:`RoomState`, :class:`Moment`) and publishes **events**
to its sinks (store, sidebar sockets, the summarizer, and later reports).

Per-frame types (``VideoSample``, ``FaceAnalysis``, ``Emotion``) live in
``analyzers.types`` (dependencies point one way). Data types here are frozen,
slotted dataclasses: cheap to build and share between readers. Events are pydantic
models with a literal ``type``; pydantic serialises the dataclasses they carry, so
every field group is written once (here) and the sidebar is told the fields by the
server (``model_dump(mode="json")``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict

from analyzers.types import EMOTIONS, Emotion, FaceAnalysis, FaceEmotion, VideoSample

__all__ = [
    "EMOTIONS",
    "FACE_AUS",
    "AnalysisFailed",
    "AnalysisStarting",
    "AnalyzerStatus",
    "BotEvent",
    "BotInfo",
    "Emotion",
    "EmotionScores",
    "FaceAnalysis",
    "FaceEmotion",
    "FaceMetrics",
    "FaceObservation",
    "FaceWindow",
    "HistoryPoint",
    "JoinAttemptsEvent",
    "LeaveReason",
    "ListeningObservation",
    "MeetingEndedEvent",
    "MeetingEvent",
    "MeetingRef",
    "ModelsEvent",
    "Moment",
    "MomentEvent",
    "MomentKind",
    "NoticeEvent",
    "Observation",
    "ParticipantInfo",
    "ParticipantJoinedEvent",
    "ParticipantLeftEvent",
    "ParticipantState",
    "ParticipantStateEvent",
    "ParticipantWithdrawnEvent",
    "Reading",
    "RoomEvent",
    "RoomPoint",
    "RoomState",
    "SnapshotEvent",
    "SpeakingObservation",
    "StateDefinition",
    "SummarizerInfo",
    "SummaryEvent",
    "SummaryParticipant",
    "TalkEvent",
    "TalkFigures",
    "TalkObservation",
    "TalkParticipantView",
    "Trend",
    "VideoSample",
    "VoiceEmotionStatus",
    "VoiceMetrics",
    "VoiceObservation",
]

#: Where the speech-emotion reading stands (see :class:`VoiceMetrics`).
VoiceEmotionStatus = Literal["ok", "waiting", "starting", "unavailable", "disabled"]
#: Where an analyzer's model stands: loading at start-up (``starting``), loaded (``ok``),
#: could not be loaded (``unavailable``), or not enabled (``disabled``).
AnalyzerStatus = Literal["starting", "ok", "unavailable", "disabled"]
LeaveReason = Literal[
    "left", "disconnected", "failed", "server_shutdown", "server_restart", "meeting_ended"
]
Trend = Literal["rising", "falling", "steady"]


# -- readings of one modality ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EmotionScores:
    """Emotion probabilities from one modality (or fused).

    ``probs`` holds only the classes the source can express (a speech model with four
    classes has four keys); they sum to 1. ``confidence`` is the probability of the
    top class as the model gives it: a softmax output, not a calibrated probability
    of being right.
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

    @classmethod
    def of(
        cls,
        participant_id: str,
        ts: float,
        source: Literal["face", "voice", "fused"],
        probs: Mapping[Emotion, float] | Mapping[str, float],
    ) -> EmotionScores | None:
        """Scores from raw probabilities: normalised, keyed by :class:`Emotion`.

        Keys that are not emotion names are ignored; ``None`` when nothing is left
        (no class the model can express, or all zero).
        """
        known = {Emotion(str(k)): float(v) for k, v in probs.items() if str(k) in _EMOTION_NAMES}
        total = sum(known.values())
        if total <= 0:
            return None
        normed = {e: p / total for e, p in known.items()}
        return cls(participant_id, ts, source, normed, max(normed.values()))


_EMOTION_NAMES = frozenset(e.value for e in EMOTIONS)

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
        looking_away: Whether the gaze is off the person's usual direction by more
            than the threshold; ``None`` before calibration or without a gaze.
        aus: AU proxy intensities 0-5 relative to the neutral baseline, by FACS name.
        au_labels: EMFACS-style rule labels that fired on this frame.
        window: Windowed features over the last ``window_secs`` (seed B's set).
        emotion_relative: Face emotion probabilities minus the person's neutral
            baseline probabilities, per class (-1..1); ``None`` before calibration.
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
    """One participant's own voice: speaking activity, prosody and voice emotion.

    Attributes:
        is_speaking: Whether the voice activity detector hears speech now.
        talk_secs: Seconds of speech since the audio started being analysed.
        arousal: Activation of the last analysed stretch of speech against the
            speaker's own baseline, -1..1; ``None`` until the baseline has enough segments.
        pitch_hz: Median F0 of the last analysed stretch.
        loudness_dbfs: RMS level of the last analysed stretch.
        segment_end_ts: Meeting-clock end of the last analysed stretch of speech
            (``arousal``, ``pitch_hz``, ``loudness_dbfs`` and ``prosody_z`` describe it);
            ``None`` before any.
        prosody_z: z-scores of that stretch against the speaker's baseline
            (``loudness``, ``pitch``, ``range``, ``rate``, ``alpha_ratio``,
            ``hammarberg``); empty during warm-up.
        pause_ratio: Share of that stretch spent in pauses, 0..1.
        emotion: The speech-emotion model's scores for the last classified piece.
        emotion_status: ``ok`` (scores present), ``waiting`` (no piece of 1-4 s
            yet), ``starting`` (the model is still loading: the server has just
            started), ``unavailable`` (model could not be loaded) or ``disabled``.
    """

    is_speaking: bool
    talk_secs: float
    arousal: float | None
    pitch_hz: float | None
    loudness_dbfs: float | None
    emotion: EmotionScores | None
    emotion_status: VoiceEmotionStatus
    segment_end_ts: float | None = None
    prosody_z: Mapping[str, float] = field(default_factory=dict)
    pause_ratio: float | None = None


@dataclass(frozen=True, slots=True)
class TalkFigures:
    """One participant's share of the conversation, from the meeting's talk tracker.

    ``None`` marks a figure that is not known (rows written before it was recorded).

    Attributes:
        talk_secs: Seconds this participant spoke.
        talk_share: Their share of everyone's talk time, 0-1; ``None`` before anyone spoke.
        turns: Turns they took.
        interruptions: Times they talked over someone who then stopped.
        overlap_secs: Seconds they spoke while someone else spoke.
        present: Participants present whose audio is analysed (the fair share is 1/present).
        meeting_speech_secs: Seconds in which someone spoke, meeting-wide.
        meeting_turns: Turns taken by everyone.
    """

    talk_secs: float
    talk_share: float | None
    turns: int
    interruptions: int | None = None
    overlap_secs: float | None = None
    present: int | None = None
    meeting_speech_secs: float | None = None
    meeting_turns: int | None = None


# -- observations: what sessions and the meeting feed to fusion -----------------------


@dataclass(frozen=True, slots=True)
class FaceObservation:
    """One face slot of a participant's feed at one analysed frame.

    Slot 1 is the participant's own face; slots 2, 3, ... are further faces in the
    same feed (a room camera), each fused and shown as its own sub-participant.
    ``emotion=None`` means no face in this slot on this frame ("no face", never neutral),
    unless ``expression_missing`` says why a face that was seen has no expression
    scores (an OpenFace import: no expression classifier).
    """

    participant_id: str
    slot: int
    ts: float
    emotion: EmotionScores | None
    metrics: FaceMetrics | None = None
    expression_missing: str | None = None

    @property
    def face_visible(self) -> bool:
        """Whether a face was seen in this slot."""
        return self.emotion is not None or self.expression_missing is not None


@dataclass(frozen=True, slots=True)
class VoiceObservation:
    """The participant's voice readings changed (speaking, a new segment, new scores)."""

    participant_id: str
    ts: float
    voice: VoiceMetrics


@dataclass(frozen=True, slots=True)
class SpeakingObservation:
    """A speaking change for the meeting's talk tracker.

    ``ts`` is back-dated to the real onset or offset; ``detected_ts`` is when the
    voice activity detector decided (see :class:`~analyzers.voice.pipeline.SpeakingChanged`).
    """

    participant_id: str
    ts: float
    is_speaking: bool
    detected_ts: float


@dataclass(frozen=True, slots=True)
class ListeningObservation:
    """The participant's audio started being analysed (they now count for talk shares)."""

    participant_id: str
    ts: float


@dataclass(frozen=True, slots=True)
class AnalysisFailed:
    """An analysis of this participant failed or timed out; the last reading goes stale."""

    participant_id: str
    ts: float
    modality: Literal["face", "voice"]


@dataclass(frozen=True, slots=True)
class AnalysisStarting:
    """The participant's face analysis waits for its model, still loading at start-up.

    Until their first face observation, fusion says so ("analysis starting") instead of
    reading the missing face analyses as a camera that sends nothing.
    """

    participant_id: str
    ts: float


@dataclass(frozen=True, slots=True)
class TalkObservation:
    """The meeting's talk figures for one participant (the meeting produces these)."""

    participant_id: str
    ts: float
    talk: TalkFigures


#: Everything a session or the meeting observes about a participant.
Observation = (
    FaceObservation
    | VoiceObservation
    | SpeakingObservation
    | ListeningObservation
    | AnalysisFailed
    | AnalysisStarting
    | TalkObservation
)


# -- fused state ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reading:
    """One derived quantity of one participant (an entry of the state registry).

    Attributes:
        value: The value in the definition's range, or ``None`` when it cannot be
            estimated from what was observed (``reason`` says why).
        confidence: 0-1, how much of the quantity's input was actually observed:
            the weighted share of its inputs that were available, each scaled by its
            quality (see :mod:`bot.fusion.inputs`). 0 when ``value`` is ``None``.
            It is not a probability of being right.
        reason: Why the value is ``None``, or a caveat that applies now.
        sources: The inputs that fed this value (e.g. ``face_fer``, ``voice_prosody``).
    """

    value: float | None
    confidence: float = 0.0
    reason: str | None = None
    sources: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ParticipantState:
    """One participant (or one face of a room camera) at one moment, as fusion made it.

    Frozen: fusion builds a new one each time, so readers can share it safely.

    Attributes:
        participant_id: Who.
        ts: Meeting-clock seconds; never goes back for one participant.
        face_visible: A face was seen in the last analysed frame.
        emotion: The face emotion model's scores (``None``: no face).
        is_speaking: Speaking now (``None`` until the audio is analysed).
        stale: The last analysis failed; the readings repeat the last good ones.
        face: Landmark readings of the face (``None`` without a face or landmarks).
        voice: The participant's own voice readings (``None`` without analysed audio).
        talk: Talk figures from the meeting (``None`` until the meeting has them).
        readings: Every derived quantity by registry name (engagement, its
            components, valence, arousal and the 28 states).
    """

    participant_id: str
    ts: float
    face_visible: bool
    emotion: EmotionScores | None
    is_speaking: bool | None = None
    stale: bool = False
    face: FaceMetrics | None = None
    voice: VoiceMetrics | None = None
    talk: TalkFigures | None = None
    readings: Mapping[str, Reading] = field(default_factory=dict)

    def value(self, name: str) -> float | None:
        """The value of reading ``name`` (``None`` if absent or not estimable)."""
        reading = self.readings.get(name)
        return None if reading is None else reading.value

    @property
    def engagement(self) -> float | None:
        """The engagement score, 0-1, or ``None``."""
        return self.value("engagement")


# -- the room -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoomState:
    """The meeting as a whole at one moment (see :mod:`bot.fusion.room`).

    Attributes:
        ts: Meeting-clock seconds.
        present: Participants (faces of room cameras included) connected now.
        engagement: Confidence-weighted mean engagement of those who have one.
        engagement_n: How many participants that mean is over.
        valence: Confidence-weighted mean expressed valence, -1..1.
        arousal: Confidence-weighted mean arousal, -1..1.
        mood: The circumplex quadrant of (valence, arousal), e.g. "positive, energetic";
            ``None`` without both.
        dominant: The most common dominant fused expression among participants.
        speaking: Participants speaking now.
        trend: Room engagement over the trend window: rising, falling or steady.
        trend_change: The change over the trend window by least squares (per window).
        trends: Each participant's engagement trend over the same window.
    """

    ts: float
    present: int
    engagement: float | None
    engagement_n: int
    valence: float | None
    arousal: float | None
    mood: str | None
    dominant: str | None
    speaking: tuple[str, ...]
    trend: Trend | None
    trend_change: float | None
    trends: Mapping[str, Trend] = field(default_factory=dict)


MomentKind = Literal[
    "engagement_drop", "engagement_rise", "long_silence", "joint_smiles", "media_gap"
]


@dataclass(frozen=True, slots=True)
class Moment:
    """A notable moment of the meeting.

    Attributes:
        ts: When it happened (meeting clock).
        kind: What happened.
        participants: Who it is about (the silent one, the smiling ones; empty for the room).
        speaking: Who was speaking at ``ts``.
        value: The figure behind it (the engagement change, the silence in seconds,
            the number of smiling faces).
        window_secs: The time span the figure covers.
    """

    ts: float
    kind: MomentKind
    participants: tuple[str, ...]
    speaking: tuple[str, ...]
    value: float
    window_secs: float


# -- what leaves the process ----------------------------------------------------------


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True)


class StateDefinition(_Event):
    """One entry of the state registry as clients see it (no function)."""

    name: str
    group: str
    label: str
    definition: str
    unit: str
    low: float
    high: float
    inputs: tuple[str, ...]
    support: str
    formula: str
    alias_of: str | None = None
    null_reason: str | None = None


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
    state: ParticipantState | None = None
    parent_id: str | None = None
    face_track: int | None = None
    source: str = "browser"


class HistoryPoint(_Event):
    """One point of a participant's timeline."""

    ts: float
    face_visible: bool
    is_speaking: bool | None = None
    engagement: float | None = None
    attention: float | None = None
    expressiveness: float | None = None
    participation: float | None = None
    valence: float | None = None
    arousal: float | None = None


class RoomPoint(_Event):
    """One point of the room's timeline."""

    ts: float
    engagement: float | None
    valence: float | None
    arousal: float | None


class ParticipantStateEvent(_Event):
    """A new state for one participant."""

    type: Literal["participant_state"] = "participant_state"
    state: ParticipantState


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
    current_silence_secs: float = 0.0


class RoomEvent(_Event):
    """The room's engagement, mood and trends (about once a second)."""

    type: Literal["room"] = "room"
    room: RoomState


class MomentEvent(_Event):
    """A notable moment."""

    type: Literal["moment"] = "moment"
    moment: Moment


class JoinAttemptsEvent(_Event):
    """How many join attempts of the meeting never connected (a count, never a person).

    A browser that was answered but whose connection never came up within
    ``limits.connect_timeout_secs`` (or that left before it did) is not a participant:
    no card, no row, only this count goes up.
    """

    type: Literal["join_attempts"] = "join_attempts"
    unconnected: int


class NoticeEvent(_Event):
    """A meeting-wide notice for the host, said once (e.g. a model that is unavailable)."""

    type: Literal["notice"] = "notice"
    code: str
    text: str


class LoadEvent(_Event):
    """The server's load, once a second (see :mod:`bot.load`).

    ``busy``: the face-analysis rate of every feed is reduced below 90 % of the
    configured one to keep latency down; ``text`` then says so for the host.
    Rates are face analyses per second per video feed; ``lag_ms_p95`` is from a frame's
    arrival to its reading (95th percentile over the last ``5 s``); CPU is in % of one
    core (``cpus`` cores), over this server's process and its inference workers.
    """

    type: Literal["load"] = "load"
    ts: float
    feeds: int
    face_fps_target: float
    face_fps_granted: float
    face_fps_min: float | None = None
    face_fps_mean: float | None = None
    lag_ms_p95: float | None = None
    voice_emotion_runs_per_sec: float = 0.0
    cpu_percent: float | None = None
    rss_mb: float | None = None
    cpus: int = 1
    busy: bool = False
    text: str = ""


class ModelsEvent(_Event):
    """Whether the server's models are loaded: in every snapshot, and sent once they are.

    The models load in the background while the server already answers: ``state`` is
    ``starting`` until every enabled analyzer's model is loaded (or known unavailable),
    then ``ready``. Participants who join meanwhile are analysed as soon as their
    analyzer is loaded. ``analyzers``: each enabled analyzer's status.
    """

    type: Literal["models"] = "models"
    state: Literal["starting", "ready"]
    analyzers: dict[str, AnalyzerStatus] = {}


class SummaryParticipant(_Event):
    """One participant's lines of a summary, with their name mapped back locally."""

    participant_id: str
    display_name: str
    engagement_band: Literal["low", "medium", "high", "unknown"]
    text: str


class SummaryEvent(_Event):
    """A periodic mood summary of the meeting (see :mod:`bot.summaries`).

    Attributes:
        id: Random id of this summary.
        ts: When it was made (meeting clock).
        window_start: Start of the time it covers (meeting clock).
        window_end: End of the time it covers.
        reason: ``interval`` (every ``summaries.interval_secs``), ``end`` (the last
            participant left) or ``request`` (the host asked).
        source: Which summarizer wrote it (``local``: the deterministic rules;
            ``vertex``: Gemini on Vertex AI).
        label: How the sidebar labels it ("local summary").
        model: The model that wrote it (``vertex`` only, e.g. ``gemini-3.5-flash``).
        participants: One entry per participant seen in the window.
        room_mood: The room's mood in a sentence.
        changes: What changed in the window, one statement each.
        suggestion: One concrete suggestion for the host.
        text: All of it as plain text.
        note: Why this summary is not from the configured summarizer (a fallback).
        error: Set when no valid summary could be made; the other fields are then empty.
    """

    type: Literal["summary"] = "summary"
    id: str
    ts: float
    window_start: float
    window_end: float
    reason: Literal["interval", "end", "request"]
    source: Literal["local", "vertex"]
    label: str
    model: str | None = None
    participants: list[SummaryParticipant] = []
    room_mood: str = ""
    changes: list[str] = []
    suggestion: str = ""
    text: str = ""
    note: str | None = None
    error: str | None = None


class ParticipantWithdrawnEvent(_Event):
    """A participant withdrew: they left and everything stored about them was deleted.

    Attributes:
        participant_ids: The participant and the faces of their feed (sub-participants).
        ts: When (meeting clock).
        summaries: The meeting's latest summaries as stored now, without them, to replace
            the ones the sidebar shows.
    """

    type: Literal["participant_withdrawn"] = "participant_withdrawn"
    participant_ids: list[str]
    ts: float
    summaries: list[SummaryEvent] = []


class MeetingEndedEvent(_Event):
    """The host ended the meeting (``deleted``: and deleted it); the sidebar stops here."""

    type: Literal["meeting_ended"] = "meeting_ended"
    ts: float
    deleted: bool = False


class SummarizerInfo(_Event):
    """Which summarizer is active, for the sidebar.

    Attributes:
        name: ``local`` or ``vertex``.
        label: How its summaries are labelled.
        interval_secs: Meeting time between two summaries.
        enabled: Summaries are made at all.
        model: The model (``vertex`` only).
        where: Where it runs and what leaves this machine, in a sentence the sidebar
            shows ("nothing leaves this machine").
    """

    name: Literal["local", "vertex"]
    label: str
    interval_secs: float
    enabled: bool = True
    model: str | None = None
    where: str = ""


class MeetingRef(_Event):
    """The meeting a snapshot describes (``ended_at`` set once the host ended it)."""

    id: str
    name: str
    ended_at: float | None = None


class BotInfo(_Event):
    """A bot the host invited into a meeting elsewhere (a Janus room, a WHEP stream).

    Attributes:
        state: ``connecting``, ``in_room``, ``reconnecting``, ``left`` or ``failed``.
        detail: Why it failed, left or is reconnecting, in a sentence ("" otherwise).
        where: The server and room it went to (no pin, no token).
        participants: How many people it analyses now.
    """

    bot_id: str
    kind: Literal["janus", "whep"]
    where: str
    display_name: str
    state: Literal["connecting", "in_room", "reconnecting", "left", "failed"]
    detail: str = ""
    started_at: float
    participants: int = 0


class BotEvent(_Event):
    """A bot's state changed."""

    type: Literal["bot"] = "bot"
    bot: BotInfo


class SnapshotEvent(_Event):
    """Everything a sidebar needs after it (re)connects."""

    type: Literal["snapshot"] = "snapshot"
    meeting: MeetingRef
    history_secs: int
    server_ts: float
    participants: list[ParticipantInfo]
    history: dict[str, list[HistoryPoint]]
    definitions: list[StateDefinition] = []
    engagement_bands: tuple[float, float] = (0.35, 0.6)
    room: RoomState | None = None
    room_history: list[RoomPoint] = []
    moments: list[Moment] = []
    talk: TalkEvent | None = None
    notices: list[NoticeEvent] = []
    summaries: list[SummaryEvent] = []
    summarizer: SummarizerInfo | None = None
    bots: list[BotInfo] = []
    #: Join attempts that never connected (see :class:`JoinAttemptsEvent`).
    unconnected_joins: int = 0
    #: Whether the server's models are loaded (``None``: not told, as ready).
    models: ModelsEvent | None = None
    #: The server's load when the sidebar connected (``None`` before the first report).
    load: LoadEvent | None = None


MeetingEvent = (
    ParticipantStateEvent
    | ParticipantJoinedEvent
    | ParticipantLeftEvent
    | TalkEvent
    | RoomEvent
    | MomentEvent
    | NoticeEvent
    | SummaryEvent
    | BotEvent
    | ParticipantWithdrawnEvent
    | MeetingEndedEvent
    | JoinAttemptsEvent
    | ModelsEvent
    | LoadEvent
)
