"""The local answerer: fixed rules over the stored readings; nothing leaves this machine.

:func:`answer_local` reads a pseudonymised question (:func:`~bot.summaries.questions.
parse_question`) and answers it from a :class:`~bot.summaries.questions.QuestionContext`.
Pure and deterministic: the same question and context give the same answer. Every figure
it quotes is computed from the context; a reading that was not measured (no face, no
voice) is reported as "not measured" with the reason, never as zero; and every answer
states the time range it looked at.

How figures are computed (states arrive at irregular times, so everything is
time-weighted by each state's ``hold``):

- **mean** of a reading: time-weighted over the time it had a value; **band**: the
  engagement bands (``fusion.bands``).
- **talk**: the difference of the meeting's cumulative talk figures over the range (from
  0 when the range starts with the meeting or before the person joined); without talk
  figures, the time the person's own voice activity said "speaking"; ``None`` when their
  voice was never analysed. Shares are of everyone's talk in the range.
- **silence**: room states with nobody speaking (only when someone's voice was analysed);
  the longest silence is the longest run of them.
- **face out of view**: the time their states said no face was in view.
- **when**: on the room's timeline (engagement, valence, arousal) or, when a participant
  is named, on theirs: the largest fall (rise, change) between two readings at most
  :data:`WHEN_WINDOW_SECS` apart, reported from :data:`MIN_MOVE`; or the highest (lowest)
  reading. Who was speaking comes from the room's timeline over that stretch, and the
  notable moments in or near it are quoted.

Kinds and what they answer:

- **who**: engagement — who was in the low band (the disengaged; "who was engaged": the
  high band), or the single extreme for "most"/"least"; other readings, talk and face
  time — the extreme, with everyone's figure beside it.
- **when**: as above; "when was it silent" — the longest silence.
- **how long**: someone's talk; the room's silence (and its longest stretch); a face out
  of view (or in view); time in the low engagement band ("disengaged"), or at medium or
  above ("engaged").
- **compare**: two or more named participants on the subject (engagement, expressed mood
  and talk when none is named): each figure and the difference.
- **value**: the mean (first and last) of a reading for the named participants, else the
  room's.
- **summary**: the stored mood summaries that overlap the range, newest first.

When it cannot answer — no subject or kind it knows, a state that is never estimable, no
data in the range, a name it cannot place — it says so and gives examples it can answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.summaries.local import clock, moment_text, names
from bot.summaries.models import Pseudonyms
from bot.summaries.questions import (
    Answer,
    AnswerRange,
    Figure,
    ParsedQuestion,
    QuestionContext,
    RoomTrack,
    Source,
    Subject,
    Track,
    parse_question,
)

#: The stretch within which a change counts for "when did it drop", seconds (as moments).
WHEN_WINDOW_SECS = 60.0
#: A smaller change is "no drop/rise".
MIN_MOVE = 0.1
#: Readings the room has a timeline of.
ROOM_READINGS = ("engagement", "valence", "arousal")
#: Moments quoted in one answer.
MAX_MOMENTS = 3
#: Summaries quoted in one answer.
MAX_SUMMARIES = 2
#: Subjects a comparison covers when the question names none.
COMPARE_DEFAULT = ("engagement", "valence", "talk")

LABEL = "local answer"


class LocalAnswerer:
    """The :class:`~bot.summaries.questions.Answerer` of the local rules (event loop; cheap)."""

    name = "local"
    label = LABEL
    model: str | None = None

    async def answer(self, question: str, context: QuestionContext, names: Pseudonyms) -> Answer:
        """The answer by the rules of this module (``names`` is not needed)."""
        return answer_local(question, context)

    async def aclose(self) -> None:
        """Nothing to release."""


# -- figures ---------------------------------------------------------------------------------


def duration(secs: float) -> str:
    """``45 s``, ``3 min 20 s``, ``1 h 5 min``."""
    total = max(0, round(secs))
    if total < 60:
        return f"{total} s"
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h} h {m} min" if m else f"{h} h"
    return f"{m} min {s} s" if s else f"{m} min"


def _num(value: float, signed: bool) -> str:
    return f"{value:+.2f}" if signed else f"{value:.2f}"


@dataclass(frozen=True, slots=True)
class Stat:
    """One reading of one participant (or the room) over the range."""

    mean: float | None
    first: float | None
    last: float | None
    secs: float
    reason: str | None
    low: tuple[float, float] | None  # (t, value) of the lowest reading
    high: tuple[float, float] | None


def series_stat(
    t: Sequence[float], hold: Sequence[float], values: Sequence[float | None], reason: str | None
) -> Stat:
    """Time-weighted mean, first, last, lowest and highest of a series."""
    total = secs = 0.0
    known = [(ti, h, v) for ti, h, v in zip(t, hold, values, strict=False) if v is not None]
    if not known:
        return Stat(None, None, None, 0.0, reason or "no reading in this range", None, None)
    for _, h, v in known:
        total += v * h
        secs += h
    mean = total / secs if secs > 0 else sum(v for _, _, v in known) / len(known)
    low = min(known, key=lambda k: k[2])
    high = max(known, key=lambda k: k[2])
    return Stat(mean, known[0][2], known[-1][2], secs, None, (low[0], low[2]), (high[0], high[2]))


def track_stat(track: Track, reading: str) -> Stat:
    """A participant's reading over the range."""
    return series_stat(
        track.t, track.hold, track.readings.get(reading, []), track.reasons.get(reading)
    )


