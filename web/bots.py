"""The host's bots: invite one into a Janus room or a WHEP stream, list them, remove one.

``POST /api/meetings/{id}/bots`` takes the fields of ``meetmood join`` (see
:class:`bot.bots.BotRequest`) and answers once the bot is in the room (201), or with
why it could not join: a malformed URL or room (400), a wrong pin or token (403), an
unknown room (404), an ended meeting (410), a server that cannot be reached or fails
(502). Every route needs the host's credential.
"""

from __future__ import annotations

from aiohttp import web

from bot.bots import BotRequest
from bot.meeting import MeetingEnded
from bot.sources.janus import BotError
from web.errors import api_error
from web.keys import MANAGER
from web.views import _json_body, host_meeting

#: HTTP status and error code for each reason a bot cannot join.
_STATUS: dict[str, tuple[type[web.HTTPException], str]] = {
    "url": (web.HTTPBadRequest, "invalid_url"),
    "room": (web.HTTPNotFound, "room_not_found"),
    "pin": (web.HTTPForbidden, "pin_invalid"),
    "token": (web.HTTPForbidden, "token_refused"),
    "access": (web.HTTPForbidden, "access_refused"),
    "unreachable": (web.HTTPBadGateway, "server_unreachable"),
}


async def api_invite(request: web.Request) -> web.Response:
    """Send a bot into a Janus room or pull a WHEP stream into this meeting."""
    record = await host_meeting(request)
    body = await _json_body(request, BotRequest)
    try:
        info = await request.app[MANAGER].bots.invite(record.id, body)
    except MeetingEnded as e:
        raise api_error(web.HTTPGone, "meeting_ended", "the meeting has ended") from e
    except BotError as e:
        status, code = _STATUS.get(e.key, (web.HTTPBadGateway, "bot_failed"))
        raise api_error(status, code, f"{e.key}: {e.reason}") from e
    return web.json_response({"bot": info.model_dump()}, status=201)


async def api_list(request: web.Request) -> web.Response:
    """The meeting's bots with their state (finished ones too)."""
    record = await host_meeting(request)
    bots = request.app[MANAGER].bots.list(record.id)
    return web.json_response({"bots": [b.model_dump() for b in bots]})


async def api_remove(request: web.Request) -> web.Response:
    """Make a bot leave its room; its participants leave the meeting."""
    record = await host_meeting(request)
    info = await request.app[MANAGER].bots.remove(record.id, request.match_info["bot_id"])
    if info is None:
        raise api_error(web.HTTPNotFound, "bot_not_found", "this meeting has no such bot")
    return web.json_response({"bot": info.model_dump()})
