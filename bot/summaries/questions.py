"""Questions about a meeting: what an answerer reads and writes, and how a question is read.

The host asks in plain words ("who seemed disengaged in the last ten minutes?"); an
:class:`Answerer` answers from the meeting's stored readings. What it is given is a
:class:`QuestionContext`: the stored states of the range the question asks about,
the room's timeline, the notable moments and the mood summaries, **pseudonymised**
(``P1``, ``P2``, ... in joining order; names never leave this machine, and the question
itself has its names replaced by pseudonyms before any answerer sees it). Times are
seconds since the meeting started (the first participant joined). It answers with an
:class:`Answer`: a short text and the structure behind it (kind, subject, the range it
looked at, participants, figures, the sources used).

This module holds the models, the :class:`Answerer` protocol and the **reading rules**
(pure, deterministic, no model): :func:`match_names` finds participants' names,
:func:`parse_question` the kind, the subject, the direction and the time range. The
local answerer's rules are in :mod:`bot.summaries.answers`; gathering the context from
the store in :mod:`bot.summaries.ask`.

Reading rules, applied to the lower-cased question:

- **Names**: a participant's full display name, then their first name (the first word
  of the display name), then another word of it from three letters on (a surname), as
  a whole word, case-insensitive; longer names first. A first name or surname two
  participants share, without the full name, is ambiguous.
- **Time range**: "(in) the last/past/previous N seconds/minutes/hours" (N in digits
  or words, "a"/"the last minute" = 1, "a couple of" = 2, "a few" = 5, "half an hour"
  = 30 minutes); "the first N minutes"; "since/after/from T" with "to/until T2";
  "between T and T2"; "before/until T". T is meeting time, "m:ss" or "h:mm:ss" as the
  answers write it, or "minute N". Anything else ("today", "so far", nothing) is the
  whole meeting. The range is clipped to the meeting so far and always stated.
- **Kind**, first that applies: *compare* ("compare", "versus", "vs", "difference
  between", or two names with "more"/"less"/"than"); *when* ("when", "what time", "at
  what point"); *how long* ("how long", "how much time", "how many minutes/seconds");
  *who* ("who", "which participant/person", "anyone"); *summary* ("summary",
  "summarize", "what happened", "recap", "overview", "suggest"); *value* ("how
  engaged/was/were/did", "what was", "average", "mean", or a name with a subject).
- **Subject**, first that applies: talk ("speak", "talk", "said", "quiet", "silent",
  "silence"); face ("face", "camera", "in view", "visible", "off screen"); the
  engagement components by name ("attention"/"attentive", "expressive",
  "participation"); engagement ("engaged", "engagement", "disengaged"); any other state
  of the registry by its name or label, or a listed word form ("confusion" →
  confused, "smiling" → happy, "boredom" → bored, ...); expressed mood = valence
  ("mood", "valence", "positive", "negative", "happy", "sad", "cheerful", "upset");
  energy = arousal ("energy", "energetic", "arousal", "lively", "tired").
- **Direction**: *low* for "least", "lowest", "less", "disengaged", "not engaged",
  "quiet", "negative", "sad", "tired", "did not", "never", ...; *high* otherwise.
  For *when*: "drop"/"fall"/"decline"/"dip" → drop; "rise"/"improve"/"pick up" → rise;
  "peak"/"highest"/"best"/"most" → peak; "lowest"/"worst"/"bottom" → lowest; else the
  largest change either way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, computed_field

from bot.fusion.registry import BY_NAME, REGISTRY
from bot.summaries.local import clock
from bot.summaries.models import MomentInput, Pseudonyms

Kind = Literal["who", "when", "how_long", "compare", "value", "summary", "unknown"]
Source = Literal["states", "room", "moments", "summaries"]
Direction = Literal["low", "high"]
Change = Literal["drop", "rise", "peak", "lowest", "change"]

#: Longest question, characters.
QUESTION_MAX = 500


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# -- what an answerer reads ------------------------------------------------------------------


class Track(_Model):
    """One participant's stored states in the range, oldest first, as columns.

    Attributes:
        alias: Their pseudonym.
        joined_secs: When they joined (meeting seconds).
        left_secs: When they left, or ``None``.
        t: Each state's time (meeting seconds).
        hold: Seconds each state stands for: until their next state, at most a few
            seconds (longer when the states were thinned), never past the range end.
        face_visible: A face was in view.
        speaking: Speaking (``None``: their voice was not analysed).
        talk_secs: Their cumulative talk time from the meeting's talk tracker (``None``
            before it was known).
        readings: Reading name -> value per state (``None``: not measured then).
        reasons: Reading name -> the latest reason it was not measured, if it was not.
    """

    alias: str
    joined_secs: float
    left_secs: float | None = None
    t: list[float] = []
    hold: list[float] = []
    face_visible: list[bool] = []
    speaking: list[bool | None] = []
    talk_secs: list[float | None] = []
    readings: dict[str, list[float | None]] = {}
    reasons: dict[str, str] = {}


class RoomTrack(_Model):
    """The room's timeline in the range (about once a second), as columns."""

    t: list[float] = []
    hold: list[float] = []
    engagement: list[float | None] = []
    valence: list[float | None] = []
    arousal: list[float | None] = []
    speaking: list[list[str]] = []


