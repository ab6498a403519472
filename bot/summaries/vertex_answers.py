"""Gemini on Vertex AI answers the host's questions (``summaries.summarizer = "vertex"``).

**What is sent** (and nothing else leaves the machine): one ``generateContent`` request
per question, through the same :class:`~bot.summaries.vertex.GeminiClient` as the
summaries (retries, time limits, token counts in the log), with

- ``systemInstruction``: :data:`ANSWER_INSTRUCTION`, fixed text;
- ``contents``: one user message whose text is :func:`question_payload_json`: the
  question, its participants' names already replaced by pseudonyms
  (:func:`~bot.summaries.questions.match_names`), and the same pseudonymised
  :class:`~bot.summaries.questions.QuestionContext` the local answerer reads,
  **aggregated** (:class:`QuestionPayload`): per participant and for the room, each
  reading's time-weighted mean, first, last, lowest and highest value over the range,
  talk and face-out-of-view seconds, and the readings as at most :data:`MAX_BINS`
  time-weighted means of equal stretches of the range (never the stored states
  themselves); silences; the notable moments and the mood summaries of the range
  (their text with pseudonyms). Display names are added (a ``names`` object) only when
  the host opts in with ``summaries.vertex.share_names``. No image, audio or word said
  is in it: none is ever kept or transcribed;
- ``generationConfig``: ``temperature``, ``responseMimeType: application/json`` and
  ``responseSchema`` (:meth:`GeminiAnswer.response_schema`): the answer text, whether
  it could answer, the time range it looked at, the participants it is about
  (pseudonyms) and which parts of the data it is based on.

The answer is parsed (:func:`parse_answer`: JSON, the schema, a non-empty text) and
then checked by :func:`bot.summaries.ask.validate_answer` like any answer (no pseudonym
that is not in the meeting, a range inside the one asked about); the pseudonyms are
mapped back to names on this machine. Anything that goes wrong raises, and
:func:`bot.summaries.ask.ask` answers with the local rules and a note saying why.

At most ``max_calls_per_hour`` questions go to Gemini in any hour (wall-clock time,
all meetings of this server together: one answerer serves the app).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.summaries.answers import (
    face_out_secs,
    observed_secs,
    room_values,
    series_stat,
    silences,
    talk_secs,
    voice_measured,
)
from bot.summaries.models import InvalidAnswer, MomentInput, Pseudonyms
from bot.summaries.questions import (
    Answer,
    AnswerRange,
    QuestionContext,
    SummaryNote,
    parse_question,
)
from bot.summaries.vertex import CallLimit, GeminiClient, parse_json

LABEL = "Gemini answer"
#: Most points of each series sent (equal stretches of the range).
MAX_BINS = 20
#: Shortest stretch one point stands for, seconds.
MIN_BIN_SECS = 5.0
#: Most notable moments and summaries sent.
MAX_MOMENTS = 20
MAX_SUMMARIES = 3
#: Slack when checking that an answer's range lies in the one asked about, seconds.
RANGE_SLACK_SECS = 1.0
#: The room's readings.
ROOM_READINGS = ("engagement", "valence", "arousal")

ANSWER_INSTRUCTION = """\
You answer a video meeting host's question about their meeting, from figures that \
software measured from the participants' faces and voices.

The user message is a JSON object. question: the host's question. Participants appear \
as pseudonyms P1, P2, ... in joining order, in the question too; refer to them only by \
these pseudonyms, which are replaced by names on the host's machine. A "names" object, \
when present, maps pseudonyms to display names for context; still write the pseudonyms. \
It holds no images, audio or words said: nothing of what was said is known.

