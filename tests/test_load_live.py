"""The server's load, live: load reports on the host socket, send requests to the browser.

A real aiortc peer joins with the join page's control channel ("meetmood"); the server
asks it over that channel for no more video than the analysis takes, and for Opus DTX
in its answer. When face readings come later than the latency budget, the face rate of
every participant falls, the host is told "analysis rate reduced: server busy", and the
browser is asked for fewer frames.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from aiortc import RTCPeerConnection
from aiortc.mediastreams import AudioStreamTrack
from playwright.async_api import Browser

from bot.bench_sidebar import wait_for_js
from bot.load import BUSY_TEXT
from bot.meeting import MeetingManager
from tests.conftest import ADMIN, make_settings
from tests.fixtures import open_host_link
from tests.media import ImageVideoTrack, face_frame_rgb
from tests.served import join_peer
from web.app import create_app

pytestmark = pytest.mark.usefixtures("loopback_only")


async def host_socket(client: Any) -> tuple[dict[str, Any], Any]:
    resp = await client.post("/api/meetings", json={"name": "Load"}, headers=ADMIN)
    assert resp.status == 201
    meeting = await resp.json()
    ws = await client.ws_connect(
        f"/api/meetings/{meeting['id']}/ws",
        headers={"Authorization": f"Bearer {meeting['host_token']}"},
    )
    assert (await ws.receive_json())["type"] == "snapshot"
    return meeting, ws


async def next_load(ws: Any, until: Any, secs: float = 30.0) -> dict[str, Any]:
    async with asyncio.timeout(secs):
        while True:
            event = await ws.receive_json()
            if event["type"] == "load" and until(event):
                return event


async def test_the_browser_is_asked_for_what_the_analysis_takes(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    # A budget no busy test machine can exceed: the rate stays as configured here.
    settings = make_settings(tmp_path, **{"pipeline.latency_budget_ms": 60_000})
    client = await aiohttp_client(create_app(settings))
    meeting, ws = await host_socket(client)
    pc = RTCPeerConnection()
    pc.addTrack(ImageVideoTrack(face_frame_rgb(), fps=15))
    pc.addTrack(AudioStreamTrack())  # silence
    control = pc.createDataChannel("meetmood")
    stray = pc.createDataChannel("something-else")
    requests: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    control.on("message", lambda m: requests.put_nowait(json.loads(m)))
    closed = asyncio.Event()
    stray.on("close", closed.set)
    try:
        url = f"/api/meetings/{meeting['id']}/participants"
        joined = await join_peer(client, url, meeting["join_url"].split("token=")[1], pc)
        assert "usedtx=1" in joined["answer"]["sdp"]  # Opus DTX asked for
        request = await asyncio.wait_for(requests.get(), 20)
        assert request == {"type": "send", "max_fps": 15, "max_height": 480, "max_kbps": 900}
        await asyncio.wait_for(closed.wait(), 10)  # any other channel is closed

        # Once a second the host hears the load: one feed, analysed, not busy.
        load = await next_load(ws, lambda e: e["feeds"] == 1 and e["face_fps_mean"])
        assert load["face_fps_target"] == 15 and not load["busy"] and load["text"] == ""
        assert load["cpu_percent"] is not None and load["rss_mb"] > 0
        # A sidebar that connects now gets the last report in its snapshot.
        ws2 = await client.ws_connect(
            f"/api/meetings/{meeting['id']}/ws",
            headers={"Authorization": f"Bearer {meeting['host_token']}"},
        )
        snapshot = await ws2.receive_json()
        assert snapshot["load"]["type"] == "load"
        await ws2.close()
    finally:
        await pc.close()
        await ws.close()


async def test_late_readings_lower_the_rate_evenly_and_the_host_is_told(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    # A budget no analysis can meet: every reading is late, as on an overloaded server.
    settings = make_settings(tmp_path, **{"pipeline.latency_budget_ms": 0.001})
    client = await aiohttp_client(create_app(settings))
    meeting, ws = await host_socket(client)
    peers = []
    requests: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    try:
        token = meeting["join_url"].split("token=")[1]
        for name in ("Ada", "Grace"):
            pc = RTCPeerConnection()
            pc.addTrack(ImageVideoTrack(face_frame_rgb(), fps=15))
            channel = pc.createDataChannel("meetmood")
            channel.on("message", lambda m: requests.put_nowait(json.loads(m)))
            peers.append(pc)
            await join_peer(client, f"/api/meetings/{meeting['id']}/participants", token, pc, name)

        busy = await next_load(ws, lambda e: e["busy"] and e["feeds"] == 2, secs=60)
        assert busy["text"] == BUSY_TEXT
        assert busy["face_fps_granted"] < 0.9 * busy["face_fps_target"]
        # The browsers are asked for fewer frames (and, further down, a smaller picture).
        async with asyncio.timeout(60):
            while True:
                request = await requests.get()
                if request["max_fps"] < 15:
                    break
        low = await next_load(ws, lambda e: e["face_fps_granted"] <= 1.0, secs=60)
        # Evenly: both feeds get the same cap; neither starves.
        assert low["face_fps_min"] is not None and low["face_fps_min"] > 0
    finally:
        for pc in peers:
            await pc.close()
        await ws.close()


@pytest.mark.e2e
async def test_the_host_page_shows_the_load_and_says_when_the_server_is_busy(
    aiohttp_server: Any, browser: Browser, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, **{"analyzers.enabled": []})
    manager = MeetingManager(settings)
    server = await aiohttp_server(create_app(settings, manager))
    base = str(server.make_url("")).rstrip("/")
    record, token = await manager.create_meeting("Load")
    page = await browser.new_page(viewport={"width": 400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await open_host_link(page, base, record.id, token)
    # Once a second the server's load: CPU and memory of its processes.
    await wait_for_js(
        page, "/CPU \\d+ % of \\d+ cores?/.test(window.sidebar.load.line)", timeout_ms=10_000
    )
    assert await page.is_visible("#load")
    assert not await page.evaluate("window.sidebar.load.busy")
    # The rate every feed gets falls below what is configured: the page says so.
    manager.load.granted = 0.5 * manager.load.fps
    await wait_for_js(page, "window.sidebar.load.busy", timeout_ms=10_000)
    assert await page.inner_text("#load-busy") == BUSY_TEXT
    manager.load.granted = manager.load.fps
    await wait_for_js(page, "!window.sidebar.load.busy", timeout_ms=10_000)
    assert await page.inner_text("#load-busy") == ""
    assert errors == []
    await page.close()