class SummaryNote(_Model):
    """A stored mood summary that overlaps the range (pseudonymised text)."""

    start_secs: float
    end_secs: float
    label: str
    room_mood: str
    changes: list[str]
    suggestion: str
    error: str | None = None


class AnswerRange(_Model):
    """The time an answer looked at.

    Attributes:
        start_secs: Start, meeting seconds.
        end_secs: End, meeting seconds.
        phrase: How the question put it ("the last 10 minutes", "the whole meeting").
    """

    start_secs: float
    end_secs: float
    phrase: str

    @computed_field  # type: ignore[prop-decorator]
    @property
    def text(self) -> str:
        """``the last 10 minutes (15:20–25:20)``."""
        return f"{self.phrase} ({clock(self.start_secs)}–{clock(self.end_secs)})"


class QuestionContext(_Model):
    """Everything an answerer is given about the meeting for one question; pseudonymised.

    Attributes:
        now_secs: How long the meeting has run (or ran), seconds.
        range: The range the question asks about (the whole meeting when it names none).
        participants: Everyone in the meeting, in joining order, with their states in
            the range (empty columns when they have none).
        room: The room's timeline in the range.
        moments: Notable moments in the range.
        summaries: Mood summaries overlapping the range, newest first.
        bands: The engagement bands (low below the first, high from the second).
        stride: 1, or n when only every n-th stored state was read (long ranges).
    """

    now_secs: float
    range: AnswerRange
    participants: list[Track]
    room: RoomTrack
    moments: list[MomentInput]
    summaries: list[SummaryNote]
    bands: tuple[float, float]
    stride: int = 1


# -- what it writes ------------------------------------------------------------------------


class Figure(_Model):
    """One figure an answer quotes, from stored data.

    Attributes:
        participant: Whose (a pseudonym; the display name once revealed), ``None``: the room.
        measure: What it is ("mean engagement", "talk", "change").
        value: The figure; ``None`` when it was not measured.
        unit: ``score`` (0-1), ``signed`` (-1..1), ``s`` (seconds) or ``count``.
        note: Why it is ``None``, or the band.
    """

    participant: str | None
    measure: str
    value: float | None
    unit: str
    note: str | None = None


class Answer(_Model):
    """An answer to one question (see the module docstring).

    Attributes:
        text: The answer in a few plain sentences.
        kind: What kind of question it was read as.
        subject: What it measured (a reading name, ``talk``, ``silence``, ``face``), if any.
        range: The time it looked at.
        participants: Who it is about (pseudonyms; names once revealed).
        figures: The figures it quotes.
        sources: The stored data it used.
        answered: ``False`` when it says why it cannot answer.
        note: Why this answer is not from the configured answerer (a fallback).
    """

    text: str = Field(min_length=1, max_length=2000)
    kind: Kind
    subject: str | None
    range: AnswerRange
    participants: list[str] = []
    figures: list[Figure] = []
    sources: list[Source] = []
    answered: bool = True
    note: str | None = None


