"""A real browser in a Janus room: headless Chromium publishing through janus.js.

Chromium's fake camera plays a real face; janus.js (Debian's libjs-janus-gateway)
publishes it with simulcast, as browsers in Janus rooms do. The bot asks Janus for the
lowest substream and temporal layer (the decode-cost controls) and the sidebar must
show the publisher by display name with live face analysis.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.sources.janus_api import JanusSession
from tests.conftest import ADMIN, make_settings
from tests.fixtures import FAKE_MEDIA_ARGS, chromium
from tests.janus_server import ROOM, JanusServer
from tests.media import write_y4m
from tests.remote import events_until, face_state_of, joined_named
from web.app import create_app

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("loopback_only")]

PAGES = Path(__file__).parent / "data" / "janus"
JAVASCRIPT = Path("/usr/share/javascript")


async def publishers_streams(url: str) -> dict[str, list[dict[str, Any]]]:
    """What Janus tells a new participant about the room's publishers' streams."""
    async with aiohttp.ClientSession() as http:
        session = await JanusSession.connect(url, http)
        try:
            handle = await session.attach("janus.plugin.videoroom")
            joined = await session.message(
                handle, {"request": "join", "ptype": "publisher", "room": ROOM, "display": "probe"}
            )
            return {p["display"]: p["streams"] for p in joined["publishers"]}
        finally:
            await session.close()


async def test_chromium_publisher_with_simulcast_is_analysed(
    janus: JanusServer, aiohttp_client: Any, tmp_path: Path
) -> None:
    pages = web.Application()
    pages.router.add_static("/javascript", JAVASCRIPT)
    pages.router.add_static("/page", PAGES)
    page_server = TestServer(pages, host="127.0.0.1")
    await page_server.start_server()
    y4m = write_y4m(tmp_path / "face.y4m", frames=60)
    settings = make_settings(tmp_path, **{"bots.substream": 0, "bots.temporal": 0})
    client = await aiohttp_client(create_app(settings))
    try:
        async with chromium(
            *FAKE_MEDIA_ARGS,
            f"--use-file-for-fake-video-capture={y4m}",
        ) as browser:
            page = await browser.new_page()
            query = f"server={janus.url}&room={ROOM}&display=Cleo"
            await page.goto(str(page_server.make_url("/page/publisher.html")) + "?" + query)
            await page.wait_for_function(
                "window.state === 'publishing' || window.state.startsWith('error')",
                timeout=30_000,
            )
            assert await page.evaluate("window.state") == "publishing"
            video = [
                s for s in (await publishers_streams(janus.url))["Cleo"] if s["type"] == "video"
            ]
            assert video and video[0].get("simulcast") is True

            resp = await client.post("/api/meetings", json={"name": "Room"}, headers=ADMIN)
            meeting = await resp.json()
            auth = {"Authorization": f"Bearer {meeting['host_url'].split('token=')[1]}"}
            ws = await client.ws_connect(f"/api/meetings/{meeting['id']}/ws", headers=auth)
            resp = await client.post(
                f"/api/meetings/{meeting['id']}/bots",
                json={"kind": "janus", "url": janus.url, "room": ROOM},
                headers=auth,
            )
            assert resp.status == 201, await resp.json()
            seen = await events_until(ws, joined_named("Cleo"))
            cleo = seen[-1]["participant"]["participant_id"]
            await events_until(ws, face_state_of(cleo), secs=40)
            await ws.close()
    finally:
        await page_server.close()