def room_values(room: RoomTrack, reading: str) -> list[float | None]:
    """The room's series of ``engagement``, ``valence`` or ``arousal``."""
    values: list[float | None] = getattr(room, reading)
    return values


def talk_secs(track: Track, rng: AnswerRange) -> float | None:
    """Seconds the participant spoke in the range; ``None`` when their voice was not analysed."""
    known = [v for v in track.talk_secs if v is not None]
    if known:
        from_start = rng.start_secs <= 0 or rng.start_secs <= track.joined_secs
        base = 0.0 if from_start else known[0]
        return max(0.0, known[-1] - base)
    if any(s is not None for s in track.speaking):
        return sum(h for h, s in zip(track.hold, track.speaking, strict=False) if s)
    return None


def observed_secs(track: Track) -> float:
    """Seconds of the range the participant's states cover."""
    return sum(track.hold)


def face_out_secs(track: Track) -> float:
    """Seconds of the range with no face in view."""
    return sum(h for h, v in zip(track.hold, track.face_visible, strict=False) if not v)


def voice_measured(ctx: QuestionContext) -> bool:
    """Whether anyone's voice was analysed in the range."""
    return any(s is not None for p in ctx.participants for s in p.speaking)


def silences(room: RoomTrack) -> tuple[float, tuple[float, float] | None]:
    """Seconds with nobody speaking, and the longest such stretch ``(start, end)``."""
    total = 0.0
    longest: tuple[float, float] | None = None
    run: tuple[float, float] | None = None
    for t, h, speaking in zip(room.t, room.hold, room.speaking, strict=False):
        if speaking:
            run = None
            continue
        total += h
        run = (t, t + h) if run is None or t > run[1] + 0.5 else (run[0], t + h)
        if longest is None or run[1] - run[0] > longest[1] - longest[0]:
            longest = run
    return total, longest


def speakers(room: RoomTrack, start: float, end: float) -> list[str]:
    """Who spoke between ``start`` and ``end`` by the room's timeline, most first."""
    secs: dict[str, float] = {}
    for t, h, speaking in zip(room.t, room.hold, room.speaking, strict=False):
        if t + h < start or t > end:
            continue
        for alias in speaking:
            secs[alias] = secs.get(alias, 0.0) + h
    return sorted(secs, key=lambda a: (-secs[a], a))


# -- building answers -----------------------------------------------------------------------


@dataclass(slots=True)
class _Reply:
    """An answer being written."""

    q: ParsedQuestion
    ctx: QuestionContext
    lines: list[str]
    figures: list[Figure]
    sources: list[Source]
    participants: list[str]

    def use(self, *sources: Source) -> None:
        for s in sources:
            if s not in self.sources:
                self.sources.append(s)

    def who(self, alias: str) -> None:
        if alias not in self.participants:
            self.participants.append(alias)

    def done(self, answered: bool = True) -> Answer:
        subject = self.q.subject.key if self.q.subject is not None else None
        return Answer(
            text=" ".join(self.lines)[:2000],
            kind=self.q.kind,
            subject=subject,
            range=self.ctx.range,
            participants=self.participants,
            figures=self.figures,
            sources=self.sources,
            answered=answered,
        )


def examples(ctx: QuestionContext) -> list[str]:
    """Questions the local rules answer, with this meeting's first participants."""
    a = ctx.participants[0].alias if ctx.participants else "Ada"
    out = [
        "who seemed disengaged in the last ten minutes?",
        "when did the mood drop?",
        f"how long did {a} speak?",
    ]
    if len(ctx.participants) > 1:
        out.append(f"compare {a} and {ctx.participants[1].alias}")
    return [*out, "how long was the room silent?"]


