"""The bot in a real Janus VideoRoom (Debian's Janus 1.1, on loopback in the test namespace).

Test publishers are aiortc peers that publish a real face and speech through the Janus
API. The host invites the bot over meetmood's API; the sidebar socket must show every
publisher by display name with live analysis, follow publishers joining and leaving,
and survive Janus being killed and restarted.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from bot.settings import Settings
from tests.conftest import ADMIN, make_settings
from tests.janus_server import (
    PIN,
    PIN_ROOM,
    ROOM,
    JanusServer,
    Publisher,
    TextRoomPerson,
)
from tests.media import ImageVideoTrack, SpeechAudioTrack, face_frame_rgb, make_tone
from tests.remote import events_until, face_state_of, invite, joined_named
from tests.served import settings_env
from web.app import create_app

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("loopback_only")]


@pytest.fixture
def bot_settings(tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path,
        **{"bots.reconnect_max_secs": 1.0, "bots.resume_grace_secs": 30.0},
    )


@pytest.fixture
async def host(aiohttp_client: Any, bot_settings: Settings) -> AsyncIterator[dict[str, Any]]:
    client: TestClient = await aiohttp_client(create_app(bot_settings))
    resp = await client.post("/api/meetings", json={"name": "Room"}, headers=ADMIN)
    assert resp.status == 201
    meeting = await resp.json()
    token = meeting["host_url"].split("token=")[1]
    auth = {"Authorization": f"Bearer {token}"}
    ws = await client.ws_connect(f"/api/meetings/{meeting['id']}/ws", headers=auth)
    yield {"client": client, "meeting": meeting, "auth": auth, "ws": ws}
    await ws.close()


def publisher(janus: JanusServer, name: str, speech: bool = False) -> Publisher:
    video = ImageVideoTrack(face_frame_rgb(), fps=15)
    audio = SpeechAudioTrack(make_tone(180.0, 6.0)) if speech else SpeechAudioTrack(make_tone(0, 1))
    return Publisher(janus.url, name, [video, audio])


async def test_bot_analyses_every_publisher_and_follows_the_room(
    janus: JanusServer, host: dict[str, Any]
) -> None:
    ada = publisher(janus, "Ada", speech=True)
    await ada.publish()
    try:
        resp = await invite(host, kind="janus", url=janus.url, room=ROOM)
        body = await resp.json()
        assert resp.status == 201, body
        assert body["bot"]["state"] == "in_room"
        ws = host["ws"]
        seen = await events_until(ws, joined_named("Ada"))
        ada_id = seen[-1]["participant"]["participant_id"]
        assert seen[-1]["participant"]["source"] == "janus"
        await events_until(ws, face_state_of(ada_id))

        bo = publisher(janus, "Bo")
        await bo.publish()
        seen = await events_until(ws, joined_named("Bo"))
        bo_id = seen[-1]["participant"]["participant_id"]
        await events_until(ws, face_state_of(bo_id))

        await bo.leave()
        await events_until(
            ws, lambda e: e["type"] == "participant_left" and e["participant_id"] == bo_id
        )
        listed = await host["client"].get(
            f"/api/meetings/{host['meeting']['id']}/bots", headers=host["auth"]
        )
        (bot,) = (await listed.json())["bots"]
        assert bot["state"] == "in_room" and bot["participants"] == 1

        # The host removes the bot: it leaves the room and Ada leaves the meeting.
        removed = await host["client"].delete(
            f"/api/meetings/{host['meeting']['id']}/bots/{bot['bot_id']}", headers=host["auth"]
        )
        assert removed.status == 200
        assert (await removed.json())["bot"]["state"] == "left"
        await events_until(
            ws, lambda e: e["type"] == "participant_left" and e["participant_id"] == ada_id
        )
    finally:
        await ada.leave()


@pytest.mark.parametrize(
    ("fields", "status", "code"),
    [
        ({"room": 999}, 404, "room_not_found"),
        ({"room": PIN_ROOM, "pin": "wrong"}, 403, "pin_invalid"),
        ({"room": ROOM, "url": "http://127.0.0.1:9/janus"}, 502, "server_unreachable"),
        ({"room": ROOM, "url": "ftp://127.0.0.1/janus"}, 400, "invalid_url"),
        ({"url": "http://127.0.0.1:8088/janus"}, 400, "invalid_field"),
    ],
)
async def test_bot_errors_are_clear(
    janus: JanusServer, host: dict[str, Any], fields: dict[str, Any], status: int, code: str
) -> None:
    resp = await invite(host, **{"kind": "janus", "url": janus.url, **fields})
    body = await resp.json()
    assert resp.status == status, body
    assert body["error"]["code"] == code
    # Nothing crashed: the server answers and lists the failed bot for the host.
    listed = await host["client"].get(
        f"/api/meetings/{host['meeting']['id']}/bots", headers=host["auth"]
    )
    assert listed.status == 200


async def test_pin_room_over_websocket(janus: JanusServer, host: dict[str, Any]) -> None:
    resp = await invite(host, kind="janus", url=janus.ws_url, room=PIN_ROOM, pin=PIN)
    body = await resp.json()
    assert resp.status == 201, body
    assert body["bot"]["state"] == "in_room"
    assert body["bot"]["where"] == f"{janus.ws_url} · room {PIN_ROOM}"


async def test_janus_restart_resumes_the_same_participant_and_records_the_gap(
    janus: JanusServer, host: dict[str, Any]
) -> None:
    ada = publisher(janus, "Ada")
    await ada.publish()
    try:
        resp = await invite(host, kind="janus", url=janus.url, room=ROOM)
        assert resp.status == 201, await resp.json()
        ws = host["ws"]
        seen = await events_until(ws, joined_named("Ada"))
        ada_id = seen[-1]["participant"]["participant_id"]
        await events_until(ws, face_state_of(ada_id))

        janus.kill()
        await ada.leave()
        await events_until(ws, lambda e: e["type"] == "bot" and e["bot"]["state"] == "reconnecting")
        janus.start()
        await events_until(ws, lambda e: e["type"] == "bot" and e["bot"]["state"] == "in_room")
        ada = publisher(janus, "Ada")
        await ada.publish()
        seen = await events_until(
            ws, lambda e: e["type"] == "moment" and e["moment"]["kind"] == "media_gap"
        )
        assert seen[-1]["moment"]["participants"] == [ada_id]
        assert seen[-1]["moment"]["value"] > 0
        # The same participant goes on being analysed; nobody new joined, nobody left.
        seen = await events_until(ws, face_state_of(ada_id))
        assert not [e for e in seen if e["type"] in ("participant_joined", "participant_left")]
    finally:
        await ada.leave()


async def test_a_room_without_text_channel_tells_the_host(
    janus: JanusServer, host: dict[str, Any]
) -> None:
    resp = await invite(host, kind="janus", url=janus.url, room=PIN_ROOM, pin=PIN)
    assert resp.status == 201
    seen = await events_until(
        host["ws"], lambda e: e["type"] == "notice" and e["code"] == "room_notice"
    )
    assert "tell the people in the room" in seen[-1]["text"]


async def _run_cli(tmp_path: Path, *args: str) -> asyncio.subprocess.Process:
    env = settings_env(
        {
            "server.port": 0,
            "storage.database": str(tmp_path / "cli.sqlite3"),
            "webrtc.ice_addresses": ["127.0.0.1"],
            "inference.mode": "thread",
            "analyzers.enabled": [],
        }
    )
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "join",
        *args,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


async def test_cli_join_says_why_it_cannot_join(janus: JanusServer, tmp_path: Path) -> None:
    proc = await _run_cli(tmp_path, "janus", janus.url, "--room", "999")
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1, (out, err)
    assert err.decode().strip().splitlines()[-1] == (
        "meetmood: room: no such room on this Janus server"
    )


async def test_cli_join_runs_until_interrupted(janus: JanusServer, tmp_path: Path) -> None:
    proc = await _run_cli(tmp_path, "janus", janus.url, "--room", str(ROOM), "--display", "Bot")
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        while not any(line.startswith("in the room") for line in lines):
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            assert line, lines
            lines.append(line.decode().strip())
        assert any(line.startswith("host link: http://") for line in lines)
        assert lines[-1].startswith("in the room as “Bot”")
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 30)
        assert proc.returncode == 0
    finally:
        if proc.returncode is None:
            proc.kill()


async def test_the_bot_leaves_when_the_host_ends_the_meeting(
    janus: JanusServer, host: dict[str, Any]
) -> None:
    resp = await invite(host, kind="janus", url=janus.url, room=ROOM)
    assert resp.status == 201
    bot_id = (await resp.json())["bot"]["bot_id"]
    ended = await host["client"].post(
        f"/api/meetings/{host['meeting']['id']}/end", headers=host["auth"]
    )
    assert ended.status == 200, await ended.json()
    listed = await host["client"].get(
        f"/api/meetings/{host['meeting']['id']}/bots", headers=host["auth"]
    )
    (bot,) = (await listed.json())["bots"]
    assert (bot["bot_id"], bot["state"]) == (bot_id, "left")
    # An ended meeting takes no new bot.
    again = await invite(host, kind="janus", url=janus.url, room=ROOM)
    assert again.status == 410


async def test_unsupported_codecs_are_said_and_skipped() -> None:
    notices: list[tuple[str, str]] = []

    class Host:
        def join(self, display_name: str, source: Any) -> str:
            return "p1"

        def gap(self, participant_id: str, started: float, ended: float) -> None:
            pass

        def notice(self, code: str, text: str) -> None:
            notices.append((code, text))

        def now(self) -> float:
            return 0.0

    from bot.session.clock import RealtimePacing
    from bot.settings import BotSettings, WebRTCSettings
    from bot.sources.janus import JanusRoomBot, JanusTarget, _Feed
    from bot.sources.relay import RelaySource

    bot = JanusRoomBot(JanusTarget("http://x/janus", 1), Host(), BotSettings(), WebRTCSettings())
    streams = [
        {"type": "audio", "mid": "0", "codec": "opus"},
        {"type": "video", "mid": "1", "codec": "vp9"},
    ]
    feed = _Feed(7, "Ada", streams, RelaySource("janus", RealtimePacing))
    assert bot._stream_requests(feed, notify=True) == [{"feed": 7, "mid": "0"}]
    assert notices == [
        (
            "unsupported_codec",
            "Ada sends VP9 video, which meetmood cannot decode (it decodes VP8 and H.264 "
            "only): their face is not analysed.",
        )
    ]
    only_video = JanusRoomBot(
        JanusTarget("http://x/janus", 1),
        Host(),
        BotSettings(media="video", substream=0, temporal=0),
        WebRTCSettings(),
    )
    feed.streams = [
        {"type": "audio", "mid": "0", "codec": "opus"},
        {"type": "video", "mid": "1", "codec": "h264"},
    ]
    assert only_video._stream_requests(feed) == [
        {"feed": 7, "mid": "1", "substream": 0, "temporal": 0}
    ]


async def test_the_bot_tells_the_room_in_its_text_channel(
    janus: JanusServer, host: dict[str, Any]
) -> None:
    early = TextRoomPerson(janus.url, "early")
    late = TextRoomPerson(janus.url, "late")
    await early.join()
    try:
        resp = await invite(host, kind="janus", url=janus.url, room=ROOM)
        assert resp.status == 201
        said = await early.next_message()
        assert said["from"].startswith("meetmood-")
        assert "analysed for emotional and engagement states" in said["text"]
        assert not said.get("whisper")
        # Someone who joins the chat later is told too, privately.
        await late.join()
        told = await late.next_message()
        assert told["text"] == said["text"] and told["whisper"] is True
    finally:
        await early.leave()
        await late.leave()
