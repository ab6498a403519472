"""Meeting-level conversation statistics from participants' speaking intervals.

:class:`TalkTracker` is told when each participant starts and stops speaking
(the back-dated ``ts`` of :class:`~analyzers.voice.pipeline.SpeakingChanged`), joins
and leaves, and answers :meth:`TalkTracker.snapshot` with a frozen
:class:`TalkSnapshot`. Pure and synchronous; the bot calls it on its event loop.

Events may arrive out of time order across participants (every participant's VAD
lags by its own ~0.3 s plus its thread's queue): they are buffered and replayed
in time order. Events older than ``settle_secs`` (15 s) before a snapshot's ``now``
or the newest event are folded into running totals and forgotten, so memory stays
bounded; an event that arrives later than that is clamped to the time of the
newest folded event. At
equal times stops and leaves are applied before joins and starts, so a hand-over
at the same instant is no overlap. A start for someone already speaking, and a
stop for someone not speaking, are ignored. A snapshot counts intervals still
open up to ``now``; it cannot know speech the VAD has not confirmed yet (the
newest ~0.3 s).

Definitions (all times in seconds on the meeting clock, within ``[start_ts, now]``):

Per participant
  - ``talk_secs``: time they were speaking, overlaps included.
  - ``talk_share``: ``talk_secs / sum of everyone's talk_secs``; overlapping speech
    counts for each speaker, so the shares sum to 1 (all 0 before anyone spoke).
  - ``speech_runs``: speaking intervals started.
  - ``turns``: times they took the floor (see *Floor and turns*).
  - ``longest_turn_secs``: longest span from a turn's start (the start of the
    speech that won the floor) to the holder's last speech end within that turn,
    their own pauses included.
  - ``overlap_secs``: time they spoke while at least one other person spoke.
  - ``overlaps``: times they started speaking while someone else was speaking
    and both kept speaking for at least ``min_overlap_secs`` (0.25 s; shorter
    overlaps are the VAD's ±30 ms padding on a quick hand-over).
  - ``interruptions``: overlaps in which a speaker they started over stopped
    while they went on, between ``min_overlap_secs`` and ``interrupt_secs`` (2 s)
    after their start: they took the floor by talking over someone. Counted once
    per start, however many people stopped.
  - ``interrupted``: times they were the one who stopped in someone's interruption.
    A short "mm-hm" over a speaker who goes on is an overlap, not an interruption.

Floor and turns
  - Nobody holds the floor at first. Someone who starts speaking while nobody
    else speaks takes the floor: a new turn, unless they already held it and
    the silence since they stopped was shorter than ``turn_pause_secs`` (2 s),
    in which case their turn goes on.
  - Someone who starts while others speak does not take the floor. When the
    holder stops while others speak, the floor passes to the one of them who
    started speaking first (ties by id): a new turn for them, dated from the
    start of their speech.
  - When the holder stops and nobody speaks, they keep the floor through the
    silence. A holder who leaves gives it up.

Meeting
  - ``duration_secs``: ``now - start_ts``.
  - ``speech_secs``: time at least one person spoke; ``silence_secs``: time
    nobody spoke (``duration_secs - speech_secs``); ``overlap_secs``: time two or
    more spoke; ``talk_secs``: sum of everyone's talk time (``>= speech_secs``).
  - ``long_silences``: stretches of nobody speaking lasting at least
    ``long_silence_secs`` (3 s), the one before the first speech and the one
    going on at ``now`` included; ``longest_silence_secs`` and
    ``current_silence_secs`` (0 while someone speaks) alongside.
  - ``turns``, ``overlaps``, ``interruptions``: sums over participants.
  - ``current_speakers``: speaking at ``now``, in the order they started.
"""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

#: Two people must both speak this long after one starts over the other to count an overlap.
MIN_OVERLAP_SECS = 0.25
#: A speaker talked over who stops within this long after the other's start was interrupted.
INTERRUPT_SECS = 2.0
#: The floor holder resuming after a silence at least this long starts a new turn.
TURN_PAUSE_SECS = 2.0
#: Silences at least this long are counted as long silences.
LONG_SILENCE_SECS = 3.0
#: Events older than this at a snapshot are folded into the totals.
SETTLE_SECS = 15.0