class Answerer(Protocol):
    """Answers a question from a :class:`QuestionContext`. Called on the event loop.

    ``answer`` must not block the loop (a remote call is awaited; the local rules are
    cheap). It may raise or time out: :func:`bot.summaries.ask.ask` then answers with
    the local rules and says so.
    """

    #: ``local`` or ``vertex``.
    name: str
    #: How the sidebar labels its answers ("local answer").
    label: str

    @property
    def model(self) -> str | None:
        """The model that answers (``None`` for the local rules)."""
        ...

    async def answer(self, question: str, context: QuestionContext, names: Pseudonyms) -> Answer:
        """The answer to ``question`` (its names already replaced by pseudonyms).

        ``names`` says who the pseudonyms are; an answerer sends no name anywhere
        unless it is configured to (``summaries.vertex.share_names``).
        """
        ...

    async def aclose(self) -> None:
        """Release connections (the server stops)."""
        ...


# -- names ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NameMatch:
    """A question with participants' names replaced by their pseudonyms.

    Attributes:
        text: The question, names replaced.
        aliases: The pseudonyms named, in the order they appear (each once).
        ambiguous: Words that name several participants -> their pseudonyms.
    """

    text: str
    aliases: tuple[str, ...]
    ambiguous: dict[str, tuple[str, ...]]


def _word(text: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w]){re.escape(text)}(?![\w])", re.IGNORECASE)


def match_names(question: str, people: list[tuple[str, str]]) -> NameMatch:
    """Replace participants' names in ``question`` by pseudonyms (see the module docstring).

    Args:
        question: The question as asked.
        people: ``(pseudonym, display name)`` in joining order.
    """
    full: dict[str, list[str]] = {}
    first: dict[str, list[str]] = {}
    other: dict[str, list[str]] = {}
    for alias, name in people:
        name = " ".join(name.split())
        if not name:
            continue
        full.setdefault(name.lower(), []).append(alias)
        head, *rest = name.split()
        if len(head) >= 2 and head.lower() != name.lower():
            first.setdefault(head.lower(), []).append(alias)
        for word in dict.fromkeys(w.lower() for w in rest if len(w) >= 3):
            other.setdefault(word, []).append(alias)
    text = question
    ambiguous: dict[str, tuple[str, ...]] = {}
    # Full names, longest first, then first names; a placeholder keeps replaced text out
    # of later matches.
    slots: list[str] = []

    def put(aliases: list[str]) -> str:
        slots.append(aliases[0])
        return f"\x00{len(slots) - 1}\x00"

    for table in (full, first, other):
        for key in sorted(table, key=len, reverse=True):
            aliases = table[key]
            pattern = _word(key)
            if not pattern.search(text):
                continue
            if len(aliases) > 1:
                ambiguous[key] = tuple(aliases)
                continue
            text = pattern.sub(put(aliases), text)
    found: list[str] = []

    def back(m: re.Match[str]) -> str:
        alias = slots[int(m.group(1))]
        if alias not in found:
            found.append(alias)
        return alias

    text = re.sub(r"\x00(\d+)\x00", back, text)
    return NameMatch(text, tuple(found), ambiguous)


# -- time ranges ---------------------------------------------------------------------------

_NUMBERS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "fifteen": 15,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "forty-five": 45,
    "fifty": 50,
    "sixty": 60,
    "ninety": 90,
    "couple of": 2,
    "couple": 2,
    "few": 5,
}
_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600}
_UNITS |= {"hr": 3600, "hour": 3600}
_WORD_NUM = "|".join(sorted((re.escape(w) for w in _NUMBERS), key=len, reverse=True))
_UNIT = r"(?:seconds?|secs?|minutes?|mins?|hours?|hrs?)"
_SPAN = (
    rf"(?:(?P<digits>\d+(?:\.\d+)?)\s*(?P<unit1>{_UNIT}|s|m|h)"
    rf"|(?:(?:a|the)\s+)?(?:(?P<words>{_WORD_NUM})\s+)?(?P<unit2>{_UNIT})"
    r"|(?P<half>half\s+(?:an\s+)?hour))\b"
)
_LAST = re.compile(rf"\b(?:last|past|previous|final|recent)\s+{_SPAN}")
_FIRST = re.compile(rf"\b(?:first|opening)\s+{_SPAN}")
_TIME = r"(?:minute\s+\d+(?:\.\d+)?|\d{1,2}:\d{2}(?::\d{2})?)"
_BETWEEN = re.compile(
    rf"\b(?:between|from|since|after)\s+(?P<a>{_TIME})"
    rf"(?:\s*(?:and|to|until|till|-|–)\s*(?P<b>{_TIME}))?"
)
_BEFORE = re.compile(rf"\b(?:before|until|till|up to)\s+(?P<b>{_TIME})")


