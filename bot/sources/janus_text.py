"""Telling a Janus room that it is analysed, in its text channel.

Janus rooms keep their chat in the TextRoom plugin, conventionally in a text room with
the same id as the VideoRoom (as Janus's own demos pair them). TextRoom chat runs over a
WebRTC data channel: the bot sets one up (``setup``: Janus offers, the bot answers),
joins the text room under its display name, posts the notice to everyone, and then
repeats it privately to each person who joins the text room later. Where the server has
no TextRoom plugin or no text room with that id, nothing is posted and the caller tells
the host that informing people is up to them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from typing import Any

from aiortc import RTCDataChannel, RTCPeerConnection

from bot.settings import WebRTCSettings
from bot.sources.janus_api import JanusError, JanusSession
from bot.sources.subscribe import answer_offer

log = logging.getLogger(__name__)

TEXTROOM = "janus.plugin.textroom"
OPEN_TIMEOUT_SECS = 10.0


class TextRoomNotice:
    """The bot's presence in a room's text channel. Close it when the bot leaves."""

    def __init__(self, pc: RTCPeerConnection, channel: RTCDataChannel, handle: int) -> None:
        self.pc = pc
        self.channel = channel
        self.handle = handle

    async def close(self, session: JanusSession) -> None:
        """Leave the text room."""
        await self.pc.close()
        await session.detach(self.handle)


async def post_notice(
    session: JanusSession, room: str | int, display: str, text: str, webrtc: WebRTCSettings
) -> TextRoomNotice | None:
    """Post ``text`` in the text room ``room`` and greet later joiners with it.

    Returns None when the server has no such text room.
    """
    try:
        handle = await session.attach(TEXTROOM)
    except JanusError:
        return None  # no TextRoom plugin on this server
    pc: RTCPeerConnection | None = None
    try:
        exists = await session.message(handle, {"request": "exists", "room": room})
        if not exists.get("exists"):
            await session.detach(handle)
            return None
        offer = await session.message(handle, {"request": "setup"})
        jsep = offer.get("jsep")
        if not jsep:
            raise ValueError("the TextRoom sent no offer")
        pc, answer = await answer_offer(jsep["sdp"], webrtc, lambda track: None)
        channel = pc.createDataChannel("JanusDataChannel")
        opened = asyncio.Event()
        channel.on("open", opened.set)
        await session.message(
            handle, {"request": "ack"}, {"type": "answer", "sdp": answer, "trickle": False}
        )
        await asyncio.wait_for(opened.wait(), OPEN_TIMEOUT_SECS)
        username = f"meetmood-{secrets.token_hex(4)}"
        replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        def on_message(message: Any) -> None:
            with contextlib.suppress(ValueError, TypeError):
                data = json.loads(message)
                if isinstance(data, dict):
                    if data.get("textroom") == "join" and data.get("username") != username:
                        _send(channel, room, text, to=str(data.get("username")))
                    else:
                        replies.put_nowait(data)

        channel.on("message", on_message)
        channel.send(
            json.dumps(
                {
                    "textroom": "join",
                    "transaction": secrets.token_hex(8),
                    "room": room,
                    "username": username,
                    "display": display,
                }
            )
        )
        joined = await asyncio.wait_for(replies.get(), OPEN_TIMEOUT_SECS)
        if joined.get("textroom") == "error":
            raise ValueError(str(joined.get("error", "the text room refused the bot")))
        _send(channel, room, text)
        return TextRoomNotice(pc, channel, handle)
    except BaseException:
        if pc is not None:
            await pc.close()
        await session.detach(handle)
        raise


def _send(channel: RTCDataChannel, room: str | int, text: str, to: str | None = None) -> None:
    message: dict[str, Any] = {
        "textroom": "message",
        "transaction": secrets.token_hex(8),
        "room": room,
        "text": text,
    }
    if to is not None:
        message["to"] = to
    if channel.readyState == "open":
        channel.send(json.dumps(message))
