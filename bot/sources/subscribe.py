"""Receiving from a server that sends the offer (a Janus subscription, a WHEP server offer).

The bot is a viewer: it answers the remote offer with ``recvonly`` transceivers and
hands each incoming track on. aiortc decodes VP8 and H.264 video and Opus, PCMU and
PCMA audio; a stream in another codec (VP9, AV1...) cannot be analysed, and
:func:`video_codec_supported` says so before subscribing.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from bot.session.clock import Clock, Pacing, RealtimePacing
from bot.settings import WebRTCSettings
from bot.sources.browser import configuration

#: Video codecs aiortc can decode.
DECODABLE_VIDEO = frozenset({"vp8", "h264"})
#: Audio codecs aiortc can decode.
DECODABLE_AUDIO = frozenset({"opus", "pcmu", "pcma", "g722"})


def video_codec_supported(codec: str | None) -> bool:
    """Whether aiortc can decode video in ``codec`` (None: not announced; try it)."""
    return codec is None or codec.lower() in DECODABLE_VIDEO


def audio_codec_supported(codec: str | None) -> bool:
    """Whether aiortc can decode audio in ``codec`` (None: not announced; try it)."""
    return codec is None or codec.lower() in DECODABLE_AUDIO


async def answer_offer(
    offer_sdp: str,
    settings: WebRTCSettings,
    on_track: Callable[[MediaStreamTrack], None],
    kinds: Collection[str] = ("audio", "video"),
) -> tuple[RTCPeerConnection, str]:
    """A receive-only peer for a server's offer, and its answer SDP (all candidates in it).

    Media of a kind not in ``kinds`` is declined (``inactive``), so the server does not
    send what would not be analysed; its tracks are not handed on.

    Raises:
        ValueError: the offer cannot be used (the peer is closed again).
    """
    pc = RTCPeerConnection(configuration(settings))
    pc.on("track", lambda track: on_track(track) if track.kind in kinds else None)
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        for transceiver in pc.getTransceivers():
            transceiver.direction = "recvonly" if transceiver.kind in kinds else "inactive"
        await pc.setLocalDescription(await pc.createAnswer())
    except Exception as e:
        await pc.close()
        raise ValueError(f"the server's offer could not be used: {type(e).__name__}: {e}") from e
    assert pc.localDescription is not None
    return pc, pc.localDescription.sdp


class CappedPacing:
    """Live pacing with the analysis rate capped at ``max_fps`` (decode-cost control)."""

    live = True

    def __init__(self, max_fps: float) -> None:
        """Cap the rate at ``max_fps`` analyses a second."""
        self._inner = RealtimePacing()
        self._max_fps = max_fps

    async def wait_due(self, clock: Clock, frame_ts: float) -> bool:
        """As :class:`~bot.session.clock.RealtimePacing`."""
        return await self._inner.wait_due(clock, frame_ts)

    def analysed(self, clock: Clock, frame_ts: float, fps: float) -> None:
        """The next analysis is due at the lower of the two rates."""
        self._inner.analysed(clock, frame_ts, min(fps, self._max_fps))


def pacing_factory(max_fps: float | None) -> Callable[[], Pacing]:
    """The pacing for a remote participant's video: live, optionally capped."""
    if max_fps is None:
        return RealtimePacing
    return lambda: CappedPacing(max_fps)
