"""WebRTC peers: answering a participant's offer with aiortc.

The server is always the answerer and only receives (``recvonly``). Which local
addresses ICE offers is a setting: aioice has no per-connection option for it, so
:func:`restrict_host_addresses` replaces its address lookup for the whole process.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

import aioice.ice
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack

from bot.settings import WebRTCSettings

log = logging.getLogger(__name__)

_MDNS_CANDIDATE = re.compile(r"^a=candidate:\S+ \d+ \S+ \d+ \S+\.local \d+ .*$", re.MULTILINE)
MAX_SDP_CHARS = 64_000


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
