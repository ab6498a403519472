"""The clock and pacing of a session, injectable so that a file can run faster than real time.

A live source (a browser peer, a Janus feed) runs on :class:`SystemClock` with
:class:`RealtimePacing`: frames are taken at most ``fps`` times per second of wall
time, newest frame first, sleeping until the next one is due. A recorded source
runs with :class:`MediaPacing`: frames are picked by their own timestamps (one
every ``1 / fps`` seconds of media time) and nothing sleeps, so analysis goes as
fast as the machine allows and gives the same picks on any machine.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """Where a session reads the time."""

    def wall(self) -> float:
        """Meeting-clock seconds now (Unix time for live sources)."""
        ...

    def monotonic(self) -> float:
        """Seconds for measuring intervals (latency, pacing)."""
        ...

    async def sleep(self, secs: float) -> None:
        """Wait ``secs`` seconds."""
        ...


class SystemClock:
    """The real clock: ``time.time``, ``time.monotonic`` and ``asyncio.sleep``."""

    def wall(self) -> float:
        """Unix seconds."""
        return time.time()

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    async def sleep(self, secs: float) -> None:
        """``asyncio.sleep``."""
        await asyncio.sleep(secs)


class Pacing(Protocol):
    """Decides which frames of a video track are analysed."""

    #: Whether frames arrive live (the newest wins) rather than from a source that can wait.
    live: bool

    async def wait_due(self, clock: Clock, frame_ts: float) -> bool:
        """Called with a taken frame; True to analyse it, False to skip it.

        A live pacing may sleep until the next analysis is due (then the caller
        takes whatever frame is newest by then).
        """
        ...

    def analysed(self, clock: Clock, frame_ts: float, fps: float) -> None:
        """Record that a frame at ``frame_ts`` is being analysed at rate ``fps``."""
        ...


class RealtimePacing:
    """At most ``fps`` analyses per second of the clock's monotonic time."""

    live = True

    def __init__(self) -> None:
        """Start with the first frame due at once."""
        self._next_due = 0.0

    async def wait_due(self, clock: Clock, frame_ts: float) -> bool:
        """Sleep until the next analysis is due; always analyse afterwards."""
        now = clock.monotonic()
        if now < self._next_due:
            await clock.sleep(self._next_due - now)
        return True

    def analysed(self, clock: Clock, frame_ts: float, fps: float) -> None:
        """The next analysis is due ``1 / fps`` seconds from now."""
        self._next_due = clock.monotonic() + 1.0 / fps


class MediaPacing:
    """One analysis per ``1 / fps`` seconds of the frames' own timestamps; never sleeps.

    The schedule keeps its own due times (each ``1 / fps`` after the previous one), and
    a frame up to a quarter interval early counts as due: timestamps rounded to the
    container's clock (WebM and Matroska count milliseconds, so 15 fps is 0, 67, 133,
    200 ms) still give every due frame, and a 25 fps file analysed at 15 gets 15 a
    second, not 12.5. A frame a whole interval late, or a timeline that goes back,
    restarts the schedule from that frame.
    """

    live = False

    def __init__(self) -> None:
        """Start with the first frame due."""
        self._next_due: float | None = None
        self._slack = 0.0
        self._last: float | None = None

    async def wait_due(self, clock: Clock, frame_ts: float) -> bool:
        """Analyse a frame once its timestamp reaches the next due time (less the slack)."""
        if self._next_due is None or (self._last is not None and frame_ts < self._last):
            return True
        return frame_ts >= self._next_due - self._slack

    def analysed(self, clock: Clock, frame_ts: float, fps: float) -> None:
        """The next frame is due ``1 / fps`` seconds of media time after this one was."""
        interval = 1.0 / fps
        due = self._next_due
        if due is None or frame_ts - due >= interval or (self._last and frame_ts < self._last):
            due = frame_ts
        self._next_due = due + interval
        self._slack = interval / 4
        self._last = frame_ts
