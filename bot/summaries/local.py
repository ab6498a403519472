"""The local summarizer: deterministic rules on this machine; nothing leaves it.

:func:`summarize_local` turns a :class:`~bot.summaries.models.SummaryInput` into a
:class:`~bot.summaries.models.SummaryOutput`. Every statement follows from a figure of
the input and quotes it; nothing is invented. Pure and fast (well under a millisecond
for a dozen participants); the same input gives the same text.

Rules (thresholds are the module constants):

**Each participant**, one sentence: engagement band and mean (or "unknown" with the
reason), "rising/falling from a to b" when it moved by at least
:data:`ENGAGEMENT_MOVE`; the engagement component that moved most (attention,
expressiveness or participation, by the size of last minus first value) when it moved
by at least :data:`COMPONENT_MOVE`; expressed mood (the circumplex quadrant of mean
valence and arousal) or the shift from the first to the last mood; talk in the window
(seconds, share, turns) or "did not speak"; face in view, % of the time.

**Room mood**: the last mood of the window with the mean valence and arousal, and the
first mood when it differed; "unknown" with the reason otherwise.

**What changed**, in this order, at most 12 statements:

1. Most and least engaged (by mean engagement, with two or more readings), and why for
   the least engaged: the component that moved most, else their lowest component.
2. Room engagement rose or fell by at least :data:`ENGAGEMENT_MOVE` (first to last);
   the room's trend at the end when rising or falling.
3. Room mood shifted (first mood to last).
4. Notable moments (at most :data:`MAX_MOMENTS`), each with when (minutes:seconds since
   the meeting started), who, and who was speaking. A ``media_gap`` (a participant's
   media paused while the bot reconnected) is no moment of the meeting's mood: it is
   said among the caveats (7).
5. The longest silence, when at least :data:`SILENCE_NOTE_SECS`.
6. A participant's expressed valence or arousal moving by at least :data:`AFFECT_MOVE`.
7. The data-quality notes of the input, as caveats, then each media gap.
8. Each participant's fused state that moved most (at least 0.2).

**One suggestion**, the first rule that applies:

1. Nobody observed → share the join link, check cameras and microphones.
2. Someone took at least :data:`DOMINANT_SHARE` of the window's talk (two or more
   people with analysed voice, at least :data:`DOMINANT_MIN_SECS` of talk) → invite
   others in, naming who spoke least.
3. Room engagement falling (trend falling, or down by at least
   :data:`ENGAGEMENT_MOVE` over at least :data:`MIN_CHANGE_SECS` of readings in the
   window) → a short break or a quick poll.
4. Nobody spoke for at least :data:`SILENCE_SUGGEST_SECS` → ask an open question.
5. The least engaged person's face was in view under 50 % of the time → check that their
   camera shows them.
6. The least engaged person is in the low band → invite them in by name.
7. Otherwise → nothing calls for a change (with the room's engagement when known).
"""

from __future__ import annotations

from bot.fusion.room import mood
from bot.summaries.models import (
    MomentInput,
    ParticipantInput,
    ParticipantSummary,
    Pseudonyms,
    Series,
    SummaryInput,
    SummaryOutput,
)
from bot.summaries.window import FACE_LOW_PCT

#: Engagement (a participant's or the room's) that moves this much is "rising"/"falling".
ENGAGEMENT_MOVE = 0.1
#: An engagement component must move this much to be named as the one that moved.
COMPONENT_MOVE = 0.05
#: Valence or arousal moving this much is a mood shift worth a statement.
AFFECT_MOVE = 0.2
#: Room engagement read for less time than this in a window is no ground for a suggestion.
MIN_CHANGE_SECS = 30.0
#: A window share of talk from which one person dominates.
DOMINANT_SHARE = 0.6
#: ...when the window holds at least this much talk, seconds.
DOMINANT_MIN_SECS = 20.0
#: A silence this long is reported, seconds.
SILENCE_NOTE_SECS = 15.0
#: A silence this long makes the suggestion, seconds.
SILENCE_SUGGEST_SECS = 30.0
#: Moments listed; the rest are counted.
MAX_MOMENTS = 4
#: Statements of "what changed".
MAX_CHANGES = 12

