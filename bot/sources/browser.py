"""The browser source: a participant's own browser, answered with aiortc.

The server is always the answerer and only receives (``recvonly``).
:class:`BrowserSource` is the :class:`~bot.sources.MediaSource` of such a peer: it
hands over the tracks (those negotiated in the offer and any that arrive later),
and ends when the connection fails or closes. :meth:`BrowserSource.wait_connected` says
whether the peer connected within ``limits.connect_timeout_secs``: the meeting builds a
participant's analysis only then. Which local
addresses ICE offers is a setting: aioice has no per-connection option for it, so
:func:`restrict_host_addresses` replaces its address lookup for the whole process.

Which remote candidates the server contacts is decided before aiortc sees the offer
(:func:`filter_candidates`): aiortc pairs every ``a=candidate`` line and aioice sends
STUN to each, so an offer could otherwise make the server probe any address, its own
network included. The browser's own checks still reach the server's candidates, and
aioice answers them on the path they came by (a peer-reflexive candidate), so a
dropped candidate does not stop a browser from connecting.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import asdict

import aioice.ice
import aioice.turn
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack

from bot.load import SendRequest
from bot.session.clock import Clock, Pacing, RealtimePacing, SystemClock
from bot.settings import LimitsSettings, WebRTCSettings
from bot.types import LeaveReason, Observation

log = logging.getLogger(__name__)

_MDNS_CANDIDATE = re.compile(r"^a=candidate:\S+ \d+ \S+ \d+ \S+\.local \d+ .*$", re.MULTILINE)
MAX_SDP_CHARS = 64_000
#: The label of the join page's data channel, on which the server asks for less video.
CONTROL_LABEL = "meetmood"
_OPUS_RTPMAP = re.compile(r"^a=rtpmap:(\d+) opus/48000", re.IGNORECASE)
_FMTP = re.compile(r"^a=fmtp:(\d+) ")
#: Most media sections in an offer: the join page sends audio and one or two videos, and
#: each unbundled section would cost the server a transport and a socket of its own.
MAX_MEDIA_SECTIONS = 8
#: How long a new peer may take to connect before it counts as failed (the default of
#: ``limits.connect_timeout_secs``).
CONNECT_TIMEOUT_SECS = 30.0


class OfferError(ValueError):
    """The offer cannot be used; the message says why (shown to the client)."""


def restrict_host_addresses(addresses: list[str]) -> None:
    """Make ICE offer only ``addresses`` as host candidates (process-wide)."""
    fixed = list(addresses)

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in fixed if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = get_host_addresses


def set_udp_receive_buffer(size_bytes: int) -> None:
    """Give every ICE socket opened from now on a receive buffer of ``size_bytes`` (process-wide).

    aioice asks for 256 KiB. With dozens of participants a keyframe burst from each, or
    the event loop held up for a moment (a busy machine), fills that and the kernel drops
    packets: frames are then lost until the next keyframe. The kernel caps the size at
    ``net.core.rmem_max`` (often 208 KiB on Linux; raise it for big meetings).
    """
    aioice.turn.UDP_SOCKET_BUFFER_SIZE = size_bytes


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
    if len(re.findall(r"^m=", sdp, re.MULTILINE)) > MAX_MEDIA_SECTIONS:
        raise OfferError(f"the offer has more than {MAX_MEDIA_SECTIONS} media sections")


def _candidate_allowed(address: str, allow_private: bool) -> bool:
    """Whether the server may send connectivity checks to a remote candidate's address."""
    if address.lower().endswith(".local"):
        # mDNS names resolve on the local link only: a local address by definition.
        return allow_private
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False  # neither an address nor an mDNS name: aioice cannot use it either
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_multicast or ip.is_unspecified:
        return False
    # Not global: loopback, link-local, RFC 1918, CGNAT, IPv6 ULA, reserved ranges.
    return allow_private or ip.is_global


