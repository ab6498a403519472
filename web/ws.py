"""The sidebar WebSocket: a snapshot on connect, then the meeting's events.

The host token (the host page's cookie, or a Bearer header) authorises the
connection and the Origin header must match the server (a page on another site
cannot read a meeting through the host's browser). Every socket is tracked so that
shutdown can close it with GOING_AWAY, and counted per meeting: beyond
``security.max_sidebar_sockets_per_meeting`` a new one is closed at once with
:data:`TOO_MANY_SIDEBARS` (the 4xxx twin of HTTP 429).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from weakref import WeakSet

from aiohttp import WSCloseCode, WSMsgType, web

from bot.types import MeetingEndedEvent
from web.errors import api_error
from web.keys import MANAGER, SETTINGS, SIDEBAR_COUNTS, WEBSOCKETS
from web.security import origin_allowed
from web.views import host_meeting

log = logging.getLogger(__name__)

HEARTBEAT_SECS = 20.0
#: Close code for a sidebar over the meeting's socket limit (4000-4999: the application's).
TOO_MANY_SIDEBARS = 4429


async def sidebar_ws(request: web.Request) -> web.WebSocketResponse:
    """Stream a meeting's events to one sidebar."""
    record = await host_meeting(request)
    if not origin_allowed(request):
        raise api_error(web.HTTPForbidden, "origin_not_allowed", "cross-site WebSocket refused")
    manager = request.app[MANAGER]
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_SECS)
    await ws.prepare(request)
    # Upgraded first so that the sidebar's script can read why it was turned away.
    counts = request.app[SIDEBAR_COUNTS]
    limit = request.app[SETTINGS].security.max_sidebar_sockets_per_meeting
    if counts.get(record.id, 0) >= limit:
        log.warning("sidebar refused: too many for one meeting", extra={"limit": limit})
        await ws.close(
            code=TOO_MANY_SIDEBARS,
            message=f"too many sidebars open for this meeting (at most {limit})".encode(),
        )
        return ws
    counts[record.id] = counts.get(record.id, 0) + 1
    sockets = request.app[WEBSOCKETS]
    sockets.add(ws)
    try:
        async with manager.subscribe(record.id) as sub:
            # Subscribe before the snapshot so no event falls between the two.
            snapshot = await manager.snapshot(record.id)
            await ws.send_json(snapshot.model_dump(mode="json"))
            reader = asyncio.create_task(_read_until_closed(ws))
            try:
                while not ws.closed:
                    getter = asyncio.create_task(sub.queue.get())
                    done, _ = await asyncio.wait(
                        {getter, reader}, return_when=asyncio.FIRST_COMPLETED
                    )
                    if getter not in done:
                        getter.cancel()
                        break
                    event = getter.result()
                    await ws.send_json(event.model_dump(mode="json"))
                    if isinstance(event, MeetingEndedEvent):
                        break  # the host ended (or deleted) the meeting: nothing more comes
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
    except ConnectionResetError:
        pass  # the sidebar went away mid-send
    finally:
        sockets.discard(ws)
        if (left := counts[record.id] - 1) > 0:
            counts[record.id] = left
        else:
            del counts[record.id]
        await ws.close()
    return ws


async def _read_until_closed(ws: web.WebSocketResponse) -> None:
    """Consume client messages (the sidebar sends none) until the socket closes."""
    async for msg in ws:
        if msg.type == WSMsgType.ERROR:
            break


async def close_all(app: web.Application) -> None:
    """Close every sidebar socket with GOING_AWAY (server shutdown)."""
    sockets: WeakSet[web.WebSocketResponse] = app[WEBSOCKETS]
    for ws in list(sockets):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