LABEL = "local summary"
COMPONENTS = ("attention", "expressiveness", "participation")


def clock(secs: float) -> str:
    """Seconds since the meeting started as ``m:ss`` (``h:mm:ss`` from an hour on)."""
    total = max(0, round(secs))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def names(aliases: list[str]) -> str:
    """``P1``, ``P1 and P2``, ``P1, P2 and P3``."""
    if len(aliases) <= 1:
        return "".join(aliases)
    return f"{', '.join(aliases[:-1])} and {aliases[-1]}"


def _moved(series: Series) -> str:
    return f"{series.start:.2f} → {series.end:.2f}"


def moved_component(p: ParticipantInput) -> tuple[str, Series] | None:
    """The engagement component that moved most, if it moved at least COMPONENT_MOVE."""
    best: tuple[str, Series] | None = None
    for name in COMPONENTS:
        s: Series = getattr(p, name)
        change = s.change
        if change is None or abs(change) < COMPONENT_MOVE:
            continue
        if best is None or abs(change) > abs(best[1].change or 0.0):
            best = (name, s)
    return best


def lowest_component(p: ParticipantInput) -> tuple[str, float] | None:
    """The engagement component with the lowest mean."""
    known = [(getattr(p, n).mean, n) for n in COMPONENTS if getattr(p, n).mean is not None]
    if not known:
        return None
    value, name = min(known)
    return name, value


def _why(p: ParticipantInput) -> str | None:
    comp = moved_component(p)
    if comp is not None:
        return f"{comp[0]} moved most ({_moved(comp[1])})"
    low = lowest_component(p)
    if low is not None:
        return f"lowest component {low[0]} at {low[1]:.2f}"
    return None


# -- each participant -------------------------------------------------------------------


def participant_sentence(p: ParticipantInput) -> str:
    """One participant's engagement and mood in one sentence (see the module docstring)."""
    parts = []
    e = p.engagement
    if e.mean is None:
        parts.append(f"engagement unknown ({e.reason or 'no reading'})")
    else:
        text = f"{p.band} engagement ({e.mean:.2f}"
        change = e.change
        if change is not None and abs(change) >= ENGAGEMENT_MOVE:
            way = "rising" if change > 0 else "falling"
            text += f", {way} from {e.start:.2f} to {e.end:.2f}"
        text += ")"
        comp = moved_component(p)
        if comp is not None:
            text += f", {comp[0]} moved most ({_moved(comp[1])})"
        parts.append(text)
    v, a = p.valence, p.arousal
    if p.mood_start and p.mood_end and p.mood_start != p.mood_end:
        parts.append(f"expressed mood shifted from {p.mood_start} to {p.mood_end}")
    elif (m := mood(v.mean, a.mean)) is not None:
        parts.append(f"expressed mood {m}")
    else:
        why = v.reason if v.mean is None else a.reason
        parts.append(f"expressed mood unknown ({why or 'no valence and arousal'})")
    t = p.talk
    if t is not None:
        if t.talk_secs <= 0:
            parts.append("did not speak")
        else:
            share = f"{100 * t.share:.0f} % of the talk, " if t.share is not None else ""
            turns = f"{t.turns} turn{'s' if t.turns != 1 else ''}"
            parts.append(f"spoke {t.talk_secs:.0f} s ({share}{turns})")
    pct = p.face.face_visible_pct
    if pct is not None:
        parts.append(f"face in view {pct:.0f} % of the time")
    return f"{p.alias}: {'; '.join(parts)}."


# -- the room ---------------------------------------------------------------------------