# Order of event kinds at equal times: stops before starts.
_STOP, _LEAVE, _JOIN, _START = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class ParticipantTalk:
    """One participant's conversation statistics (see the module docstring).

    Attributes:
        participant_id: Who.
        is_present: Joined and not left (someone only seen speaking counts as joined).
        is_speaking: Speaking at the snapshot's ``ts``.
        has_floor: Holds the floor at the snapshot's ``ts``.
        talk_secs: Time spoken, overlaps included.
        talk_share: Share of everyone's summed talk time, 0..1.
        speech_runs: Speaking intervals started.
        turns: Turns taken.
        longest_turn_secs: Longest turn span.
        overlap_secs: Time spoken while someone else spoke.
        overlaps: Times they started over someone and both went on ``min_overlap_secs``.
        interruptions: Times they talked over someone who then stopped.
        interrupted: Times they stopped because someone talked over them.
    """

    participant_id: str
    is_present: bool
    is_speaking: bool
    has_floor: bool
    talk_secs: float
    talk_share: float
    speech_runs: int
    turns: int
    longest_turn_secs: float
    overlap_secs: float
    overlaps: int
    interruptions: int
    interrupted: int


@dataclass(frozen=True, slots=True)
class TalkSnapshot:
    """Conversation statistics of the meeting at ``ts`` (see the module docstring).

    Attributes:
        ts: The ``now`` the snapshot was taken at.
        start_ts: When the tracker started (the meeting start).
        duration_secs: ``ts - start_ts``.
        speech_secs: Time someone spoke.
        silence_secs: Time nobody spoke.
        overlap_secs: Time two or more spoke.
        talk_secs: Sum of everyone's talk time.
        long_silences: Silences of at least the tracker's ``long_silence_secs``.
        longest_silence_secs: Longest silence, the current one included.
        current_silence_secs: How long nobody has spoken; 0 while someone speaks.
        turns: Turns taken, all participants.
        overlaps: Overlaps started, all participants.
        interruptions: Interruptions, all participants.
        current_speakers: Ids speaking at ``ts``, in the order they started.
        floor_holder: Who holds the floor, or None.
        participants: Everyone seen, sorted by id.
    """

    ts: float
    start_ts: float
    duration_secs: float
    speech_secs: float
    silence_secs: float
    overlap_secs: float
    talk_secs: float
    long_silences: int
    longest_silence_secs: float
    current_silence_secs: float
    turns: int
    overlaps: int
    interruptions: int
    current_speakers: tuple[str, ...]
    floor_holder: str | None
    participants: tuple[ParticipantTalk, ...]

    def participant(self, participant_id: str) -> ParticipantTalk | None:
        """The statistics of one participant, or None if never seen."""
        for p in self.participants:
            if p.participant_id == participant_id:
                return p
        return None


@dataclass(slots=True)
class _Acc:
    present: bool = True
    talk: float = 0.0
    overlap: float = 0.0
    runs: int = 0
    turns: int = 0
    longest_turn: float = 0.0
    overlaps: int = 0
    interruptions: int = 0
    interrupted: int = 0

    def copy(self) -> _Acc:
        return _Acc(
            self.present,
            self.talk,
            self.overlap,
            self.runs,
            self.turns,
            self.longest_turn,
            self.overlaps,
            self.interruptions,
            self.interrupted,
        )


@dataclass(slots=True)
class _Overlap:
    """Someone started over others; confirmed as an overlap or an interruption later."""

    starter: str
    ts: float
    others: set[str]  # still speaking, for the overlap check
    victims: set[str]  # not yet stopped, for the interruption check
    is_overlap: bool = False
    is_interruption: bool = False

    def copy(self) -> _Overlap:
        return _Overlap(
            self.starter,
            self.ts,
            set(self.others),
            set(self.victims),
            self.is_overlap,
            self.is_interruption,
        )


