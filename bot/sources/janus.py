"""The bot in a Janus VideoRoom: every publisher becomes a participant.

The bot joins the room as a publisher that never publishes: that handle receives the
room's news (publishers arriving, changing their streams, unpublishing, leaving). It
subscribes to each publisher with **one subscriber handle and one peer connection per
publisher**. Janus 1.1 could carry every publisher on one multistream subscription, but
each change would then renegotiate one shared connection, and aiortc does not reuse
the m-lines Janus disables; one connection each keeps a publisher's failure, codec or
renegotiation to themselves, and maps one publisher to one :class:`RelaySource`.

A publisher's media reaches their session through :class:`~bot.sources.relay.RelayTrack`s,
so the participant survives a resubscription: when the publisher changes their streams,
when their connection fails, and when the whole Janus session is lost (Janus restarts,
the network drops). The bot then reconnects with capped, jittered backoff, rejoins, and
matches returning publishers by display name; the pause is recorded as a ``media_gap``
moment. Publishers not back within ``resume_grace_secs`` end as disconnected.

Decode-cost controls (:class:`~bot.settings.BotSettings`): receive video only or audio
only, ask for a simulcast substream and temporal layer, cap the analysis rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import aiohttp
from aiortc import RTCPeerConnection

from bot.backoff import backoff_secs
from bot.settings import BotSettings, WebRTCSettings
from bot.sources.browser import wait_connection_lost
from bot.sources.janus_api import JanusError, JanusGone, JanusSession, JsonDict, check_url
from bot.sources.janus_text import TextRoomNotice, post_notice
from bot.sources.relay import RelaySource
from bot.sources.subscribe import (
    answer_offer,
    audio_codec_supported,
    pacing_factory,
    video_codec_supported,
)
from bot.types import LeaveReason

log = logging.getLogger(__name__)

VIDEOROOM = "janus.plugin.videoroom"
#: How long a subscription may take to connect.
CONNECT_TIMEOUT_SECS = 20.0

BotState = Literal["connecting", "in_room", "reconnecting", "left", "failed"]


class BotError(Exception):
    """The bot cannot join; the message says why in a sentence (shown to the host)."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


def room_id(value: str | int) -> str | int:
    """A room id as Janus wants it: a number, or a string for rooms with string ids."""
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if not text:
        raise ValueError("the room id is empty")
    # ASCII digits only: "²" or "٣" pass isdigit() but are no number int() reads.
    return int(text) if text.isascii() and text.isdigit() else text


def describe_janus_error(e: JanusError) -> BotError:
    """A Janus or VideoRoom error code as a host can read it."""
    known = {
        426: ("room", "no such room on this Janus server"),
        433: ("pin", "the room's pin is wrong or missing"),
        432: ("room", "the room is full"),
        403: ("access", "Janus refused the bot (a token or secret is needed)"),
        459: ("janus", "this Janus server has no VideoRoom plugin"),
    }
    key, reason = known.get(e.code, ("janus", e.reason))
    return BotError(key, reason)


@dataclass(eq=False)
class _Feed:
    """A publisher the bot receives."""

    feed_id: Any
    display: str
    streams: list[JsonDict]
    source: RelaySource
    participant_id: str = ""
    task: asyncio.Task[None] | None = None
    paused_at: float | None = None  # meeting clock, while no subscription runs
    done: bool = False


class RoomHost(Protocol):
    """What the bot needs from the meeting it analyses (see :mod:`bot.bots`)."""

    def join(self, display_name: str, source: RelaySource) -> str:
        """Add a participant fed by ``source``; returns their id."""
        ...

    def gap(self, participant_id: str, started: float, ended: float) -> None:
        """Record that a participant's media paused from ``started`` to ``ended``."""
        ...

    def left(self, participant_id: str) -> None:
        """The bot no longer receives this participant."""
        ...

    def notice(self, code: str, text: str) -> None:
        """Tell the host something about the bot."""
        ...

    def now(self) -> float:
        """The meeting clock."""
        ...


@dataclass
class JanusTarget:
    """Where the bot goes: the Janus API URL, the room, its pin, the bot's name."""

    url: str
    room: str | int
    pin: str | None = None
    display: str | None = None

    def checked(self) -> JanusTarget:
        """The same target with the URL and room id checked.

        Raises:
            BotError: a bad URL or room id.
        """
        try:
            url = check_url(self.url)
        except ValueError as e:
            raise BotError("url", str(e)) from e
        try:
            room = room_id(self.room)
        except ValueError as e:
            raise BotError("room", str(e)) from e
        return JanusTarget(url, room, self.pin or None, self.display)


