"""The browser source: a participant's own browser, answered with aiortc.

The server is always the answerer and only receives (``recvonly``).
:class:`BrowserSource` is the :class:`~bot.sources.MediaSource` of such a peer: it
hands over the tracks (those negotiated in the offer and any that arrive later),
and ends when the connection fails, closes, or does not connect within
:data:`CONNECT_TIMEOUT_SECS`. Which local
addresses ICE offers is a setting: aioice has no per-connection option for it, so
:func:`restrict_host_addresses` replaces its address lookup for the whole process.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable

import aioice.ice
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack

from bot.session.clock import Clock, Pacing, RealtimePacing, SystemClock
from bot.settings import WebRTCSettings
from bot.types import LeaveReason, Observation

log = logging.getLogger(__name__)

_MDNS_CANDIDATE = re.compile(r"^a=candidate:\S+ \d+ \S+ \d+ \S+\.local \d+ .*$", re.MULTILINE)
MAX_SDP_CHARS = 64_000
#: How long a new peer may take to connect before it counts as failed.
CONNECT_TIMEOUT_SECS = 30.0


class OfferError(ValueError):
    """The offer cannot be used; the message says why (shown to the client)."""


def restrict_host_addresses(addresses: list[str]) -> None:
    """Make ICE offer only ``addresses`` as host candidates (process-wide)."""
    fixed = list(addresses)

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in fixed if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = get_host_addresses


def configuration(settings: WebRTCSettings) -> RTCConfiguration:
    """The RTCConfiguration for server-side peers."""
    return RTCConfiguration(iceServers=[RTCIceServer(urls=u) for u in settings.ice_servers])


def check_offer(sdp: str, kind: str) -> None:
    """Reject offers that are clearly not usable before aiortc parses them."""
    if kind != "offer":
        raise OfferError(f"expected an SDP of type 'offer', got {kind!r}")
    if not sdp.strip():
        raise OfferError("the offer SDP is empty")
    if len(sdp) > MAX_SDP_CHARS:
        raise OfferError(f"the offer SDP is longer than {MAX_SDP_CHARS} characters")
    if not sdp.lstrip().startswith("v=0"):
        raise OfferError("the offer is not an SDP document (it must start with 'v=0')")
    if not re.search(r"^m=(video|audio) ", sdp, re.MULTILINE):
        raise OfferError("the offer has no audio or video section")


async def accept_offer(
    sdp: str,
    kind: str,
    settings: WebRTCSettings,
    on_track: Callable[[MediaStreamTrack], None],
) -> tuple[RTCPeerConnection, RTCSessionDescription]:
    """Create a receiving peer for ``sdp`` and return it with its answer.

    ``on_track`` is called for every incoming track (possibly while this function
    runs). On a bad offer the peer is closed and :class:`OfferError` raised.
    """
    check_offer(sdp, kind)
    if settings.drop_mdns_candidates:
        sdp = _MDNS_CANDIDATE.sub("", sdp).replace("\r\n\r\n", "\r\n")
    pc = RTCPeerConnection(configuration(settings))
    pc.on("track", on_track)
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        for transceiver in pc.getTransceivers():
            transceiver.direction = "recvonly"
        await pc.setLocalDescription(await pc.createAnswer())
    except Exception as e:
        await pc.close()
        # aiortc raises ValueError, KeyError, IndexError... for malformed SDP.
        raise OfferError(f"the offer SDP could not be used: {type(e).__name__}: {e}") from e
    local = pc.localDescription
    assert local is not None
    return pc, local


class BrowserSource:
    """A browser participant's peer connection as a media source. Event loop only.

    Create it with :meth:`accept`, which answers the offer.
    """

    kind = "browser"

    def __init__(self, pc: RTCPeerConnection, tracks: list[MediaStreamTrack]) -> None:
        self.pc = pc
        self.clock: Clock = SystemClock()
        self.pacing: Callable[[], Pacing] = RealtimePacing
        self._tracks = tracks
        self._on_track: Callable[[MediaStreamTrack], None] | None = None
        self.connect_timeout_secs = CONNECT_TIMEOUT_SECS

    @classmethod
    async def accept(
        cls, sdp: str, kind: str, settings: WebRTCSettings
    ) -> tuple[BrowserSource, str]:
        """Answer a browser's offer; returns the source and the answer SDP.

        Raises:
            OfferError: the offer is unusable (the peer is closed again).
        """
        tracks: list[MediaStreamTrack] = []
        pc, answer = await accept_offer(sdp, kind, settings, tracks.append)
        return cls(pc, tracks), answer.sdp

    def start(
        self,
        participant_id: str,
        on_track: Callable[[MediaStreamTrack], None],
        emit: Callable[[Observation], None],
    ) -> None:
        """Hand the negotiated tracks to ``on_track``, and any that arrive later."""
        # Tracks normally all arrive during setRemoteDescription; take late ones too.
        self.pc.remove_all_listeners("track")
        self.pc.on("track", on_track)
        for track in self._tracks:
            on_track(track)
        self._tracks.clear()

    async def wait_ended(self) -> LeaveReason:
        """Wait until the connection fails or closes, or never connects."""
        pc = self.pc
        changed = asyncio.Event()
        pc.on("connectionstatechange", changed.set)
        deadline = time.monotonic() + self.connect_timeout_secs
        while True:
            changed.clear()
            state = pc.connectionState
            if state == "failed":
                return "failed"
            if state == "closed":
                return "disconnected"
            timeout = None
            if state != "connected":
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    return "failed"
            try:
                await asyncio.wait_for(changed.wait(), timeout)
            except TimeoutError:
                continue

    async def close(self) -> None:
        """Close the peer connection."""
        await self.pc.close()
