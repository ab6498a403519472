"""The summary window: a meeting's events since the last summary, as a :class:`SummaryInput`.

:class:`SummaryWindow` is shown every event the meeting publishes
(:meth:`SummaryWindow.add`) and asked for the input at ``now``
(:meth:`SummaryWindow.build`), after which :meth:`SummaryWindow.roll` starts the next
window. Synchronous, deterministic, ``now`` passed in; memory stays constant however
long the window (running sums, not lists of states). Runs on the event loop thread.

How each figure is computed (participants' states arrive at every observation, up to
15 a second, at irregular times, so everything is **time-weighted**, never counted
per state):

- Each state holds from its ``ts`` until the next state of that participant, but at
  most :data:`HOLD_SECS`; time beyond that is "not observed". The state current when
  a window starts holds into it and gives each reading's ``start``.
- **Readings** (engagement, its components, valence, arousal): time-weighted mean over
  the time they had a value, first and last value. A reading that never had a value
  keeps its last reason ("no face in view").
- **Seed B's features**, over the time a face was in view: ``blink_freq`` = blink events
  (increments of the face tracker's blink counter, per track) / seconds of face time at
  a frame rate that can see blinks (``null`` under :data:`MIN_BLINK_SECS`);
  ``smile_freq`` = share of that time smiling (AU12 against the person's neutral face);
  ``avg_head_tilt`` = mean head pitch, degrees; ``percent_away`` = 100 x share looking
  away from the person's usual gaze; ``emotion_counts`` = analysed face frames on which
  each AU rule label fired (as seed B counts them), with ``face_frames`` beside it.
  ``face_visible_pct`` = 100 x face time / observed time.
- **Talk**: differences of the meeting's cumulative talk figures between the start and
  the end of the window (seconds, turns); shares are of the window's talk. The room's
  speech and silence come from the talk events (once a second); the longest silence is
  the longest "nobody has spoken for" within the window.
- **Mood** is the circumplex quadrant (:func:`bot.fusion.room.mood`) of the first and of
  the last valence and arousal; **trends** are the room fusion's at the window's end.
- **Changed states**: basic, vocal and composite states whose last value differs from
  their first by at least :data:`STATE_CHANGE` (at most :data:`MAX_STATE_CHANGES`).
- **Data quality**: face in view under :data:`FACE_LOW_PCT` % of the time, a face with
  no landmarks, no analysed voice, failing analysis at least :data:`STALE_NOTE_PCT` % of
  the time, and models that are unavailable.

Participants get pseudonyms ``P1``, ``P2``, ... in the order they are first seen, kept
for the whole meeting.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from bot.fusion.params import FusionParams
from bot.fusion.registry import REGISTRY, band
from bot.fusion.room import mood
from bot.summaries.models import (
    FaceFeatures,
    MomentInput,
    ParticipantInput,
    Pseudonyms,
    RoomInput,
    Series,
    StateChange,
    SummaryInput,
    SummaryReason,
    TalkInput,
)
from bot.types import (
    MeetingEvent,
    MomentEvent,
    NoticeEvent,
    ParticipantJoinedEvent,
    ParticipantLeftEvent,
    ParticipantState,
    ParticipantStateEvent,
    RoomEvent,
    RoomState,
    TalkEvent,
    TalkFigures,
    VoiceEmotionStatus,
)

#: A state (or room state) counts for at most this long after its ``ts``, seconds.
HOLD_SECS = 5.0
#: Less face time than this at a blink-capable frame rate: no blink frequency, seconds.
MIN_BLINK_SECS = 10.0
#: A fused state that moves at least this much is a changed state.
STATE_CHANGE = 0.2
#: Changed states listed per participant.
MAX_STATE_CHANGES = 3
#: A face in view less than this share of the time (percent) is a data-quality note.
FACE_LOW_PCT = 50.0
#: Failing analysis at least this share of the time (percent) is a data-quality note.
STALE_NOTE_PCT = 10.0

#: The readings summarised as series.
SERIES = ("engagement", "attention", "expressiveness", "participation", "valence", "arousal")
_CHANGEABLE = tuple(
    d
    for d in REGISTRY
    if d.group in ("basic", "vocal", "composite") and d.alias_of is None and d.null_reason is None
)
_ZERO_TALK = TalkFigures(0.0, None, 0)


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


@dataclass(slots=True)
class _Series:
    """Running time-weighted sum, first and last value of one reading."""

    total: float = 0.0
    secs: float = 0.0
    first: float | None = None
    last: float | None = None
    reason: str | None = None

    def see(self, value: float | None, reason: str | None) -> None:
        if value is None:
            self.reason = reason
            return
        if self.first is None:
            self.first = value
        self.last = value

    def credit(self, value: float | None, dt: float) -> None:
        if value is not None:
            self.total += value * dt
            self.secs += dt

    def result(self) -> Series:
        mean = self.total / self.secs if self.secs > 0 else self.last
        return Series(
            mean=_round(mean),
            start=_round(self.first),
            end=_round(self.last),
            secs=round(self.secs, 1),
            reason=self.reason if self.first is None else None,
        )


@dataclass(slots=True)
class _Person:
    """One participant's running sums for the current window."""

    alias: str
    participant_id: str
    name: str = ""
    last: ParticipantState | None = None  # carried across windows
    gone: bool = False
    joined: bool = False
    left: bool = False
    seen: bool = False  # any event in this window
    observed_secs: float = 0.0
    face_secs: float = 0.0
    landmark_secs: float = 0.0
    smile_secs: float = 0.0
    smile_known_secs: float = 0.0
    pitch_total: float = 0.0
    pitch_secs: float = 0.0
    away_secs: float = 0.0
    away_known_secs: float = 0.0
    blink_secs: float = 0.0
    blinks: int = 0
    stale_secs: float = 0.0
    face_frames: int = 0
    labels: Counter[str] = field(default_factory=Counter)
    series: dict[str, _Series] = field(default_factory=dict)
    first_state: ParticipantState | None = None
    talk_start: TalkFigures | None = None
    voice_seen: bool = False
    voice_emotion: VoiceEmotionStatus | None = None
    # Carried across windows: blink counter per face track, last analysed face frame.
    blinks_by_track: dict[int, int] = field(default_factory=dict)
    last_frame_ts: float | None = None

    def next_window(self) -> _Person:
        """This participant at the start of the next window; the current state carries in."""
        fresh = _Person(self.alias, self.participant_id, self.name, self.last)
        fresh.blinks_by_track = self.blinks_by_track
        fresh.last_frame_ts = self.last_frame_ts
        fresh.talk_start = self.last.talk if self.last is not None else None
        if self.last is not None:
            fresh._see(self.last, new_frame=False)
        return fresh

    def add(self, state: ParticipantState, window_start: float) -> None:
        if self.last is not None and not self.gone:
            self.credit(state.ts, window_start)
        self.seen = True
        self._see(state, new_frame=True)
        self.last = state

    def credit(self, until: float, window_start: float) -> None:
        """Count the current state for the time from its ``ts`` to ``until`` (held at most)."""
        s = self.last
        if s is None:
            return
        dt = min(until - max(s.ts, window_start), HOLD_SECS)
        if dt <= 0:
            return
        self.observed_secs += dt
        if s.stale:
            self.stale_secs += dt
        for name in SERIES:
            self.series.setdefault(name, _Series()).credit(s.value(name), dt)
        if not s.face_visible:
            return
        self.face_secs += dt
        f = s.face
        if f is None:
            return
        self.landmark_secs += dt
        if f.is_smiling is not None:
            self.smile_known_secs += dt
            self.smile_secs += dt if f.is_smiling else 0.0
        if f.head_pitch is not None:
            self.pitch_total += f.head_pitch * dt
            self.pitch_secs += dt
        if f.looking_away is not None:
            self.away_known_secs += dt
            self.away_secs += dt if f.looking_away else 0.0
        if f.blink_rate_per_min is not None:
            self.blink_secs += dt

    def _see(self, s: ParticipantState, *, new_frame: bool) -> None:
        if self.first_state is None:
            self.first_state = s
        for name in SERIES:
            r = s.readings.get(name)
            self.series.setdefault(name, _Series()).see(
                None if r is None else r.value, None if r is None else r.reason
            )
        if s.voice is not None:
            self.voice_seen = True
            self.voice_emotion = s.voice.emotion_status
        frame_ts = s.emotion.ts if s.face_visible and s.emotion is not None else None
        if not new_frame or frame_ts is None or frame_ts == self.last_frame_ts:
            return
        # A new analysed face frame (voice and talk observations repeat the last one).
        self.last_frame_ts = frame_ts
        self.face_frames += 1
        f = s.face
        if f is None:
            return
        self.labels.update(f.au_labels)
        before = self.blinks_by_track.get(f.track_id, 0)
        self.blinks_by_track[f.track_id] = f.blinks
        if f.blink_rate_per_min is not None and f.blinks > before:
            self.blinks += f.blinks - before

    # -- results ----------------------------------------------------------------------

    def face_features(self) -> FaceFeatures:
        nulls: dict[str, str] = {}

        def share(part: float, whole: float, scale: float, name: str, why: str) -> float | None:
            if self.face_secs <= 0:
                nulls[name] = "no face in view"
                return None
            if whole <= 0:
                nulls[name] = why
                return None
            return round(scale * part / whole, 3)

        visible = None
        if self.observed_secs > 0:
            visible = round(100 * self.face_secs / self.observed_secs, 1)
        else:
            nulls["face_visible_pct"] = "not observed in this window"
        smile = share(
            self.smile_secs,
            self.smile_known_secs,
            1.0,
            "smile_freq",
            "no smile reading (no face landmarks, or the neutral face is still calibrating)",
        )
        tilt = share(
            self.pitch_total, self.pitch_secs, 1.0, "avg_head_tilt", "no head pose (no landmarks)"
        )
        away = share(
            self.away_secs,
            self.away_known_secs,
            100.0,
            "percent_away",
            "no gaze reading (no landmarks, or the usual gaze is still calibrating)",
        )
        blink = None
        if self.face_secs <= 0:
            nulls["blink_freq"] = "no face in view"
        elif self.blink_secs < MIN_BLINK_SECS:
            nulls["blink_freq"] = (
                f"not measurable (under {MIN_BLINK_SECS:.0f} s of face time at a frame rate"
                " that can see blinks)"
            )
        else:
            blink = round(self.blinks / self.blink_secs, 3)
        return FaceFeatures(
            face_visible_pct=visible,
            blink_freq=blink,
            smile_freq=smile,
            avg_head_tilt=None if tilt is None else round(tilt, 1),
            percent_away=None if away is None else round(away, 1),
            emotion_counts=dict(sorted(self.labels.items())),
            face_frames=self.face_frames,
            nulls=nulls,
        )

    def changed_states(self) -> list[StateChange]:
        first, last = self.first_state, self.last
        if first is None or last is None:
            return []
        out = []
        for d in _CHANGEABLE:
            a, b = first.value(d.name), last.value(d.name)
            if a is not None and b is not None and abs(b - a) >= STATE_CHANGE:
                out.append(
                    StateChange(name=d.name, label=d.label, start=round(a, 3), end=round(b, 3))
                )
        out.sort(key=lambda c: -abs(c.end - c.start))
        return out[:MAX_STATE_CHANGES]


