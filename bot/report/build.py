"""Building a :class:`~bot.report.model.MeetingReport` from the store, in bounded memory.

:func:`build_report` reads a meeting's stored states a page at a time
(:meth:`~bot.store.Store.state_page`) and folds each into running sums, so its memory
depends on the number of participants and chart bins, not on the meeting's length:

- a :class:`~bot.summaries.window.SummaryWindow` spanning the whole meeting gives each
  participant's engagement, components, valence and arousal (mean, first, last), moods,
  seed B's window features (``blink_freq``, ``smile_freq``, ``avg_head_tilt``,
  ``percent_away``, ``emotion_counts``, face in view) and the data-quality notes, exactly
  as mood summaries compute them (time-weighted; each state holds until the next, at
  most :data:`~bot.summaries.window.HOLD_SECS`);
- :class:`_Averages` gives every registry quantity's time-weighted mean and confidence
  under the same rule (always-null states keep the registry's reason);
- :class:`_Bins` gives the time series for the charts: the meeting cut into at most
  :data:`MAX_BINS` equal bins, a time-weighted mean per bin.

Room states (one a second) and moments are read whole; summaries too. Runs on the
event loop; the store does its reading on its own thread.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import cast, get_args

from bot.fusion.registry import REGISTRY, band
from bot.fusion.room import mood
from bot.report.model import (
    MeetingReport,
    MoodSpan,
    ReportAnalysis,
    ReportMeeting,
    ReportMoment,
    ReportNotice,
    ReportParticipant,
    ReportQuality,
    ReportReading,
    ReportRoom,
    ReportSummarizer,
    ReportTalk,
    TimeSeries,
)
from bot.settings import Settings
from bot.store import MeetingRecord, ParticipantRecord, StateCursor, Store
from bot.summaries.local import moment_text
from bot.summaries.models import MomentInput, Series
from bot.summaries.window import HOLD_SECS, SummaryWindow
from bot.types import (
    LeaveReason,
    Moment,
    NoticeEvent,
    ParticipantInfo,
    ParticipantJoinedEvent,
    ParticipantLeftEvent,
    ParticipantState,
    ParticipantStateEvent,
    RoomEvent,
    RoomState,
    TalkFigures,
)

#: Most points per time series (charts and JSON).
MAX_BINS = 240
#: Narrowest bin, seconds.
MIN_BIN_SECS = 1.0
#: Stretches the meeting is cut into for "mood over time".
MOOD_SPANS = 8
#: States read from the store per page.
PAGE_ROWS = 1000
#: The participant readings drawn over time.
SERIES = ("engagement", "attention", "expressiveness", "participation", "valence", "arousal")
#: The room readings drawn over time.
ROOM_SERIES = ("engagement", "valence", "arousal")


class MeetingMissing(LookupError):
    """No meeting has this id."""


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


@dataclass(slots=True)
class _Bins:
    """Time-weighted sums of several readings in equal bins from ``start``."""

    start: float
    width: float
    n: int
    sums: dict[str, list[float]] = field(default_factory=dict)
    secs: dict[str, list[float]] = field(default_factory=dict)

    @classmethod
    def over(cls, start: float, end: float, names: Sequence[str]) -> _Bins:
        span = max(end - start, MIN_BIN_SECS)
        n = max(1, min(MAX_BINS, math.ceil(span / MIN_BIN_SECS)))
        bins = cls(start, span / n, n)
        for name in names:
            bins.sums[name] = [0.0] * n
            bins.secs[name] = [0.0] * n
        return bins

    def credit(self, name: str, ts: float, value: float | None, dt: float) -> None:
        """Count ``value`` for ``dt`` seconds from ``ts``, split over the bins it spans."""
        if value is None or dt <= 0:
            return
        t, end = ts, ts + dt
        while t < end:
            k = min(self.n - 1, max(0, int((t - self.start) // self.width)))
            edge = self.start + (k + 1) * self.width
            step = (min(end, edge) if k < self.n - 1 else end) - t
            if step <= 0:  # float edge case: move on to the next bin
                step = min(end - t, 1e-6)
            self.sums[name][k] += value * step
            self.secs[name][k] += step
            t += step

    def mean(self, name: str, k: int) -> float | None:
        secs = self.secs[name][k]
        return self.sums[name][k] / secs if secs > 0 else None

    def series(self) -> TimeSeries:
        return TimeSeries(
            bin_secs=round(self.width, 3),
            t_secs=[round((k + 0.5) * self.width, 2) for k in range(self.n)],
            values={
                name: [_round(self.mean(name, k), 4) for k in range(self.n)] for name in self.sums
            },
        )

    def moods(self) -> list[MoodSpan]:
        """Mean valence and arousal, and their mood, over :data:`MOOD_SPANS` equal stretches."""
        spans = min(MOOD_SPANS, self.n)
        out = []
        for j in range(spans):
            lo, hi = j * self.n // spans, (j + 1) * self.n // spans
            means: dict[str, float | None] = {}
            for name in ("valence", "arousal"):
                secs = sum(self.secs[name][lo:hi])
                means[name] = sum(self.sums[name][lo:hi]) / secs if secs > 0 else None
            v, a = means["valence"], means["arousal"]
            out.append(
                MoodSpan(
                    start_secs=round(lo * self.width, 1),
                    end_secs=round(hi * self.width, 1),
                    valence=_round(v),
                    arousal=_round(a),
                    mood=mood(v, a),
                )
            )
        return out


@dataclass(slots=True)
class _Average:
    total: float = 0.0
    secs: float = 0.0
    confidence: float = 0.0
    reason: str | None = None


@dataclass(slots=True)
class _Averages:
    """One participant's running sums over the meeting: every registry quantity, the bins."""

    bins: _Bins
    last: ParticipantState | None = None
    readings: dict[str, _Average] = field(default_factory=dict)
    talk: TalkFigures | None = None
    voice_statuses: Counter[str] = field(default_factory=Counter)

    def add(self, state: ParticipantState) -> None:
        if self.last is not None:
            self.credit(state.ts)
        for d in REGISTRY:
            r = state.readings.get(d.name)
            if r is not None and r.value is None:
                self.readings.setdefault(d.name, _Average()).reason = r.reason
        if state.talk is not None:
            self.talk = state.talk
        if state.voice is not None:
            self.voice_statuses[state.voice.emotion_status] += 1
        self.last = state

    def credit(self, until: float) -> None:
        s = self.last
        if s is None:
            return
        dt = min(until - s.ts, HOLD_SECS)
        if dt <= 0:
            return
        for d in REGISTRY:
            r = s.readings.get(d.name)
            if r is None or r.value is None:
                continue
            avg = self.readings.setdefault(d.name, _Average())
            avg.total += r.value * dt
            avg.secs += dt
            avg.confidence += r.confidence * dt
        for name in SERIES:
            self.bins.credit(name, s.ts, s.value(name), dt)

    def states(self) -> list[ReportReading]:
        out = []
        for d in REGISTRY:
            avg = self.readings.get(d.name, _Average())
            has = avg.secs > 0
            reason = d.null_reason or (None if has else avg.reason or "never observed")
            out.append(
                ReportReading(
                    name=d.name,
                    group=d.group,
                    label=d.label,
                    unit=d.unit,
                    low=d.low,
                    high=d.high,
                    support=d.support,
                    mean=_round(avg.total / avg.secs, 4) if has else None,
                    secs=round(avg.secs, 1),
                    confidence=_round(avg.confidence / avg.secs) if has else None,
                    reason=reason,
                    alias_of=d.alias_of,
                )
            )
        return out