def _cannot(r: _Reply, why: str) -> Answer:
    shown = "; ".join(f"“{e}”" for e in examples(r.ctx))
    r.lines = [f"{why} I can answer, for example: {shown}."]
    return r.done(answered=False)


def _band(ctx: QuestionContext, value: float) -> str:
    low, high = ctx.bands
    return "low" if value < low else "medium" if value < high else "high"


def _range_lead(ctx: QuestionContext) -> str:
    text = ctx.range.text
    return f"In {text}:"


def _with_data(ctx: QuestionContext, aliases: Sequence[str] = ()) -> list[Track]:
    tracks = [p for p in ctx.participants if p.t]
    if aliases:
        tracks = [p for p in tracks if p.alias in aliases]
    return tracks


def _tracks(r: _Reply) -> list[Track] | Answer:
    """The participants the question is about that have states in the range, or why none."""
    ctx = r.ctx
    known = {p.alias for p in ctx.participants}
    unknown = [a for a in r.q.aliases if a not in known]
    if unknown:
        return _cannot(r, f"I do not know {names(unknown)} in this meeting.")
    tracks = _with_data(ctx, r.q.aliases)
    if not tracks:
        who = names(list(r.q.aliases)) if r.q.aliases else "anyone"
        r.lines = [f"No readings of {who} in {ctx.range.text}: no states were stored in that time."]
        r.use("states")
        return r.done(answered=False)
    return tracks


def _reading_figure(
    r: _Reply, alias: str | None, subject: Subject, stat: Stat, measure: str = "mean"
) -> str:
    """``P1 0.71 (high band)`` / ``P3 not measured (no face in view)``, and its figure."""
    reading = subject.reading or subject.key
    signed = reading in ("valence", "arousal")
    name = alias or "the room"
    if stat.mean is None:
        r.figures.append(
            Figure(
                participant=alias,
                measure=f"{measure} {reading}",
                value=None,
                unit="signed" if signed else "score",
                note=f"not measured: {stat.reason}",
            )
        )
        return f"{name} not measured ({stat.reason})"
    note = f"{_band(r.ctx, stat.mean)} band" if reading == "engagement" else None
    r.figures.append(
        Figure(
            participant=alias,
            measure=f"{measure} {reading}",
            value=round(stat.mean, 3),
            unit="signed" if signed else "score",
            note=note,
        )
    )
    return f"{name} {_num(stat.mean, signed)}" + (f" ({note})" if note else "")


def _talk_figure(r: _Reply, track: Track, total: float | None) -> tuple[str, float | None]:
    secs = talk_secs(track, r.ctx.range)
    if secs is None:
        r.figures.append(
            Figure(
                participant=track.alias,
                measure="talk",
                value=None,
                unit="s",
                note="not measured: their voice was not analysed",
            )
        )
        return f"{track.alias} not measured (voice not analysed)", None
    share = f", {100 * secs / total:.0f} % of the talk" if total else ""
    r.figures.append(
        Figure(participant=track.alias, measure="talk", value=round(secs, 1), unit="s")
    )
    return f"{track.alias} {duration(secs)}{share}", secs


def _total_talk(ctx: QuestionContext) -> float:
    return sum(s for p in _with_data(ctx) if (s := talk_secs(p, ctx.range)) is not None)


# -- who -------------------------------------------------------------------------------------


