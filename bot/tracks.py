"""Reading media tracks: one receive loop, and the newest video frame wins.

aiortc's receive queue has no bound, so every track is read continuously even
while analysis is busy (:func:`receive`); a track nobody analyses goes to
:func:`drain`. Video frames land in a one-slot :class:`LatestSlot`: a new frame
overwrites an unread one, so analysis always sees the newest frame and never a
backlog. A source that is not live (a recorded file) can make the slot wait for
the reader instead (``block=True``), so no frame is dropped and the file runs as
fast as analysis allows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

log = logging.getLogger(__name__)
T = TypeVar("T")


class LatestSlot(Generic[T]):
    """A one-item mailbox where the newest item wins. Event-loop only.

    Args:
        block: Make :meth:`put_wait` wait until the previous item was taken
            (for sources that can wait, such as files) instead of overwriting it.
    """

    def __init__(self, block: bool = False) -> None:
        """Create an empty slot."""
        self._item: T | None = None
        self._ready = asyncio.Event()
        self._taken = asyncio.Event()
        self._taken.set()
        self.block = block
        self.received = 0  # items put
        self.dropped = 0  # items overwritten before anyone took them

    @property
    def has_item(self) -> bool:
        """Whether an unread item is waiting."""
        return self._ready.is_set()

    def put(self, item: T) -> None:
        """Store ``item``, replacing an unread one."""
        self.received += 1
        if self._ready.is_set():
            self.dropped += 1
        self._item = item
        self._ready.set()
        self._taken.clear()

    async def put_wait(self, item: T) -> None:
        """Store ``item``; with ``block``, first wait until the previous one was taken."""
        if self.block:
            await self._taken.wait()
        self.put(item)

    async def take(self) -> T:
        """Wait for an item and take it."""
        await self._ready.wait()
        self._ready.clear()
        item, self._item = self._item, None
        self._taken.set()
        assert item is not None
        return item


@dataclass(frozen=True, slots=True)
class ReceivedFrame:
    """A decoded frame and when it was received (the session clock's monotonic time)."""

    frame: av.VideoFrame
    received_at: float


class MediaClock:
    """Maps a track's media time (``pts * time_base``) to the meeting clock (Unix seconds).

    A frame's meeting time is its media time plus an offset, so that timestamps keep the
    media spacing and do not jitter with network delay. The offset is ``arrival - media
    time`` of the first frame, or with ``fastest=True`` the smallest one seen so far: a
    frame's time is then its arrival had it come as fast as the fastest frame, so a first
    frame that came late (a busy start) cannot put later frames ahead of their arrival,
    and a frame that waited anywhere (network, decoder, analysis) shows it as lag. Video
    uses it (the server's load is steered by that lag); audio keeps the first anchor.

    If frames arrive more than ``max_drift_secs`` later than the offset says (a sender
    restart, a pts jump), the clock re-anchors. ``max_drift_secs=None`` (a file that
    runs faster than real time) anchors at the first frame and keeps the file's timeline.
    """

    def __init__(self, max_drift_secs: float | None = 5.0, *, fastest: bool = False) -> None:
        """Create an unanchored clock."""
        self.max_drift_secs = max_drift_secs
        self.fastest = fastest and max_drift_secs is not None
        self._offset: float | None = None

    def to_meeting_time(self, media_ts: float | None, wall_now: float) -> float:
        """The meeting time of a frame with media time ``media_ts`` that arrived at ``wall_now``."""
        if media_ts is None:
            return wall_now
        offset = wall_now - media_ts
        if (
            self._offset is None
            or (self.fastest and offset < self._offset)
            or (
                self.max_drift_secs is not None and abs(offset - self._offset) > self.max_drift_secs
            )
        ):
            self._offset = offset
        return media_ts + self._offset


def media_time(frame: av.VideoFrame | av.AudioFrame) -> float | None:
    """A frame's media time in seconds, or None without a pts."""
    if frame.pts is None or frame.time_base is None:
        return None
    return float(frame.pts * frame.time_base)


async def receive(
    track: MediaStreamTrack,
    on_frame: Callable[[av.VideoFrame | av.AudioFrame], Awaitable[None] | None],
    timeout_secs: float,
    on_timeout: Callable[[], None] | None = None,
) -> int:
    """Receive every frame of ``track`` until it ends; returns how many arrived.

    The one receive loop of the bot. ``on_frame`` gets each frame (and may be a
    coroutine function, awaited before the next ``recv``). A timeout only means no
    frame came for a while (camera paused, packets stopped): ``on_timeout`` is told
    and the loop goes on, unless the track has ended. ``MediaStreamError`` ends it.
    """
    received = 0
    while True:
        try:
            # Not asyncio.wait_for: on Python 3.11 it loses a cancellation that comes as a
            # frame arrives, and this loop then never ends (a participant who leaves hangs).
            async with asyncio.timeout(timeout_secs):
                frame = await track.recv()
        except TimeoutError:
            if track.readyState == "ended":
                return received
            if on_timeout is not None:
                on_timeout()
            continue
        except MediaStreamError:
            return received
        if not isinstance(frame, (av.VideoFrame, av.AudioFrame)):
            continue
        received += 1
        waited = on_frame(frame)
        if waited is not None:
            await waited


async def read_video(
    track: MediaStreamTrack,
    slot: LatestSlot[ReceivedFrame],
    timeout_secs: float,
    monotonic: Callable[[], float] = time.monotonic,
) -> int:
    """Receive every video frame of ``track`` into ``slot`` until the track ends."""

    async def put(frame: av.VideoFrame | av.AudioFrame) -> None:
        if isinstance(frame, av.VideoFrame):
            await slot.put_wait(ReceivedFrame(frame, monotonic()))

    return await receive(track, put, timeout_secs)


async def drain(track: MediaStreamTrack, timeout_secs: float) -> int:
    """Receive and discard every frame of ``track`` until it ends; returns the count."""
    return await receive(track, lambda frame: None, timeout_secs)
