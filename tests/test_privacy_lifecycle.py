"""The privacy lifecycle: the host ends and deletes meetings, participants withdraw, old
meetings expire (in the server and with ``meetmood meeting delete|purge``).

Real parts throughout: the aiohttp app with its real store (SQLite, read back directly with
``sqlite3`` to prove rows are gone), real aiortc peers on loopback for live participants,
the real CLI entry point, and headless Chromium for the join page and the sidebar.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient
from aiortc import RTCPeerConnection
from playwright.async_api import Browser, expect

from bot.cli import main
from bot.meeting import MeetingManager
from bot.settings import Settings
from bot.store import MEETING_TABLES, MeetingRecord, Store
from bot.summaries.redact import WITHDRAWN, redact_names, without
from bot.types import (
    EMOTIONS,
    Emotion,
    EmotionScores,
    Moment,
    MomentEvent,
    ParticipantState,
    ParticipantStateEvent,
    RoomEvent,
    RoomState,
    SummaryEvent,
    SummaryParticipant,
)
from tests.conftest import make_settings
from tests.fixtures import FAKE_MEDIA_ARGS, chromium
from tests.media import ImageVideoTrack, face_frame_rgb
from tests.served import join_peer
from web.app import create_app
from web.keys import MANAGER

DAY = 86_400.0
#: A name no random id or token can contain (ids and tokens are URL-safe base64).
ADA = "Ada Ñ"
BO = "Bo Ø"


def fast_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """No models to load: the lifecycle does not depend on what is analysed."""
    return make_settings(tmp_path, **{"analyzers.enabled": [], "voice.enabled": False, **overrides})


@pytest.fixture
async def client(aiohttp_client: Any, tmp_path: Path) -> TestClient:
    return await aiohttp_client(create_app(fast_settings(tmp_path)))


def manager_of(client: TestClient) -> MeetingManager:
    return client.app[MANAGER]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def expect_error(resp: Any, status: int, code: str) -> None:
    assert resp.status == status, await resp.text()
    body = await resp.json()
    assert body["error"]["code"] == code, body


async def join(
    client: TestClient, record: MeetingRecord, name: str
) -> tuple[RTCPeerConnection, dict[str, Any]]:
    """A real aiortc peer joins through the API with a live video track."""
    pc = RTCPeerConnection()
    pc.addTrack(ImageVideoTrack(face_frame_rgb(160, 120), fps=10))
    url = f"/api/meetings/{record.id}/participants"
    return pc, await join_peer(client, url, record.join_token, pc, name)


async def next_event(ws: Any, kind: str, wait_secs: float = 15.0, **match: Any) -> dict[str, Any]:
    async def wait() -> dict[str, Any]:
        while True:
            event = await ws.receive_json()
            if event["type"] == kind and all(event.get(k) == v for k, v in match.items()):
                return event

    return await asyncio.wait_for(wait(), wait_secs)


async def sidebar(client: TestClient, record: MeetingRecord, host_token: str) -> Any:
    ws = await client.ws_connect(f"/api/meetings/{record.id}/ws", headers=bearer(host_token))
    assert (await ws.receive_json())["type"] == "snapshot"
    return ws


async def until(predicate: Any, wait_secs: float = 10.0) -> None:
    deadline = time.monotonic() + wait_secs
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


# -- what the database holds ------------------------------------------------------------------


def rows_of(db: Path, meeting_id: str, participant_ids: set[str] | None = None) -> dict[str, int]:
    """Rows per table that belong to the meeting: by ``meeting_id`` (or ``id`` for meetings),
    or, in a table without one, by ``participant_id``. Every table is looked at, so a table
    added later is checked too."""
    conn = sqlite3.connect(db)
    try:
        counts = {}
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        for table in tables:
            columns = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
            if table == "meetings":
                sql, args = "SELECT COUNT(*) FROM meetings WHERE id = ?", [meeting_id]
            elif "meeting_id" in columns:
                sql, args = f"SELECT COUNT(*) FROM {table} WHERE meeting_id = ?", [meeting_id]
            elif "participant_id" in columns and participant_ids:
                marks = ", ".join("?" * len(participant_ids))
                sql = f"SELECT COUNT(*) FROM {table} WHERE participant_id IN ({marks})"
                args = sorted(participant_ids)
            else:
                continue
            counts[table] = conn.execute(sql, args).fetchone()[0]
        return counts
    finally:
        conn.close()


def mentions(db: Path, needle: str) -> list[str]:
    """Every table row (as text) that contains ``needle`` raw or JSON-escaped."""
    forms = {needle, json.dumps(needle)[1:-1]}
    conn = sqlite3.connect(db)
    try:
        found = []
        for (table,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ).fetchall():
            for row in conn.execute(f"SELECT * FROM {table}"):
                text = " ".join(str(v) for v in row)
                if any(f in text for f in forms):
                    found.append(f"{table}: {text[:200]}")
        return found
    finally:
        conn.close()


def face_state(pid: str, ts: float) -> ParticipantState:
    probs = {e: (0.94 if e is Emotion.HAPPY else 0.01) for e in EMOTIONS}
    return ParticipantState(
        pid, ts, face_visible=True, emotion=EmotionScores(pid, ts, "face", probs, 0.94)
    )


def room_state(ts: float, pids: list[str]) -> RoomState:
    return RoomState(
        ts=ts,
        present=len(pids),
        engagement=0.5,
        engagement_n=len(pids),
        valence=0.2,
        arousal=0.1,
        mood="positive, calm",
        dominant="happy",
        speaking=tuple(pids),
        trend="steady",
        trend_change=0.0,
        trends=dict.fromkeys(pids, "steady"),
    )


async def fill(store: Store, meeting_id: str, pid: str, t0: float) -> None:
    """Rows in every table of a meeting, as a running meeting leaves them."""
    for k in range(4):
        store.add_state(meeting_id, face_state(pid, t0 + k))
    store.add_room(meeting_id, room_state(t0, [pid]))
    store.add_moment(meeting_id, Moment(t0, "joint_smiles", (pid,), (pid,), 1.0, 5.0))
    store.add_summary(
        meeting_id,
        SummaryEvent(
            id=f"s-{meeting_id}",
            ts=t0 + 4,
            window_start=t0,
            window_end=t0 + 4,
            reason="interval",
            source="local",
            label="local summary",
            participants=[
                SummaryParticipant(
                    participant_id=pid,
                    display_name=ADA,
                    engagement_band="high",
                    text=f"{ADA}: smiling.",
                )
            ],
            text=f"Local summary\n{ADA}: smiling.",
        ),
    )
    store.add_participant_token(meeting_id, pid, "a-participant-token")
    await store.flush()


# -- ending ------------------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.usefixtures("loopback_only")  # live WebRTC peers
async def test_ending_revokes_the_join_link_and_disconnects_everyone(client: TestClient) -> None:
    manager = manager_of(client)
    record, host_token = await manager.create_meeting("Standup")
    ws = await sidebar(client, record, host_token)
    pc, joined = await join(client, record, ADA)
    pid = joined["participant_id"]
    try:
        await next_event(ws, "participant_joined")
        assert manager.find_participant(record.id, pid) is not None

        resp = await client.post(f"/api/meetings/{record.id}/end", headers=bearer("wrong"))
        await expect_error(resp, 403, "token_invalid")
        assert manager.find_participant(record.id, pid) is not None

        resp = await client.post(f"/api/meetings/{record.id}/end", headers=bearer(host_token))
        assert resp.status == 200, await resp.text()
        ended = await resp.json()
        assert ended["ended_at"] is not None and ended["id"] == record.id

        # The participant is disconnected (their peer too), the sidebar is told, then closed.
        left = await next_event(ws, "participant_left", participant_id=pid)
        assert left["reason"] == "meeting_ended"
        final = await next_event(ws, "meeting_ended")
        assert final["deleted"] is False
        assert (await ws.receive()).type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)
        assert manager.find_participant(record.id, pid) is None
        await until(lambda: pc.connectionState in ("closed", "failed"))
    finally:
        await pc.close()
        await ws.close()

    store = manager.store
    (stored,) = await store.list_participants(record.id)
    assert stored.leave_reason == "meeting_ended" and stored.left_at is not None

    # The join link is revoked: the API answers 410 and the page says the meeting has ended.
    pc2 = RTCPeerConnection()
    pc2.addTransceiver("video", direction="sendonly")
    await pc2.setLocalDescription(await pc2.createOffer())
    resp = await client.post(
        f"/api/meetings/{record.id}/participants",
        json={
            "token": record.join_token,
            "display_name": BO,
            "consent": True,
            "offer": {"sdp": pc2.localDescription.sdp, "type": "offer"},
        },
    )
    await pc2.close()
    await expect_error(resp, 410, "meeting_ended")
    page = await client.get(f"/join/{record.id}?token={record.join_token}")
    assert page.status == 410
    assert "This meeting has ended" in await page.text()
    assert len(await store.list_participants(record.id)) == 1  # nobody new was stored

    # Ending again changes nothing; the data stays for the report.
    again = await client.post(f"/api/meetings/{record.id}/end", headers=bearer(host_token))
    assert (await again.json())["ended_at"] == ended["ended_at"]
    report = await client.get(
        f"/api/meetings/{record.id}/report?format=json", headers=bearer(host_token)
    )
    assert report.status == 200
    # A sidebar that opens the ended meeting is told it has ended.
    ws = await client.ws_connect(f"/api/meetings/{record.id}/ws", headers=bearer(host_token))
    snapshot = await ws.receive_json()
    assert snapshot["meeting"]["ended_at"] == ended["ended_at"]
    await ws.close()


# -- deleting ----------------------------------------------------------------------------------


@pytest.mark.unit
async def test_deleting_a_meeting_removes_every_row_of_it(client: TestClient) -> None:
    manager = manager_of(client)
    store = manager.store
    db = manager.settings.storage.database_path
    doomed, host_token = await manager.create_meeting("Doomed")
    kept, _ = await manager.create_meeting("Kept")
    pids = {}
    for record in (doomed, kept):
        p = await store.add_participant(record.id, ADA, "browser")
        face = await store.add_participant(record.id, f"{ADA} · face 2", "browser", p.id, 2)
        await fill(store, record.id, p.id, 1000.0)
        store.add_state(record.id, face_state(face.id, 1000.0))
        await store.flush()
        pids[record.id] = {p.id, face.id}
    before = rows_of(db, doomed.id, pids[doomed.id])
    filled = {t for t, n in before.items() if n > 0}
    assert {"meetings", "participants", "participant_tokens", "states", "room_states"} <= filled
    assert {"moments", "summaries"} <= filled
    # Every table that has rows of meetings is one that deleting a meeting empties.
    assert set(before) - {"meetings"} <= set(MEETING_TABLES)
    kept_before = rows_of(db, kept.id, pids[kept.id])
    ws = await sidebar(client, doomed, host_token)

    resp = await client.delete(f"/api/meetings/{doomed.id}", headers=bearer("wrong"))
    await expect_error(resp, 403, "token_invalid")
    assert rows_of(db, doomed.id, pids[doomed.id]) == before
    resp = await client.delete(f"/api/meetings/{doomed.id}")
    await expect_error(resp, 401, "token_missing")

    resp = await client.delete(f"/api/meetings/{doomed.id}", headers=bearer(host_token))
    assert resp.status == 204, await resp.text()
    final = await next_event(ws, "meeting_ended")
    assert final["deleted"] is True
    assert (await ws.receive()).type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)

    after = rows_of(db, doomed.id, pids[doomed.id])
    assert after and all(n == 0 for n in after.values()), after
    assert rows_of(db, kept.id, pids[kept.id]) == kept_before  # the other meeting is untouched
    assert mentions(db, doomed.id) == []
    resp = await client.get(f"/api/meetings/{doomed.id}", headers=bearer(host_token))
    await expect_error(resp, 404, "meeting_not_found")
    resp = await client.delete(f"/api/meetings/{doomed.id}", headers=bearer(host_token))
    await expect_error(resp, 404, "meeting_not_found")


# -- withdrawing -------------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.usefixtures("loopback_only")  # live WebRTC peers
async def test_a_participant_withdraws_and_their_data_goes(client: TestClient) -> None:
    manager = manager_of(client)
    store = manager.store
    db = manager.settings.storage.database_path
    record, host_token = await manager.create_meeting("Retro")
    ws = await sidebar(client, record, host_token)
    pc_ada, ada = await join(client, record, ADA)
    pc_bo, bo = await join(client, record, BO)
    a, b = ada["participant_id"], bo["participant_id"]
    try:
        await next_event(ws, "participant_joined")
        await next_event(ws, "participant_joined")
        # Their states, the room, a moment about Ada and a summary, as the pipeline makes them.
        live = await manager.live(record.id)
        t0 = live.clock()
        for k in range(10):
            for pid in (a, b):
                live.publish(ParticipantStateEvent(state=face_state(pid, t0 + k * 0.5)))
        live.publish(RoomEvent(room=room_state(t0 + 5, [a, b])))
        live.publish(MomentEvent(moment=Moment(t0 + 5, "joint_smiles", (a,), (a, b), 1.0, 5.0)))
        resp = await client.post(f"/api/meetings/{record.id}/summaries", headers=bearer(host_token))
        assert resp.status == 201
        summary = await resp.json()
        assert ADA in summary["text"] and BO in summary["text"]
        await store.flush()
        assert mentions(db, a) and mentions(db, ADA)
        bo_states = len(await store.read_states(record.id, b))
        assert bo_states > 0

        url = f"/api/meetings/{record.id}/participants/{a}"
        resp = await client.delete(url, json={"token": bo["participant_token"]})
        await expect_error(resp, 403, "token_invalid")
        resp = await client.delete(f"{url}?token={ada['participant_token']}")
        await expect_error(resp, 401, "token_missing")  # never from the query string
        assert manager.find_participant(record.id, a) is not None

        resp = await client.delete(url, headers=bearer(ada["participant_token"]))
        assert resp.status == 204, await resp.text()

        left = await next_event(ws, "participant_left", participant_id=a)
        assert left["reason"] == "left"
        gone = await next_event(ws, "participant_withdrawn")
        assert gone["participant_ids"] == [a]
        assert gone["summaries"] and all(ADA not in s["text"] for s in gone["summaries"])
        assert any(BO in s["text"] for s in gone["summaries"])
        assert manager.find_participant(record.id, a) is None
        assert manager.find_participant(record.id, b) is not None
        await until(lambda: pc_ada.connectionState in ("closed", "failed"))

        assert mentions(db, a) == [] and mentions(db, ADA) == []
        # Bo's data stays as it was.
        (bo_stored,) = await store.list_participants(record.id)
        assert bo_stored.id == b
        assert len(await store.read_states(record.id, b)) >= bo_states
        (stored_summary,) = await store.summaries(record.id)
        assert [p.participant_id for p in stored_summary.participants] == [b]
        assert BO in stored_summary.text and ADA not in stored_summary.text
        rooms = await store.read_room(record.id)
        assert all(a not in r.speaking and a not in r.trends for r in rooms)
        (published,) = [r for r in rooms if r.ts == t0 + 5]
        assert published.speaking == (b,) and set(published.trends) == {b}
        assert await store.moments(record.id) == []  # it was about Ada only

        resp = await client.delete(url, json={"token": ada["participant_token"]})
        await expect_error(resp, 404, "participant_not_found")

        # Bo leaves first and withdraws afterwards, with the token in the body.
        resp = await client.post(
            f"/api/meetings/{record.id}/participants/{b}/leave",
            json={"token": bo["participant_token"]},
        )
        assert resp.status == 204
        await next_event(ws, "participant_left", participant_id=b)
        resp = await client.delete(
            f"/api/meetings/{record.id}/participants/{b}", json={"token": bo["participant_token"]}
        )
        assert resp.status == 204, await resp.text()
        assert (await next_event(ws, "participant_withdrawn"))["participant_ids"] == [b]
        assert mentions(db, b) == [] and mentions(db, BO) == []
        assert await store.list_participants(record.id) == []
    finally:
        await pc_ada.close()
        await pc_bo.close()
        await ws.close()


@pytest.mark.unit
async def test_withdrawing_after_a_restart_uses_the_stored_token(tmp_path: Path) -> None:
    """The token is kept hashed: a participant can withdraw when the server no longer
    has them in memory."""
    settings = fast_settings(tmp_path)
    store = Store(settings.storage.database_path)
    await store.open()
    record, _ = await store.create_meeting("Earlier")
    p = await store.add_participant(record.id, ADA, "browser")
    await fill(store, record.id, p.id, 1000.0)
    await store.close()
    raw = sqlite3.connect(settings.storage.database_path)
    (digest,) = raw.execute("SELECT token_sha256 FROM participant_tokens").fetchone()
    raw.close()
    assert "a-participant-token" not in digest  # only the hash is stored

    manager = MeetingManager(settings)
    await manager.store.open()
    try:
        assert await manager.withdraw(record.id, p.id, "wrong") is False
        assert await manager.withdraw(record.id, p.id, "a-participant-token") is True
        assert mentions(settings.storage.database_path, p.id) == []
        assert mentions(settings.storage.database_path, ADA) == []
    finally:
        await manager.store.close()


@pytest.mark.unit
def test_redaction_keeps_other_names_and_rebuilds_the_text() -> None:
    assert redact_names("Ada spoke over Ada Lovelace.", ["Ada"], ["Ada Lovelace"]) == (
        f"{WITHDRAWN} spoke over Ada Lovelace."
    )
    assert redact_names("Adam and Ada", ["Ada"]) == f"Adam and {WITHDRAWN}"
    summary = SummaryEvent(
        id="s",
        ts=10,
        window_start=0,
        window_end=10,
        reason="interval",
        source="local",
        label="local summary",
        participants=[
            SummaryParticipant(
                participant_id="a", display_name="Ada", engagement_band="high", text="Ada: engaged."
            ),
            SummaryParticipant(
                participant_id="b",
                display_name="Bo",
                engagement_band="low",
                text="Bo: quiet while Ada spoke.",
            ),
        ],
        room_mood="Room mood: calm.",
        changes=["Ada smiled more"],
        suggestion="Ask Bo.",
        text="ignored",
    )
    out = without(summary, {"a"}, ["Ada"])
    assert [p.participant_id for p in out.participants] == ["b"]
    assert out.text == (
        f"Local summary\nBo: quiet while {WITHDRAWN} spoke.\nRoom mood: calm.\n"
        f"- {WITHDRAWN} smiled more\nSuggestion: Ask Bo."
    )


# -- retention ---------------------------------------------------------------------------------


async def old_meetings(db: Path, now: float) -> dict[str, str]:
    """Meetings at the edges of a 30-day retention; returns name -> id."""
    store = Store(db)
    await store.open()
    ids = {}
    for name in ("ended long ago", "ended yesterday", "left long ago", "still connected"):
        record, _ = await store.create_meeting(name)
        ids[name] = record.id
        p = await store.add_participant(record.id, ADA, "browser")
        await fill(store, record.id, p.id, now - 40 * DAY)
    await store.close()
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE meetings SET created_at = ?", (now - 40 * DAY,))
        conn.execute(
            "UPDATE participants SET joined_at = ?, left_at = ?", (now - 40 * DAY, now - 39 * DAY)
        )
        conn.execute(
            "UPDATE meetings SET ended_at = ? WHERE id = ?", (now - 31 * DAY, ids["ended long ago"])
        )
        conn.execute(
            "UPDATE meetings SET ended_at = ? WHERE id = ?", (now - 1 * DAY, ids["ended yesterday"])
        )
        conn.execute(
            "UPDATE participants SET left_at = NULL WHERE meeting_id = ?", (ids["still connected"],)
        )
    conn.close()
    return ids


@pytest.mark.unit
async def test_the_server_purges_meetings_past_retention(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    settings = fast_settings(tmp_path, **{"privacy.purge_interval_secs": 0.2})
    db = settings.storage.database_path
    ids = await old_meetings(db, time.time())
    # A server started later purges at once: the 30-day default applies.
    client = await aiohttp_client(create_app(settings))
    store = manager_of(client).store

    async def remaining() -> set[str]:
        return {m.id for m in await store.list_meetings()}

    deadline = time.monotonic() + 10
    while ids["ended long ago"] in await remaining():
        assert time.monotonic() < deadline, "nothing was purged"
        await asyncio.sleep(0.1)
    # The server restart closed the dangling participant, so now it is purged as well.
    while ids["still connected"] in await remaining():
        assert time.monotonic() < deadline, "the restart-closed meeting was not purged"
        await asyncio.sleep(0.1)
    assert await remaining() == {ids["ended yesterday"]}
    for name in ("ended long ago", "left long ago", "still connected"):
        assert all(n == 0 for n in rows_of(db, ids[name]).values()), name
    assert any(n > 0 for n in rows_of(db, ids["ended yesterday"]).values())

    # A new meeting, recent: kept on the next runs of the periodic purge.
    record, _ = await manager_of(client).create_meeting("Today")
    await asyncio.sleep(0.5)
    assert record.id in await remaining()


@pytest.mark.unit
async def test_expiry_skips_a_meeting_with_someone_connected(tmp_path: Path) -> None:
    db = tmp_path / "m.sqlite3"
    now = time.time()
    ids = await old_meetings(db, now)
    store = Store(db)
    await store.open()
    try:
        expired = {
            m.record.id: m.last_activity for m in await store.expired_meetings(now - 30 * DAY)
        }
    finally:
        await store.close()
    assert set(expired) == {ids["ended long ago"], ids["left long ago"]}
    assert expired[ids["ended long ago"]] == pytest.approx(now - 31 * DAY)
    assert expired[ids["left long ago"]] == pytest.approx(now - 39 * DAY)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("days", "says"),
    [
        (30, "deleted automatically 30 days after the meeting ends"),
        (7.5, "deleted automatically 7.5 days after the meeting ends"),
        (0, "kept until the host deletes the meeting"),
    ],
)
async def test_the_notice_says_how_long_data_is_kept(
    aiohttp_client: Any, tmp_path: Path, days: float, says: str
) -> None:
    client = await aiohttp_client(
        create_app(fast_settings(tmp_path, **{"privacy.retention_days": days}))
    )
    record, _ = await manager_of(client).create_meeting("M")
    html = await (await client.get(f"/join/{record.id}?token={record.join_token}")).text()
    assert says in " ".join(html.split())
    assert "Leave and delete my data" in html
    assert "your display name" in html  # what is kept includes the name


# -- the CLI -----------------------------------------------------------------------------------


@pytest.mark.unit
def test_cli_deletes_and_purges(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "cli.sqlite3"
    ids = asyncio.run(old_meetings(db, time.time()))
    flags = ["--database", str(db)]

    assert main(["meeting", "delete", "no-such-id", *flags]) == 2
    assert capsys.readouterr().err.strip() == "meetmood: no-such-id: no such meeting"
    assert main(["meeting", "delete", ids["still connected"], *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "still connected" in err[0]

    stored = {name: rows_of(db, mid) for name, mid in ids.items()}
    assert main(["meeting", "purge", "--dry-run", *flags]) == 0
    out = capsys.readouterr().out
    assert ids["ended long ago"] in out and ids["left long ago"] in out
    assert "2 meeting(s) would be deleted" in out
    assert ids["ended yesterday"] not in out and ids["still connected"] not in out
    assert {name: rows_of(db, mid) for name, mid in ids.items()} == stored  # nothing deleted

    assert main(["meeting", "purge", "--set", "privacy.retention_days=0", *flags]) == 0
    assert "nothing to purge" in capsys.readouterr().out

    assert main(["meeting", "purge", *flags]) == 0
    assert "2 meeting(s) deleted" in capsys.readouterr().out
    for name in ("ended long ago", "left long ago"):
        assert all(n == 0 for n in rows_of(db, ids[name]).values()), name

    assert main(["meeting", "purge", "--older-than", "0.5", *flags]) == 0
    assert ids["ended yesterday"] in capsys.readouterr().out
    assert all(n == 0 for n in rows_of(db, ids["ended yesterday"]).values())

    with pytest.raises(SystemExit) as refused:
        main(["meeting", "purge", "--older-than", "-3", *flags])
    assert refused.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--older-than" in err[0]

    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE participants SET left_at = joined_at")
    conn.close()
    assert main(["meeting", "delete", ids["still connected"], *flags]) == 0
    assert f"deleted: {ids['still connected']}" in capsys.readouterr().out
    assert mentions(db, ids["still connected"]) == []


# -- the pages in a real browser ---------------------------------------------------------------


@pytest.fixture
async def served(aiohttp_server: Any, tmp_path: Path) -> AsyncIterator[tuple[str, web.Application]]:
    app = create_app(fast_settings(tmp_path))
    server = await aiohttp_server(app)
    yield str(server.make_url("")).rstrip("/"), app


@pytest.fixture
async def camera_browser() -> AsyncIterator[Browser]:
    """Headless Chromium with a fake camera and microphone that needs no permission prompt."""
    async with chromium(*FAKE_MEDIA_ARGS) as b:
        yield b


@pytest.mark.e2e
@pytest.mark.usefixtures("loopback_only")  # live WebRTC peers
async def test_leave_and_delete_button_and_end_button_in_the_browser(
    served: tuple[str, web.Application], camera_browser: Browser
) -> None:
    browser = camera_browser
    base, app = served
    manager = app[MANAGER]
    record, host_token = await manager.create_meeting("Browser")
    host = await browser.new_page()
    host.on("dialog", lambda d: asyncio.ensure_future(d.accept()))
    await host.goto(f"{base}/host/{record.id}?token={host_token}")
    await expect(host.locator("#conn")).to_have_attribute("data-conn", "live", timeout=10_000)

    guest = await browser.new_page()
    await guest.goto(f"{base}/join/{record.id}?token={record.join_token}")
    await guest.fill("#display-name", ADA)
    await guest.click("#agree")
    await expect(guest.locator("#join")).to_have_attribute(
        "data-state", "connected", timeout=20_000
    )
    pid = await guest.evaluate("window.meetmood.participantId")
    entries = host.locator(f'[data-participant-id="{pid}"]')
    await expect(host.locator(f'.participant-card[data-participant-id="{pid}"]')).to_be_visible(
        timeout=10_000
    )

    await guest.click("#withdraw")
    await expect(guest.locator("#join")).to_have_attribute("data-state", "withdrawn")
    await expect(guest.locator("#status")).to_contain_text("everything stored about you")
    await expect(entries).to_have_count(0, timeout=10_000)
    await expect(host.locator('.notice-item[data-code="participant_withdrawn"]')).to_contain_text(
        "left and had their data deleted"
    )
    assert mentions(manager.settings.storage.database_path, pid) == []

    # A second participant is connected when the host ends the meeting: their page says so.
    await guest.goto(f"{base}/join/{record.id}?token={record.join_token}")
    await guest.fill("#display-name", BO)
    await guest.click("#agree")
    await expect(guest.locator("#join")).to_have_attribute(
        "data-state", "connected", timeout=20_000
    )
    await host.click("#end-meeting")
    await expect(guest.locator("#status")).to_contain_text(
        "The host ended this meeting", timeout=15_000
    )
    await expect(guest.locator("#after-leave")).to_be_visible()  # withdrawing still works
    await expect(host.locator("#meeting-status")).to_contain_text("The meeting has ended")
    assert await host.evaluate("window.sidebar.ended") == "ended"
    stored = await manager.get_meeting(record.id)
    assert stored.ended_at is not None
    await guest.goto(f"{base}/join/{record.id}?token={record.join_token}")
    await expect(guest.locator("h1")).to_have_text("This meeting has ended")

    await host.click("#delete-meeting")
    await expect(host.locator("#meeting-status")).to_contain_text("were deleted")
    assert await manager.store.get_meeting(record.id) is None
