"""Mood summaries in a live meeting: the scheduler on a virtual clock, the store, the API."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bot.fusion import FusionParams
from bot.settings import SummarySettings
from bot.sinks.summaries import SummarySink
from bot.store import SCHEMA_VERSION, Store
from bot.summaries import Pseudonyms, SummaryInput, SummaryOutput
from bot.summaries.local import summarize_local
from bot.types import (
    EmotionScores,
    FaceObservation,
    ListeningObservation,
    MeetingEvent,
    ParticipantInfo,
    ParticipantJoinedEvent,
    SpeakingObservation,
    SummaryEvent,
    VoiceMetrics,
    VoiceObservation,
)
from tests.conftest import make_settings
from tests.media import TrackSource
from web.app import create_app
from web.keys import MANAGER

pytestmark = pytest.mark.unit

T0 = 1000.0


def face(pid: str, ts: float, visible: bool = True) -> FaceObservation:
    scores = EmotionScores.of(pid, ts, "face", {"happy": 0.7, "neutral": 0.3}) if visible else None
    return FaceObservation(pid, 1, ts, scores)


def voice(pid: str, ts: float, speaking: bool, talk_secs: float) -> VoiceObservation:
    return VoiceObservation(
        pid, ts, VoiceMetrics(speaking, talk_secs, None, None, None, None, "unavailable")
    )


def drain(queue: asyncio.Queue[MeetingEvent]) -> list[SummaryEvent]:
    out = []
    while not queue.empty():
        event = queue.get_nowait()
        if isinstance(event, SummaryEvent):
            out.append(event)
    return out


async def test_summaries_on_a_virtual_clock_reach_sidebars_store_and_api(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    settings = make_settings(
        tmp_path,
        **{
            "fusion.room_interval_secs": 60,
            "summaries.interval_secs": 60,
            "analyzers.enabled": [],  # observations come from the test
        },
    )
    client = await aiohttp_client(create_app(settings))
    manager = client.app[MANAGER]
    record, host_token = await manager.create_meeting("Retro")
    meeting = await manager.live(record.id)
    now = [T0]
    meeting.clock = lambda: now[0]
    auth = {"Authorization": f"Bearer {host_token}"}
    url = f"/api/meetings/{record.id}/summaries"
    async with meeting.subscribe() as sub:
        ada = meeting.join("Ada", TrackSource())
        bo = meeting.join("Bo", TrackSource())
        a, b = ada.record.id, bo.record.id
        for pid in (a, b):
            meeting.observe(ListeningObservation(pid, T0))
        # Ada speaks from 5 s to 50 s and looks at the camera; Bo's face goes at 30 s.
        meeting.observe(SpeakingObservation(a, T0 + 5, True, T0 + 5.3))
        meeting.observe(voice(a, T0 + 5.3, True, 0.3))
        for k in range(1, 2 * 125 + 1):
            t = T0 + k * 0.5
            now[0] = t
            meeting.observe(face(a, t))
            meeting.observe(face(b, t, visible=t < T0 + 30))
            if k == 100:
                meeting.observe(SpeakingObservation(a, T0 + 50, False, T0 + 50.3))
                meeting.observe(voice(a, t, False, 45.0))
            if k % 2 == 0:
                meeting.tick(t)
                if t in (T0 + 59, T0 + 119):
                    await meeting.summaries.wait()
                    assert drain(sub.queue) == [], "no summary before the interval"
                if t in (T0 + 60, T0 + 120):
                    await meeting.summaries.wait()
                    (summary,) = drain(sub.queue)
                    assert (summary.window_start, summary.window_end) == (t - 60, t)
                    assert summary.reason == "interval" and summary.source == "local"
        first, second = (await (await client.get(url, headers=auth)).json())["summaries"][::-1]
        assert first["label"] == "local summary" and first["error"] is None
        (bo_line,) = [p for p in first["participants"] if p["participant_id"] == b]
        assert bo_line["display_name"] == "Bo" and bo_line["text"].startswith("Bo: ")
        assert "face in view 50 % of the time" in bo_line["text"]
        assert any(c.startswith("Most engaged: ") for c in first["changes"])
        # The first minute: Ada spoke 45 s of it, Bo nothing; the second: nobody spoke.
        assert "Ada: " in first["text"] and "spoke 45 s (100 % of the talk" in first["text"]
        assert "Longest silence: 60 s with nobody speaking" in second["text"]
        # Bo's face left at 30 s while Ada spoke: the moment names her as the speaker.
        assert any(
            c.startswith("At 0:3") and c.endswith("while Ada spoke.") for c in first["changes"]
        ), first["changes"]
        assert "P1" not in first["text"] and "P2" not in first["text"]

        # The host asks for one now: it covers the time since the last one.
        now[0] = T0 + 125
        resp = await client.post(url, headers=auth)
        assert resp.status == 201
        asked = await resp.json()
        assert (asked["window_start"], asked["window_end"]) == (T0 + 120, T0 + 125)
        assert asked["reason"] == "request"
        (pushed,) = drain(sub.queue)
        assert pushed.id == asked["id"]  # the sidebars got it too

        # The meeting ends when the last participant leaves: a last summary.
        now[0] = T0 + 130
        await meeting.end(ada, "left")
        await meeting.end(bo, "left")
        await meeting.summaries.wait()
        (last,) = drain(sub.queue)
        assert last.reason == "end" and last.window_end == T0 + 130

    listing = await (await client.get(url, headers=auth)).json()
    assert [s["reason"] for s in listing["summaries"]] == ["end", "request", "interval", "interval"]
    assert listing["summarizer"] == {
        "name": "local",
        "label": "local summary",
        "interval_secs": 60,
        "enabled": True,
        "model": None,
        "where": "nothing leaves this machine",
    }
    one = await (await client.get(url, params={"limit": 1}, headers=auth)).json()
    assert [s["id"] for s in one["summaries"]] == [last.id]
    snapshot = await manager.snapshot(record.id)
    assert [s.id for s in snapshot.summaries][:2] == [last.id, asked["id"]]
    assert snapshot.summarizer is not None and snapshot.summarizer.name == "local"
    # The host token guards both routes.
    assert (await client.get(url)).status == 401
    assert (await client.post(url, headers={"Authorization": "Bearer wrong"})).status == 403
    assert (await client.get(url, params={"limit": 0}, headers=auth)).status == 400


async def test_summaries_turned_off(aiohttp_client: Any, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, **{"summaries.enabled": False, "analyzers.enabled": []})
    client = await aiohttp_client(create_app(settings))
    manager = client.app[MANAGER]
    record, host_token = await manager.create_meeting("Quiet")
    url = f"/api/meetings/{record.id}/summaries"
    auth = {"Authorization": f"Bearer {host_token}"}
    resp = await client.post(url, headers=auth)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "summaries_disabled"
    listing = await (await client.get(url, headers=auth)).json()
    assert listing["summaries"] == [] and listing["summarizer"]["enabled"] is False
    meeting = await manager.live(record.id)
    meeting.tick(time_now := 10_000.0)
    meeting.summaries.meeting_ended(time_now + 100)
    await meeting.summaries.wait()
    assert await manager.store.summaries(record.id) == []


async def test_a_failing_summarizer_never_reaches_the_meeting(tmp_path: Path) -> None:
    published: list[MeetingEvent] = []

    class Broken:
        name = "vertex"
        label = "Vertex AI summary"
        model = "gemini-test"
        where = "somewhere else"

        def __init__(self, answer: SummaryOutput | None, delay: float = 0.0) -> None:
            self.answer = answer
            self.delay = delay

        async def summarize(self, inp: SummaryInput, names: Pseudonyms) -> SummaryOutput:
            await asyncio.sleep(self.delay)
            if self.answer is None:
                raise RuntimeError("quota")
            return self.answer

    settings = SummarySettings(interval_secs=60, timeout_secs=0.05)
    invented = SummaryOutput(participants=[], room_mood="Calm.", changes=[], suggestion="Ask P9.")
    joined = ParticipantJoinedEvent(
        participant=ParticipantInfo(participant_id="a", display_name="Ada", joined_at=T0)
    )
    for summarizer, says in (
        (Broken(None), "failed"),
        (Broken(invented), "returned invalid output (participants missing: P1)"),
        (Broken(invented, delay=1.0), "timed out after 0.05 s"),
    ):
        sink = SummarySink(settings, FusionParams(), published.append, summarizer)
        sink.handle(joined)
        sink.tick(T0 + 30)
        assert sink.start(T0 + 61, "interval") is not None
        await sink.wait()
        event = published.pop()
        assert isinstance(event, SummaryEvent) and event.error is None
        assert event.source == "local" and event.label == "local summary"
        assert event.note == f"the Vertex AI summary {says}; local summary instead"
        assert event.participants[0].display_name == "Ada"

    # Even the local rules failing gives an error summary, not an exception.
    class Failing(Broken):
        name = "local"
        label = "local summary"
        model = None

    sink = SummarySink(settings, FusionParams(), published.append, Failing(None))
    sink.handle(joined)
    event = await sink.summarize_now(T0 + 10)
    assert event.error == "no summary: the local summary failed" and event.participants == []
    assert published[-1] is event
    # The window itself was fine: the local rules summarise it.
    job = sink.take(T0 + 20, "request")
    assert job is not None and summarize_local(job.input).participants[0].participant == "P1"


V3_SCHEMA = """
CREATE TABLE meetings (id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at REAL NOT NULL,
    ended_at REAL, host_token_sha256 TEXT NOT NULL, join_token TEXT NOT NULL);