def _who(r: _Reply) -> Answer:
    q, ctx = r.q, r.ctx
    subject = q.subject
    if subject is None:
        return _cannot(r, "I could not tell what to compare people on.")
    tracks = _tracks(r)
    if isinstance(tracks, Answer):
        return tracks
    r.use("states")
    lead = _range_lead(ctx)
    low = q.direction == "low"
    if subject.key in ("talk", "silence", "face"):
        return _who_time(r, tracks, subject, low or subject.key == "silence")
    reading = subject.reading
    assert reading is not None
    stats = {p.alias: track_stat(p, reading) for p in tracks}
    measured = {a: s for a, s in stats.items() if s.mean is not None}
    if not measured:
        parts = [_reading_figure(r, a, subject, s) for a, s in stats.items()]
        r.lines = [f"{lead} {subject.label} was not measured for anyone: {'; '.join(parts)}."]
        return r.done(answered=False)
    ranked = sorted(measured, key=lambda a: (measured[a].mean or 0.0, a), reverse=not low)
    if reading == "engagement" and not q.superlative:
        want = "low" if low else "high"
        picked = [a for a in ranked if _band(ctx, measured[a].mean or 0.0) == want]
        bound = ctx.bands[0] if low else ctx.bands[1]
        limit = f"under {bound:.2f}" if low else f"{bound:.2f} or more"
        if picked:
            quoted = [
                f"{a} (mean engagement {measured[a].mean:.2f} over "
                f"{duration(measured[a].secs)} of readings)"
                for a in picked
            ]
            verb = "was" if len(picked) == 1 else "were"
            r.lines.append(
                f"{lead} {names(quoted)} {verb} in the {want} engagement band ({limit})."
            )
        else:
            extreme = ranked[0]
            way = "least" if low else "most"
            r.lines.append(
                f"{lead} nobody was in the {want} engagement band ({limit}); the {way} engaged "
                f"was {extreme} (mean {measured[extreme].mean:.2f}, "
                f"{_band(ctx, measured[extreme].mean or 0.0)})."
            )
            picked = [extreme]
    else:
        best = measured[ranked[0]].mean or 0.0
        picked = [a for a in ranked if abs((measured[a].mean or 0.0) - best) < 0.005]
        figure = (
            f"mean {_num(best, reading in ('valence', 'arousal'))} "
            f"over {duration(measured[picked[0]].secs)} of readings"
        )
        if len(measured) == 1:
            article = "an" if subject.label[:1].lower() in "aeiou" else "a"
            r.lines.append(
                f"{lead} only {picked[0]} had {article} {subject.label} reading: {figure}."
            )
        else:
            way = "Lowest" if low else "Highest"
            r.lines.append(f"{lead} {way} {subject.label}: {names(picked)} ({figure}).")
    for a in picked:
        r.who(a)
    all_parts = [_reading_figure(r, a, subject, stats[a]) for a in stats]
    others = [p for a, p in zip(stats, all_parts, strict=True) if a not in picked]
    if others:
        r.lines.append(f"Others: {'; '.join(others)}.")
    return r.done()


def _who_time(r: _Reply, tracks: list[Track], subject: Subject, low: bool) -> Answer:
    ctx = r.ctx
    lead = _range_lead(ctx)
    if subject.key == "face":
        values = {p.alias: face_out_secs(p) for p in tracks}
        for p in tracks:
            r.figures.append(
                Figure(
                    participant=p.alias,
                    measure="face out of view",
                    value=round(values[p.alias], 1),
                    unit="s",
                    note=f"of {duration(observed_secs(p))} observed",
                )
            )
        want_out = not low  # "who had their camera off most" -> most time out of view
        a = max(values, key=lambda k: (values[k], k)) if want_out else min(values, key=values.get)  # type: ignore[arg-type]
        r.who(a)
        parts = [f"{k} {duration(v)}" for k, v in values.items()]
        r.lines.append(
            f"{lead} {a} had their face out of view {'longest' if want_out else 'least'}: "
            f"{duration(values[a])}. Face out of view: {'; '.join(parts)}."
        )
        return r.done()
    total = _total_talk(ctx)
    talk: dict[str, float] = {}
    parts = []
    for p in tracks:
        text, secs = _talk_figure(r, p, total)
        parts.append(text)
        if secs is not None:
            talk[p.alias] = secs
    if not talk:
        r.lines.append(f"{lead} talk was not measured: nobody's voice was analysed.")
        return r.done(answered=False)
    if low:
        silent = [a for a, s in talk.items() if s < 0.5]
        if silent:
            verb = "did" if len(silent) == 1 else "did"
            r.lines.append(f"{lead} {names(silent)} {verb} not speak.")
            picked = silent
        else:
            a = min(talk, key=lambda k: (talk[k], k))
            r.lines.append(f"{lead} {a} spoke least: {duration(talk[a])}.")
            picked = [a]
    else:
        a = max(talk, key=lambda k: (talk[k], k))
        r.lines.append(f"{lead} {a} spoke most: {duration(talk[a])}.")
        picked = [a]
    for a in picked:
        r.who(a)
    r.lines.append(f"Talk: {'; '.join(parts)}.")
    return r.done()


# -- when ------------------------------------------------------------------------------------


