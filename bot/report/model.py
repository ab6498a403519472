"""The meeting report as data: :class:`MeetingReport`, versioned, with a published JSON schema.

Everything a report shows is in this model; the HTML, PDF and JSON renderers read
only it (the CSV streams the stored states instead). It is a pydantic model because
it leaves the process: ``GET /api/meetings/{id}/report?format=json`` and
``meetmood report MEETING --format json`` write :meth:`MeetingReport.model_dump_json`,
and its JSON schema (:func:`json_schema`) is committed as ``bot/report/schema.json``
(a test checks that the file matches the model).

:data:`SCHEMA_VERSION` rises whenever a field is removed, renamed or changes meaning;
adding an optional field keeps it. Times are given twice where it helps: ``ts`` on
the meeting clock (Unix seconds) and ``*_secs`` since the meeting's start
(:attr:`ReportMeeting.start_ts`). A figure that could not be measured is ``null`` and
the field beside it says why.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.summaries.models import FaceFeatures, Series
from bot.types import MomentKind, SummaryEvent

#: The version of :class:`MeetingReport`'s shape (``schema_version`` in every report).
SCHEMA_VERSION = 1
#: The ``$id`` of the published schema.
SCHEMA_ID = f"meetmood-report-v{SCHEMA_VERSION}"

#: What the averages and shares are weighted by, said once in every report.
TIME_BASE = (
    "Averages and shares are time-weighted: each stored state counts from its time until "
    "the participant's next state, at most 5 s (longer gaps count as not observed). A "
    "reading's mean is over the time it had a value; 'secs' says how long that was."
)
#: The caveat every report carries.
CAVEAT = (
    "Expressions are not feelings. These figures describe observed facial expressions, "
    "gaze and voice behaviour, relative to each person's own usual face and voice; the "
    "same face goes with many feelings, and people smile when frustrated. They are rough, "
    "often wrong, and must not be used to make decisions about people."
)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ReportMeeting(_Model):
    """The meeting the report describes.

    Attributes:
        id: The meeting's id.
        name: Its name.
        created_at: When it was created (Unix seconds).
        start_ts: Time 0 of the report: the first participant's joining (else creation).
        end_ts: The last stored reading, or the last leaving; the report's time when live.
        duration_secs: ``end_ts - start_ts``.
        status: ``ended`` (everyone left) or ``in progress`` (someone is still connected).
        participants: People and faces seen (faces of a room camera count each).
    """

    id: str
    name: str
    created_at: float
    start_ts: float
    end_ts: float
    duration_secs: float
    status: Literal["ended", "in progress"]
    participants: int


class ReportNotice(_Model):
    """The notice participants were shown on the join page before anything was captured.

    Built from the server's configuration when the report is made (the notice is not
    stored per meeting): ``analyses`` lists what was analysed, then who sees the
    results, what is kept, what is said about summaries and what the results mean.
    """

    analyses: list[str]
    viewers: str
    retention: str
    summaries: str
    meaning: str


class ReportAnalysis(_Model):
    """What was analysed in this meeting and what was not available."""

    analysed: list[str]
    unavailable: list[str]


class ReportSummarizer(_Model):
    """Who wrote the mood summaries.

    Attributes:
        configured: The summarizer the server is set to (``local`` or ``vertex``).
        label: How its summaries are labelled.
        used: Each summarizer label that wrote a stored summary, with how many it wrote.
    """

    configured: Literal["local", "vertex"]
    label: str
    used: dict[str, int]


class ReportTalk(_Model):
    """A participant's share of the conversation over the meeting (the last stored figures).

    Attributes:
        talk_secs: Seconds they spoke.
        talk_share: Their share of everyone's talk, 0-1 (``null``: nobody spoke).
        turns: Turns they took (taking the floor).
        interruptions: Times they started over someone who then stopped.
        overlap_secs: Seconds they spoke while someone else did.
    """

    talk_secs: float
    talk_share: float | None
    turns: int
    interruptions: int | None
    overlap_secs: float | None


class ReportReading(_Model):
    """One registry quantity averaged over the meeting for one participant.

    Attributes:
        name: Registry name (``engagement``, ``happy``, ``calm``, ...).
        group: ``engagement``, ``affect``, ``basic``, ``vocal`` or ``composite``.
        label: How it reads ("Smiling / positive").
        unit: ``share``, ``score``, ``probability``, ...
        low: Lowest possible value.
        high: Highest possible value.
        support: Strength of the published evidence behind it (``none`` = never estimated).
        mean: Time-weighted mean over the time it had a value; ``null`` if it never had one.
        secs: Seconds it had a value (the time base of ``mean``).
        confidence: Time-weighted mean confidence while it had a value (how much of its
            input was observed; not a probability of being right).
        reason: Why ``mean`` is ``null`` (the registry's reason, or the last one given).
        alias_of: The quantity it is the same as, if it is an alias.
    """

    name: str
    group: str
    label: str
    unit: str
    low: float
    high: float
    support: str
    mean: float | None
    secs: float
    confidence: float | None
    reason: str | None = None
    alias_of: str | None = None


class TimeSeries(_Model):
    """Readings over the meeting in equal bins (time-weighted mean per bin).

    Attributes:
        bin_secs: Width of a bin.
        t_secs: Each bin's middle, seconds since the meeting's start.
        values: Reading name -> one value per bin (``null``: no value in that bin).
    """

    bin_secs: float
    t_secs: list[float]
    values: dict[str, list[float | None]]


class MoodSpan(_Model):
    """The expressed mood over one stretch: the circumplex quadrant of mean valence, arousal."""

    start_secs: float
    end_secs: float
    valence: float | None
    arousal: float | None
    mood: str | None


class ReportQuality(_Model):
    """How much of a participant was actually observed.

    Attributes:
        observed_secs: Seconds with a stored state (each held at most 5 s).
        face_visible_pct: Share of that time with a face in view, 0-100.
        voice_analysed: Whether their audio was analysed at all.
        voice_emotion: The speech-emotion model's status at the end (``ok``, ``waiting``,
            ``unavailable``, ``disabled``), ``null`` without analysed audio.
        failing_pct: Share of the observed time the analysis was failing, 0-100.
        engagement_confidence: Mean confidence of engagement while it had a value.
    """

    observed_secs: float
    face_visible_pct: float | None
    voice_analysed: bool
    voice_emotion: str | None
    failing_pct: float
    engagement_confidence: float | None


class ReportParticipant(_Model):
    """One participant (or one face of a room camera) over the meeting.

    Attributes:
        participant_id: Their id.
        display_name: The name they gave.
        source: How they joined (``browser``, ...).
        parent: For a room camera's extra face: the display name of the feed's participant.
        joined_secs: When they joined, seconds since the start.
        left_secs: When they left (``null``: still connected).
        leave_reason: Why they left.
        band: Engagement band of their mean engagement (``null``: none measured).
        engagement: Engagement over the meeting (mean, first, last, seconds with a value).
        attention: Engagement component.
        expressiveness: Engagement component.
        participation: Engagement component.
        valence: Expressed valence, -1..1.
        arousal: Arousal, -1..1.
        mood_start: Mood of the first valence and arousal.
        mood_end: Mood of the last valence and arousal.
        moods: Mood over the meeting in equal stretches.
        talk: Talk share and turns (``null``: their audio was never analysed).
        states: Every registry quantity's meeting average, the 28 states included.
        window_features: Seed B's window features over the whole meeting.
        quality: How much of them was observed.
        series: Engagement, its components, valence and arousal over time.
    """

    participant_id: str
    display_name: str
    source: str
    parent: str | None
    joined_secs: float
    left_secs: float | None
    leave_reason: str | None
    band: Literal["low", "medium", "high"] | None
    engagement: Series
    attention: Series
    expressiveness: Series
    participation: Series
    valence: Series
    arousal: Series
    mood_start: str | None
    mood_end: str | None
    moods: list[MoodSpan]
    talk: ReportTalk | None
    states: list[ReportReading]
    window_features: FaceFeatures
    quality: ReportQuality
    series: TimeSeries


class ReportMoment(_Model):
    """A notable moment with when, what and who was speaking.

    Attributes:
        ts: Meeting clock.
        at_secs: Seconds since the meeting's start.
        kind: ``engagement_drop``, ``engagement_rise``, ``long_silence``, ``joint_smiles``
            or ``media_gap`` (a participant's media paused while the bot reconnected).
        text: The moment in a sentence.
        participants: Who it is about (display names).
        speaking: Who was speaking (display names; empty for a media gap, when nothing
            was heard).
        value: The figure behind it (engagement change, silence seconds, smiling faces,
            seconds of paused media).
        window_secs: The time span the figure covers.
    """

    ts: float
    at_secs: float
    kind: MomentKind
    text: str
    participants: list[str]
    speaking: list[str]
    value: float
    window_secs: float


class ReportRoom(_Model):
    """The room over the meeting.

    Attributes:
        engagement: Room engagement (confidence-weighted mean over participants present).
        valence: Room valence.
        arousal: Room arousal.
        band: Engagement band of the mean room engagement.
        mood_start: The room's first mood.
        mood_end: Its last mood.
        moods: Mood over the meeting in equal stretches.
        speech_secs: Seconds in which someone spoke (``null`` without analysed audio).
        series: Room engagement, valence and arousal over time.
    """

    engagement: Series
    valence: Series
    arousal: Series
    band: Literal["low", "medium", "high"] | None
    mood_start: str | None
    mood_end: str | None
    moods: list[MoodSpan]
    speech_secs: float | None
    series: TimeSeries


class MeetingReport(_Model):
    """A meeting report (schema version :data:`SCHEMA_VERSION`); see the module docstring.

    Attributes:
        schema_version: The version of this shape.
        generated_at: When the report was made (Unix seconds).
        generator: The software that made it.
        meeting: Date, duration, status and size.
        time_base: How averages are weighted.
        caveat: "Expressions are not feelings", in full.
        analysis: What was analysed and what was unavailable.
        notice: The notice participants saw before joining.
        summarizer: Who wrote the summaries.
        participants: Per participant, in joining order.
        room: The room.
        moments: Notable moments, oldest first.
        summaries: The mood summaries, oldest first.
        data_quality: Caveats about what was and was not observed, one per line.
    """

    schema_version: Literal[1] = 1
    generated_at: float
    generator: str
    meeting: ReportMeeting
    time_base: str = TIME_BASE
    caveat: str = CAVEAT
    analysis: ReportAnalysis
    notice: ReportNotice
    summarizer: ReportSummarizer
    participants: list[ReportParticipant]
    room: ReportRoom
    moments: list[ReportMoment]
    summaries: list[SummaryEvent]
    data_quality: list[str] = Field(default_factory=list)


def json_schema() -> dict[str, Any]:
    """The JSON schema of :class:`MeetingReport`, as committed in ``bot/report/schema.json``."""
    schema = MeetingReport.model_json_schema()
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
    }
    schema["title"] = f"meetmood meeting report, schema version {SCHEMA_VERSION}"
    return schema


def json_schema_text() -> str:
    """:func:`json_schema` as the committed file's text."""
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
