"""Sinks: the subscribers of a live meeting.

A live meeting publishes each state and event once (:meth:`bot.meeting.LiveMeeting.publish`);
every sink gets it and decides what to do: :class:`~bot.sinks.store.StoreSink` records it,
:class:`~bot.sinks.live.LiveSink` queues it for each connected sidebar,
:class:`~bot.sinks.summaries.SummarySink` adds it to the window of the next mood summary.
The report recorder plugs in here the same way: implement :class:`Sink` and add it to the
meeting's sinks.
"""

from __future__ import annotations

from typing import Protocol

from bot.types import MeetingEvent


class Sink(Protocol):
    """Something that receives a meeting's events. Called on the event loop thread.

    ``handle`` must return quickly and never block or raise: queue the work and do it
    elsewhere (a task, the store thread).
    """

    def handle(self, event: MeetingEvent) -> None:
        """Take one event."""
        ...

    async def close(self) -> None:
        """The meeting ends (or the server stops): finish queued work."""
        ...
