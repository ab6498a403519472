"""Pulling one stream over WHEP (WebRTC-HTTP Egress Protocol) as a participant.

Two flows are spoken:

* the standard one: the bot POSTs its offer (``application/sdp``); the server answers
  **201** with its answer and the session's ``Location``;
* the server-offer variant some servers use (janus-whep-server in front of a VideoRoom):
  the POST is answered **406** with the server's offer and a ``Location``; the bot
  answers it and PATCHes its answer to that ``Location``.

Leaving DELETEs the ``Location``. A bearer token, when given, goes in the
``Authorization`` header of every request (never in the URL). When the connection
fails, the bot pulls again with capped, jittered backoff; the participant resumes and
the pause is recorded as a ``media_gap`` moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiortc import RTCPeerConnection, RTCSessionDescription

from bot.backoff import backoff_secs
from bot.settings import BotSettings, WebRTCSettings
from bot.sources.browser import configuration, wait_connection_lost
from bot.sources.janus import BotError, BotState, RoomHost
from bot.sources.relay import RelaySource
from bot.sources.subscribe import answer_offer, pacing_factory

log = logging.getLogger(__name__)

SDP = "application/sdp"
REQUEST_TIMEOUT_SECS = 15.0
CONNECT_TIMEOUT_SECS = 20.0
DEFAULT_DISPLAY = "WHEP stream"


def check_whep_url(url: str) -> str:
    """A WHEP endpoint URL, checked: http(s) only (WHEP runs over HTTP).

    Raises:
        BotError: another scheme or no host.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise BotError("url", "a WHEP endpoint must be an http:// or https:// URL")
    if not parts.hostname:
        raise BotError("url", "has no host")
    return url.strip()


@dataclass
class WhepTarget:
    """A WHEP endpoint, its optional bearer token, and the participant's name."""

    url: str
    token: str | None = None
    display: str | None = None


