"""The room: engagement and mood of the meeting, trends, and notable moments.

:class:`RoomFusion` is the meeting-level stage of fusion, one per live meeting. It
is shown every participant state (:meth:`RoomFusion.observe`) and asked for the
room about once a second (:meth:`RoomFusion.tick`), which returns the
:class:`~bot.types.RoomState` and any :class:`~bot.types.Moment` s. Synchronous,
deterministic, ``now`` passed in; runs on the event loop thread.

Formulas (``c_i`` a participant's confidence in the quantity):

- **Room engagement, valence, arousal**: ``sum(c_i x_i) / sum(c_i)`` over the
  participants present whose reading is not ``None``.
- **Mood**: the circumplex quadrant of (valence, arousal), each read as positive
  above +0.1, negative below -0.1, else level: "positive, energetic",
  "positive, calm", "tense", "subdued", "positive", "negative", "energetic",
  "calm" or "neutral".
- **Dominant expression**: the most common top basic expression among those present.
- **Trend**: the least-squares slope of the engagement samples (one per tick) over the
  last ``trend_secs``, times ``trend_secs``; rising above ``+trend_threshold``,
  falling below ``-trend_threshold``, else steady. ``None`` until samples span a
  third of the window.

Moments (each kind at most once per ``cooldown_secs``):

- **engagement_drop / engagement_rise**: room engagement now is at least
  ``engagement_delta`` below the highest (above the lowest) value of the last
  ``engagement_window_secs``.
- **long_silence**: a participant who has spoken has not spoken for
  ``silence_secs`` while others did; once per silence.
- **joint_smiles**: at least ``joint_smile_min`` faces, and at least half the faces in
  view, smiled within the same ``joint_smile_secs`` (a laughter-like moment).
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass

from bot.fusion.params import FusionParams
from bot.types import EMOTIONS, Emotion, Moment, MomentKind, ParticipantState, RoomState, Trend

#: Valence or arousal within this distance of 0 is "level" for the mood label.
MOOD_DEADZONE = 0.1
#: A face without landmarks counts as smiling when its happy probability reaches this.
HAPPY_SMILE_PROB = 0.5

_MOODS = {
    (1, 1): "positive, energetic",
    (1, -1): "positive, calm",
    (-1, 1): "tense",
    (-1, -1): "subdued",
    (1, 0): "positive",
    (-1, 0): "negative",
    (0, 1): "energetic",
    (0, -1): "calm",
    (0, 0): "neutral",
}


def mood(valence: float | None, arousal: float | None) -> str | None:
    """The circumplex quadrant label of a valence and arousal (see the module docstring)."""
    if valence is None or arousal is None:
        return None

    def side(x: float) -> int:
        return 1 if x > MOOD_DEADZONE else -1 if x < -MOOD_DEADZONE else 0

    return _MOODS[(side(valence), side(arousal))]


def weighted_mean(states: Iterable[ParticipantState], name: str) -> tuple[float | None, int]:
    """Confidence-weighted mean of reading ``name`` and how many participants fed it."""
    total = mass = 0.0
    n = 0
    for s in states:
        r = s.readings.get(name)
        if r is None or r.value is None or r.confidence <= 0:
            continue
        total += r.confidence * r.value
        mass += r.confidence
        n += 1
    return (total / mass if mass > 0 else None), n


def trend_change(samples: Iterable[tuple[float, float]], window_secs: float) -> float | None:
    """Least-squares slope of ``(ts, value)`` samples times ``window_secs``.

    ``None`` with fewer than 3 samples or when they span less than a third of the window.
    """
    pts = list(samples)
    if len(pts) < 3 or pts[-1][0] - pts[0][0] < window_secs / 3:
        return None
    n = len(pts)
    mt = sum(t for t, _ in pts) / n
    mv = sum(v for _, v in pts) / n
    var = sum((t - mt) ** 2 for t, _ in pts)
    if var <= 0:
        return None
    slope = sum((t - mt) * (v - mv) for t, v in pts) / var
    return slope * window_secs


def trend_of(change: float | None, threshold: float) -> Trend | None:
    """Rising, falling or steady for a change over the trend window."""
    if change is None:
        return None
    return "rising" if change > threshold else "falling" if change < -threshold else "steady"


def is_smiling(state: ParticipantState) -> bool:
    """A visible face that smiles: the AU12 smile flag, else the happy probability."""
    if not state.face_visible:
        return False
    if state.face is not None and state.face.is_smiling is not None:
        return state.face.is_smiling
    happy = 0.0 if state.emotion is None else state.emotion.probs.get(Emotion.HAPPY, 0.0)
    return happy >= HAPPY_SMILE_PROB


@dataclass(slots=True)
class _Talker:
    talk_secs: float = 0.0
    last_spoke: float | None = None
    flagged: bool = False


class RoomFusion:
    """The room-level fusion of one meeting; see the module docstring.

    Args:
        params: Fusion settings.
    """

    def __init__(self, params: FusionParams) -> None:
        self.params = params
        self._states: dict[str, ParticipantState] = {}
        self._smiled: dict[str, float] = {}
        self._talkers: dict[str, _Talker] = {}
        keep = max(params.trend_secs, params.moments.engagement_window_secs)
        self._keep_secs = keep
        self._room: deque[tuple[float, float]] = deque()
        self._people: dict[str, deque[tuple[float, float]]] = {}
        self._last_moment: dict[str, float] = {}
        self._last_speech_ts: float | None = None

    def observe(self, state: ParticipantState) -> None:
        """Note a participant's new state (every state, so short smiles are not missed)."""
        self._states[state.participant_id] = state
        if is_smiling(state):
            self._smiled[state.participant_id] = state.ts

    def leave(self, participant_id: str) -> None:
        """Forget a participant who left."""
        self._states.pop(participant_id, None)
        self._smiled.pop(participant_id, None)
        self._talkers.pop(participant_id, None)
        self._people.pop(participant_id, None)

    def tick(self, now: float) -> tuple[RoomState, list[Moment]]:
        """The room at ``now`` and the moments that happened since the last tick."""
        p = self.params
        states = list(self._states.values())
        speaking = tuple(s.participant_id for s in states if s.is_speaking)
        engagement, n = weighted_mean(states, "engagement")
        valence, _ = weighted_mean(states, "valence")
        arousal, _ = weighted_mean(states, "arousal")
        self._sample(now, engagement, states)
        change = trend_change(self._room_window(now, p.trend_secs), p.trend_secs)
        trends: dict[str, Trend] = {}
        for pid, samples in self._people.items():
            t = trend_of(trend_change(samples, p.trend_secs), p.trend_threshold)
            if t is not None:
                trends[pid] = t
        room = RoomState(
            ts=now,
            present=len(states),
            engagement=engagement,
            engagement_n=n,
            valence=valence,
            arousal=arousal,
            mood=mood(valence, arousal),
            dominant=self._dominant(states),
            speaking=speaking,
            trend=trend_of(change, p.trend_threshold),
            trend_change=change,
            trends=trends,
        )
        moments = [
            *self._engagement_moments(now, engagement, speaking),
            *self._silences(now, states, speaking),
            *self._joint_smiles(now, states, speaking),
        ]
        return room, moments

    # -- internals -----------------------------------------------------------------

    def _sample(self, now: float, engagement: float | None, states: list[ParticipantState]) -> None:
        horizon = now - self._keep_secs
        if engagement is not None:
            self._room.append((now, engagement))
        while self._room and self._room[0][0] < horizon:
            self._room.popleft()
        for s in states:
            value = s.engagement
            samples = self._people.setdefault(s.participant_id, deque())
            if value is not None:
                samples.append((now, value))
            while samples and samples[0][0] < now - self.params.trend_secs:
                samples.popleft()

    def _room_window(self, now: float, secs: float) -> list[tuple[float, float]]:
        return [(t, v) for t, v in self._room if t >= now - secs]

    @staticmethod
    def _dominant(states: list[ParticipantState]) -> str | None:
        tops: Counter[str] = Counter()
        for s in states:
            values = [(s.value(e.value), e.value) for e in EMOTIONS]
            known = [(v, name) for v, name in values if v is not None]
            if known:
                tops[max(known)[1]] += 1
        return tops.most_common(1)[0][0] if tops else None

    def _cooled(self, key: str, now: float) -> bool:
        last = self._last_moment.get(key)
        return last is None or now - last >= self.params.moments.cooldown_secs

    def _moment(
        self,
        key: str,
        kind: MomentKind,
        now: float,
        participants: tuple[str, ...],
        speaking: tuple[str, ...],
        value: float,
        window_secs: float,
    ) -> Moment:
        self._last_moment[key] = now
        return Moment(now, kind, participants, speaking, value, window_secs)

    def _engagement_moments(
        self, now: float, engagement: float | None, speaking: tuple[str, ...]
    ) -> list[Moment]:
        m = self.params.moments
        if engagement is None:
            return []
        out = []
        kinds: tuple[tuple[MomentKind, float], ...] = (
            ("engagement_drop", -1.0),
            ("engagement_rise", 1.0),
        )
        for kind, sign in kinds:
            # Measured from the last moment of the kind on, so one change is said once.
            since = max(now - m.engagement_window_secs, self._last_moment.get(kind, -math.inf))
            window = [v for t, v in self._room if t >= since]
            if len(window) < 2:
                continue
            reference = max(window) if sign < 0 else min(window)
            change = engagement - reference
            if sign * change >= m.engagement_delta and self._cooled(kind, now):
                moment = self._moment(
                    kind,
                    kind,
                    now,
                    (),
                    speaking,
                    change,
                    m.engagement_window_secs,
                )
                out.append(moment)
        return out

    def _silences(
        self, now: float, states: list[ParticipantState], speaking: tuple[str, ...]
    ) -> list[Moment]:
        m = self.params.moments
        if speaking:
            self._last_speech_ts = now
        out = []
        for s in states:
            if s.voice is None:
                continue
            talker = self._talkers.setdefault(s.participant_id, _Talker())
            if s.voice.is_speaking or s.voice.talk_secs > talker.talk_secs:
                talker.last_spoke = now
                talker.flagged = False
            talker.talk_secs = s.voice.talk_secs
            if talker.last_spoke is None or talker.flagged:
                continue
            silent = now - talker.last_spoke
            others_spoke = self._last_speech_ts is not None and (
                self._last_speech_ts > talker.last_spoke
            )
            if silent >= m.silence_secs and others_spoke:
                talker.flagged = True
                out.append(
                    self._moment(
                        f"long_silence:{s.participant_id}",
                        "long_silence",
                        now,
                        (s.participant_id,),
                        speaking,
                        silent,
                        silent,
                    )
                )
        return out

    def _joint_smiles(
        self, now: float, states: list[ParticipantState], speaking: tuple[str, ...]
    ) -> list[Moment]:
        m = self.params.moments
        faces = [s.participant_id for s in states if s.face_visible]
        recent = tuple(
            pid for pid in faces if now - self._smiled.get(pid, -1e18) <= m.joint_smile_secs
        )
        if (
            len(recent) >= m.joint_smile_min
            and 2 * len(recent) >= len(faces)
            and self._cooled("joint_smiles", now)
        ):
            return [
                self._moment(
                    "joint_smiles",
                    "joint_smiles",
                    now,
                    recent,
                    speaking,
                    float(len(recent)),
                    m.joint_smile_secs,
                )
            ]
        return []
