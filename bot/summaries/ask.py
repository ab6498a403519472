"""Asking about a meeting: the context from the store, the answerer, names mapped back.

:func:`ask` is what ``POST /api/meetings/{id}/questions`` runs, on the event loop:

1. participants' names in the question become pseudonyms (``P1``... in joining order,
   :func:`~bot.summaries.questions.match_names`); a name that fits several people is
   answered at once ("say the full name"), before anything else is read;
2. the local rules read the time range and the subject from it, and
   :func:`gather_context` reads from the store only what that range needs: each
   participant's states with the base readings (engagement, its components, valence,
   arousal) and the one the question names, the room's timeline, the notable moments and
   the summaries that overlap it — thinned to every n-th state when a range holds more
   than :data:`MAX_STATE_ROWS` states;
3. the configured :class:`~bot.summaries.questions.Answerer` answers (bounded by
   ``summaries.timeout_secs``); one that fails, times out, is rate-limited or answers
   something that does not fit the context (:func:`validate_answer`) is replaced by the
   local answerer, and the answer's note says why, as a summary's does ("the Gemini
   answer (gemini-3.5-flash) failed: HTTP 500 INTERNAL after 3 attempts; local answer
   instead");
4. pseudonyms are mapped back to names on this machine.

Which answerer answers follows ``summaries.summarizer`` through :data:`ANSWERERS`:
``local`` (:mod:`bot.summaries.answers`) or ``vertex``
(:mod:`bot.summaries.vertex_answers`, Gemini on Vertex AI, given the same pseudonymised
context, aggregated).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from bot.settings import Settings
from bot.store import MeetingRecord, ParticipantRecord, Store
from bot.summaries.answers import LABEL, LocalAnswerer, answer_local
from bot.summaries.local import clock
from bot.summaries.models import ALIAS_RE, InvalidAnswer, MomentInput, Pseudonyms, failure_text
from bot.summaries.questions import (
    Answer,
    Answerer,
    AnswerRange,
    QuestionContext,
    RoomTrack,
    SummaryNote,
    Track,
    match_names,
    parse_question,
)
from bot.summaries.vertex import GeminiClient
from bot.summaries.vertex_answers import RANGE_SLACK_SECS, VertexAnswerer
from bot.summaries.window import HOLD_SECS

log = logging.getLogger(__name__)

#: Most participant states read for one question (more are thinned evenly).
MAX_STATE_ROWS = 20_000
#: Most room states read for one question.
MAX_ROOM_ROWS = 10_000
#: Most stored summaries looked through.
MAX_SUMMARIES_READ = 200
#: Readings every context carries (the subject's reading is added when it is another).
BASE_READINGS = ("engagement", "attention", "expressiveness", "participation", "valence", "arousal")

#: Answerers by ``summaries.summarizer``; an unknown name answers locally.
ANSWERERS: dict[str, Callable[[Settings], Answerer]] = {
    "local": lambda _settings: LocalAnswerer(),
    "vertex": lambda s: VertexAnswerer(GeminiClient(s.summaries.vertex, s.summaries.timeout_secs)),
}


def make_answerer(settings: Settings) -> Answerer:
    """The answerer the settings name, else the local one."""
    factory = ANSWERERS.get(settings.summaries.summarizer)
    return factory(settings) if factory is not None else LocalAnswerer()


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ParticipantRef(_Model):
    """A participant an answer is about."""

    participant_id: str
    display_name: str


class NamedFigure(_Model):
    """A figure of an answer with the participant's name (``None``: the room)."""

    participant_id: str | None
    participant: str | None
    measure: str
    value: float | None
    unit: str
    note: str | None = None


class AnswerView(_Model):
    """An answer as the host sees it: names, not pseudonyms."""

    text: str
    kind: str
    subject: str | None
    range: AnswerRange
    participants: list[ParticipantRef]
    figures: list[NamedFigure]
    sources: list[str]
    answered: bool
    note: str | None = None


class QuestionResult(_Model):
    """The reply of ``POST /api/meetings/{id}/questions``."""

    question: str
    answer: AnswerView
    source: Literal["local", "vertex"]
    label: str
    model: str | None = None


# -- the context -----------------------------------------------------------------------------


def _holds(t: Sequence[float], end: float, cap: float) -> list[float]:
    """Seconds each time point stands for: to the next one, at most ``cap``, not past ``end``."""
    out = []
    for k, ti in enumerate(t):
        nxt = t[k + 1] if k + 1 < len(t) else end
        out.append(round(max(0.0, min(nxt - ti, cap, end - ti)), 3))
    return out


def hide_names(text: str, people: Sequence[tuple[str, str]]) -> str:
    """``text`` with each display name replaced by its pseudonym (longest names first)."""
    for alias, name in sorted(people, key=lambda p: -len(p[1])):
        if name.strip():
            text = re.sub(rf"(?<!\w){re.escape(name)}(?!\w)", alias, text)
    return text