@dataclass(slots=True)
class _Sweep:
    """The conversation replayed in time order up to ``clock``."""

    clock: float
    params: tuple[float, float, float, float]  # min_overlap, interrupt, turn_pause, long_silence
    accs: dict[str, _Acc] = field(default_factory=dict)
    active: dict[str, float] = field(default_factory=dict)  # id -> speech start, in start order
    speech: float = 0.0
    overlap: float = 0.0
    silence_start: float = 0.0  # start of the current silence (valid while nobody speaks)
    long_silences: int = 0
    longest_silence: float = 0.0
    holder: str | None = None
    turn_start: float = 0.0
    holder_stop: float = 0.0  # when the holder last stopped
    pending: list[_Overlap] = field(default_factory=list)

    def copy(self) -> _Sweep:
        return _Sweep(
            clock=self.clock,
            params=self.params,
            accs={k: v.copy() for k, v in self.accs.items()},
            active=dict(self.active),
            speech=self.speech,
            overlap=self.overlap,
            silence_start=self.silence_start,
            long_silences=self.long_silences,
            longest_silence=self.longest_silence,
            holder=self.holder,
            turn_start=self.turn_start,
            holder_stop=self.holder_stop,
            pending=[o.copy() for o in self.pending],
        )

    def acc(self, pid: str) -> _Acc:
        acc = self.accs.get(pid)
        if acc is None:
            acc = self.accs[pid] = _Acc()
        return acc

    def advance(self, t: float) -> None:
        """Accumulate time up to ``t`` with the current speakers."""
        min_overlap, interrupt_secs = self.params[0], self.params[1]
        if t > self.clock:
            dt = t - self.clock
            n = len(self.active)
            for pid in self.active:
                acc = self.accs[pid]
                acc.talk += dt
                if n >= 2:
                    acc.overlap += dt
            if n >= 1:
                self.speech += dt
            if n >= 2:
                self.overlap += dt
            # speakers are constant over (clock, t], so an overlap whose
            # min_overlap deadline falls in it is decided by the current state
            for o in self.pending:
                if not o.is_overlap and o.ts + min_overlap <= t and o.others:
                    o.is_overlap = True
                    self.accs[o.starter].overlaps += 1
            self.clock = t
        self.pending = [
            o
            for o in self.pending
            if (not o.is_overlap and o.others) or (o.victims and o.ts + interrupt_secs >= t)
        ]

    def start(self, pid: str, t: float) -> None:
        acc = self.acc(pid)
        acc.present = True
        if pid in self.active:
            return
        turn_pause, long_silence = self.params[2], self.params[3]
        acc.runs += 1
        others = set(self.active)
        self.active[pid] = t
        if others:
            self.pending.append(_Overlap(pid, t, set(others), set(others)))
            return
        silence = t - self.silence_start
        self.longest_silence = max(self.longest_silence, silence)
        if silence >= long_silence:
            self.long_silences += 1
        if self.holder == pid and t - self.holder_stop < turn_pause:
            return  # the holder resumes: same turn
        self._new_turn(pid, t)

    def stop(self, pid: str, t: float) -> None:
        if pid not in self.active:
            return
        min_overlap, interrupt_secs = self.params[0], self.params[1]
        del self.active[pid]
        for o in self.pending:
            if o.starter == pid:
                o.others.clear()
                o.victims.clear()
                continue
            o.others.discard(pid)
            if pid in o.victims:
                o.victims.discard(pid)
                if o.starter in self.active and min_overlap <= t - o.ts <= interrupt_secs:
                    self.accs[pid].interrupted += 1
                    if not o.is_interruption:
                        o.is_interruption = True
                        self.accs[o.starter].interruptions += 1
        if pid == self.holder:
            acc = self.accs[pid]
            acc.longest_turn = max(acc.longest_turn, t - self.turn_start)
            self.holder_stop = t
            if self.active:
                heir = min(self.active, key=lambda k: (self.active[k], k))
                self._new_turn(heir, self.active[heir])
        if not self.active:
            self.silence_start = t

    def join(self, pid: str) -> None:
        self.acc(pid).present = True

    def leave(self, pid: str, t: float) -> None:
        self.stop(pid, t)
        self.acc(pid).present = False
        if self.holder == pid and pid not in self.active:
            self.holder = None

    def _new_turn(self, pid: str, t: float) -> None:
        self.holder = pid
        self.turn_start = t
        self.accs[pid].turns += 1

    def apply(self, kind: int, pid: str, t: float) -> None:
        self.advance(t)
        if kind == _START:
            self.start(pid, t)
        elif kind == _STOP:
            self.stop(pid, t)
        elif kind == _JOIN:
            self.join(pid)
        else:
            self.leave(pid, t)