@dataclass(eq=False)
class WhepBot:
    """Pulls one WHEP stream into the meeting as one participant. Run with :meth:`run`."""

    target: WhepTarget
    host: RoomHost
    settings: BotSettings
    webrtc: WebRTCSettings
    on_state: Callable[[BotState, str], None] = lambda state, detail: None
    state: BotState = "connecting"
    detail: str = ""
    failure_key: str = ""
    _stopping: bool = False
    _joined: asyncio.Event = field(default_factory=asyncio.Event)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _source: RelaySource | None = None
    _participant_id: str = ""
    _resource: str | None = None

    @property
    def display_name(self) -> str:
        """The participant's name in the sidebar."""
        return self.target.display or DEFAULT_DISPLAY

    def _set_state(self, state: BotState, detail: str = "") -> None:
        self.state, self.detail = state, detail
        self.on_state(state, detail)

    async def wait_joined(self) -> None:
        """Wait until the stream flows (or the bot failed; see :attr:`state`)."""
        await self._joined.wait()

    async def stop(self) -> None:
        """Stop pulling; the participant leaves."""
        self._stopping = True
        self._stop.set()

    def _headers(self, content_type: str | None = None) -> dict[str, str]:
        headers = {}
        if content_type:
            headers["Content-Type"] = content_type
        if self.target.token:
            headers["Authorization"] = f"Bearer {self.target.token}"
        return headers

    async def run(self) -> None:
        """Pull the stream, and pull again when it drops, until stopped."""
        url = check_whep_url(self.target.url)
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECS)
        ) as http:
            attempt = 0
            paused_at: float | None = None
            try:
                while not self._stopping:
                    try:
                        pc = await self._pull(http, url)
                    except BotError as e:
                        if self._source is None:  # never connected: say why and stop
                            self.failure_key = e.key
                            self._set_state("failed", e.reason)
                            return
                        self._set_state("reconnecting", e.reason)
                    else:
                        if paused_at is not None:
                            self.host.gap(self._participant_id, paused_at, self.host.now())
                            paused_at = None
                        attempt = 0
                        self._set_state("in_room")
                        self._joined.set()
                        lost = asyncio.ensure_future(wait_connection_lost(pc, CONNECT_TIMEOUT_SECS))
                        stop = asyncio.ensure_future(self._stop.wait())
                        await asyncio.wait({lost, stop}, return_when=asyncio.FIRST_COMPLETED)
                        lost.cancel()
                        stop.cancel()
                        await pc.close()
                        await self._delete(http)
                        if self._stopping:
                            break
                        self._set_state("reconnecting", "the stream's connection dropped")
                    assert self._source is not None
                    self._source.pause()
                    if paused_at is None:
                        paused_at = self.host.now()
                    if self.host.now() - paused_at > self.settings.resume_grace_secs:
                        self._source.finish("disconnected")
                        self.host.left(self._participant_id)
                        return
                    attempt += 1
                    delay = backoff_secs(
                        attempt, 1.0, self.settings.reconnect_max_secs, random.random()
                    )
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), delay)
            finally:
                self._joined.set()
                await self._delete(http)
                if self._source is not None:
                    self._source.finish("left")
                    self.host.left(self._participant_id)
                if self.state != "failed":
                    self._set_state("left", self.detail if self.state == "left" else "")

    async def _pull(self, http: aiohttp.ClientSession, url: str) -> RTCPeerConnection:
        """One WHEP session: offer (or answer the server's offer); returns the connection."""
        source = self._source or RelaySource("whep", pacing_factory(self.settings.max_analysis_fps))
        pc = RTCPeerConnection(configuration(self.webrtc))
        pc.on("track", source.feed)
        media = self.settings.media
        for kind in ("audio", "video"):
            if media in ("both", kind):
                pc.addTransceiver(kind, direction="recvonly")
        try:
            await pc.setLocalDescription(await pc.createOffer())
            assert pc.localDescription is not None
            try:
                async with http.post(
                    url, data=pc.localDescription.sdp, headers=self._headers(SDP)
                ) as resp:
                    body = await resp.text()
                    status = resp.status
                    location = resp.headers.get("Location")
            except (aiohttp.ClientError, OSError, TimeoutError) as e:
                raise BotError(
                    "unreachable", f"cannot reach the WHEP endpoint: {e or type(e).__name__}"
                ) from e
            if location:
                self._resource = urljoin(url, location)
            if status == 201:
                try:
                    await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
                except ValueError as e:
                    raise BotError("whep", f"the server's answer is not a usable SDP: {e}") from e
            elif status == 406 and body.lstrip().startswith("v=0"):
                # The server offers instead: answer its offer on a fresh connection,
                # declining the media that is not analysed.
                await pc.close()
                kinds = ("audio", "video") if media == "both" else (media,)
                try:
                    pc, answer = await answer_offer(body, self.webrtc, source.feed, kinds)
                except ValueError as e:
                    raise BotError("whep", f"the server's offer is not a usable SDP: {e}") from e
                if not self._resource:
                    raise BotError("whep", "the server offered but gave no Location to answer")
                try:
                    async with http.patch(
                        self._resource, data=answer, headers=self._headers(SDP)
                    ) as resp:
                        if resp.status not in (200, 204):
                            raise BotError(
                                "whep", f"the server refused the answer (HTTP {resp.status})"
                            )
                except (aiohttp.ClientError, OSError, TimeoutError) as e:
                    raise BotError("unreachable", f"cannot reach the WHEP endpoint: {e}") from e
            else:
                raise BotError(*_http_error(status))
        except BaseException:
            await pc.close()
            await self._delete(http)
            raise
        if self._source is None:
            self._source = source
            source.on_close = self._closed_by_meeting
            self._participant_id = self.host.join(self.display_name, source)
        return pc

    def _closed_by_meeting(self) -> None:
        """The meeting ended the participant (the host, the meeting's end): stop pulling."""
        self._stopping = True
        self._stop.set()

    async def _delete(self, http: aiohttp.ClientSession) -> None:
        """End the WHEP session on the server (best effort)."""
        resource, self._resource = self._resource, None
        if resource is None:
            return
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
            async with http.delete(resource, headers=self._headers()):
                pass


def _http_error(status: int) -> tuple[str, str]:
    if status in (401, 403):
        return "token", f"the WHEP endpoint refused the token (HTTP {status})"
    if status == 404:
        return "url", "no WHEP endpoint at this URL (HTTP 404)"
    if status == 415:
        return "whep", "the server does not accept an SDP offer here (HTTP 415)"
    if status == 503:
        return "whep", "the WHEP server is busy (HTTP 503)"
    return "whep", f"the WHEP endpoint answered HTTP {status}"
