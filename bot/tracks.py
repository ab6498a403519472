"""Reading media tracks: drain every track, keep only the newest video frame.

aiortc's receive queue has no bound, so every track is read continuously even
while analysis is busy; a track nobody analyses goes to :func:`drain`. Video
frames land in a one-slot :class:`LatestSlot`: a new frame overwrites an unread
one, so analysis always sees the newest frame and never a backlog.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Generic, TypeVar

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

log = logging.getLogger(__name__)
T = TypeVar("T")


class LatestSlot(Generic[T]):
    """A one-item mailbox where the newest item wins. Event-loop only."""

    def __init__(self) -> None:
        """Create an empty slot."""
        self._item: T | None = None
        self._ready = asyncio.Event()
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

    async def take(self) -> T:
        """Wait for an item and take it."""
        await self._ready.wait()
        self._ready.clear()
        item, self._item = self._item, None
        assert item is not None
        return item


@dataclass(frozen=True, slots=True)
class ReceivedFrame:
    """A decoded frame and when it was received (``time.monotonic()``)."""

    frame: av.VideoFrame
    received_at: float


class MediaClock:
    """Maps a track's media time (``pts * time_base``) to the meeting clock (Unix seconds).

    The first frame anchors media time to the wall clock; later frames keep the
    media spacing, so analysis timestamps do not jitter with network delay. If the
    two drift apart by more than ``max_drift_secs`` (a sender restart, a pts jump),
    the clock re-anchors.
    """

    def __init__(self, max_drift_secs: float = 5.0) -> None:
        """Create an unanchored clock."""
        self.max_drift_secs = max_drift_secs
        self._offset: float | None = None

    def to_meeting_time(self, media_ts: float | None, wall_now: float) -> float:
        """The meeting-clock time of a frame with media time ``media_ts``."""
        if media_ts is None:
            return wall_now
        if self._offset is None or abs(media_ts + self._offset - wall_now) > self.max_drift_secs:
            self._offset = wall_now - media_ts
        return media_ts + self._offset


def media_time(frame: av.VideoFrame | av.AudioFrame) -> float | None:
    """A frame's media time in seconds, or None without a pts."""
    if frame.pts is None or frame.time_base is None:
        return None
    return float(frame.pts * frame.time_base)


async def read_video(
    track: MediaStreamTrack, slot: LatestSlot[ReceivedFrame], timeout_secs: float
) -> int:
    """Receive every frame of ``track`` into ``slot`` until the track ends.

    Returns the number of frames received. A timeout only means no frame came for
    a while (camera paused); the loop goes on. ``MediaStreamError`` ends it.
    """
    received = 0
    while True:
        try:
            frame = await asyncio.wait_for(track.recv(), timeout_secs)
        except TimeoutError:
            if track.readyState == "ended":
                return received
            continue
        except MediaStreamError:
            return received
        if isinstance(frame, av.VideoFrame):
            received += 1
            slot.put(ReceivedFrame(frame, time.monotonic()))


async def drain(track: MediaStreamTrack, timeout_secs: float) -> int:
    """Receive and discard every frame of ``track`` until it ends; returns the count."""
    received = 0
    while True:
        try:
            await asyncio.wait_for(track.recv(), timeout_secs)
        except TimeoutError:
            if track.readyState == "ended":
                return received
            continue
        except MediaStreamError:
            return received
        received += 1