@dataclass(eq=False)
class JanusRoomBot:
    """A bot in one Janus VideoRoom. Event loop only; run with :meth:`run`."""

    target: JanusTarget
    host: RoomHost
    settings: BotSettings
    webrtc: WebRTCSettings
    on_state: Callable[[BotState, str], None] = lambda state, detail: None
    state: BotState = "connecting"
    detail: str = ""
    failure_key: str = ""
    _feeds: dict[Any, _Feed] = field(default_factory=dict)
    _session: JanusSession | None = None
    _handle: int | None = None
    _private_id: Any = None
    _stopping: bool = False
    _stopped: asyncio.Event = field(default_factory=asyncio.Event)
    _http: aiohttp.ClientSession | None = None
    _joined: asyncio.Event = field(default_factory=asyncio.Event)
    _expiry: asyncio.Task[None] | None = None
    _text: TextRoomNotice | None = None
    _notice_task: asyncio.Task[None] | None = None

    @property
    def display_name(self) -> str:
        """The name the bot shows in the room."""
        return self.target.display or self.settings.display_name

    def _set_state(self, state: BotState, detail: str = "") -> None:
        self.state, self.detail = state, detail
        self.on_state(state, detail)

    async def wait_joined(self) -> None:
        """Wait until the bot is in the room (or has failed; see :attr:`state`)."""
        await self._joined.wait()

    # -- the bot's life ---------------------------------------------------------------

    async def run(self) -> None:
        """Join, follow the room, reconnect when the session is lost, until stopped."""
        self._http = aiohttp.ClientSession()
        try:
            try:
                await self._connect()
            except BotError as e:
                self.failure_key = e.key
                self._set_state("failed", e.reason)
                self._joined.set()
                log.warning("bot could not join", extra={"key": e.key})
                return
            self._joined.set()
            self._expiry = asyncio.create_task(self._expire_loop(), name="janus.expiry")
            attempt = 0
            while not self._stopping:
                assert self._session is not None
                try:
                    await self._follow_room()
                except JanusGone as e:
                    if self._stopping:
                        break
                    await self._lost(str(e))
                except BotError as e:  # the room was destroyed, the bot was kicked
                    self._set_state("left", e.reason)
                    break
                else:
                    break
                while not self._stopping:
                    attempt += 1
                    await self._pause(self._backoff(attempt))
                    try:
                        await self._connect(reconnecting=True)
                        attempt = 0
                        break
                    except (BotError, JanusGone) as e:
                        log.info("bot reconnect failed", extra={"attempt": attempt})
                        self._set_state("reconnecting", str(e))
        finally:
            await self._leave()
            await self._http.close()
            if self.state != "failed":
                self._set_state("left", self.detail if self.state == "left" else "")
            self._joined.set()

    async def stop(self) -> None:
        """Ask the bot to leave (it then ends every participant it added)."""
        self._stopping = True
        self._stopped.set()
        if self._session is not None:
            await self._session.close()

    async def _connect(self, reconnecting: bool = False) -> None:
        """Create a session, attach, join as a silent publisher, subscribe to everyone."""
        assert self._http is not None
        if not reconnecting:
            self._set_state("connecting")
        try:
            session = await JanusSession.connect(self.target.url, self._http)
        except JanusGone as e:
            raise BotError("unreachable", str(e)) from e
        try:
            self._handle = await session.attach(VIDEOROOM)
            body: JsonDict = {
                "request": "join",
                "ptype": "publisher",
                "room": self.target.room,
                "display": self.display_name,
            }
            if self.target.pin:
                body["pin"] = self.target.pin
            joined = await session.message(self._handle, body)
        except JanusError as e:
            await session.close()
            raise describe_janus_error(e) from e
        except (JanusGone, TimeoutError) as e:
            await session.close()
            raise BotError("unreachable", f"the Janus server stopped answering: {e}") from e
        self._session = session
        self._private_id = joined.get("private_id")
        self._set_state("in_room")
        log.info("bot in room", extra={"publishers": len(joined.get("publishers", []))})
        if self.settings.room_notice and self._text is None:
            # After a reconnection (Janus restarted) the chat is new: say it again there,
            # but tell the host only once that the room has no chat.
            self._notice_task = asyncio.create_task(
                self._post_room_notice(tell_host=not reconnecting), name="janus.room_notice"
            )
        self._publishers(joined.get("publishers", []))

    async def _follow_room(self) -> None:
        """Handle the room's events until the session is lost or the room ends."""
        assert self._session is not None and self._handle is not None
        while not self._stopping:
            event = await self._session.next_event(self._handle)
            data = event.get("plugindata", {}).get("data", {})
            if event.get("janus") == "hangup" or event.get("janus") == "detached":
                continue
            if data.get("videoroom") == "destroyed":
                raise BotError("room", "the room was destroyed")
            if "kicked" in data and data.get("kicked") == self._private_id:
                raise BotError("room", "the bot was kicked from the room")
            if "publishers" in data:
                self._publishers(data["publishers"])
            for key in ("unpublished", "leaving"):
                feed_id = data.get(key)
                if feed_id is not None and feed_id != "ok":
                    self._gone(feed_id)

    async def _lost(self, why: str) -> None:
        """The session is gone: pause every participant and start reconnecting."""
        log.warning("bot lost its Janus session")
        self._set_state("reconnecting", why)
        now = self.host.now()
        if self._text is not None:
            await self._text.pc.close()  # its session is gone; posted again on return
            self._text = None
        for feed in list(self._feeds.values()):
            await self._stop_subscription(feed)
            feed.source.pause()
            if feed.paused_at is None:
                feed.paused_at = now
        if self._session is not None:
            await self._session.close()
        self._session = None

    async def _pause(self, secs: float) -> None:
        """Sleep ``secs``, or less when the bot is asked to leave."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), secs)

    def _backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff from 1 s, capped at ``reconnect_max_secs``."""
        return backoff_secs(attempt, 1.0, self.settings.reconnect_max_secs, random.random())

    async def _expire_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self._expire_paused()

    def _expire_paused(self) -> None:
        """End participants who stayed away longer than the grace period."""
        now = self.host.now()
        for feed in list(self._feeds.values()):
            away = now - feed.paused_at if feed.paused_at is not None else 0.0
            if away > self.settings.resume_grace_secs:
                self._end(feed, "disconnected")

    # -- publishers --------------------------------------------------------------------

    def _publishers(self, publishers: list[JsonDict]) -> None:
        for pub in publishers:
            feed_id = pub.get("id")
            if feed_id is None or pub.get("dummy"):
                continue
            streams = [s for s in pub.get("streams", []) if not s.get("disabled")]
            display = str(pub.get("display") or f"Publisher {feed_id}")
            feed = self._feeds.get(feed_id)
            if feed is None:
                feed = self._returning(display, feed_id)
            if feed is None:
                source = RelaySource("janus", pacing_factory(self.settings.max_analysis_fps))
                feed = _Feed(feed_id, display, streams, source)
                if not self._wanted(feed):
                    continue
                self._feeds[feed_id] = feed
                feed.participant_id = self.host.join(display, source)
                source.on_close = lambda f=feed: self._closed_by_meeting(f)
            elif _stream_key(streams) == _stream_key(feed.streams) and feed.task is not None:
                continue  # nothing changed for us
            feed.streams = streams
            self._subscribe(feed)

    def _returning(self, display: str, feed_id: Any) -> _Feed | None:
        """A paused participant coming back under a new feed id after a reconnection."""
        for old_id, feed in list(self._feeds.items()):
            if feed.paused_at is not None and feed.display == display and not feed.done:
                del self._feeds[old_id]
                feed.feed_id = feed_id
                self._feeds[feed_id] = feed
                return feed
        return None

    def _wanted(self, feed: _Feed) -> bool:
        """Whether the bot can analyse anything of this publisher; tells the host if not."""
        return bool(self._stream_requests(feed, notify=True))

    def _stream_requests(self, feed: _Feed, notify: bool = False) -> list[JsonDict]:
        """The streams to subscribe to, per the media setting and what aiortc decodes."""
        wanted: list[JsonDict] = []
        media = self.settings.media
        for stream in feed.streams:
            kind, codec = stream.get("type"), stream.get("codec")
            request: JsonDict = {"feed": feed.feed_id, "mid": stream.get("mid")}
            if kind == "video" and media in ("both", "video"):
                if not video_codec_supported(codec):
                    if notify:
                        self.host.notice(
                            "unsupported_codec",
                            f"{feed.display} sends {str(codec).upper()} video, which meetmood "
                            "cannot decode (it decodes VP8 and H.264 only): their face is not "
                            "analysed.",
                        )
                    continue
                if self.settings.substream is not None:
                    request["substream"] = self.settings.substream
                if self.settings.temporal is not None:
                    request["temporal"] = self.settings.temporal
                wanted.append(request)
            elif kind == "audio" and media in ("both", "audio"):
                if not audio_codec_supported(codec):
                    if notify:
                        self.host.notice(
                            "unsupported_codec",
                            f"{feed.display} sends {str(codec).upper()} audio, which meetmood "
                            "cannot decode: their voice is not analysed.",
                        )
                    continue
                wanted.append(request)
        return wanted

    def _gone(self, feed_id: Any) -> None:
        feed = self._feeds.get(feed_id)
        if feed is not None:
            self._end(feed, "left")

    def _end(self, feed: _Feed, reason: LeaveReason) -> None:
        feed.done = True
        self.host.left(feed.participant_id)
        self._feeds.pop(feed.feed_id, None)
        if feed.task is not None:
            feed.task.cancel()
        feed.source.finish(reason)

    def _closed_by_meeting(self, feed: _Feed) -> None:
        """The meeting ended this participant (host, meeting end): drop the subscription."""
        feed.done = True
        self.host.left(feed.participant_id)
        self._feeds.pop(feed.feed_id, None)
        if feed.task is not None:
            feed.task.cancel()

    # -- subscriptions -------------------------------------------------------------------

    def _subscribe(self, feed: _Feed) -> None:
        if feed.task is not None:
            feed.task.cancel()  # it closes its own connection
        feed.task = asyncio.create_task(self._keep_subscribed(feed), name="janus.subscription")

    async def _stop_subscription(self, feed: _Feed) -> None:
        task, feed.task = feed.task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _keep_subscribed(self, feed: _Feed) -> None:
        """Subscribe, and resubscribe with backoff while the connection fails."""
        attempt = 0
        while not feed.done:
            session = self._session
            if session is None:
                return  # the room loop reconnects, then subscribes again
            try:
                pc, handle = await self._open_subscription(session, feed)
                try:
                    attempt = 0
                    await wait_connection_lost(pc, CONNECT_TIMEOUT_SECS)
                finally:
                    await pc.close()
                    await session.detach(handle)
            except (JanusError, ValueError, TimeoutError) as e:
                log.info("subscription failed", extra={"error": type(e).__name__})
            except JanusGone:
                return
            if feed.done:
                return
            if feed.paused_at is None:
                feed.paused_at = self.host.now()
            feed.source.pause()
            attempt += 1
            await self._pause(self._backoff(attempt))

    async def _open_subscription(
        self, session: JanusSession, feed: _Feed
    ) -> tuple[RTCPeerConnection, int]:
        """Subscribe to a publisher's wanted streams; returns the connection and handle."""
        streams = self._stream_requests(feed)
        if not streams:
            raise ValueError("nothing to subscribe to")
        handle = await session.attach(VIDEOROOM)
        pc: RTCPeerConnection | None = None
        try:
            body: JsonDict = {
                "request": "join",
                "ptype": "subscriber",
                "room": self.target.room,
                "streams": streams,
            }
            if self._private_id is not None:
                body["private_id"] = self._private_id
            if self.target.pin:
                body["pin"] = self.target.pin
            attached = await session.message(handle, body)
            jsep = attached.get("jsep")
            if not jsep or jsep.get("type") != "offer":
                raise ValueError("Janus sent no offer for the subscription")
            pc, answer = await answer_offer(jsep["sdp"], self.webrtc, feed.source.feed)
            await session.message(
                handle, {"request": "start"}, {"type": "answer", "sdp": answer, "trickle": False}
            )
        except BaseException:
            if pc is not None:
                await pc.close()
            await session.detach(handle)
            raise
        if feed.paused_at is not None:
            self.host.gap(feed.participant_id, feed.paused_at, self.host.now())
            feed.paused_at = None
        return pc, handle

    async def _leave(self) -> None:
        """Leave the room: end every participant and destroy the session."""
        for feed in list(self._feeds.values()):
            task = feed.task
            self._end(feed, "left")
            if task is not None:
                await asyncio.gather(task, return_exceptions=True)
        for task in (self._expiry, self._notice_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self._text is not None and self._session is not None:
            await self._text.close(self._session)
        self._text = None
        if self._session is not None:
            if self._handle is not None:
                with contextlib.suppress(JanusError, JanusGone, TimeoutError):
                    await asyncio.wait_for(
                        self._session.message(self._handle, {"request": "leave"}), 2.0
                    )
            await self._session.close()
            self._session = None

    # -- telling the room ---------------------------------------------------------------

    async def _post_room_notice(self, tell_host: bool) -> None:
        """Say in the room's text channel (a TextRoom with the same id) that it is analysed."""
        session = self._session
        if session is None:
            return
        text = (
            f"{self.display_name} has joined: this meeting's faces and voices are analysed "
            "for emotional and engagement states by meetmood. Ask the host about it."
        )
        try:
            self._text = await post_notice(
                session, self.target.room, self.display_name, text, self.webrtc
            )
        except (JanusError, JanusGone, TimeoutError, ValueError) as e:
            log.info("room notice not posted", extra={"error": type(e).__name__})
        if self._text is None and tell_host:
            self.host.notice(
                "room_notice",
                "The room has no text channel meetmood can post in: tell the people in the "
                "room that the meeting is analysed.",
            )


def _stream_key(streams: list[JsonDict]) -> tuple[tuple[Any, Any, Any], ...]:
    return tuple(sorted((s.get("mid"), s.get("type"), s.get("codec")) for s in streams))