def _analysis(
    settings: Settings, voice_statuses: Counter[str], notices: Iterable[NoticeEvent]
) -> ReportAnalysis:
    enabled = settings.analyzers.enabled
    face = settings.analyzers.face_emotion
    analysed, unavailable = [], []
    if "face_emotion" in enabled:
        model = "FER2013 mini-Xception" if face.model == "mini_xception" else "DeepFace"
        analysed.append(f"Facial expressions: 7 classes by the {model} model, face in view")
        if face.detector == "mediapipe":
            analysed.append(
                "Face landmarks: blinks, smiles and action units against the person's own "
                "resting face, head pose, gaze and looking away"
            )
        else:
            unavailable.append(
                "Face landmarks (Haar detector): no blinks, smiles, action units, head pose "
                "or gaze; attention is face presence only"
            )
    else:
        unavailable.append("Faces: face analysis was turned off")
    if settings.voice.enabled:
        analysed.append(
            "Voice: speaking activity, talk time, turns, overlaps, prosody and arousal "
            "against the speaker's usual voice (no words: nothing is transcribed)"
        )
        if "voice_emotion" in enabled:
            analysed.append("Tone of voice: a speech-emotion model on 1-4 s stretches of speech")
        else:
            unavailable.append("Tone of voice: the speech-emotion model was turned off")
    else:
        unavailable.append("Voice: voice analysis was turned off")
    codes = {n.code for n in notices}
    if "voice_emotion" in enabled and (
        voice_statuses.get("unavailable") or "voice_emotion_unavailable" in codes
    ):
        unavailable.append(
            "Tone of voice: the speech-emotion model could not be loaded (no model available "
            "offline); voice emotion is not read"
        )
    if "face_emotion_unavailable" in codes:
        unavailable.append("Facial expressions: the face emotion model could not be loaded")
    never = [d.name for d in REGISTRY if d.null_reason is not None]
    unavailable.append(
        f"Not estimable from what is observed, by design: {', '.join(never)} "
        "(each state's reason is given with its average)"
    )
    return ReportAnalysis(analysed=analysed, unavailable=unavailable)