def _biggest_change(
    points: list[tuple[float, float]], change: str
) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """The two readings at most WHEN_WINDOW_SECS apart with the largest fall/rise/change."""
    best: tuple[tuple[float, float], tuple[float, float]] | None = None
    best_size = 0.0
    for i, (ti, vi) in enumerate(points):
        for tj, vj in points[i + 1 :]:
            if tj - ti > WHEN_WINDOW_SECS:
                break
            d = vj - vi
            size = -d if change == "drop" else d if change == "rise" else abs(d)
            # The largest; of equal ones, the shortest (the fall itself, not its run-up).
            shorter = best is not None and tj - ti < best[1][0] - best[0][0]
            if size > best_size + 1e-9 or (size > best_size - 1e-9 and shorter):
                best, best_size = ((ti, vi), (tj, vj)), max(size, best_size)
    return best


def _when(r: _Reply) -> Answer:
    q, ctx = r.q, r.ctx
    subject = q.subject
    lead = _range_lead(ctx)
    if subject is None:
        return _cannot(r, "I could not tell what changed that you are asking about.")
    if subject.key in ("silence", "talk") and not q.aliases:
        return _silence(r, when=True)
    if subject.key in ("talk", "face", "silence"):
        return _cannot(
            r,
            f"I can say how long {names(list(q.aliases))} spoke or had their face in view, "
            "not when.",
        )
    reading = subject.reading
    assert reading is not None
    signed = reading in ("valence", "arousal")
    t: Sequence[float]
    if q.aliases:
        tracks = _tracks(r)
        if isinstance(tracks, Answer):
            return tracks
        track = tracks[0]
        r.who(track.alias)
        t, values = track.t, track.readings.get(reading, [])
        whose = f"{track.alias}'s {subject.label}"
        r.use("states")
    elif reading in ROOM_READINGS:
        t, values = ctx.room.t, room_values(ctx.room, reading)
        whose = f"room {subject.label}"
        r.use("room")
    else:
        return _cannot(
            r, f"The room has no {subject.label} reading: name one participant to ask about."
        )
    points = [(ti, v) for ti, v in zip(t, values, strict=False) if v is not None]
    if not points:
        r.lines.append(f"{lead} {whose} was not measured.")
        return r.done(answered=False)
    first, last = points[0], points[-1]
    overall = (
        f"Over the range it went from {_num(first[1], signed)} at {clock(first[0])} "
        f"to {_num(last[1], signed)} at {clock(last[0])}."
    )
    if q.change in ("peak", "lowest"):
        point = (
            max(points, key=lambda p: p[1])
            if q.change == "peak"
            else min(points, key=lambda p: p[1])
        )
        word = "highest" if q.change == "peak" else "lowest"
        who = speakers(ctx.room, point[0] - 5, point[0] + 5) if ctx.room.t else []
        during = f", while {names(who)} spoke" if who else ""
        r.lines.append(
            f"{lead} {whose} was {word} at {clock(point[0])}: {_num(point[1], signed)}{during}."
        )
        r.figures.append(
            Figure(
                participant=q.aliases[0] if q.aliases else None,
                measure=f"{word} {reading}",
                value=round(point[1], 3),
                unit="signed" if signed else "score",
                note=f"at {clock(point[0])}",
            )
        )
        r.lines.append(overall)
        _moments_near(
            r, point[0] - WHEN_WINDOW_SECS, point[0] + WHEN_WINDOW_SECS, reading, q.change
        )
        return r.done()
    found = _biggest_change(points, q.change)
    size = 0.0 if found is None else found[1][1] - found[0][1]
    verb = {"drop": "fell", "rise": "rose", "change": "changed"}[q.change]
    if found is None or abs(size) < MIN_MOVE:
        r.lines.append(
            f"{lead} {whose} never {verb} by {MIN_MOVE:.1f} or more within "
            f"{WHEN_WINDOW_SECS:.0f} s. {overall}"
        )
        r.figures.append(
            Figure(
                participant=q.aliases[0] if q.aliases else None,
                measure=f"change of {reading}",
                value=round(last[1] - first[1], 3),
                unit="signed" if signed else "score",
                note=f"{clock(first[0])} to {clock(last[0])}",
            )
        )
        _moments_near(r, ctx.range.start_secs, ctx.range.end_secs, reading, q.change)
        return r.done()
    (ta, va), (tb, vb) = found
    way = "fell" if size < 0 else "rose"
    who = speakers(ctx.room, ta, tb) if ctx.room.t else []
    if who:
        during = f", while {names(who)} spoke"
    elif voice_measured(ctx) and ctx.room.t:
        during = ", while nobody was speaking"
    else:
        during = ""
    r.lines.append(
        f"{lead} {whose} {way} most between {clock(ta)} and {clock(tb)}: "
        f"{_num(va, signed)} → {_num(vb, signed)} ({size:+.2f} in {duration(tb - ta)}){during}."
    )
    for a in who:
        r.who(a)
    r.figures.append(
        Figure(
            participant=q.aliases[0] if q.aliases else None,
            measure=f"change of {reading}",
            value=round(size, 3),
            unit="signed" if signed else "score",
            note=f"{clock(ta)} to {clock(tb)}",
        )
    )
    r.lines.append(overall)
    _moments_near(r, ta - WHEN_WINDOW_SECS, tb + WHEN_WINDOW_SECS, reading, q.change)
    return r.done()