def room_mood(inp: SummaryInput) -> str:
    """The room's mood in a sentence."""
    r = inp.room
    if r.mood_end is None:
        why = r.valence.reason or r.arousal.reason or "no valence and arousal readings"
        return f"Room mood unknown ({why})."
    text = f"Room mood: {r.mood_end}"
    if r.valence.mean is not None and r.arousal.mean is not None:
        text += f" (valence {r.valence.mean:+.2f}, arousal {r.arousal.mean:+.2f})"
    if r.mood_start is not None and r.mood_start != r.mood_end:
        text += f"; it was {r.mood_start} at the start of the window"
    return text + "."


def moment_text(m: MomentInput) -> str:
    """A notable moment, with who was speaking."""
    who = names(m.participants)
    match m.kind:
        case "engagement_drop":
            what = f"room engagement fell by {abs(m.value):.2f} within {m.window_secs:.0f} s"
        case "engagement_rise":
            what = f"room engagement rose by {abs(m.value):.2f} within {m.window_secs:.0f} s"
        case "long_silence":
            what = (
                f"{who or 'someone'} had been silent for {m.value / 60:.0f} min while others spoke"
            )
        case "joint_smiles":
            what = f"{who or f'{m.value:.0f} faces'} smiled at the same time"
        case "media_gap":
            # The connection paused, not the person: nothing was seen or heard, so who
            # was speaking is unknown and the pause says nothing about engagement or mood.
            whose = f"{who}'s" if who else "a participant's"
            return (
                f"At {clock(m.at_secs)} {whose} media paused for {m.value:.0f} s while the bot "
                "reconnected; nothing was analysed in that time."
            )
        case _:
            what = m.kind.replace("_", " ")
    speaking = f"while {names(m.speaking)} spoke" if m.speaking else "while nobody was speaking"
    return f"At {clock(m.at_secs)} {what}, {speaking}."


def changes(inp: SummaryInput) -> list[str]:
    """What changed in the window (see the module docstring for the order)."""
    out: list[str] = []
    ranked = [p for p in inp.participants if p.engagement.mean is not None]
    if len(ranked) >= 2:
        most = max(ranked, key=lambda p: p.engagement.mean or 0.0)
        least = min(ranked, key=lambda p: p.engagement.mean or 0.0)
        why = _why(least)
        out.append(
            f"Most engaged: {most.alias} ({most.engagement.mean:.2f}); least engaged: "
            f"{least.alias} ({least.engagement.mean:.2f})" + (f", {why}." if why else ".")
        )
    elif len(ranked) == 1:
        only = ranked[0]
        out.append(f"Only {only.alias} had an engagement reading ({only.engagement.mean:.2f}).")
    room = inp.room
    e = room.engagement
    if e.change is not None and abs(e.change) >= ENGAGEMENT_MOVE:
        way = "rose" if e.change > 0 else "fell"
        out.append(f"Room engagement {way} from {e.start:.2f} to {e.end:.2f}.")
    if room.trend in ("rising", "falling") and room.trend_change is not None:
        out.append(
            f"Room engagement trend at the end: {room.trend} ({room.trend_change:+.2f} over the"
            " trend window)."
        )
    if room.mood_start and room.mood_end and room.mood_start != room.mood_end:
        out.append(f"Room mood shifted from {room.mood_start} to {room.mood_end}.")
    moments = [m for m in room.moments if m.kind != "media_gap"]
    out.extend(moment_text(m) for m in moments[:MAX_MOMENTS])
    if len(moments) > MAX_MOMENTS:
        out.append(f"{len(moments) - MAX_MOMENTS} more notable moments.")
    longest = room.longest_silence_secs
    if longest is not None and longest >= SILENCE_NOTE_SECS:
        text = f"Longest silence: {longest:.0f} s with nobody speaking"
        if room.silence_secs is not None:
            text += f" ({room.silence_secs:.0f} s of silence in {inp.window_secs:.0f} s)"
        out.append(text + ".")
    for p in inp.participants:
        for name in ("valence", "arousal"):
            s: Series = getattr(p, name)
            if s.change is not None and abs(s.change) >= AFFECT_MOVE:
                way = "rose" if s.change > 0 else "fell"
                out.append(
                    f"{p.alias}'s expressed {name} {way} from {s.start:+.2f} to {s.end:+.2f}."
                )
    out.extend(f"Caveat: {note}." for note in inp.data_quality)
    out.extend(f"Caveat: {moment_text(m)}" for m in room.moments if m.kind == "media_gap")
    for p in inp.participants:
        if p.changed_states:
            c = p.changed_states[0]
            way = "rose" if c.end > c.start else "fell"
            out.append(f"{p.alias}: {c.label} {way} from {c.start:.2f} to {c.end:.2f}.")
    return out[:MAX_CHANGES] or ["No notable change in this window."]


