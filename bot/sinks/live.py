"""LiveSink: a live meeting's events, queued for each connected sidebar.

Each sidebar connection holds a :class:`Subscription`, a queue that never blocks
the publisher: when it is full the oldest event is dropped (and counted). A
participant's states reach the sidebars at most every ``sidebar.state_interval_secs``
per participant (analysis runs at up to 15 frames a second; a 49-person page cannot
draw that, and needs not), except that a state where the face appears or
disappears, speaking starts or stops, or the analysis goes stale or recovers is
always sent at once. Every other event is sent as it comes.
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

    def push(self, event: MeetingEvent) -> None:
        """Queue an event without ever blocking the publisher."""
        if self.queue.qsize() >= self.max_queued:
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(event)


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
            last = self._last.get(state.participant_id)
            if (
                last is not None
                and state.ts - last.ts < self.state_interval_secs
                and not changed(state, last)
            ):
                return
            self._last[state.participant_id] = state
        elif isinstance(event, ParticipantLeftEvent):
            self._last.pop(event.participant_id, None)
        for sub in self.subscribers:
            sub.push(event)

    async def close(self) -> None:
        """Nothing to finish: the sockets are closed by the web app."""
        self.subscribers.clear()