@dataclass(slots=True)
class _Room:
    """The room's and the talk figures' running sums for the current window."""

    last: RoomState | None = None
    series: dict[str, _Series] = field(default_factory=dict)
    first_mood: str | None = None
    last_mood: str | None = None
    talk_start: TalkEvent | None = None
    talk_end: TalkEvent | None = None
    longest_silence: float | None = None
    moments: list[MomentInput] = field(default_factory=list)


class SummaryWindow:
    """A meeting's events since the last summary; see the module docstring.

    Args:
        params: Fusion settings (the engagement bands).
    """

    def __init__(self, params: FusionParams) -> None:
        self.params = params
        self.origin: float | None = None  # the meeting's first event: time 0 of the input
        self.start: float | None = None
        self._people: dict[str, _Person] = {}
        self._aliases: dict[str, str] = {}  # participant id -> pseudonym, for the meeting
        self._names: dict[str, tuple[str, str]] = {}  # pseudonym -> (id, display name)
        self._room = _Room()
        self._notices: set[str] = set()

    # -- events -------------------------------------------------------------------------

    def _person(self, pid: str) -> _Person:
        p = self._people.get(pid)
        if p is None:
            alias = self._aliases.setdefault(pid, f"P{len(self._aliases) + 1}")
            p = self._people[pid] = _Person(alias, pid, joined=True)
            self._names.setdefault(alias, (pid, ""))
        return p

    def _begin(self, ts: float) -> float:
        if self.origin is None:
            self.origin = self.start = ts
        assert self.start is not None
        return self.start

    def add(self, event: MeetingEvent) -> None:
        """Take one event of the meeting (a summary itself is ignored)."""
        if isinstance(event, ParticipantStateEvent):
            state = event.state
            start = self._begin(state.ts)
            self._person(state.participant_id).add(state, start)
        elif isinstance(event, ParticipantJoinedEvent):
            info = event.participant
            self._begin(info.joined_at)
            p = self._person(info.participant_id)
            p.name = info.display_name
            p.seen = True
            self._names[p.alias] = (p.participant_id, p.name)
        elif isinstance(event, ParticipantLeftEvent):
            start = self._begin(event.ts)
            p = self._person(event.participant_id)
            p.credit(event.ts, start)
            p.gone = p.left = p.seen = True
        elif isinstance(event, RoomEvent):
            self._add_room(event.room)
        elif isinstance(event, TalkEvent):
            start = self._begin(event.ts)
            room = self._room
            room.talk_end = event
            silent = min(event.current_silence_secs, event.ts - start)
            room.longest_silence = max(room.longest_silence or 0.0, silent)
        elif isinstance(event, MomentEvent):
            self._begin(event.moment.ts)
            m = event.moment
            self._room.moments.append(
                MomentInput(
                    at_secs=round(m.ts - (self.origin or m.ts), 1),
                    kind=m.kind,
                    participants=[self._person(pid).alias for pid in m.participants],
                    speaking=[self._person(pid).alias for pid in m.speaking],
                    value=round(m.value, 3),
                    window_secs=m.window_secs,
                )
            )
        elif isinstance(event, NoticeEvent):
            self._notices.add(event.code)

    def forget(self, participant_id: str, name: str) -> None:
        """A participant withdrew: nothing about them goes into a summary from now on.

        Their figures leave the window; the moments about only them go, and they are
        taken out of the others. Their pseudonym now reveals as ``name`` (never their own).
        """
        self._people.pop(participant_id, None)
        alias = self._aliases.get(participant_id)
        if alias is None:
            return
        self._names[alias] = (participant_id, name)
        kept = []
        for m in self._room.moments:
            if alias in m.participants and len(m.participants) == 1:
                continue
            kept.append(
                m.model_copy(
                    update={
                        "participants": [a for a in m.participants if a != alias],
                        "speaking": [a for a in m.speaking if a != alias],
                    }
                )
            )
        self._room.moments = kept

    def _add_room(self, r: RoomState) -> None:
        start = self._begin(r.ts)
        room = self._room
        if room.last is not None:
            self._credit_room(r.ts, start)
        self._see_room(r)
        room.last = r

    def _see_room(self, r: RoomState) -> None:
        room = self._room
        for name in ("engagement", "valence", "arousal"):
            room.series.setdefault(name, _Series()).see(getattr(r, name), None)
        if r.mood is not None:
            room.first_mood = room.first_mood or r.mood
            room.last_mood = r.mood

    def _credit_room(self, until: float, start: float) -> None:
        last = self._room.last
        if last is None:
            return
        dt = min(until - max(last.ts, start), HOLD_SECS)
        if dt > 0:
            for name in ("engagement", "valence", "arousal"):
                self._room.series.setdefault(name, _Series()).credit(getattr(last, name), dt)

    # -- the window ---------------------------------------------------------------------

    def build(self, now: float, reason: SummaryReason) -> tuple[SummaryInput, Pseudonyms]:
        """The input for the window that ends at ``now``, and the pseudonyms it uses."""
        start = self._begin(now)
        origin = self.origin if self.origin is not None else now
        end = max(now, start)
        for p in self._people.values():
            if not p.gone:
                p.credit(end, start)
        self._credit_room(end, start)
        people = [p for p in self._people.values() if p.seen or not p.gone]
        talk = {p.alias: self._talk(p) for p in people}
        total = sum(t.talk_secs for t in talk.values() if t is not None)
        trends = self._room.last.trends if self._room.last is not None else {}
        participants = []
        for p in people:
            t = talk[p.alias]
            if t is not None:
                share = round(t.talk_secs / total, 3) if total > 0 else None
                t = t.model_copy(update={"share": share})
            series = {name: p.series.get(name, _Series()).result() for name in SERIES}
            v, a = series["valence"], series["arousal"]
            participants.append(
                ParticipantInput(
                    alias=p.alias,
                    observed_secs=round(p.observed_secs, 1),
                    joined=p.joined,
                    left=p.left,
                    band=band(series["engagement"].mean, self.params),
                    mood_start=mood(v.start, a.start),
                    mood_end=mood(v.end, a.end),
                    trend=trends.get(p.participant_id),
                    changed_states=p.changed_states(),
                    face=p.face_features(),
                    talk=t,
                    voice_emotion=p.voice_emotion,
                    stale_pct=(
                        round(100 * p.stale_secs / p.observed_secs, 1) if p.observed_secs else 0.0
                    ),
                    **series,
                )
            )
        inp = SummaryInput(
            start_secs=round(start - origin, 1),
            end_secs=round(end - origin, 1),
            reason=reason,
            participants=participants,
            room=self._room_input(),
            data_quality=self._quality(people, participants),
        )
        return inp, Pseudonyms(dict(self._names))

    def roll(self, now: float) -> None:
        """Start the next window at ``now``; who left is forgotten, the rest carries over."""
        self._begin(now)
        self.start = max(now, self.start or now)
        self._people = {pid: p.next_window() for pid, p in self._people.items() if not p.gone}
        last = self._room.last
        self._room = _Room(last=last, talk_start=self._room.talk_end or self._room.talk_start)
        self._room.talk_end = None
        if last is not None:
            self._see_room(last)

    # -- parts of the input ---------------------------------------------------------------

    @staticmethod
    def _talk(p: _Person) -> TalkInput | None:
        end = p.last.talk if p.last is not None else None
        if end is None:
            return None
        start = p.talk_start or _ZERO_TALK
        return TalkInput(
            talk_secs=round(max(0.0, end.talk_secs - start.talk_secs), 1),
            share=None,
            turns=max(0, end.turns - start.turns),
            meeting_share=_round(end.talk_share),
        )

    def _room_input(self) -> RoomInput:
        room = self._room
        series = {
            n: room.series.get(n, _Series()).result() for n in ("engagement", "valence", "arousal")
        }
        last = room.last
        speech = silence = None
        if room.talk_end is not None:
            begin = room.talk_start
            speech = room.talk_end.speech_secs - (begin.speech_secs if begin else 0.0)
            silence = room.talk_end.silence_secs - (begin.silence_secs if begin else 0.0)
        return RoomInput(
            present=last.present if last is not None else 0,
            band=band(series["engagement"].mean, self.params),
            mood_start=room.first_mood,
            mood_end=room.last_mood,
            trend=last.trend if last is not None else None,
            trend_change=_round(last.trend_change) if last is not None else None,
            speech_secs=_round(speech, 1),
            silence_secs=_round(silence, 1),
            longest_silence_secs=_round(room.longest_silence, 1),
            moments=list(room.moments),
            **series,
        )

    def _quality(self, people: list[_Person], inputs: list[ParticipantInput]) -> list[str]:
        notes = []
        if not inputs:
            notes.append("no one was observed in this window")
        for p, i in zip(people, inputs, strict=True):
            pct = i.face.face_visible_pct
            if pct is not None and pct < FACE_LOW_PCT:
                notes.append(f"{p.alias}: face in view {pct:.0f} % of the time")
            if p.face_secs > 0 and p.landmark_secs == 0:
                notes.append(f"{p.alias}: no face landmarks: no blinks, smiles, head pose or gaze")
            if not p.voice_seen and i.talk is None:
                notes.append(f"{p.alias}: no voice analysed")
            if i.stale_pct >= STALE_NOTE_PCT:
                notes.append(f"{p.alias}: analysis failing {i.stale_pct:.0f} % of the time")
        voice_gone = "voice_emotion_unavailable" in self._notices or any(
            i.voice_emotion == "unavailable" for i in inputs
        )
        if voice_gone:
            notes.append("voice emotion model unavailable: the tone of voice is not read")
        if "face_emotion_unavailable" in self._notices:
            notes.append("face emotion model unavailable: facial expressions are not read")
        return notes