def _moments_near(r: _Reply, start: float, end: float, reading: str, change: str) -> None:
    """Quote the notable moments in ``[start, end]`` that bear on the reading."""
    kinds = {"engagement_drop", "engagement_rise"}
    if reading == "engagement":
        kinds = {"drop": {"engagement_drop"}, "rise": {"engagement_rise"}}.get(change, kinds)
    else:
        kinds = {"engagement_drop", "engagement_rise", "joint_smiles", "long_silence"}
    # A media gap bears on every reading: nothing was measured while the bot reconnected.
    kinds = kinds | {"media_gap"}
    near = [m for m in r.ctx.moments if m.kind in kinds and start <= m.at_secs <= end]
    if not near:
        return
    r.use("moments")
    quoted = [moment_text(m) for m in near[:MAX_MOMENTS]]
    more = f" (and {len(near) - MAX_MOMENTS} more)" if len(near) > MAX_MOMENTS else ""
    r.lines.append(f"Notable moments: {' '.join(quoted)}{more}")


# -- how long --------------------------------------------------------------------------------


def _silence(r: _Reply, when: bool = False) -> Answer:
    ctx = r.ctx
    lead = _range_lead(ctx)
    r.use("room", "states")
    if not voice_measured(ctx):
        r.lines.append(f"{lead} silence was not measured: nobody's voice was analysed.")
        return r.done(answered=False)
    if not ctx.room.t:
        r.lines.append(f"{lead} the room's timeline has no readings in that time.")
        return r.done(answered=False)
    total, longest = silences(ctx.room)
    covered = sum(ctx.room.hold)
    r.figures.append(
        Figure(
            participant=None,
            measure="silence",
            value=round(total, 1),
            unit="s",
            note=f"of {duration(covered)} observed",
        )
    )
    if longest is None:
        r.lines.append(f"{lead} someone was speaking all the time ({duration(covered)}).")
        return r.done()
    span = longest[1] - longest[0]
    r.figures.append(
        Figure(
            participant=None,
            measure="longest silence",
            value=round(span, 1),
            unit="s",
            note=f"{clock(longest[0])} to {clock(longest[1])}",
        )
    )
    long_text = (
        f"the longest silence was {duration(span)}, from {clock(longest[0])} to {clock(longest[1])}"
    )
    if when:
        r.lines.append(f"{lead} {long_text}; nobody spoke for {duration(total)} in all.")
    else:
        r.lines.append(
            f"{lead} nobody spoke for {duration(total)} of {duration(covered)}; {long_text}."
        )
    return r.done()