def suggestion(inp: SummaryInput) -> str:
    """One suggestion for the host, by the first rule that applies."""
    people = inp.participants
    if not any(p.observed_secs > 0 for p in people):
        return (
            "No one was observed in this window: share the join link, or check that "
            "participants' cameras and microphones are on."
        )
    talk = {p.alias: p.talk for p in people if p.talk is not None}
    total = sum(t.talk_secs for t in talk.values())
    if len(talk) >= 2 and total >= DOMINANT_MIN_SECS:
        top = max(talk, key=lambda alias: talk[alias].talk_secs)
        share = talk[top].share
        if share is not None and share >= DOMINANT_SHARE:
            quiet = min((a for a in talk if a != top), key=lambda alias: talk[alias].talk_secs)
            return (
                f"{top} spoke {100 * share:.0f} % of the talk in this window: invite "
                f"others in, for example ask {quiet} (who spoke least) for their view."
            )
    room = inp.room
    e = room.engagement
    falling = e.change is not None and e.change <= -ENGAGEMENT_MOVE and e.secs >= MIN_CHANGE_SECS
    if falling or room.trend == "falling":
        how = f"{_moved(e)} in this window" if falling else f"trend {room.trend_change:+.2f}"
        return f"Room engagement is falling ({how}): consider a short break or a quick poll."
    longest = room.longest_silence_secs
    if longest is not None and longest >= SILENCE_SUGGEST_SECS:
        return f"Nobody spoke for {longest:.0f} s: ask the group an open question."
    ranked = [p for p in people if p.engagement.mean is not None]
    if ranked:
        least = min(ranked, key=lambda p: p.engagement.mean or 0.0)
        pct = least.face.face_visible_pct
        if pct is not None and pct < FACE_LOW_PCT:
            return (
                f"{least.alias}'s face was in view only {pct:.0f} % of the time: check that "
                "their camera shows them before reading their engagement."
            )
        if least.band == "low":
            why = _why(least)
            detail = f", {why}" if why else ""
            return (
                f"{least.alias}'s engagement is low ({least.engagement.mean:.2f}{detail}): "
                "invite them in by name."
            )
    if room.band is not None and e.mean is not None:
        return (
            f"Nothing calls for a change: room engagement is {room.band} ({e.mean:.2f}) "
            "and not falling."
        )
    return "Nothing calls for a change in this window."


def summarize_local(inp: SummaryInput) -> SummaryOutput:
    """The local summary of one window (see the module docstring)."""
    return SummaryOutput(
        participants=[
            ParticipantSummary(
                participant=p.alias,
                engagement_band=p.band or "unknown",
                sentence=participant_sentence(p),
            )
            for p in inp.participants
        ],
        room_mood=room_mood(inp),
        changes=changes(inp),
        suggestion=suggestion(inp),
    )


class LocalSummarizer:
    """The :class:`~bot.summaries.Summarizer` on this machine. Event loop; never blocks."""

    name = "local"
    label = LABEL
    model = None
    where = "nothing leaves this machine"

    async def summarize(self, inp: SummaryInput, names: Pseudonyms) -> SummaryOutput:
        """The local summary of ``inp`` (pseudonyms only; ``names`` is not read)."""
        return summarize_local(inp)

    async def aclose(self) -> None:
        """Nothing to release."""