async def gather_context(
    store: Store,
    meeting_id: str,
    records: Sequence[ParticipantRecord],
    origin: float,
    rng: AnswerRange,
    now_secs: float,
    readings: tuple[str, ...],
    bands: tuple[float, float],
) -> QuestionContext:
    """What an answerer needs for ``rng``, pseudonymised (see the module docstring)."""
    aliases = {r.id: f"P{k + 1}" for k, r in enumerate(records)}
    people = [(aliases[r.id], r.display_name) for r in records]
    since, until = origin + rng.start_secs, origin + rng.end_secs
    rows, stride = await store.timeline(meeting_id, since, until, readings, MAX_STATE_ROWS)
    cap = HOLD_SECS * stride
    by_pid: dict[str, list[int]] = {}
    for k, row in enumerate(rows):
        by_pid.setdefault(row.participant_id, []).append(k)
    tracks = []
    for r in records:
        mine = [rows[k] for k in by_pid.get(r.id, [])]
        left = None if r.left_at is None else round(r.left_at - origin, 3)
        t = [round(x.ts - origin, 3) for x in mine]
        end = rng.end_secs if left is None else min(rng.end_secs, left)
        reasons: dict[str, str] = {}
        for x in mine:
            for name, value, reason in zip(readings, x.values, x.reasons, strict=True):
                if value is None and reason:
                    reasons[name] = reason
        tracks.append(
            Track(
                alias=aliases[r.id],
                joined_secs=round(r.joined_at - origin, 3),
                left_secs=left,
                t=t,
                hold=_holds(t, end, cap),
                face_visible=[x.face_visible for x in mine],
                speaking=[x.is_speaking for x in mine],
                talk_secs=[x.talk_secs for x in mine],
                readings={n: [x.values[k] for x in mine] for k, n in enumerate(readings)},
                reasons=reasons,
            )
        )
    room_rows, room_stride = await store.room_timeline(meeting_id, since, until, MAX_ROOM_ROWS)
    room_t = [round(x.ts - origin, 3) for x in room_rows]
    room = RoomTrack(
        t=room_t,
        hold=_holds(room_t, rng.end_secs, HOLD_SECS * room_stride),
        engagement=[x.engagement for x in room_rows],
        valence=[x.valence for x in room_rows],
        arousal=[x.arousal for x in room_rows],
        speaking=[[aliases[p] for p in x.speaking if p in aliases] for x in room_rows],
    )
    moments = [
        MomentInput(
            at_secs=round(m.ts - origin, 1),
            kind=m.kind,
            participants=[aliases[p] for p in m.participants if p in aliases],
            speaking=[aliases[p] for p in m.speaking if p in aliases],
            value=round(m.value, 3),
            window_secs=m.window_secs,
        )
        for m in await store.moments(meeting_id, since)
        if m.ts <= until
    ]
    summaries = [
        SummaryNote(
            start_secs=round(s.window_start - origin, 1),
            end_secs=round(s.window_end - origin, 1),
            label=s.label,
            room_mood=hide_names(s.room_mood, people),
            changes=[hide_names(c, people) for c in s.changes],
            suggestion=hide_names(s.suggestion, people),
            error=s.error,
        )
        for s in await store.summaries(meeting_id, MAX_SUMMARIES_READ)
        if s.window_end >= since and s.window_start <= until
    ]
    return QuestionContext(
        now_secs=round(now_secs, 3),
        range=rng,
        participants=tracks,
        room=room,
        moments=moments,
        summaries=summaries,
        bands=bands,
        stride=max(stride, room_stride),
    )


# -- answering -------------------------------------------------------------------------------


def validate_answer(answer: Answer, ctx: QuestionContext) -> Answer:
    """Check an answer against its context: pseudonyms known, range inside the one asked.

    Raises:
        InvalidAnswer: naming the first problem.
    """
    known = {p.alias for p in ctx.participants}
    named = [*answer.participants, *(f.participant for f in answer.figures if f.participant)]
    named += [m.group(0) for m in ALIAS_RE.finditer(answer.text)]
    for alias in named:
        if alias not in known:
            raise InvalidAnswer(f"names {alias!r}, who is not in the meeting")
    got, asked = answer.range, ctx.range
    if not (
        asked.start_secs - RANGE_SLACK_SECS
        <= got.start_secs
        <= got.end_secs
        <= asked.end_secs + RANGE_SLACK_SECS
    ):
        raise InvalidAnswer(
            f"looked at {clock(got.start_secs)}–{clock(got.end_secs)}, "
            f"not within {clock(asked.start_secs)}–{clock(asked.end_secs)}"
        )
    return answer


