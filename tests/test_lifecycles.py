"""How participants and sidebars end: restarts, shutdowns, peers that never connect, full queues.

Real servers throughout: ``meetmood serve`` processes (killed with SIGKILL to leave
participants open, as a crash does) or the real app on a loopback port, real aiortc
peers joining over HTTP, the real SQLite store read back afterwards, and real
headless Chromium for the sidebar's reconnection. Analyzers are off where the test
is about lifecycles, not analysis (video is then received and drained).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import aioice.ice
import pytest
from aiohttp import WSCloseCode, WSMsgType, web
from aiortc import RTCPeerConnection
from playwright.async_api import Browser

from bot.bench_sidebar import wait_for_js
from bot.meeting import LiveMeeting
from bot.sources.browser import restrict_host_addresses
from bot.store import MeetingRecord, Store
from bot.types import NoticeEvent
from tests.conftest import make_settings
from tests.fixtures import open_host_link
from tests.media import ImageVideoTrack, TrackSource, face_frame_rgb
from tests.served import LOOPBACK, join_peer, serve
from web.app import create_app
from web.keys import MANAGER

#: Real peers or servers over loopback (the sidebar queue's test is a unit test).
e2e = pytest.mark.usefixtures("loopback_only")


@pytest.fixture(autouse=True)
def loopback_peers(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process's own peers offer 127.0.0.1 (aioice leaves loopback out by default).

    An in-process server sets this itself when it starts; a ``meetmood serve`` child does
    not set it for the test's peers.
    """
    monkeypatch.setattr(aioice.ice, "get_host_addresses", aioice.ice.get_host_addresses)
    restrict_host_addresses(["127.0.0.1"])


# -- a real `meetmood serve` ----------------------------------------------------------------


async def create_meeting(database: Path, name: str = "Lifecycle") -> tuple[MeetingRecord, str]:
    """A meeting written straight into the database (as ``meetmood meeting create`` does)."""
    store = Store(database)
    await store.open()
    try:
        return await store.create_meeting(name)
    finally:
        await store.close()


async def stored_participants(database: Path, meeting_id: str) -> list[Any]:
    store = Store(database)
    await store.open()
    try:
        return await store.list_participants(meeting_id)
    finally:
        await store.close()


# -- a real peer ----------------------------------------------------------------------------


async def join(
    http: aiohttp.ClientSession,
    base: str,
    record: MeetingRecord,
    pc: RTCPeerConnection,
    name: str = "Ada",
    *,
    answer: bool = True,
) -> dict[str, Any]:
    """Join ``record`` on the server at ``base`` (see :func:`tests.served.join_peer`)."""
    url = f"{base}/api/meetings/{record.id}/participants"
    return await join_peer(http, url, record.join_token, pc, name, answer=answer)


