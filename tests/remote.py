"""Pieces shared by the tests of the bot in other meetings (Janus rooms, WHEP streams).

:class:`WhepEndpoint` is a WHEP endpoint served by the test on loopback. It follows the
WHEP draft: the viewer POSTs an SDP offer and gets **201** with the answer and the
session's ``Location``; a DELETE of that ``Location`` ends the session. In its
server-offer mode it behaves as janus-whep-server does in front of a VideoRoom: the POST
gets **406** with the server's offer and a ``Location``, and the viewer PATCHes its answer
there (**204**). With a token, every request must carry it (**401** otherwise). It relays
one aiortc sender (a real face and speech) to every viewer.

The rest is the host's side: inviting a bot over the API and reading the sidebar socket.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import Any, Literal

from aiohttp import web
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay

from tests.media import ImageVideoTrack, SpeechAudioTrack, face_frame_rgb, make_tone

SDP = "application/sdp"
TOKEN = "whep-test-token"
Event = dict[str, Any]
Mode = Literal["client-offer", "server-offer", "broken"]


class WhepEndpoint:
    """A WHEP endpoint relaying one live face and voice to every viewer.

    ``mode`` picks the flow: ``"client-offer"`` (the standard one), ``"server-offer"``,
    or ``"broken"`` (201 with a body that is no SDP). It records what viewers did:
    ``requests`` (their methods), ``sdps`` (the SDPs they sent), ``sessions`` (open peer
    connections by resource id), ``deleted`` (resources ended by a DELETE).
    """

    def __init__(self, mode: Mode = "client-offer", token: str | None = TOKEN) -> None:
        self.mode = mode
        self.token = token
        self.video = ImageVideoTrack(face_frame_rgb(), fps=15)
        self.audio = SpeechAudioTrack(make_tone(180.0, 30.0))
        self.relay = MediaRelay()
        self.sessions: dict[str, RTCPeerConnection] = {}
        self.requests: list[str] = []
        self.sdps: list[str] = []
        self.deleted: list[str] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/whep/stage", self.post)
        app.router.add_patch("/whep/resource/{rid}", self.patch)
        app.router.add_delete("/whep/resource/{rid}", self.delete)
        app.on_shutdown.append(lambda _app: self.drop())
        return app

    def _authorize(self, request: web.Request) -> None:
        self.requests.append(request.method)
        wanted = f"Bearer {self.token}"
        if self.token is not None and request.headers.get("Authorization") != wanted:
            raise web.HTTPUnauthorized(headers={"WWW-Authenticate": "Bearer"})

    async def _sdp(self, request: web.Request) -> str:
        if request.content_type != SDP:
            raise web.HTTPUnsupportedMediaType(text="send application/sdp")
        body = await request.text()
        if not body.startswith("v=0"):
            raise web.HTTPBadRequest(text="not an SDP")
        self.sdps.append(body)
        return body

    async def post(self, request: web.Request) -> web.Response:
        self._authorize(request)
        offer = await self._sdp(request)
        pc = RTCPeerConnection()
        rid = secrets.token_hex(4)
        self.sessions[rid] = pc
        headers = {"Location": f"/whep/resource/{rid}"}
        if self.mode == "broken":
            return web.Response(status=201, text="<html>oops</html>", headers=headers)
        if self.mode == "server-offer":
            # The viewer's offer only says it wants to receive; the server offers instead.
            pc.addTransceiver(self.relay.subscribe(self.audio), direction="sendonly")
            pc.addTransceiver(self.relay.subscribe(self.video), direction="sendonly")
            await pc.setLocalDescription(await pc.createOffer())
            status = 406
        else:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
            for transceiver in pc.getTransceivers():  # the viewer's recvonly slots
                track = self.video if transceiver.kind == "video" else self.audio
                pc.addTrack(self.relay.subscribe(track))
            await pc.setLocalDescription(await pc.createAnswer())
            status = 201
        assert pc.localDescription is not None
        return web.Response(
            status=status, text=pc.localDescription.sdp, content_type=SDP, headers=headers
        )

    async def patch(self, request: web.Request) -> web.Response:
        self._authorize(request)
        pc = self.sessions.get(request.match_info["rid"])
        if pc is None:
            raise web.HTTPNotFound()
        answer = await self._sdp(request)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        return web.Response(status=204)

    async def delete(self, request: web.Request) -> web.Response:
        self._authorize(request)
        rid = request.match_info["rid"]
        pc = self.sessions.pop(rid, None)
        if pc is None:
            raise web.HTTPNotFound()
        self.deleted.append(rid)
        await pc.close()
        return web.Response(status=200)

    async def drop(self) -> None:
        """Close every viewer's connection from the server's side (a server restart)."""
        sessions, self.sessions = self.sessions, {}
        for pc in sessions.values():
            await pc.close()


async def invite(h: dict[str, Any], **fields: Any) -> Any:
    """POST an invitation with ``fields`` as the host of ``h`` (see the ``host`` fixtures)."""
    return await h["client"].post(
        f"/api/meetings/{h['meeting']['id']}/bots", json=fields, headers=h["auth"]
    )


async def events_until(
    ws: Any, predicate: Callable[[Event], bool], secs: float = 30.0
) -> list[Event]:
    """Sidebar events up to and including the first one ``predicate`` accepts."""
    seen: list[Event] = []

    async def read() -> list[Event]:
        while True:
            seen.append(await ws.receive_json())
            if predicate(seen[-1]):
                return seen

    return await asyncio.wait_for(read(), secs)


def joined_named(name: str) -> Callable[[Event], bool]:
    """A participant called ``name`` joined."""
    return lambda e: e["type"] == "participant_joined" and e["participant"]["display_name"] == name


def face_state_of(pid: str) -> Callable[[Event], bool]:
    """A state of ``pid`` with a face in view."""
    return lambda e: (
        e["type"] == "participant_state"
        and e["state"]["participant_id"] == pid
        and e["state"]["face_visible"]
    )


def bot_state(state: str) -> Callable[[Event], bool]:
    """A bot reached ``state``."""
    return lambda e: e["type"] == "bot" and e["bot"]["state"] == state