def _how_long(r: _Reply) -> Answer:
    q, ctx = r.q, r.ctx
    subject = q.subject
    if subject is None:
        return _cannot(r, "I could not tell what to time.")
    if subject.key == "silence" and not q.aliases:
        return _silence(r)
    lead = _range_lead(ctx)
    if subject.key in ("talk", "silence"):
        if not q.aliases:
            return (
                _who_time(r, _tracks_or_all(r), Subject("talk", "talk time"), low=False)
                if _with_data(ctx)
                else _no_data(r)
            )
        tracks = _tracks(r)
        if isinstance(tracks, Answer):
            return tracks
        r.use("states")
        total = _total_talk(ctx)
        parts = []
        for p in tracks:
            r.who(p.alias)
            text, secs = _talk_figure(r, p, total)
            if secs is None:
                parts.append(text)
            else:
                share = f" ({100 * secs / total:.0f} % of everyone's talk)" if total else ""
                parts.append(f"{p.alias} spoke {duration(secs)}{share}")
        r.lines.append(f"{lead} {'; '.join(parts)}.")
        return r.done(answered=any(f.value is not None for f in r.figures))
    tracks = _tracks(r)
    if isinstance(tracks, Answer):
        return tracks
    r.use("states")
    if subject.key == "face":
        parts = []
        for p in tracks:
            r.who(p.alias)
            seen = observed_secs(p)
            out = face_out_secs(p)
            secs = out if q.negated else seen - out
            what = "out of view" if q.negated else "in view"
            r.figures.append(
                Figure(
                    participant=p.alias,
                    measure=f"face {what}",
                    value=round(secs, 1),
                    unit="s",
                    note=f"of {duration(seen)} observed",
                )
            )
            parts.append(
                f"{p.alias}'s face was {what} for {duration(secs)} of {duration(seen)} observed"
            )
        r.lines.append(f"{lead} {'; '.join(parts)}.")
        return r.done()
    if subject.reading == "engagement":
        low_band = q.direction == "low"
        bound = ctx.bands[0]
        parts = []
        for p in tracks:
            r.who(p.alias)
            values = p.readings.get("engagement", [])
            measured = sum(h for h, v in zip(p.hold, values, strict=False) if v is not None)
            inside = sum(
                h
                for h, v in zip(p.hold, values, strict=False)
                if v is not None and ((v < bound) == low_band)
            )
            what = (
                f"in the low band (under {bound:.2f})"
                if low_band
                else f"at medium or high engagement ({bound:.2f} or more)"
            )
            if measured <= 0:
                reason = p.reasons.get("engagement", "no reading")
                parts.append(f"{p.alias}'s engagement was not measured ({reason})")
                r.figures.append(
                    Figure(
                        participant=p.alias,
                        measure="time in band",
                        value=None,
                        unit="s",
                        note=f"not measured: {reason}",
                    )
                )
                continue
            r.figures.append(
                Figure(
                    participant=p.alias,
                    measure="time in band",
                    value=round(inside, 1),
                    unit="s",
                    note=f"of {duration(measured)} measured",
                )
            )
            parts.append(
                f"{p.alias} was {what} for {duration(inside)} "
                f"of {duration(measured)} with a reading"
            )
        r.lines.append(f"{lead} {'; '.join(parts)}.")
        return r.done()
    return _cannot(
        r,
        f"I cannot time “{subject.label}”: I can say how long someone spoke, how long the room "
        "was silent, how long a face was out of view, and how long someone was in the low "
        "engagement band.",
    )


def _tracks_or_all(r: _Reply) -> list[Track]:
    return _with_data(r.ctx)


def _no_data(r: _Reply) -> Answer:
    r.use("states")
    r.lines = [
        f"No readings in {r.ctx.range.text}: no participant's states were stored in that time."
    ]
    return r.done(answered=False)


# -- compare and value -------------------------------------------------------------------------


def _subject_of(key: str) -> Subject:
    return {
        "engagement": Subject("engagement", "engagement", "engagement"),
        "valence": Subject("valence", "expressed mood (valence)", "valence"),
        "talk": Subject("talk", "talk time"),
    }[key]


def _compare(r: _Reply) -> Answer:
    q, ctx = r.q, r.ctx
    if len(q.aliases) < 2:
        return _cannot(r, "Name two participants to compare.")
    if q.subject is not None and q.subject.null_reason is not None:
        return _not_estimable(r, q.subject)
    tracks = _tracks(r)
    if isinstance(tracks, Answer):
        return tracks
    by_alias = {p.alias: p for p in tracks}
    missing = [a for a in q.aliases if a not in by_alias]
    r.use("states")
    subjects = [q.subject] if q.subject is not None else [_subject_of(k) for k in COMPARE_DEFAULT]
    lines = []
    for subject in subjects:
        if subject.key in ("talk", "silence"):
            total = _total_talk(ctx)
            talk = {}
            parts = []
            for p in tracks:
                r.who(p.alias)
                text, secs = _talk_figure(r, p, total)
                parts.append(text)
                if secs is not None:
                    talk[p.alias] = secs
            diff = ""
            if len(talk) >= 2:
                hi = max(talk, key=lambda k: (talk[k], k))
                lo = min(talk, key=lambda k: (talk[k], k))
                diff = f": {hi} spoke {duration(talk[hi] - talk[lo])} more than {lo}"
            lines.append(f"talk {'; '.join(parts)}{diff}.")
            continue
        if subject.key == "face":
            parts = []
            for p in tracks:
                r.who(p.alias)
                out = face_out_secs(p)
                r.figures.append(
                    Figure(
                        participant=p.alias,
                        measure="face out of view",
                        value=round(out, 1),
                        unit="s",
                        note=f"of {duration(observed_secs(p))} observed",
                    )
                )
                parts.append(f"{p.alias} {duration(out)}")
            lines.append(f"face out of view: {'; '.join(parts)}.")
            continue
        reading = subject.reading
        assert reading is not None
        stats = {p.alias: track_stat(p, reading) for p in tracks}
        parts = []
        for a, s in stats.items():
            r.who(a)
            parts.append(_reading_figure(r, a, subject, s))
        known = {a: s.mean for a, s in stats.items() if s.mean is not None}
        diff = ""
        if len(known) >= 2:
            hi = max(known, key=lambda k: (known[k] or 0.0, k))
            lo = min(known, key=lambda k: (known[k] or 0.0, k))
            gap = (known[hi] or 0.0) - (known[lo] or 0.0)
            diff = f": {hi} higher by {gap:.2f}" if gap >= 0.005 else ": about the same"
            r.figures.append(
                Figure(
                    participant=None,
                    measure=f"difference in mean {reading}",
                    value=round(gap, 3),
                    unit="score",
                    note=f"{hi} minus {lo}",
                )
            )
        lines.append(f"mean {subject.label} {'; '.join(parts)}{diff}.")
    text = f"{_range_lead(ctx)} " + " ".join(line[:1].upper() + line[1:] for line in lines)
    if missing:
        text += f" No readings of {names(missing)} in that time."
    r.lines.append(text)
    return r.done()