def _unit_secs(unit: str) -> float:
    unit = unit.rstrip("s") or "s"
    return _UNITS.get(unit, _UNITS.get(unit[:3], 60))


def _span_secs(m: re.Match[str]) -> float:
    if m.group("half"):
        return 1800.0
    if m.group("digits"):
        return float(m.group("digits")) * _unit_secs(m.group("unit1"))
    count = _NUMBERS.get(m.group("words") or "one", 1)
    return count * _unit_secs(m.group("unit2"))


def _time_secs(text: str) -> float:
    text = text.strip()
    if text.startswith("minute"):
        return 60 * float(text.split()[1])
    parts = [int(p) for p in text.split(":")]
    secs = 0
    for p in parts:
        secs = secs * 60 + p
    return float(secs)


def span_text(secs: float) -> str:
    """A length as the range phrases write it: ``10 minutes``, ``90 seconds``, ``1 hour``."""
    if secs >= 3600 and secs % 3600 == 0:
        n, unit = secs / 3600, "hour"
    elif secs >= 60 and secs % 60 == 0:
        n, unit = secs / 60, "minute"
    else:
        n, unit = secs, "second"
    count = f"{n:g}"
    return f"{count} {unit}{'' if count == '1' else 's'}"


@dataclass(frozen=True, slots=True)
class RangeSpec:
    """The time range a question asks about, before it is clipped to the meeting.

    ``kind``: ``whole``; ``last`` (``secs`` before the end); ``first`` (``secs`` from the
    start); ``between`` (``start`` to ``end``, meeting seconds; ``end`` ``None``: to now).
    """

    kind: Literal["whole", "last", "first", "between"]
    secs: float = 0.0
    start: float = 0.0
    end: float | None = None

    def resolve(self, now_secs: float) -> AnswerRange:
        """The range within the meeting so far (``now_secs`` long), with its phrase."""
        now = max(0.0, now_secs)
        match self.kind:
            case "last":
                return AnswerRange(
                    start_secs=max(0.0, now - self.secs),
                    end_secs=now,
                    phrase=f"the last {span_text(self.secs)}",
                )
            case "first":
                return AnswerRange(
                    start_secs=0.0,
                    end_secs=min(now, self.secs),
                    phrase=f"the first {span_text(self.secs)}",
                )
            case "between":
                if self.end is None:
                    phrase = f"since {clock(self.start)}"
                elif self.start <= 0:
                    phrase = f"before {clock(self.end)}"
                else:
                    phrase = f"from {clock(self.start)} to {clock(self.end)}"
                end = now if self.end is None else min(now, self.end)
                return AnswerRange(start_secs=self.start, end_secs=end, phrase=phrase)
            case _:
                return AnswerRange(start_secs=0.0, end_secs=now, phrase="the whole meeting")


def parse_range(question: str) -> RangeSpec:
    """The time range a question names (see the module docstring)."""
    q = question.lower()
    if m := _LAST.search(q):
        return RangeSpec("last", secs=_span_secs(m))
    if m := _FIRST.search(q):
        return RangeSpec("first", secs=_span_secs(m))
    if m := _BETWEEN.search(q):
        a = _time_secs(m.group("a"))
        b = _time_secs(m.group("b")) if m.group("b") else None
        if b is not None and b < a:
            a, b = b, a
        return RangeSpec("between", start=a, end=b)
    if m := _BEFORE.search(q):
        return RangeSpec("between", start=0.0, end=_time_secs(m.group("b")))
    return RangeSpec("whole")


# -- subjects, kinds, directions -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subject:
    """What a question measures.

    Attributes:
        key: ``talk``, ``silence``, ``face`` or a registry reading name.
        label: How answers name it ("engagement", "expressed mood (valence)").
        reading: The stored reading behind it (aliases resolved), if any.
        null_reason: Why it is never estimable (a registry state that always reads null).
    """

    key: str
    label: str
    reading: str | None = None
    null_reason: str | None = None