Fields. Times are seconds since the meeting started; write them as m:ss meeting time \
(10:05 = 10 min 5 s). now_secs: how long the meeting has run. range: the time the \
question asks about (start_secs, end_secs, phrase); only data of this range is given. \
bands: engagement below low_below is the low band, from high_from the high band. \
bins: the series below are time-weighted means of count equal stretches of bin_secs \
seconds from start_secs (null: not measured in that stretch). participants[]: alias, \
joined_secs, left_secs, observed_secs (seconds of the range with readings); readings: \
engagement, attention, expressiveness, participation (0 to 1; the last three are the \
parts of engagement), valence (expressed mood) and arousal (energy) (-1 to 1), maybe \
one more state (0 to 1), each with mean, first, last, low, high over the range, secs \
(seconds it had a value) and reason (why it had none); talk_secs and talk_share (of \
everyone's talk in the range; null: voice not analysed); face_out_secs (no face in \
view); series: each reading per stretch, and face_in_view (share of the stretch). \
room: engagement, valence, arousal as above; silence_secs and longest_silence (start, \
end; null: no voice analysed); series, and speaking_secs (who spoke how long in each \
stretch). moments: notable moments (at_secs, kind, participants, who was speaking, \
value; kind media_gap: the participant's media paused for value seconds while the bot \
reconnected, a gap in the data, never a sign of engagement or mood). summaries: mood \
summaries written during the range. stride: n when only every n-th stored state was read.

Rules. Answer only from these figures; never guess or add outside knowledge. If they \
cannot answer the question (it asks for something not measured, such as what was said, \
or there is no data), set answered to false and say plainly why, in one or two \
sentences. null means not measured: say so, never treat it as zero. Readings are \
expressions, not feelings: write what faces and voices showed ("looked engaged", \
"expressed little"); never claim what someone feels, thinks or intends. Start the text \
with the time range you looked at, quote the figures you use, plain sentences, no \
markdown, under 600 characters.