def _value(r: _Reply) -> Answer:
    q, ctx = r.q, r.ctx
    subject = q.subject
    if subject is None:
        return _cannot(r, "I could not tell what to measure.")
    lead = _range_lead(ctx)
    if subject.key in ("talk", "silence", "face"):
        return _how_long(r)
    reading = subject.reading
    assert reading is not None
    signed = reading in ("valence", "arousal")
    if not q.aliases and reading in ROOM_READINGS:
        r.use("room")
        stat = series_stat(ctx.room.t, ctx.room.hold, room_values(ctx.room, reading), None)
        if stat.mean is None:
            r.lines.append(f"{lead} the room's {subject.label} was not measured.")
            return r.done(answered=False)
        part = _reading_figure(r, None, subject, stat)
        r.lines.append(
            f"{lead} mean {subject.label}: {part}, from {_num(stat.first or 0.0, signed)} "
            f"to {_num(stat.last or 0.0, signed)}."
        )
        return r.done()
    tracks = _tracks(r)
    if isinstance(tracks, Answer):
        return tracks
    r.use("states")
    parts = []
    for p in tracks:
        r.who(p.alias)
        stat = track_stat(p, reading)
        part = _reading_figure(r, p.alias, subject, stat)
        if stat.mean is not None:
            part += (
                f", from {_num(stat.first or 0.0, signed)} to {_num(stat.last or 0.0, signed)}"
                f" over {duration(stat.secs)} of readings"
            )
        parts.append(part)
    r.lines.append(f"{lead} mean {subject.label}: {'; '.join(parts)}.")
    return r.done(answered=any(f.value is not None for f in r.figures))


def _summary(r: _Reply) -> Answer:
    ctx = r.ctx
    notes = [s for s in ctx.summaries if s.error is None][:MAX_SUMMARIES]
    if not notes:
        r.lines.append(
            f"No mood summary covers {ctx.range.text} yet; press Summarize now to make one."
        )
        return r.done(answered=False)
    r.use("summaries")
    for s in notes:
        changes = " ".join(s.changes[:3])
        r.lines.append(
            f"The {s.label} of {clock(s.start_secs)}–{clock(s.end_secs)}: {s.room_mood} "
            f"{changes} Suggestion: {s.suggestion}".replace("  ", " ")
        )
    return r.done()


def _not_estimable(r: _Reply, subject: Subject) -> Answer:
    return _cannot(
        r, f"“{subject.label}” cannot be read from what meetmood measures: {subject.null_reason}."
    )


_KINDS: dict[str, Callable[[_Reply], Answer]] = {
    "who": _who,
    "when": _when,
    "how_long": _how_long,
    "compare": _compare,
    "value": _value,
    "summary": _summary,
}


def answer_local(question: str, ctx: QuestionContext) -> Answer:
    """Answer a pseudonymised question by the rules of this module."""
    q = parse_question(question)
    r = _Reply(q, ctx, [], [], [], [])
    if q.kind == "unknown":
        return _cannot(r, "I could not tell what you are asking.")
    if q.subject is not None and q.subject.null_reason is not None and q.kind != "summary":
        return _not_estimable(r, q.subject)
    if ctx.range.end_secs <= ctx.range.start_secs:
        r.lines = [
            f"No readings in that range ({ctx.range.phrase}): "
            f"the meeting has run {duration(ctx.now_secs)} so far."
        ]
        return r.done(answered=False)
    return _KINDS[q.kind](r)