def _rx(*words: str) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(words) + r")\b")


_TALK = _rx(
    r"speak\w*",
    r"spoke\w*",
    r"talk\w*",
    "said",
    "say",
    "speech",
    "quiet\\w*",
    "silent",
    "silence",
    "mute\\w*",
)
_SILENCE = _rx("silent", "silence", "quiet", "nobody (?:spoke|talked|was speaking)")
_FACE = _rx(
    "face",
    "faces",
    "camera",
    "cameras",
    "in view",
    "out of view",
    "visible",
    "invisible",
    "off[- ]screen",
    "on screen",
)
_COMPONENTS = {
    "attention": _rx("attention", "attentive", "paying attention"),
    "expressiveness": _rx("expressive", "expressiveness"),
    "participation": _rx(r"participat\w*"),
}
_ENGAGEMENT = _rx(r"engag\w*", r"disengag\w*", "involved")
_VALENCE = _rx(
    "mood",
    "moods",
    "valence",
    "positive",
    "negative",
    "happy",
    "happier",
    "happiest",
    "sad",
    "sadder",
    "saddest",
    "unhappy",
    "cheerful",
    "upset",
    "upbeat",
)
_AROUSAL = _rx("energy", "energetic", "arousal", "lively", "tired", "activation", "animated")
#: Word forms that name a registry state.
STATE_WORDS = {
    "confusion": "confused",
    "frustration": "frustrated",
    "anxiety": "anxious",
    "stress": "stressed",
    "boredom": "bored",
    "boring": "bored",
    "interest": "interested",
    "excitement": "excited",
    "surprised": "surprise",
    "anger": "angry",
    "fearful": "fear",
    "scared": "fear",
    "afraid": "fear",
    "disgusted": "disgust",
    "distraction": "distracted",
    "skepticism": "skeptical",
    "sceptical": "skeptical",
    "relaxation": "relaxed",
    "alertness": "alert",
    "curiosity": "curious",
    "confidence": "confident",
    "calmer": "calm",
    "calmest": "calm",
    "enthusiasm": "enthusiastic",
    "smile": "happy",
    "smiles": "happy",
    "smiled": "happy",
    "smiling": "happy",
    "looking away": "distracted",
    "looked away": "distracted",
    "trusting": "trust",
}
_STATE_SKIP = frozenset({"engaged", "happy", "sad"})  # read as engagement and mood
_STATES = [
    (d.name, _rx(re.escape(d.name), re.escape(d.label.lower())))
    for d in REGISTRY
    if d.group not in ("engagement", "affect") and d.name not in _STATE_SKIP
]
_STATE_FORMS = [
    (target, _rx(re.escape(word)))
    for word, target in sorted(STATE_WORDS.items(), key=lambda kv: -len(kv[0]))
]

_LOW = _rx(
    "least",
    "lowest",
    "less",
    "lower",
    "low",
    r"disengag\w*",
    "not engaged",
    "unengaged",
    "quiet",
    "quieter",
    "quietest",
    "silent",
    "negative",
    "sad",
    "sadder",
    "saddest",
    "unhappy",
    "upset",
    "worst",
    "worse",
    "bottom",
    "tired",
    "flat",
    "not",
    "didn'?t",
    "never",
    "minimum",
    "fewest",
)
_SUPERLATIVE = _rx(
    "most",
    "least",
    "highest",
    "lowest",
    "best",
    "worst",
    "top",
    "bottom",
    "quietest",
    "loudest",
    "happiest",
    "saddest",
    "calmest",
    "longest",
    "shortest",
    "fewest",
)
_DROP = _rx(
    r"drop\w*", "fall", "fell", "falling", r"declin\w*", r"dip\w*", "sank", "sink", r"worsen\w*"
)
_RISE = _rx(r"rise\w*", "rose", "rising", r"improv\w*", r"increas\w*", "pick(?:ed)? up", "grew")
_PEAK = _rx("peak\\w*", "highest", "best", "most", "top", "maximum")
_LOWEST = _rx("lowest", "worst", "bottom", "minimum", "low point")