def _ambiguous(
    ambiguous: dict[str, tuple[str, ...]], names: Pseudonyms, rng: AnswerRange
) -> Answer:
    parts = []
    for word, aliases in ambiguous.items():
        who = ", ".join(names.name(a) for a in aliases)
        parts.append(f"“{word}” could be {who}")
    return Answer(
        text=f"{'; '.join(parts)}: say the full name.",
        kind="unknown",
        subject=None,
        range=rng,
        participants=list(dict.fromkeys(a for aliases in ambiguous.values() for a in aliases)),
        answered=False,
    )


def reveal(
    question: str,
    answer: Answer,
    names: Pseudonyms,
    source: str,
    label: str,
    model: str | None = None,
) -> QuestionResult:
    """The answer with pseudonyms mapped back to names."""

    def ref(alias: str | None) -> tuple[str | None, str | None]:
        if alias is None:
            return None, None
        pid, _ = names.by_alias.get(alias, (alias, ""))
        return pid, names.name(alias)

    view = AnswerView(
        text=names.reveal(answer.text),
        kind=answer.kind,
        subject=answer.subject,
        range=answer.range,
        participants=[
            ParticipantRef(participant_id=pid or a, display_name=name or a)
            for a in answer.participants
            for pid, name in [ref(a)]
        ],
        figures=[
            NamedFigure(
                participant_id=ref(f.participant)[0],
                participant=ref(f.participant)[1],
                measure=f.measure,
                value=f.value,
                unit=f.unit,
                note=None if f.note is None else names.reveal(f.note),
            )
            for f in answer.figures
        ],
        sources=list(answer.sources),
        answered=answer.answered,
        note=answer.note,
    )
    return QuestionResult(
        question=question,
        answer=view,
        source="vertex" if source == "vertex" else "local",
        label=label,
        model=model,
    )


async def ask(
    store: Store,
    record: MeetingRecord,
    question: str,
    *,
    answerer: Answerer,
    settings: Settings,
    now: float | None = None,
) -> QuestionResult:
    """Answer a question about a meeting from its stored data (see the module docstring).

    Args:
        store: The store.
        record: The meeting.
        question: As the host asked it.
        answerer: Who answers (the local rules stand in when it fails).
        settings: All settings (engagement bands, the answerer's timeout).
        now: Meeting clock now while the meeting runs; ``None``: its last stored reading.
    """
    records = await store.list_participants(record.id)
    origin = records[0].joined_at if records else record.created_at
    if now is None:
        ends = [origin, *(r.left_at for r in records if r.left_at is not None)]
        last = await store.last_ts(record.id)
        now = max([*ends, last] if last is not None else ends)
    now_secs = max(0.0, now - origin)
    names = Pseudonyms({f"P{k + 1}": (r.id, r.display_name) for k, r in enumerate(records)})
    match = match_names(question, [(a, n) for a, (_, n) in names.by_alias.items()])
    parsed = parse_question(match.text)
    rng = parsed.range.resolve(now_secs)
    if match.ambiguous:
        return reveal(question, _ambiguous(match.ambiguous, names, rng), names, "local", LABEL)
    subject = parsed.subject
    readings: tuple[str, ...] = BASE_READINGS
    if subject is not None and subject.reading and subject.reading not in readings:
        readings = (*readings, subject.reading)
    ctx = await gather_context(
        store, record.id, records, origin, rng, now_secs, readings, settings.fusion.bands
    )
    return await answer_from(
        question, match.text, ctx, names, answerer, settings.summaries.timeout_secs
    )


async def answer_from(
    question: str,
    text: str,
    ctx: QuestionContext,
    names: Pseudonyms,
    answerer: Answerer,
    timeout_secs: float,
) -> QuestionResult:
    """The answerer's answer to ``text`` from ``ctx``, else the local one with a note.

    Args:
        question: As the host asked it (returned with the answer).
        text: The question with names replaced by pseudonyms (what answerers read).
        ctx: The pseudonymised context.
        names: Who the pseudonyms are.
        answerer: Who answers.
        timeout_secs: Longest wait for the answerer (``summaries.timeout_secs``).
    """
    if answerer.name == "local":
        return reveal(question, answer_local(text, ctx), names, "local", LABEL)
    try:
        answer = await asyncio.wait_for(answerer.answer(text, ctx, names), timeout_secs)
        answer = validate_answer(answer, ctx)
    except Exception as e:
        log.warning(
            "answerer failed; answering locally",
            extra={"answerer": answerer.name, "error": type(e).__name__},
        )
        note = f"the {answerer.label} {failure_text(e, timeout_secs)}; {LABEL} instead"
        answer = answer_local(text, ctx).model_copy(update={"note": note})
        return reveal(question, answer, names, "local", LABEL)
    return reveal(question, answer, names, answerer.name, answerer.label, answerer.model)
