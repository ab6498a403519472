"""The bot pulling a WHEP stream, from a WHEP endpoint served by the test on loopback.

The endpoint (:class:`tests.remote.WhepEndpoint`) speaks the standard flow and the
server-offer variant, with a bearer token. The host invites the bot over meetmood's API;
the sidebar socket must show the stream as a participant with face states, removing the
bot must end the WHEP session on the server, and the server dropping the stream must
lead to a new pull, the same participant resuming and a ``media_gap`` moment.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.conftest import ADMIN, make_settings
from tests.remote import (
    TOKEN,
    Mode,
    WhepEndpoint,
    bot_state,
    events_until,
    face_state_of,
    invite,
    joined_named,
)
from web.app import create_app

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("loopback_only")]


@pytest.fixture
async def host(
    aiohttp_client: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[dict[str, Any]]:
    """The app, a meeting, its host's credential and sidebar socket.

    Parametrize it indirectly with settings overrides to change them.
    """
    overrides = {"bots.reconnect_max_secs": 1.0, "bots.resume_grace_secs": 30.0}
    overrides.update(getattr(request, "param", {}))
    settings = make_settings(tmp_path, **overrides)
    client: TestClient[web.Request, web.Application] = await aiohttp_client(create_app(settings))
    resp = await client.post("/api/meetings", json={"name": "Stage"}, headers=ADMIN)
    assert resp.status == 201
    meeting = await resp.json()
    auth = {"Authorization": f"Bearer {meeting['host_url'].split('token=')[1]}"}
    ws = await client.ws_connect(f"/api/meetings/{meeting['id']}/ws", headers=auth)
    yield {"client": client, "meeting": meeting, "auth": auth, "ws": ws}
    await ws.close()


async def serve(aiohttp_server: Any, endpoint: WhepEndpoint) -> str:
    """Serve ``endpoint`` on loopback; returns its URL."""
    server = await aiohttp_server(endpoint.app())
    return str(server.make_url("/whep/stage"))


@pytest.mark.parametrize("mode", ["client-offer", "server-offer"])
async def test_a_whep_stream_is_analysed_and_leaving_ends_the_session(
    aiohttp_server: Any, host: dict[str, Any], mode: Literal["client-offer", "server-offer"]
) -> None:
    endpoint = WhepEndpoint(mode)
    url = await serve(aiohttp_server, endpoint)
    resp = await invite(host, kind="whep", url=url, token=TOKEN, display="Stage")
    body = await resp.json()
    assert resp.status == 201, body
    assert body["bot"]["state"] == "in_room"
    assert body["bot"]["where"] == url  # the host page shows the endpoint, never the token
    expected = ["POST", "PATCH"] if mode == "server-offer" else ["POST"]
    assert endpoint.requests == expected

    ws = host["ws"]
    seen = await events_until(ws, joined_named("Stage"))
    pid = seen[-1]["participant"]["participant_id"]
    assert seen[-1]["participant"]["source"] == "whep"
    await events_until(ws, face_state_of(pid))

    (rid,) = endpoint.sessions
    removed = await host["client"].delete(
        f"/api/meetings/{host['meeting']['id']}/bots/{body['bot']['bot_id']}",
        headers=host["auth"],
    )
    assert removed.status == 200
    assert (await removed.json())["bot"]["state"] == "left"
    assert endpoint.deleted == [rid] and not endpoint.sessions
    await events_until(ws, lambda e: e["type"] == "participant_left" and e["participant_id"] == pid)


@pytest.mark.parametrize(
    ("url", "token", "status", "code"),
    [
        (None, "wrong-token", 403, "token_refused"),
        (None, None, 403, "token_refused"),
        ("http://127.0.0.1:9/whep/stage", TOKEN, 502, "server_unreachable"),
        ("rtsp://127.0.0.1/whep/stage", TOKEN, 400, "invalid_url"),
        ("ws://127.0.0.1/whep/stage", TOKEN, 400, "invalid_url"),
    ],
)
async def test_whep_errors_are_clear(
    aiohttp_server: Any,
    host: dict[str, Any],
    url: str | None,
    token: str | None,
    status: int,
    code: str,
) -> None:
    endpoint = WhepEndpoint("client-offer")
    served = await serve(aiohttp_server, endpoint)
    resp = await invite(host, kind="whep", url=url or served, token=token)
    body = await resp.json()
    assert resp.status == status, body
    assert body["error"]["code"] == code
    assert not endpoint.sessions  # a refused pull leaves nothing open on the server
    listed = await host["client"].get(
        f"/api/meetings/{host['meeting']['id']}/bots", headers=host["auth"]
    )
    bots = (await listed.json())["bots"]
    assert [b["state"] for b in bots] == (["failed"] if code != "invalid_url" else [])


async def test_a_stream_that_is_no_sdp_is_a_clear_error(
    aiohttp_server: Any, host: dict[str, Any]
) -> None:
    endpoint = WhepEndpoint("broken")
    resp = await invite(host, kind="whep", url=await serve(aiohttp_server, endpoint), token=TOKEN)
    body = await resp.json()
    assert resp.status == 502, body
    assert body["error"]["code"] == "bot_failed"
    assert "SDP" in body["error"]["message"]
    assert endpoint.requests == ["POST", "DELETE"] and not endpoint.sessions


@pytest.mark.parametrize("host", [{"bots.media": "video", "analyzers.enabled": []}], indirect=True)
@pytest.mark.parametrize("mode", ["client-offer", "server-offer"])
async def test_video_only_receives_no_audio(
    aiohttp_server: Any, host: dict[str, Any], mode: Mode
) -> None:
    endpoint = WhepEndpoint(mode)
    resp = await invite(host, kind="whep", url=await serve(aiohttp_server, endpoint), token=TOKEN)
    assert resp.status == 201, await resp.json()
    offer, *answer = endpoint.sdps
    if mode == "client-offer":  # the bot offers to receive video only
        assert "m=video" in offer and "m=audio" not in offer
    else:  # the bot declines the server's audio
        (audio,) = [m for m in answer[0].split("m=")[1:] if m.startswith("audio")]
        assert "a=inactive" in audio or audio.startswith("audio 0 ")


async def test_a_whep_stream_takes_no_room(aiohttp_server: Any, host: dict[str, Any]) -> None:
    resp = await invite(host, kind="whep", url="http://127.0.0.1:9/whep", room=1234)
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "invalid_field"


async def test_a_dropped_stream_is_pulled_again_and_the_gap_recorded(
    aiohttp_server: Any, host: dict[str, Any]
) -> None:
    endpoint = WhepEndpoint("client-offer")
    url = await serve(aiohttp_server, endpoint)
    resp = await invite(host, kind="whep", url=url, token=TOKEN, display="Stage")
    assert resp.status == 201, await resp.json()
    ws = host["ws"]
    seen = await events_until(ws, joined_named("Stage"))
    pid = seen[-1]["participant"]["participant_id"]
    await events_until(ws, face_state_of(pid))

    await endpoint.drop()
    await events_until(ws, bot_state("reconnecting"))
    seen = await events_until(ws, bot_state("in_room"))
    assert endpoint.requests.count("POST") == 2 and len(endpoint.sessions) == 1
    # The gap is recorded as the new pull is answered, just before "in_room".
    (gap,) = [e["moment"] for e in seen if e["type"] == "moment"]
    assert gap["kind"] == "media_gap" and gap["participants"] == [pid]
    assert gap["value"] >= 0
    # The same participant goes on being analysed; nobody new joined, nobody left.
    seen = await events_until(ws, face_state_of(pid))
    assert not [e for e in seen if e["type"] in ("participant_joined", "participant_left")]