def filter_candidates(sdp: str, allow_private: bool, max_candidates: int) -> tuple[str, int]:
    """The offer with only the ICE candidates the server may contact; and how many went.

    Candidates whose address is not allowed (:func:`_candidate_allowed`) are removed, and
    of the rest at most ``max_candidates`` are kept: the highest-priority ones of each
    media section, earlier sections first (a bundled connection uses the first section's
    candidates; browsers repeat them in the others). When any is removed,
    ``a=end-of-candidates`` goes too: aioice then keeps waiting for the peer's own checks
    (peer-reflexive candidates) instead of failing on an empty list.
    """
    lines = sdp.split("\r\n") if "\r\n" in sdp else sdp.split("\n")
    sep = "\r\n" if "\r\n" in sdp else "\n"
    sections: list[list[tuple[int, int]]] = [[]]  # per media section: (priority, line index)
    dropped: set[int] = set()
    for i, line in enumerate(lines):
        if line.startswith("m="):
            sections.append([])
        if not line.startswith("a=candidate:"):
            continue
        fields = line.split()
        priority = int(fields[3]) if len(fields) > 5 and fields[3].isdigit() else -1
        if priority < 0 or not _candidate_allowed(fields[4], allow_private):
            dropped.add(i)
        else:
            sections[-1].append((priority, i))
    budget = max_candidates
    for allowed in sections:
        allowed.sort(reverse=True)
        dropped.update(i for _, i in allowed[budget:])
        budget = max(0, budget - len(allowed))
    if not dropped:
        return sdp, 0
    kept = [
        line
        for i, line in enumerate(lines)
        if i not in dropped and line.strip() != "a=end-of-candidates"
    ]
    return sep.join(kept), len(dropped)


async def accept_offer(
    sdp: str,
    kind: str,
    settings: WebRTCSettings,
    on_track: Callable[[MediaStreamTrack], None],
    limits: LimitsSettings | None = None,
) -> tuple[RTCPeerConnection, RTCSessionDescription]:
    """Create a receiving peer for ``sdp`` and return it with its answer.

    ``on_track`` is called for every incoming track (possibly while this function
    runs). The offer's candidates are filtered by ``limits`` first
    (:func:`filter_candidates`). On a bad offer the peer is closed and
    :class:`OfferError` raised.
    """
    check_offer(sdp, kind)
    limits = limits or LimitsSettings()
    if settings.drop_mdns_candidates:
        sdp = _MDNS_CANDIDATE.sub("", sdp).replace("\r\n\r\n", "\r\n")
    sdp, dropped = filter_candidates(
        sdp, limits.allow_private_candidates, limits.max_candidates_per_offer
    )
    if dropped:
        log.info("remote ICE candidates not used", extra={"count": dropped})
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
    if settings.opus_dtx:
        local = RTCSessionDescription(sdp=prefer_dtx(local.sdp), type=local.type)
    return pc, local


def prefer_dtx(sdp: str) -> str:
    """Ask the sender for Opus DTX (``usedtx=1``): no packets while its microphone is silent.

    In a big meeting most microphones are silent most of the time; a browser then
    sends one comfort-noise packet every 400 ms instead of 50 a second, and the voice
    pipeline fills the gaps with silence. The answer's other lines are kept as they are.
    """
    lines = sdp.split("\r\n")
    opus = {m.group(1) for line in lines if (m := _OPUS_RTPMAP.match(line))}
    out: list[str] = []
    has_fmtp: set[str] = set()
    for line in lines:
        m = _FMTP.match(line)
        if m and m.group(1) in opus:
            has_fmtp.add(m.group(1))
            if "usedtx=" not in line:
                line += ";usedtx=1"
        out.append(line)
    result: list[str] = []
    for line in out:
        result.append(line)
        m = _OPUS_RTPMAP.match(line)
        if m and m.group(1) not in has_fmtp:
            result.append(f"a=fmtp:{m.group(1)} usedtx=1")
    return "\r\n".join(result)