CREATE TABLE participants (id TEXT PRIMARY KEY, meeting_id TEXT NOT NULL, display_name TEXT
    NOT NULL, source TEXT NOT NULL, joined_at REAL NOT NULL, left_at REAL, leave_reason TEXT,
    parent_id TEXT, face_track INTEGER);
CREATE TABLE states (id INTEGER PRIMARY KEY, meeting_id TEXT NOT NULL, participant_id TEXT
    NOT NULL, ts REAL NOT NULL, face_visible INTEGER NOT NULL, is_speaking INTEGER,
    stale INTEGER NOT NULL, engagement REAL, emotion TEXT, face TEXT, voice TEXT, talk TEXT,
    readings TEXT NOT NULL);
CREATE TABLE room_states (id INTEGER PRIMARY KEY, meeting_id TEXT NOT NULL, ts REAL NOT NULL,
    engagement REAL, data TEXT NOT NULL);
CREATE TABLE moments (id INTEGER PRIMARY KEY, meeting_id TEXT NOT NULL, ts REAL NOT NULL,
    kind TEXT NOT NULL, data TEXT NOT NULL);
INSERT INTO meetings VALUES ('m1', 'Old', 1.0, NULL, 'x', 'j');
INSERT INTO participants VALUES ('p1', 'm1', 'Ada', 'browser', 1.0, 2.0, 'left', NULL, NULL);
INSERT INTO states (meeting_id, participant_id, ts, face_visible, stale, engagement, readings)
    VALUES ('m1', 'p1', 1.5, 1, 0, 0.6, '{"engagement":[0.6,0.8]}');
PRAGMA user_version=3;
"""


async def test_version_3_database_gains_summaries_in_place(tmp_path: Path) -> None:
    path = tmp_path / "v3.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(V3_SCHEMA)
    conn.close()
    store = Store(path)
    await store.open()
    (old,) = await store.read_states("m1")
    assert old.engagement == 0.6 and old.readings["engagement"].confidence == 0.8
    assert await store.summaries("m1") == []
    for k in range(3):
        store.add_summary(
            "m1",
            SummaryEvent(
                id=f"s{k}",
                ts=10.0 + k,
                window_start=float(k),
                window_end=10.0 + k,
                reason="interval",
                source="local",
                label="local summary",
                suggestion="Keep going.",
            ),
        )
    assert [s.id for s in await store.summaries("m1")] == ["s2", "s1", "s0"]
    assert [s.id for s in await store.summaries("m1", limit=1)] == ["s2"]
    await store.close()
    version = sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0]
    assert version == SCHEMA_VERSION == 4
    store = Store(path)
    await store.open()  # opening a version 4 database again changes nothing
    (s,) = await store.summaries("m1", limit=1)
    assert s.suggestion == "Keep going." and s.window_start == 2.0
    await store.close()
