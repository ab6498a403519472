"""Bots the host invites into meetings elsewhere: a Janus VideoRoom, a WHEP stream.

:class:`Bots` starts each bot (:mod:`bot.sources.janus`, :mod:`bot.sources.whep`) on
the event loop, waits until it is in the room or has failed (so the host gets a clear
error for an unknown room, a wrong pin or an unreachable server), keeps its state for
the host page, and stops it on request, at the meeting's end and at shutdown. Each
person the bot receives joins the meeting as a participant through a
:class:`~bot.sources.relay.RelaySource`; their media pauses are recorded as
``media_gap`` moments.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, model_validator

from bot.sources.janus import BotError, BotState, JanusRoomBot, JanusTarget
from bot.sources.relay import RelaySource
from bot.sources.whep import WhepBot, WhepTarget, check_whep_url
from bot.types import BotEvent, BotInfo, Moment, MomentEvent, NoticeEvent

if TYPE_CHECKING:
    from bot.meeting import LiveMeeting, MeetingManager

log = logging.getLogger(__name__)

#: How long an invitation waits for the bot to be in the room before answering.
JOIN_TIMEOUT_SECS = 30.0
#: Finished bots kept per meeting for the host page.
KEEP_FINISHED = 20


class BotRequest(BaseModel):
    """An invitation: where the bot goes (the same fields as ``meetmood join``).

    ``kind="janus"``: ``url`` is the Janus API (http(s) or ws(s)), ``room`` the VideoRoom
    id, ``pin`` its pin, ``display`` the bot's name in the room. ``kind="whep"``: ``url``
    is the WHEP endpoint, ``token`` its bearer token, ``display`` the participant's name.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["janus", "whep"]
    url: str = Field(min_length=1, max_length=2048)
    #: Strict: JSON ``true`` or ``false`` is no room id (lax parsing would make it 1 or 0).
    room: StrictStr | StrictInt | None = None
    pin: str | None = Field(None, max_length=256)
    display: str | None = Field(None, max_length=64)
    token: str | None = Field(None, max_length=4096)

    @model_validator(mode="after")
    def _fields_of_kind(self) -> BotRequest:
        if self.kind == "janus" and (self.room is None or str(self.room).strip() == ""):
            raise ValueError("room: a Janus bot needs the VideoRoom id")
        if self.kind == "janus" and self.token:
            raise ValueError("token: a Janus bot takes a pin, not a token")
        if self.kind == "whep" and (self.room is not None or self.pin):
            raise ValueError("room: a WHEP stream has no room or pin")
        return self


class _MeetingHost:
    """The bot's view of a live meeting (:class:`bot.sources.janus.RoomHost`)."""

    def __init__(self, meeting: LiveMeeting) -> None:
        self.meeting = meeting
        self.participant_ids: set[str] = set()
        #: Called when the number of people the bot receives changes.
        self.on_change: Callable[[], None] = lambda: None

    def join(self, display_name: str, source: RelaySource) -> str:
        pid = self.meeting.join(display_name, source).record.id
        self.participant_ids.add(pid)
        self.on_change()
        return pid

    def left(self, participant_id: str) -> None:
        if participant_id in self.participant_ids:
            self.participant_ids.discard(participant_id)
            self.on_change()

    def gap(self, participant_id: str, started: float, ended: float) -> None:
        self.meeting.publish(
            MomentEvent(
                moment=Moment(
                    ts=ended,
                    kind="media_gap",
                    participants=(participant_id,),
                    speaking=(),
                    value=round(ended - started, 1),
                    window_secs=round(ended - started, 1),
                )
            )
        )

    def notice(self, code: str, text: str) -> None:
        self.meeting.publish(NoticeEvent(code=code, text=text))

    def now(self) -> float:
        return self.meeting.clock()

    @property
    def present(self) -> int:
        return len(self.participant_ids)


@dataclass(eq=False)
class _Bot:
    bot_id: str
    meeting_id: str
    kind: Literal["janus", "whep"]
    where: str
    runner: JanusRoomBot | WhepBot
    host: _MeetingHost
    started_at: float = field(default_factory=time.time)
    task: asyncio.Task[None] | None = None

    def info(self) -> BotInfo:
        return BotInfo(
            bot_id=self.bot_id,
            kind=self.kind,
            where=self.where,
            display_name=self.runner.display_name,
            state=self.runner.state,
            detail=self.runner.detail,
            started_at=self.started_at,
            participants=self.host.present,
        )

    def publish(self) -> None:
        """Tell the meeting's sidebars how the bot is doing."""
        self.host.meeting.publish(BotEvent(bot=self.info()))

    @property
    def active(self) -> bool:
        return self.runner.state not in ("left", "failed")