_COMPARE = _rx("compare", "compared", "comparing", "versus", "vs\\.?", "difference between")
_MORE_LESS = _rx("more", "less", "than", "better", "worse")
_WHEN = _rx("when", "what time", "at what point", "which minute")
_HOW_LONG = _rx("how long", "how much time", "how many (?:minutes|seconds|mins|secs)")
_WHO = _rx(
    "who",
    "whom",
    "which (?:participant|person|people|one)",
    "anyone",
    "anybody",
    "someone",
    "somebody",
)
_SUMMARY = _rx(r"summar\w*", "what happened", "recap", "overview", r"suggest\w*", "gist")
_VALUE = _rx(
    "how (?:engaged|was|were|did|is|are|much|positive|negative|energetic|attentive)",
    "what (?:was|is|were) the",
    "average",
    "mean",
    "level",
)


def parse_subject(q: str) -> Subject | None:
    """What the (lower-cased) question measures (see the module docstring)."""
    if _TALK.search(q):
        if _SILENCE.search(q) and not _rx(r"speak\w*", r"spoke\w*", r"talk\w*").search(q):
            return Subject("silence", "silence")
        return Subject("talk", "talk time")
    if _FACE.search(q):
        return Subject("face", "face in view")
    for name, pattern in _COMPONENTS.items():
        if pattern.search(q):
            return Subject(name, name, name)
    if _ENGAGEMENT.search(q):
        return Subject("engagement", "engagement", "engagement")
    for name, pattern in [*_STATES, *_STATE_FORMS]:
        if pattern.search(q):
            d = BY_NAME[name]
            reading = d.alias_of or d.name
            label = d.label if d.alias_of is None else BY_NAME[reading].label
            return Subject(d.name, label, None if d.null_reason else reading, d.null_reason)
    if _VALENCE.search(q):
        return Subject("valence", "expressed mood (valence)", "valence")
    if _AROUSAL.search(q):
        return Subject("arousal", "energy (arousal)", "arousal")
    return None


@dataclass(frozen=True, slots=True)
class ParsedQuestion:
    """A question as the rules read it (see the module docstring).

    Attributes:
        kind: What is asked.
        subject: What it measures, if recognised.
        direction: ``low`` or ``high`` (for who / value).
        change: For *when*: drop, rise, peak, lowest or the largest change.
        superlative: "most", "least", "-est": one extreme, not a band.
        aliases: The participants named (pseudonyms), in order.
        range: The time range asked for.
        negated: "not", "off", "out of" (for *how long* of a face).
    """

    kind: Kind
    subject: Subject | None
    direction: Direction
    change: Change
    superlative: bool
    aliases: tuple[str, ...]
    range: RangeSpec
    negated: bool


_ALIAS = re.compile(r"\bP(\d+)\b")


def parse_question(question: str) -> ParsedQuestion:
    """Read a pseudonymised question (names already replaced; see :func:`match_names`)."""
    aliases = tuple(dict.fromkeys(f"P{m.group(1)}" for m in _ALIAS.finditer(question)))
    q = " ".join(question.lower().split())
    subject = parse_subject(q)
    kind: Kind
    if _COMPARE.search(q) or (len(aliases) >= 2 and _MORE_LESS.search(q)):
        kind = "compare"
    elif _WHEN.search(q):
        kind = "when"
    elif _HOW_LONG.search(q):
        kind = "how_long"
    elif _WHO.search(q):
        kind = "who"
    elif _SUMMARY.search(q):
        kind = "summary"
    elif _VALUE.search(q) or (aliases and subject is not None):
        kind = "value"
    else:
        kind = "unknown"
    change: Change = "change"
    if _DROP.search(q):
        change = "drop"
    elif _RISE.search(q):
        change = "rise"
    elif _LOWEST.search(q):
        change = "lowest"
    elif _PEAK.search(q):
        change = "peak"
    return ParsedQuestion(
        kind=kind,
        subject=subject,
        direction="low" if _LOW.search(q) else "high",
        change=change,
        superlative=bool(_SUPERLATIVE.search(q)),
        aliases=aliases,
        range=parse_range(q),
        negated=bool(_rx("not", "off", "out of", "away", "without", "missing", "lost").search(q)),
    )