async def wait_connection_lost(pc: RTCPeerConnection, connect_timeout_secs: float) -> str:
    """Wait until ``pc`` fails or closes, or does not connect in time; returns its state."""
    changed = asyncio.Event()
    pc.on("connectionstatechange", changed.set)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + connect_timeout_secs
    while True:
        changed.clear()
        state = pc.connectionState
        if state in ("failed", "closed"):
            return state
        timeout = None if state == "connected" else deadline - loop.time()
        if timeout is not None and timeout <= 0:
            return "failed"
        try:
            await asyncio.wait_for(changed.wait(), timeout)
        except TimeoutError:
            continue


class BrowserSource:
    """A browser participant's peer connection as a media source. Event loop only.

    Create it with :meth:`accept`, which answers the offer. The join page opens a data
    channel labelled :data:`CONTROL_LABEL`; :meth:`request` sends on it what the camera
    should send at most (``{"type": "send", "max_fps", "max_height", "max_kbps"}``),
    again whenever it changes. Nothing the browser sends on it is acted upon, and any
    other channel is closed.
    """

    kind = "browser"

    def __init__(
        self,
        pc: RTCPeerConnection,
        tracks: list[MediaStreamTrack],
        connect_timeout_secs: float = CONNECT_TIMEOUT_SECS,
    ) -> None:
        self.pc = pc
        self.clock: Clock = SystemClock()
        self.pacing: Callable[[], Pacing] = RealtimePacing
        self._tracks = tracks
        self._on_track: Callable[[MediaStreamTrack], None] | None = None
        self.connect_timeout_secs = connect_timeout_secs
        self._control: RTCDataChannel | None = None
        self._request: SendRequest | None = None
        pc.on("datachannel", self._on_datachannel)

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        if channel.label != CONTROL_LABEL or self._control is not None:
            channel.close()
            return
        self._control = channel
        channel.on("open", self._send_request)
        self._send_request()

    def request(self, request: SendRequest) -> None:
        """Ask the browser to send no more than ``request`` (now, or once its channel opens)."""
        if request != self._request:
            self._request = request
            self._send_request()

    def _send_request(self) -> None:
        channel, request = self._control, self._request
        if channel is None or request is None or channel.readyState != "open":
            return
        channel.send(json.dumps({"type": "send", **asdict(request)}))

    @classmethod
    async def accept(
        cls, sdp: str, kind: str, settings: WebRTCSettings, limits: LimitsSettings | None = None
    ) -> tuple[BrowserSource, str]:
        """Answer a browser's offer; returns the source and the answer SDP.

        Raises:
            OfferError: the offer is unusable (the peer is closed again).
        """
        limits = limits or LimitsSettings()
        tracks: list[MediaStreamTrack] = []
        pc, answer = await accept_offer(sdp, kind, settings, tracks.append, limits)
        return cls(pc, tracks, limits.connect_timeout_secs), answer.sdp

    async def wait_connected(self) -> bool:
        """Wait until the peer is connected (ICE and DTLS): True; or failed, closed or too late."""
        pc = self.pc
        changed = asyncio.Event()
        pc.on("connectionstatechange", changed.set)
        deadline = time.monotonic() + self.connect_timeout_secs
        try:
            while True:
                changed.clear()
                state = pc.connectionState
                if state == "connected":
                    return True
                if state in ("failed", "closed"):
                    return False
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    return False
                try:
                    await asyncio.wait_for(changed.wait(), timeout)
                except TimeoutError:
                    continue
        finally:
            pc.remove_listener("connectionstatechange", changed.set)

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
        state = await wait_connection_lost(self.pc, self.connect_timeout_secs)
        return "disconnected" if state == "closed" else "failed"

    async def close(self) -> None:
        """Close the peer connection."""
        await self.pc.close()