class Bots:
    """Every bot of this server. Event loop only."""

    def __init__(self, manager: MeetingManager) -> None:
        self.manager = manager
        self._bots: dict[str, _Bot] = {}

    async def invite(self, meeting_id: str, request: BotRequest) -> BotInfo:
        """Send a bot; returns once it is in the room.

        Raises:
            MeetingNotFound: unknown meeting.
            MeetingEnded: the meeting has ended.
            BotError: it cannot join (the message says why); nothing is left running.
        """
        settings = self.manager.settings
        meeting = await self.manager.live(meeting_id)
        if meeting.closing or meeting.record.ended_at is not None:
            from bot.meeting import MeetingEnded  # bot.meeting imports this module

            raise MeetingEnded(meeting_id)
        host = _MeetingHost(meeting)
        bot_id = secrets.token_hex(6)
        runner: JanusRoomBot | WhepBot
        if request.kind == "janus":
            room = "" if request.room is None else request.room  # room 0 is a room id
            target = JanusTarget(request.url, room, request.pin, request.display)
            target = target.checked()
            runner = JanusRoomBot(target, host, settings.bots, settings.webrtc)
            where = f"{_public(target.url)} · room {target.room}"
        else:
            url = check_whep_url(request.url)
            runner = WhepBot(
                WhepTarget(url, request.token, request.display),
                host,
                settings.bots,
                settings.webrtc,
            )
            where = _public(url)
        bot = _Bot(bot_id, meeting_id, request.kind, where, runner, host)
        runner.on_state = lambda state, detail: self._changed(bot, state)
        host.on_change = bot.publish
        bot.task = asyncio.create_task(runner.run(), name=f"bot.{bot_id}")
        bot.task.add_done_callback(lambda task: self._finished(bot, task))
        self._bots[bot_id] = bot
        self._prune(meeting_id)
        try:
            await asyncio.wait_for(runner.wait_joined(), JOIN_TIMEOUT_SECS)
        except TimeoutError:
            await self._stop(bot)
            raise BotError(
                "unreachable", f"the bot could not join within {JOIN_TIMEOUT_SECS:.0f} s"
            ) from None
        if runner.state == "failed":
            raise BotError(runner.failure_key, runner.detail)
        log.info("bot joined", extra={"meeting": meeting_id, "bot": bot_id, "kind": request.kind})
        return bot.info()

    def list(self, meeting_id: str) -> list[BotInfo]:
        """The meeting's bots, newest first (finished ones too, for the host page)."""
        bots = [b for b in self._bots.values() if b.meeting_id == meeting_id]
        return [b.info() for b in sorted(bots, key=lambda b: b.started_at, reverse=True)]

    async def remove(self, meeting_id: str, bot_id: str) -> BotInfo | None:
        """Make a bot leave; None if the meeting has no such bot."""
        bot = self._bots.get(bot_id)
        if bot is None or bot.meeting_id != meeting_id:
            return None
        await self._stop(bot)
        return bot.info()

    async def close_meeting(self, meeting_id: str) -> None:
        """The meeting ends: every bot in it leaves."""
        for bot in [b for b in self._bots.values() if b.meeting_id == meeting_id]:
            await self._stop(bot)

    async def close(self) -> None:
        """The server stops: every bot leaves."""
        await asyncio.gather(*(self._stop(bot) for bot in list(self._bots.values())))

    async def _stop(self, bot: _Bot) -> None:
        await bot.runner.stop()
        if bot.task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(bot.task), 10.0)
            if not bot.task.done():
                bot.task.cancel()
                await asyncio.gather(bot.task, return_exceptions=True)

    def _changed(self, bot: _Bot, state: BotState) -> None:
        log.info("bot state", extra={"bot": bot.bot_id, "state": state})
        bot.publish()

    def _finished(self, bot: _Bot, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("bot failed", exc_info=task.exception(), extra={"bot": bot.bot_id})

    def _prune(self, meeting_id: str) -> None:
        finished = sorted(
            (b for b in self._bots.values() if b.meeting_id == meeting_id and not b.active),
            key=lambda b: b.started_at,
        )
        for bot in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            self._bots.pop(bot.bot_id, None)


def _public(url: str) -> str:
    """A URL without credentials or query (what the host page may show)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
