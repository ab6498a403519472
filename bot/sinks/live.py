"""LiveSink: a live meeting's events, queued for each connected sidebar.

Each sidebar connection holds a :class:`Subscription`, a queue that never blocks
the publisher: when it is full the oldest event is dropped (and counted). A
participant's states reach the sidebars at most every ``sidebar.state_interval_secs``
per participant (analysis runs at up to 15 frames a second; a 49-person page cannot
draw that, and needs not), except that a state where the face appears or
disappears, speaking starts or stops, or the analysis goes stale or recovers is
always sent at once. A state that comes sooner is held, and the newest one held is
sent when the interval is up: a reading then waits at most the interval, usually much
less (face readings at 2 a second come a few ms short of 0.5 s apart, and dropping them
until the next state would delay them by a whole interval). Every other event is sent
as it comes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from bot.sinks.store import changed
from bot.types import MeetingEvent, ParticipantLeftEvent, ParticipantState, ParticipantStateEvent


@dataclass(eq=False)
class Subscription:
    """One sidebar's queue of events. Oldest events are dropped when it is full."""

    queue: asyncio.Queue[MeetingEvent] = field(default_factory=asyncio.Queue)
    max_queued: int = 500
    dropped: int = 0
    pushed: int = 0  # events queued for this sidebar so far (benchmarks count them)

    def push(self, event: MeetingEvent) -> None:
        """Queue an event without ever blocking the publisher."""
        if self.queue.qsize() >= self.max_queued:
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(event)
        self.pushed += 1


class LiveSink:
    """Fans a meeting's events out to its sidebar subscriptions. Event loop only.

    Args:
        state_interval_secs: Shortest interval between two states of one participant
            (0 = every state).
        max_queued: Events queued per sidebar before the oldest are dropped.
    """

    def __init__(self, state_interval_secs: float, max_queued: int) -> None:
        self.state_interval_secs = state_interval_secs
        self.max_queued = max_queued
        self.subscribers: set[Subscription] = set()
        self._last: dict[str, ParticipantState] = {}
        # Per participant: the newest state held back, and the timer that sends it.
        self._held: dict[str, ParticipantStateEvent] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def subscribe(self) -> Subscription:
        """A new sidebar's queue."""
        sub = Subscription(max_queued=self.max_queued)
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """A sidebar went away."""
        self.subscribers.discard(sub)

    def handle(self, event: MeetingEvent) -> None:
        """Queue the event for every sidebar (participant states rate-limited)."""
        if isinstance(event, ParticipantStateEvent):
            state = event.state
            pid = state.participant_id
            last = self._last.get(pid)
            if (
                last is not None
                and state.ts - last.ts < self.state_interval_secs
                and not changed(state, last)
            ):
                self._held[pid] = event
                if pid not in self._timers:
                    due = last.ts + self.state_interval_secs - state.ts
                    loop = asyncio.get_running_loop()
                    self._timers[pid] = loop.call_later(due, self._send_held, pid)
                return
            self._drop_held(pid)
            self._last[pid] = state
        elif isinstance(event, ParticipantLeftEvent):
            self._last.pop(event.participant_id, None)
            self._drop_held(event.participant_id)
        self._push(event)

    def _push(self, event: MeetingEvent) -> None:
        for sub in self.subscribers:
            sub.push(event)

    def _send_held(self, pid: str) -> None:
        self._timers.pop(pid, None)
        event = self._held.pop(pid, None)
        if event is not None:
            self._last[pid] = event.state
            self._push(event)

    def _drop_held(self, pid: str) -> None:
        self._held.pop(pid, None)
        timer = self._timers.pop(pid, None)
        if timer is not None:
            timer.cancel()

    async def close(self) -> None:
        """Drop what is held; the sockets are closed by the web app."""
        for pid in list(self._timers):
            self._drop_held(pid)
        self.subscribers.clear()