def _participant_order(records: list[ParticipantRecord]) -> list[ParticipantRecord]:
    return sorted(records, key=lambda r: r.joined_at)  # stable: the store's order on ties


def _talk(t: TalkFigures | None) -> ReportTalk | None:
    if t is None:
        return None
    return ReportTalk(
        talk_secs=round(t.talk_secs, 1),
        talk_share=_round(t.talk_share),
        turns=t.turns,
        interruptions=t.interruptions,
        overlap_secs=_round(t.overlap_secs, 1),
    )


def _pct(part: float, whole: float) -> float | None:
    return round(100 * part / whole, 1) if whole > 0 else None


def meeting_span(
    record: MeetingRecord, records: Sequence[ParticipantRecord], last_ts: float | None, now: float
) -> tuple[float, float, bool]:
    """Time 0 and end of a meeting's report, and whether someone is still connected."""
    start = min((r.joined_at for r in records), default=record.created_at)
    live = any(r.left_at is None for r in records)
    ends = [t for t in (last_ts, *(r.left_at for r in records), record.ended_at) if t is not None]
    end = max(ends, default=start)
    if live:
        end = max(end, min(now, (last_ts or start) + HOLD_SECS))
    return start, max(end, start), live


async def build_report(
    store: Store,
    meeting_id: str,
    settings: Settings,
    notice: ReportNotice,
    *,
    notices: Sequence[NoticeEvent] = (),
    now: float | None = None,
    generator: str = "meetmood",
) -> MeetingReport:
    """The report of one meeting, live or ended, from what is stored.

    Args:
        store: An open store.
        meeting_id: The meeting.
        settings: The server's settings (what was analysed, engagement bands, summarizer).
        notice: The notice participants were shown (see :func:`web.views.join_notice`).
        notices: Server notices (models that could not be loaded).
        now: The report's time (default: now).
        generator: Who made it, e.g. ``meetmood 0.1.0``.

    Raises:
        MeetingMissing: unknown meeting.
    """
    record = await store.get_meeting(meeting_id)
    if record is None:
        raise MeetingMissing(meeting_id)
    now = time.time() if now is None else now
    records = _participant_order(await store.list_participants(meeting_id))
    start, end, live = meeting_span(record, records, await store.last_ts(meeting_id), now)
    by_id = {r.id: r for r in records}

    window = SummaryWindow(settings.fusion)
    people: dict[str, _Averages] = {}
    for rec in records:
        window.add(
            ParticipantJoinedEvent(
                participant=ParticipantInfo(
                    participant_id=rec.id, display_name=rec.display_name, joined_at=rec.joined_at
                )
            )
        )
        people[rec.id] = _Averages(_Bins.over(start, end, SERIES))
    window.origin = window.start = start
    for n in notices:
        window.add(n)

    cursor: StateCursor | None = None
    while True:
        page = await store.state_page(meeting_id, cursor=cursor, limit=PAGE_ROWS)
        for state in page.states:
            acc = people.get(state.participant_id)
            if acc is None:  # a state without its participant row: count it anyway
                acc = people[state.participant_id] = _Averages(_Bins.over(start, end, SERIES))
            acc.add(state)
            window.add(ParticipantStateEvent(state=state))
        if page.next is None:
            break
        cursor = page.next
    for pid, acc in people.items():
        r = by_id.get(pid)
        stop = r.left_at if r is not None and r.left_at is not None else end
        acc.credit(stop)
        if r is not None and r.left_at is not None:
            reason = r.leave_reason if r.leave_reason in get_args(LeaveReason) else "left"
            window.add(
                ParticipantLeftEvent(
                    participant_id=pid, ts=r.left_at, reason=cast(LeaveReason, reason)
                )
            )

    room_states = await store.read_room(meeting_id)
    room_bins = _Bins.over(start, end, ROOM_SERIES)
    _fold_room(room_states, room_bins, end)
    for rs in room_states:
        window.add(RoomEvent(room=rs))
    inp, names = window.build(end, "end")

    participants = []
    by_alias = {p.alias: p for p in inp.participants}
    for alias, (pid, _name) in names.by_alias.items():
        p = by_alias.get(alias)
        r = by_id.get(pid)
        acc = people.get(pid)
        if p is None or r is None or acc is None:
            continue
        face = p.face
        eng = acc.readings.get("engagement", _Average())
        statuses = acc.voice_statuses
        parent = by_id.get(r.parent_id) if r.parent_id else None
        participants.append(
            ReportParticipant(
                participant_id=pid,
                display_name=r.display_name,
                source=r.source,
                parent=parent.display_name if parent is not None else None,
                joined_secs=round(r.joined_at - start, 1),
                left_secs=None if r.left_at is None else round(r.left_at - start, 1),
                leave_reason=r.leave_reason,
                band=band(p.engagement.mean, settings.fusion),
                engagement=p.engagement,
                attention=p.attention,
                expressiveness=p.expressiveness,
                participation=p.participation,
                valence=p.valence,
                arousal=p.arousal,
                mood_start=p.mood_start,
                mood_end=p.mood_end,
                moods=acc.bins.moods(),
                talk=_talk(acc.talk),
                states=acc.states(),
                window_features=face,
                quality=ReportQuality(
                    observed_secs=p.observed_secs,
                    face_visible_pct=face.face_visible_pct,
                    voice_analysed=bool(statuses) or acc.talk is not None,
                    voice_emotion=p.voice_emotion,
                    failing_pct=p.stale_pct,
                    engagement_confidence=_round(eng.confidence / eng.secs) if eng.secs else None,
                ),
                series=acc.bins.series(),
            )
        )

    speech = [
        acc.talk.meeting_speech_secs
        for acc in people.values()
        if acc.talk is not None and acc.talk.meeting_speech_secs is not None
    ]
    room = inp.room
    name_of = {r.id: r.display_name for r in records}
    summaries = await store.summaries(meeting_id)
    used = Counter(s.label for s in summaries)
    voice_statuses: Counter[str] = Counter()
    for acc in people.values():
        voice_statuses.update(acc.voice_statuses)
    summarizer = settings.summaries.summarizer
    return MeetingReport(
        generated_at=round(now, 3),
        generator=generator,
        meeting=ReportMeeting(
            id=record.id,
            name=record.name,
            created_at=record.created_at,
            start_ts=start,
            end_ts=end,
            duration_secs=round(end - start, 1),
            status="in progress" if live else "ended",
            participants=len(records),
        ),
        analysis=_analysis(settings, voice_statuses, notices),
        notice=notice,
        summarizer=ReportSummarizer(
            configured="vertex" if summarizer == "vertex" else "local",
            label=(
                f"Gemini summary ({settings.summaries.vertex.model})"
                if summarizer == "vertex"
                else "local summary"
            ),
            used=dict(used),
        ),
        participants=participants,
        room=ReportRoom(
            engagement=room.engagement,
            valence=room.valence,
            arousal=room.arousal,
            band=room.band,
            mood_start=room.mood_start,
            mood_end=room.mood_end,
            moods=room_bins.moods(),
            speech_secs=round(max(speech), 1) if speech else None,
            series=room_bins.series(),
        ),
        moments=[_moment(m, start, name_of) for m in await store.moments(meeting_id)],
        summaries=sorted(summaries, key=lambda s: (s.ts, s.window_start)),
        data_quality=[names.reveal(n) for n in inp.data_quality],
    )