Answer with JSON that follows the response schema: answered; text; range: the time \
range the answer looked at (inside the question's range); participants: the pseudonyms \
the answer is about; based_on: which parts of the data it used (states: participants' \
readings; room; moments; summaries).
"""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# -- what is sent ----------------------------------------------------------------------------


class ReadingFigures(_Model):
    """One reading over the range: time-weighted mean, first, last, lowest, highest."""

    mean: float | None
    first: float | None
    last: float | None
    low: float | None
    high: float | None
    secs: float
    reason: str | None


class RangeOut(_Model):
    """The range the question asks about."""

    start_secs: float
    end_secs: float
    phrase: str


class Bands(_Model):
    """The engagement bands."""

    low_below: float
    high_from: float


class Bins(_Model):
    """How the series are cut: ``count`` stretches of ``bin_secs`` from ``start_secs``."""

    start_secs: float
    bin_secs: float
    count: int


class ParticipantFigures(_Model):
    """One participant over the range (see :data:`ANSWER_INSTRUCTION`)."""

    alias: str
    joined_secs: float
    left_secs: float | None
    observed_secs: float
    readings: dict[str, ReadingFigures]
    talk_secs: float | None
    talk_share: float | None
    face_out_secs: float
    series: dict[str, list[float | None]]


class RoomFigures(_Model):
    """The room over the range."""

    readings: dict[str, ReadingFigures]
    silence_secs: float | None
    longest_silence: tuple[float, float] | None
    series: dict[str, list[float | None]]
    speaking_secs: dict[str, list[float]]


class QuestionPayload(_Model):
    """The user message sent to Gemini for one question: aggregated and pseudonymised."""

    question: str
    now_secs: float
    range: RangeOut
    bands: Bands
    bins: Bins
    participants: list[ParticipantFigures]
    room: RoomFigures
    moments: list[MomentInput]
    summaries: list[SummaryNote]
    stride: int


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _figures(
    t: Sequence[float], hold: Sequence[float], values: Sequence[float | None], reason: str | None
) -> ReadingFigures:
    s = series_stat(t, hold, values, reason)
    return ReadingFigures(
        mean=_r(s.mean),
        first=_r(s.first),
        last=_r(s.last),
        low=_r(s.low[1]) if s.low else None,
        high=_r(s.high[1]) if s.high else None,
        secs=round(s.secs, 1),
        reason=s.reason,
    )


def bins_for(rng: AnswerRange) -> Bins:
    """At most :data:`MAX_BINS` equal stretches of the range, each at least :data:`MIN_BIN_SECS`."""
    length = rng.end_secs - rng.start_secs
    if length <= 0:
        return Bins(start_secs=rng.start_secs, bin_secs=0.0, count=0)
    count = max(1, min(MAX_BINS, math.ceil(length / MIN_BIN_SECS)))
    return Bins(start_secs=rng.start_secs, bin_secs=round(length / count, 3), count=count)


def _bin_of(bins: Bins, t: float) -> int:
    k = int((t - bins.start_secs) // bins.bin_secs) if bins.bin_secs > 0 else 0
    return min(bins.count - 1, max(0, k))


def binned(
    bins: Bins, t: Sequence[float], hold: Sequence[float], values: Sequence[float | None]
) -> list[float | None]:
    """Time-weighted means per stretch; ``None`` where nothing was measured."""
    total = [0.0] * bins.count
    weight = [0.0] * bins.count
    for ti, h, v in zip(t, hold, values, strict=False):
        if v is None:
            continue
        k = _bin_of(bins, ti)
        w = max(h, 1e-9)  # a state that stands for no time still counts when it is alone
        total[k] += v * w
        weight[k] += w
    return [round(total[k] / weight[k], 3) if weight[k] > 0 else None for k in range(bins.count)]


def binned_secs(
    bins: Bins, t: Sequence[float], hold: Sequence[float], flags: Sequence[bool]
) -> list[float]:
    """Seconds per stretch for which ``flags`` held."""
    secs = [0.0] * bins.count
    for ti, h, flag in zip(t, hold, flags, strict=False):
        if flag:
            secs[_bin_of(bins, ti)] += h
    return [round(x, 1) for x in secs]


def question_payload(
    question: str, ctx: QuestionContext, names: Pseudonyms, *, share_names: bool = False
) -> dict[str, Any]:
    """The JSON object sent to Gemini for ``question`` (see the module docstring).

    ``question`` has its names replaced by pseudonyms already. ``names`` is read only
    when ``share_names`` is on.
    """
    bins = bins_for(ctx.range)
    talks = [talk_secs(p, ctx.range) for p in ctx.participants]
    total_talk = sum(x for x in talks if x is not None)
    participants = []
    for p, talk in zip(ctx.participants, talks, strict=True):
        series = {n: binned(bins, p.t, p.hold, v) for n, v in p.readings.items()}
        series["face_in_view"] = binned(
            bins, p.t, p.hold, [1.0 if v else 0.0 for v in p.face_visible]
        )
        participants.append(
            ParticipantFigures(
                alias=p.alias,
                joined_secs=p.joined_secs,
                left_secs=p.left_secs,
                observed_secs=round(observed_secs(p), 1),
                readings={
                    n: _figures(p.t, p.hold, v, p.reasons.get(n)) for n, v in p.readings.items()
                },
                talk_secs=_r(talk, 1),
                talk_share=_r(talk / total_talk) if talk is not None and total_talk > 0 else None,
                face_out_secs=round(face_out_secs(p), 1),
                series=series,
            )
        )
    room = ctx.room
    silence, longest = silences(room) if voice_measured(ctx) else (None, None)
    speaking = {
        p.alias: binned_secs(bins, room.t, room.hold, [p.alias in s for s in room.speaking])
        for p in ctx.participants
    }
    data = QuestionPayload(
        question=question,
        now_secs=ctx.now_secs,
        range=RangeOut(
            start_secs=ctx.range.start_secs, end_secs=ctx.range.end_secs, phrase=ctx.range.phrase
        ),
        bands=Bands(low_below=ctx.bands[0], high_from=ctx.bands[1]),
        bins=bins,
        participants=participants,
        room=RoomFigures(
            readings={
                n: _figures(room.t, room.hold, room_values(room, n), None) for n in ROOM_READINGS
            },
            silence_secs=_r(silence, 1),
            longest_silence=(round(longest[0], 1), round(longest[1], 1)) if longest else None,
            series={
                n: binned(bins, room.t, room.hold, room_values(room, n)) for n in ROOM_READINGS
            },
            speaking_secs=speaking,
        ),
        moments=ctx.moments[:MAX_MOMENTS],
        summaries=ctx.summaries[:MAX_SUMMARIES],
        stride=ctx.stride,
    ).model_dump(mode="json")
    if share_names:
        data["names"] = {p.alias: names.name(p.alias) for p in ctx.participants}
    return data


def question_payload_json(
    question: str, ctx: QuestionContext, names: Pseudonyms, *, share_names: bool = False
) -> str:
    """The exact text of the user message: :func:`question_payload` as compact JSON."""
    return json.dumps(
        question_payload(question, ctx, names, share_names=share_names),
        ensure_ascii=False,
        separators=(",", ":"),
    )


# -- what comes back -------------------------------------------------------------------------


class LookedAt(BaseModel):
    """The time an answer looked at (part of the response schema)."""

    model_config = ConfigDict(extra="forbid")

    start_secs: float = Field(description="Start, seconds since the meeting started.")
    end_secs: float = Field(description="End, seconds since the meeting started.")


class GeminiAnswer(BaseModel):
    """An answer to one question: the response schema Gemini must follow."""

    model_config = ConfigDict(extra="forbid")

    answered: bool = Field(
        description="False when the figures cannot answer the question; the text says why."
    )
    text: str = Field(
        min_length=1,
        max_length=1000,
        description="The answer for the host: the time range, then plain sentences with figures.",
    )
    range: LookedAt = Field(description="The time range the answer looked at.")
    participants: list[str] = Field(
        max_length=64, description="Pseudonyms (P1, P2, ...) of the participants it is about."
    )
    based_on: list[Literal["states", "room", "moments", "summaries"]] = Field(
        max_length=4, description="The parts of the data the answer used."
    )

    @classmethod
    def response_schema(cls) -> dict[str, Any]:
        """The JSON schema Gemini is asked to answer in."""
        schema = cls.model_json_schema()
        schema["description"] = "An answer to the host's question about their meeting."
        return schema


def parse_answer(text: str | None, question: str, ctx: QuestionContext) -> Answer:
    """Gemini's reply as an :class:`~bot.summaries.questions.Answer` to ``question``.

    Kind and subject are the local reading rules'; the range is the one it looked at
    (phrased as the question's when it is the whole of it). Pseudonyms are checked
    afterwards by :func:`bot.summaries.ask.validate_answer`.

    Raises:
        InvalidAnswer: no text, not JSON, not the schema, or an empty answer.
    """
    out = parse_json(text, GeminiAnswer, InvalidAnswer)
    if not out.text.strip():
        raise InvalidAnswer("an empty answer")
    asked = ctx.range
    start, end = out.range.start_secs, out.range.end_secs
    whole = (
        abs(start - asked.start_secs) <= RANGE_SLACK_SECS
        and abs(end - asked.end_secs) <= RANGE_SLACK_SECS
    )
    rng = (
        asked
        if whole
        else AnswerRange(start_secs=start, end_secs=end, phrase=f"part of {asked.phrase}")
    )
    q = parse_question(question)
    return Answer(
        text=" ".join(out.text.split()),
        kind=q.kind,
        subject=q.subject.key if q.subject is not None else None,
        range=rng,
        participants=list(dict.fromkeys(out.participants)),
        sources=list(dict.fromkeys(out.based_on)),
        answered=out.answered,
    )


class VertexAnswerer:
    """The :class:`~bot.summaries.questions.Answerer` that asks Gemini. Event loop.

    One per server (the app's); its rate limit counts wall-clock hours.

    Args:
        client: The Gemini client (its settings are ``[summaries.vertex]``).
        clock: Seconds, for the rate limit (tests pass a virtual clock).
    """

    name = "vertex"

    def __init__(self, client: GeminiClient, *, clock: Callable[[], float] = time.monotonic):
        self.client = client
        self.settings = client.settings
        self.model: str | None = client.settings.model
        self.label = f"{LABEL} ({client.settings.model})"
        self.limit = CallLimit(client.settings.max_calls_per_hour)
        self._clock = clock

    async def answer(self, question: str, context: QuestionContext, names: Pseudonyms) -> Answer:
        """Gemini's answer to ``question`` from ``context``.

        Raises:
            SummarizerUnavailable: rate limit reached, no client, or the requests failed.
            InvalidAnswer: the reply is not a valid answer.
            TimeoutError: no answer within the client's ``timeout_secs``.
        """
        self.limit.check(self._clock(), "per hour")
        text = await self.client.generate(
            question_payload_json(question, context, names, share_names=self.settings.share_names),
            system_instruction=ANSWER_INSTRUCTION,
            response_schema=GeminiAnswer.response_schema(),
            purpose="answer",
        )
        return parse_answer(text, question, context)

    async def aclose(self) -> None:
        """Close the client's connections."""
        await self.client.aclose()