async def until(predicate: Any, secs: float, what: str) -> None:
    """Poll ``predicate`` (sync or async) until true, failing after ``secs``."""
    deadline = time.monotonic() + secs
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def host(host_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {host_token}"}


async def api_participants(
    http: aiohttp.ClientSession, base: str, meeting_id: str, host_token: str
) -> list[dict[str, Any]]:
    async with http.get(f"{base}/api/meetings/{meeting_id}", headers=host(host_token)) as resp:
        assert resp.status == 200, await resp.text()
        participants: list[dict[str, Any]] = (await resp.json())["participants"]
        return participants


# -- the real app in this process -----------------------------------------------------------


@contextlib.asynccontextmanager
async def running_app(settings: Any, port: int = 0) -> AsyncIterator[tuple[web.AppRunner, str]]:
    """The real app on a loopback port (``port`` 0: a free one); cleaned up on exit."""
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield runner, f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()  # a second cleanup after the test's own is harmless


# -- tests ----------------------------------------------------------------------------------


@pytest.mark.e2e
@e2e
async def test_a_restart_closes_participants_a_crash_left_open(tmp_path: Path) -> None:
    database = tmp_path / "meetmood.sqlite3"
    record, host_token = await create_meeting(database)
    first = await serve(database, **{"analyzers.enabled": []})
    pc = RTCPeerConnection()
    pc.addTrack(ImageVideoTrack(face_frame_rgb(), fps=15))
    try:
        async with aiohttp.ClientSession() as http:
            joined = await join(http, first.url, record, pc)
            await until(lambda: pc.connectionState == "connected", 20, "the peer to connect")

            async def stored_open() -> bool:
                people = await api_participants(http, first.url, record.id, host_token)
                return [(p["participant_id"], p["left_at"]) for p in people] == [
                    (joined["participant_id"], None)
                ]

            await until(stored_open, 10, "the participant's row")
            # A crash: no shutdown, nothing ended, the row stays "present".
            assert await first.stop(signal.SIGKILL) == -signal.SIGKILL
            (row,) = await stored_participants(database, record.id)
            assert row.left_at is None and row.leave_reason is None

            second = await serve(database, **{"analyzers.enabled": []})
            try:
                (person,) = await api_participants(http, second.url, record.id, host_token)
            finally:
                assert await second.stop() == 0
    finally:
        await pc.close()
    assert person["participant_id"] == joined["participant_id"]
    assert person["leave_reason"] == "server_restart"
    assert person["left_at"] is not None and person["left_at"] >= person["joined_at"]
    assert re.search(r"closed participants left open by an earlier run .*count=1", second.output)


@pytest.mark.e2e
@e2e
async def test_shutdown_closes_sidebars_and_ends_participants_as_server_shutdown(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, **LOOPBACK, **{"analyzers.enabled": []})
    pc = RTCPeerConnection()
    pc.addTrack(ImageVideoTrack(face_frame_rgb(), fps=15))
    async with running_app(settings) as (runner, base), aiohttp.ClientSession() as http:
        manager = runner.app[MANAGER]
        record, host_token = await manager.create_meeting("Shutdown")
        ws = await http.ws_connect(f"{base}/api/meetings/{record.id}/ws", headers=host(host_token))
        assert (await ws.receive_json())["type"] == "snapshot"
        try:
            joined = await join(http, base, record, pc)
            pid = joined["participant_id"]
            await until(
                lambda: manager.find_participant(record.id, pid) is not None,
                20,
                "the peer to connect and become a participant",
            )
            live = manager.find_participant(record.id, pid)
            assert live is not None
            server_pc = live.source.pc

            async def read_until_closed() -> WSMsgType:
                # A sidebar reads all along (and so answers the server's close frame).
                while (msg := await ws.receive()).type == WSMsgType.TEXT:
                    pass
                return msg.type

            reading = asyncio.create_task(read_until_closed())
            await runner.cleanup()  # what Ctrl-C does in `meetmood serve`
            # The sidebar is told the server is going away (1001), not dropped.
            assert await asyncio.wait_for(reading, 10) == WSMsgType.CLOSE
            assert ws.close_code == WSCloseCode.GOING_AWAY
            assert server_pc.connectionState == "closed"  # the participant's peer is closed
            assert manager.find_participant(record.id, pid) is None
        finally:
            await ws.close()
            await pc.close()
    (row,) = await stored_participants(tmp_path / "meetmood.sqlite3", record.id)
    assert row.id == pid
    assert row.leave_reason == "server_shutdown" and row.left_at is not None


@pytest.mark.e2e
@e2e
async def test_a_peer_that_never_connects_is_dropped_after_the_connect_timeout(
    tmp_path: Path,
) -> None:
    settings = make_settings(
        tmp_path, **LOOPBACK, **{"analyzers.enabled": [], "limits.connect_timeout_secs": 1.0}
    )
    pc = RTCPeerConnection()
    pc.addTrack(ImageVideoTrack(face_frame_rgb(), fps=15))
    async with running_app(settings) as (runner, base), aiohttp.ClientSession() as http:
        manager = runner.app[MANAGER]
        record, host_token = await manager.create_meeting("Never connects")
        ws = await http.ws_connect(f"{base}/api/meetings/{record.id}/ws", headers=host(host_token))
        assert (await ws.receive_json())["type"] == "snapshot"
        try:
            # The tab closes before it takes the answer: the server's peer never connects.
            joined = await join(http, base, record, pc, answer=False)
            await pc.close()
            started = time.monotonic()
            pid = joined["participant_id"]
            meeting = await manager.live(record.id)
            server_pc = meeting.pending[pid].source.pc
            await until(lambda: pid not in meeting.pending, 15, "the unconnected peer's end")
            # Not before the timeout: a slow network gets its second.
            assert time.monotonic() - started > 0.9
            assert server_pc.connectionState == "closed"
            assert pid not in meeting.participants
            events: list[dict[str, Any]] = []
            while not any(e["type"] == "join_attempts" for e in events):
                events.append(await asyncio.wait_for(ws.receive_json(), 5))
        finally:
            await ws.close()
        # No card and no row: only the meeting's count of unconnected joins goes up.
        assert [e for e in events if e["type"] == "join_attempts"] == [
            {"type": "join_attempts", "unconnected": 1}
        ]
        assert not [e for e in events if e["type"].startswith("participant_")]
        assert await manager.store.unconnected_joins(record.id) == 1
        assert await manager.store.list_participants(record.id) == []


@pytest.mark.unit
async def test_a_full_sidebar_queue_drops_the_oldest_events(tmp_path: Path) -> None:
    # A sidebar that stops reading: its queue keeps the newest events, never blocks the
    # meeting, and counts what it dropped.
    settings = make_settings(tmp_path, **{"sidebar.max_queued_events": 10})
    store = Store(tmp_path / "meetmood.sqlite3")
    await store.open()
    try:
        record, _ = await store.create_meeting("Queue")
        meeting = LiveMeeting(record, settings, store, pool=None, ticking=False)  # type: ignore[arg-type]
        async with meeting.subscribe() as slow, meeting.subscribe() as fast:
            for i in range(13):
                meeting.publish(NoticeEvent(code=f"n{i}", text=f"notice {i}"))
                if i == 0:
                    assert (await fast.queue.get()).code == "n0"  # type: ignore[union-attr]
            queued = [slow.queue.get_nowait() for _ in range(slow.queue.qsize())]
            assert [e.code for e in queued] == [f"n{i}" for i in range(3, 13)]  # type: ignore[union-attr]
            assert slow.dropped == 3
            # The other sidebar was read in time for the first event: it lost two.
            assert fast.dropped == 2 and fast.queue.qsize() == 10
        assert meeting.live.subscribers == set()
        await meeting.close()
    finally:
        await store.close()


@pytest.mark.e2e
@e2e
async def test_the_sidebar_reconnects_with_backoff_after_the_server_restarts(
    tmp_path: Path, browser: Browser
) -> None:
    settings = make_settings(tmp_path, **LOOPBACK, **{"analyzers.enabled": []})
    page = await browser.new_page(viewport={"width": 400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    attempts: list[float] = []  # when the page opened a WebSocket (refused ones too)
    third_retry = asyncio.Event()
    enough = [len(attempts) + 10**6]  # set once the server is stopped

    def on_websocket(_ws: object) -> None:
        attempts.append(time.monotonic())
        if len(attempts) >= enough[0]:
            third_retry.set()

    page.on("websocket", on_websocket)
    source = TrackSource(ImageVideoTrack(face_frame_rgb(), fps=5))
    async with running_app(settings) as (runner, base):
        port = runner.addresses[0][1]
        manager = runner.app[MANAGER]
        record, host_token = await manager.create_meeting("Restart")
        meeting = await manager.live(record.id)
        pid = meeting.join("Ada", source).record.id
        await open_host_link(page, base, record.id, host_token)
        await wait_for_js(
            page,
            f"window.sidebar.participants[{pid!r}] && "
            f"window.sidebar.participants[{pid!r}].left_at === null",
            timeout_ms=10_000,
        )
        await runner.cleanup()  # the server goes away (and its participant with it)
        stopped = time.monotonic()
        enough[0] = len(attempts) + 3
    # Refused attempts, 1 s then 2 s then 4 s apart: the page says it is offline, with the
    # wait (at once inside the test's network namespace, where the browser has no network).
    await asyncio.wait_for(third_retry.wait(), 15)
    await wait_for_js(page, "window.sidebar.socketState === 'offline'", timeout_ms=5_000)
    assert await page.locator("#conn").inner_text() != ""
    assert re.search(r"Offline — retrying in \d s", await page.locator("body").inner_text())
    async with running_app(settings, port=port) as (runner, base):
        await wait_for_js(page, "window.sidebar.socketState === 'live'", timeout_ms=15_000)
        back = time.monotonic()
        # The new server's snapshot: the participant the shutdown ended, shown as left.
        await wait_for_js(
            page,
            f"window.sidebar.participants[{pid!r}].leave_reason === 'server_shutdown'",
            timeout_ms=5_000,
        )
        await (
            page.locator(f'.participant-card[data-participant-id="{pid}"]')
            .get_by_text("(server shutdown)")
            .wait_for(timeout=5_000)
        )
        await page.close()
    # The attempts after the stop back off: 1 s, 2 s, then 4 s apart (timers never fire early).
    retries = [t for t in attempts if t > stopped]
    assert len(retries) in (3, 4), [round(t - stopped, 2) for t in attempts]
    gaps = [b - a for a, b in zip([stopped, *retries], retries, strict=False)]
    assert 0.9 < gaps[0] < 2.0 and 1.9 < gaps[1] < 3.5 and 3.9 < gaps[2] < 6.0, gaps
    assert back - retries[-1] < 2.0
    assert errors == []
    assert os.environ.get("MEETMOOD_STORAGE__DATABASE") is None  # nothing leaked into the run