def _fold_room(states: Sequence[RoomState], bins: _Bins, end: float) -> None:
    for k, s in enumerate(states):
        until = states[k + 1].ts if k + 1 < len(states) else end
        dt = min(until - s.ts, HOLD_SECS)
        for name in ROOM_SERIES:
            bins.credit(name, s.ts, getattr(s, name), dt)


def _moment(m: Moment, start: float, name_of: dict[str, str]) -> ReportMoment:
    who = [name_of.get(pid, pid) for pid in m.participants]
    speaking = [name_of.get(pid, pid) for pid in m.speaking]
    at = round(m.ts - start, 1)
    text = moment_text(
        MomentInput(
            at_secs=at,
            kind=m.kind,
            participants=who,
            speaking=speaking,
            value=m.value,
            window_secs=m.window_secs,
        )
    )
    return ReportMoment(
        ts=m.ts,
        at_secs=at,
        kind=m.kind,
        text=text,
        participants=who,
        speaking=speaking,
        value=round(m.value, 3),
        window_secs=m.window_secs,
    )


def series_of(s: Series) -> str:
    """A series as "mean (first → last)" for text renderers."""
    if s.mean is None:
        return f"not measured ({s.reason or 'no value'})"
    if s.start is None or s.end is None:
        return f"{s.mean:.2f}"
    return f"{s.mean:.2f} ({s.start:.2f} → {s.end:.2f})"
