"""A track that outlives the connection it comes from.

A participant in someone else's meeting (a Janus publisher, a WHEP stream) may have
to be received over a new peer connection: the bot reconnects after a network drop
or a server restart, or resubscribes when the publisher changes their streams. Their
session keeps reading one :class:`RelayTrack` per kind, and the source swaps the
connection's track underneath (:meth:`RelayTrack.feed`). While no track is fed, the
relay waits (the session sees a pause, as with a paused camera); it ends only when
the source stops it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av.frame import Frame
from av.packet import Packet

from bot.session.clock import Clock, Pacing, SystemClock
from bot.types import LeaveReason, Observation


class RelayTrack(MediaStreamTrack):
    """Relays frames of whichever inner track was fed last. Event loop only."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._inner: MediaStreamTrack | None = None
        self._changed = asyncio.Event()

    @property
    def inner(self) -> MediaStreamTrack | None:
        """The track being relayed, if any."""
        return self._inner

    def feed(self, track: MediaStreamTrack | None) -> None:
        """Relay ``track`` from now on (None: wait for the next one)."""
        self._inner = track
        self._changed.set()

    async def recv(self) -> Frame | Packet:  # type: ignore[type-arg]
        """The next frame of the inner track; waits across swaps until stopped."""
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            inner = self._inner
            if inner is None or inner.readyState != "live":
                self._changed.clear()
                await self._changed.wait()
                continue
            try:
                return await inner.recv()
            except MediaStreamError:
                if self._inner is inner:
                    self._inner = None  # that connection is over; wait for the next

    def stop(self) -> None:
        """End the relay: the reader's next ``recv`` raises ``MediaStreamError``."""
        super().stop()
        self._changed.set()


class RelaySource:
    """A remote participant (a Janus publisher, a WHEP stream) as a media source.

    Event loop only. The bot feeds it the tracks of each (re)subscription; the
    participant's session reads steady :class:`RelayTrack`s. It ends when the bot says
    so (:meth:`finish`).
    """

    def __init__(self, kind: str, pacing: Callable[[], Pacing]) -> None:
        self.kind = kind
        self.clock: Clock = SystemClock()
        self.pacing = pacing
        self._relays: dict[str, RelayTrack] = {}
        self._on_track: Callable[[MediaStreamTrack], None] | None = None
        self._ended: asyncio.Future[LeaveReason] = asyncio.get_running_loop().create_future()
        self.on_close: Callable[[], None] | None = None

    def start(
        self,
        participant_id: str,
        on_track: Callable[[MediaStreamTrack], None],
        emit: Callable[[Observation], None],
    ) -> None:
        """Hand the relays (present and future) to the session."""
        self._on_track = on_track
        for relay in self._relays.values():
            on_track(relay)

    def feed(self, track: MediaStreamTrack) -> None:
        """A subscription's track: relay it to the session (one relay per kind)."""
        relay = self._relays.get(track.kind)
        if relay is None:
            relay = self._relays[track.kind] = RelayTrack(track.kind)
            if self._on_track is not None:
                self._on_track(relay)
        relay.feed(track)

    def pause(self) -> None:
        """The subscription is gone for now: the session waits for the next one."""
        for relay in self._relays.values():
            relay.feed(None)

    def finish(self, reason: LeaveReason) -> None:
        """The publisher is gone: end the participant."""
        if not self._ended.done():
            self._ended.set_result(reason)

    async def wait_ended(self) -> LeaveReason:
        """Wait until the bot ends this publisher."""
        return await asyncio.shield(self._ended)

    async def close(self) -> None:
        """Stop relaying and let the bot drop the subscription."""
        self.finish("left")
        for relay in self._relays.values():
            relay.stop()
        if self.on_close is not None:
            self.on_close()
