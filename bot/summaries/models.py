"""What a summarizer reads and writes: :class:`SummaryInput` and :class:`SummaryOutput`.

Both are pydantic models because they may leave the process (a remote summarizer is
sent the input and answers with the output; :meth:`SummaryOutput.response_schema` is
the JSON schema it is asked to follow). Participants appear only as pseudonyms
(``P1``, ``P2``, ... in the order they joined); :class:`Pseudonyms` maps them back to
ids and display names, and never leaves the machine. Times in the input are seconds
since the meeting's first event (never wall-clock dates).

Every figure is ``None`` when it cannot be known from what was observed, and
``nulls`` says why, so that a summarizer never has to guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.types import MomentKind, Trend, VoiceEmotionStatus

Band = Literal["low", "medium", "high"]
SummaryReason = Literal["interval", "end", "request"]

#: How a pseudonym looks in any text of a summary.
ALIAS_RE = re.compile(r"\bP(\d+)\b")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Series(_Model):
    """One reading over the window.

    Attributes:
        mean: Time-weighted mean over the time the reading had a value.
        start: First value in the window.
        end: Last value in the window.
        secs: Seconds of the window in which it had a value.
        reason: Why it had no value (the reading's own reason), when it never had one.
    """

    mean: float | None = None
    start: float | None = None
    end: float | None = None
    secs: float = 0.0
    reason: str | None = None

    @property
    def change(self) -> float | None:
        """``end - start``, or ``None``."""
        if self.start is None or self.end is None:
            return None
        return self.end - self.start


class FaceFeatures(_Model):
    """Seed B's window features, computed from our face readings over the window.

    Attributes:
        face_visible_pct: Share of the observed time with a face in view, 0-100.
        blink_freq: Blinks per second of face time (blink events, counted only while
            the frame rate can see blinks).
        smile_freq: Share of face time smiling (AU12 over the person's neutral face), 0-1.
        avg_head_tilt: Mean head pitch over face time, degrees (+ = looking down).
        percent_away: Share of face time looking away from the person's usual gaze, 0-100.
        emotion_counts: Analysed face frames on which each AU rule label fired
            (``joy``, ``confusion``, ...; several may fire on one frame).
        face_frames: Analysed face frames (the denominator of ``emotion_counts``).
        nulls: Why each ``None`` figure is ``None``.
    """

    face_visible_pct: float | None
    blink_freq: float | None
    smile_freq: float | None
    avg_head_tilt: float | None
    percent_away: float | None
    emotion_counts: dict[str, int]
    face_frames: int
    nulls: dict[str, str] = {}


class TalkInput(_Model):
    """A participant's talk in the window (from the meeting's talk figures).

    Attributes:
        talk_secs: Seconds they spoke in the window.
        share: Their share of everyone's talk in the window, 0-1 (``None``: nobody spoke).
        turns: Turns they took in the window.
        meeting_share: Their share of all talk since the meeting started.
    """

    talk_secs: float
    share: float | None
    turns: int
    meeting_share: float | None


class StateChange(_Model):
    """A fused state that moved in the window."""

    name: str
    label: str
    start: float
    end: float


class ParticipantInput(_Model):
    """One participant (or one face of a room camera) over the window.

    Attributes:
        alias: Their pseudonym (``P1``...).
        observed_secs: Seconds of the window they were observed (states held at most
            a few seconds each).
        joined: They joined during the window.
        left: They left during the window.
        engagement: Engagement 0-1; ``band`` is the band of its mean.
        attention, expressiveness, participation: The engagement components.
        valence, arousal: Expressed valence and arousal, -1..1.
        mood_start, mood_end: Circumplex quadrant of the first and last valence and arousal.
        trend: Their engagement trend at the window's end (over ``fusion.trend_secs``).
        changed_states: Fused states that moved by at least 0.2, largest first.
        face: Seed B's window features.
        talk: Talk in the window; ``None`` without analysed audio.
        voice_emotion: The speech-emotion model's status at the end.
        stale_pct: Share of the observed time the analysis was failing, 0-100.
    """

    alias: str
    observed_secs: float
    joined: bool
    left: bool
    engagement: Series
    band: Band | None
    attention: Series
    expressiveness: Series
    participation: Series
    valence: Series
    arousal: Series
    mood_start: str | None
    mood_end: str | None
    trend: Trend | None
    changed_states: list[StateChange]
    face: FaceFeatures
    talk: TalkInput | None
    voice_emotion: VoiceEmotionStatus | None
    stale_pct: float


class MomentInput(_Model):
    """A notable moment of the window (see :class:`bot.types.Moment`)."""

    at_secs: float
    kind: MomentKind
    participants: list[str]
    speaking: list[str]
    value: float
    window_secs: float


class RoomInput(_Model):
    """The room over the window.

    Attributes:
        present: Participants present at the end.
        engagement, valence, arousal: The room's confidence-weighted means over time.
        band: The engagement band of the room's mean engagement.
        mood_start, mood_end: The room's mood at the start and end.
        trend: Room engagement trend at the end; ``trend_change`` its size.
        speech_secs: Seconds in which someone spoke (``None`` without analysed audio).
        silence_secs: Seconds in which nobody spoke.
        longest_silence_secs: Longest stretch with nobody speaking.
        moments: Notable moments, oldest first.
    """

    present: int
    engagement: Series
    band: Band | None
    valence: Series
    arousal: Series
    mood_start: str | None
    mood_end: str | None
    trend: Trend | None
    trend_change: float | None
    speech_secs: float | None
    silence_secs: float | None
    longest_silence_secs: float | None
    moments: list[MomentInput]


class SummaryInput(_Model):
    """Everything a summarizer is given about one window; pseudonymised.

    Attributes:
        start_secs: Window start, seconds since the meeting's first event.
        end_secs: Window end, likewise.
        reason: Why this summary was made.
        participants: Everyone observed in the window, in joining order.
        room: The room.
        data_quality: Caveats about what was and was not observed.
    """

    start_secs: float
    end_secs: float
    reason: SummaryReason
    participants: list[ParticipantInput]
    room: RoomInput
    data_quality: list[str]

    @property
    def window_secs(self) -> float:
        """Length of the window."""
        return self.end_secs - self.start_secs


class ParticipantSummary(BaseModel):
    """One participant's line of a summary (part of the response schema)."""

    model_config = ConfigDict(extra="forbid")

    participant: str = Field(description="The participant's pseudonym, e.g. P1.")
    engagement_band: Literal["low", "medium", "high", "unknown"] = Field(
        description="The band of their mean engagement as given in the input, or unknown."
    )
    sentence: str = Field(
        min_length=1,
        max_length=500,
        description="Their engagement and expressed mood in one sentence.",
    )


class SummaryOutput(BaseModel):
    """A summary of one window: the response schema a summarizer must follow.

    ``source`` and notes are not part of it: the caller, not the summarizer, says
    who wrote a summary (:class:`bot.types.SummaryEvent`).
    """

    model_config = ConfigDict(extra="forbid")

    participants: list[ParticipantSummary] = Field(
        description="One entry per participant of the input, same pseudonyms."
    )
    room_mood: str = Field(
        min_length=1, max_length=500, description="The room's mood in a sentence."
    )
    changes: list[str] = Field(
        max_length=12, description="What changed in the window, one statement each."
    )
    suggestion: str = Field(
        min_length=1, max_length=500, description="One concrete suggestion for the host."
    )

    @classmethod
    def response_schema(cls) -> dict[str, Any]:
        """The JSON schema a remote summarizer is asked to answer in."""
        schema = cls.model_json_schema()
        # The class docstring speaks to developers; the model is told what the object is.
        schema["description"] = "A mood summary of one window of a meeting, for its host."
        return schema


class InvalidOutput(ValueError):
    """A summarizer's or answerer's output does not fit what it was given."""


class InvalidSummary(InvalidOutput):
    """A summarizer's output does not fit its input (it is never shown as valid)."""


class InvalidAnswer(InvalidOutput):
    """An answerer's output does not fit its question's context (never shown as valid)."""


class SummarizerUnavailable(RuntimeError):
    """A summarizer could not write this summary; the next one tries again.

    The message completes "the <label> ..." in the note shown with the local summary
    instead ("failed: HTTP 503 UNAVAILABLE after 3 attempts"); it never carries names,
    figures or text from the meeting.
    """


def failure_text(e: BaseException, timeout_secs: float) -> str:
    """What went wrong, completing "the <label> ...": no names, figures or text.

    The note shown with a local summary or answer that stands in for a remote one reads
    "the <label> <this>; local summary instead".
    """
    if isinstance(e, TimeoutError):
        return f"timed out after {timeout_secs:g} s"
    if isinstance(e, InvalidOutput):
        return f"returned invalid output ({e})"
    if isinstance(e, SummarizerUnavailable):
        return str(e)
    return "failed"


def validate_output(output: SummaryOutput, inp: SummaryInput) -> SummaryOutput:
    """Check that ``output`` describes ``inp``; returns it.

    Checks: one entry per input participant and no other; each engagement band
    equals the input's (``unknown`` where the input has none); every pseudonym
    named anywhere in the text is one of the input's; no statement is empty or
    longer than 500 characters.

    Raises:
        InvalidSummary: naming the first problem.
    """
    known = {p.alias: p for p in inp.participants}
    seen: set[str] = set()
    for entry in output.participants:
        p = known.get(entry.participant)
        if p is None:
            raise InvalidSummary(f"unknown participant {entry.participant!r}")
        if entry.participant in seen:
            raise InvalidSummary(f"participant {entry.participant!r} appears twice")
        seen.add(entry.participant)
        want = p.band or "unknown"
        if entry.engagement_band != want:
            raise InvalidSummary(
                f"{entry.participant}: band {entry.engagement_band!r}, the input says {want!r}"
            )
    missing = sorted(set(known) - seen)
    if missing:
        raise InvalidSummary(f"participants missing: {', '.join(missing)}")
    texts = [
        output.room_mood,
        output.suggestion,
        *output.changes,
        *(e.sentence for e in output.participants),
    ]
    for text in texts:
        if not text.strip() or len(text) > 500:
            raise InvalidSummary("a statement is empty or longer than 500 characters")
        for m in ALIAS_RE.finditer(text):
            if m.group(0) not in known:
                raise InvalidSummary(f"names {m.group(0)!r}, who is not in the input")
    return output


@dataclass(slots=True)
class Pseudonyms:
    """Pseudonym -> (participant id, display name). Kept on this machine only."""

    by_alias: dict[str, tuple[str, str]] = field(default_factory=dict)

    def name(self, alias: str) -> str:
        """The display name behind a pseudonym (the pseudonym itself if unknown)."""
        entry = self.by_alias.get(alias)
        return entry[1] if entry is not None and entry[1] else alias

    def reveal(self, text: str) -> str:
        """``text`` with every known pseudonym replaced by the display name."""
        return ALIAS_RE.sub(lambda m: self.name(m.group(0)), text)