class TalkTracker:
    """Turn-taking statistics of one meeting, from its participants' speaking intervals.

    Pure and synchronous: the bot owns one per meeting and calls it on its event
    loop (forward events from the participants' feature threads there). Not
    thread-safe. See the module docstring for every definition.

    Args:
        start_ts: Meeting-clock seconds when the meeting (and its silence) started.
        min_overlap_secs: Shortest overlap that counts.
        interrupt_secs: How soon the speaker talked over must stop for an interruption.
        turn_pause_secs: Silence after which the floor holder resuming starts a new turn.
        long_silence_secs: Shortest silence counted as a long silence.
        settle_secs: Age at which events are folded into the totals.
    """

    def __init__(
        self,
        start_ts: float,
        *,
        min_overlap_secs: float = MIN_OVERLAP_SECS,
        interrupt_secs: float = INTERRUPT_SECS,
        turn_pause_secs: float = TURN_PAUSE_SECS,
        long_silence_secs: float = LONG_SILENCE_SECS,
        settle_secs: float = SETTLE_SECS,
    ) -> None:
        if not 0 <= min_overlap_secs <= interrupt_secs:
            raise ValueError("need 0 <= min_overlap_secs <= interrupt_secs")
        self.start_ts = start_ts
        self.settle_secs = settle_secs
        params = (min_overlap_secs, interrupt_secs, turn_pause_secs, long_silence_secs)
        self._folded = _Sweep(clock=start_ts, params=params, silence_start=start_ts)
        self._events: list[tuple[float, int, int, str]] = []  # (ts, kind, seq, pid)
        self._seq = 0
        self._latest_ts = start_ts

    # ---------------------------------------------------------------- input

    def speaking_started(self, participant_id: str, ts: float) -> None:
        """``participant_id`` started speaking at ``ts`` (back-dated onset)."""
        self._add(ts, _START, participant_id)

    def speaking_stopped(self, participant_id: str, ts: float) -> None:
        """``participant_id`` stopped speaking at ``ts``."""
        self._add(ts, _STOP, participant_id)

    def add_interval(self, participant_id: str, start_ts: float, end_ts: float) -> None:
        """``participant_id`` spoke from ``start_ts`` to ``end_ts``."""
        self.speaking_started(participant_id, start_ts)
        self.speaking_stopped(participant_id, end_ts)

    def joined(self, participant_id: str, ts: float) -> None:
        """``participant_id`` joined (so they appear with zeros before they speak)."""
        self._add(ts, _JOIN, participant_id)

    def left(self, participant_id: str, ts: float) -> None:
        """``participant_id`` left at ``ts``: an open interval closes there."""
        self._add(ts, _LEAVE, participant_id)

    def _add(self, ts: float, kind: int, pid: str) -> None:
        if ts < self._folded.clock:
            logger.debug("late talk event clamped", extra={"late_secs": self._folded.clock - ts})
            ts = self._folded.clock
        self._seq += 1
        bisect.insort(self._events, (ts, kind, self._seq, pid))
        self._latest_ts = max(self._latest_ts, ts)
        self._fold(self._latest_ts - self.settle_secs)

    def _fold(self, horizon: float) -> None:
        """Apply the events at or before ``horizon`` to the folded totals for good."""
        n_fold = 0
        while n_fold < len(self._events) and self._events[n_fold][0] <= horizon:
            ts, kind, _, pid = self._events[n_fold]
            self._folded.apply(kind, pid, ts)
            n_fold += 1
        if n_fold:
            del self._events[:n_fold]

    # --------------------------------------------------------------- output

    def snapshot(self, now: float) -> TalkSnapshot:
        """The statistics as of ``now``, counting open intervals up to ``now``.

        Events at or before ``now - settle_secs`` are folded for good; events after
        ``now`` wait for a later snapshot.
        """
        self._fold(now - self.settle_secs)
        sweep = self._folded.copy()
        for ts, kind, _, pid in self._events:
            if ts > now:
                break
            sweep.apply(kind, pid, ts)
        sweep.advance(max(now, sweep.clock))
        return self._build(sweep, max(now, sweep.clock))

    def _build(self, sweep: _Sweep, now: float) -> TalkSnapshot:
        talk_total = sum(a.talk for a in sweep.accs.values())
        current_silence = 0.0 if sweep.active else now - sweep.silence_start
        long_silences = sweep.long_silences
        if not sweep.active and current_silence >= sweep.params[3]:
            long_silences += 1
        participants: list[ParticipantTalk] = []
        for pid in sorted(sweep.accs):
            acc = sweep.accs[pid]
            longest = acc.longest_turn
            if pid == sweep.holder and pid in sweep.active:
                longest = max(longest, now - sweep.turn_start)
            participants.append(
                ParticipantTalk(
                    participant_id=pid,
                    is_present=acc.present,
                    is_speaking=pid in sweep.active,
                    has_floor=pid == sweep.holder,
                    talk_secs=acc.talk,
                    talk_share=acc.talk / talk_total if talk_total > 0 else 0.0,
                    speech_runs=acc.runs,
                    turns=acc.turns,
                    longest_turn_secs=longest,
                    overlap_secs=acc.overlap,
                    overlaps=acc.overlaps,
                    interruptions=acc.interruptions,
                    interrupted=acc.interrupted,
                )
            )
        duration = now - self.start_ts
        return TalkSnapshot(
            ts=now,
            start_ts=self.start_ts,
            duration_secs=duration,
            speech_secs=sweep.speech,
            silence_secs=duration - sweep.speech,
            overlap_secs=sweep.overlap,
            talk_secs=talk_total,
            long_silences=long_silences,
            longest_silence_secs=max(sweep.longest_silence, current_silence),
            current_silence_secs=current_silence,
            turns=sum(p.turns for p in participants),
            overlaps=sum(p.overlaps for p in participants),
            interruptions=sum(p.interruptions for p in participants),
            current_speakers=tuple(sweep.active),
            floor_holder=sweep.holder,
            participants=tuple(participants),
        )
