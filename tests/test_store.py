"""The SQLite store: WAL, persistence across restarts, states by meeting and participant."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.store import Store
from bot.types import EMOTIONS, Emotion, EmotionScores, ParticipantState

pytestmark = pytest.mark.unit


def state(pid: str, ts: float, face: bool = True) -> ParticipantState:
    probs = {e: (0.94 if e is Emotion.HAPPY else 0.01) for e in EMOTIONS}
    emotion = EmotionScores(pid, ts, "face", probs, 0.94) if face else None
    return ParticipantState(pid, ts, face_visible=face, emotion=emotion)


async def test_meetings_and_states_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "db" / "m.sqlite3"
    store = Store(path, flush_interval_secs=60)
    await store.open()
    meeting, host_token = await store.create_meeting("Planning")
    p = await store.add_participant(meeting.id, "Ada", "browser")
    store.add_state(meeting.id, state(p.id, 100.0))
    store.add_state(meeting.id, state(p.id, 100.5, face=False))
    await store.close()  # flushes the buffer

    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    store = Store(path)
    await store.open()
    again = await store.get_meeting(meeting.id)
    assert again is not None and again.name == "Planning"
    assert again.host_token_matches(host_token)
    assert not again.host_token_matches("wrong") and not again.host_token_matches(None)
    assert host_token not in again.host_token_sha256  # stored hashed
    # A participant left open by a crash is closed at its last state.
    assert await store.close_dangling_participants() == 1
    (rec,) = await store.list_participants(meeting.id)
    assert (rec.left_at, rec.leave_reason) == (100.5, "server_restart")
    history = await store.history(meeting.id, since_ts=0)
    points = history[p.id]
    assert [pt.face_visible for pt in points] == [True, False]
    assert points[0].probs is not None and points[0].probs["happy"] == pytest.approx(0.94)
    assert points[1].probs is None  # no face: no emotion, not neutral
    rows = await store.states(meeting.id, p.id, since_ts=100.2)
    assert len(rows) == 1 and rows[0]["dominant"] is None and rows[0]["face_visible"] == 0
    await store.close()


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite3"
    sqlite3.connect(path).execute("PRAGMA user_version=99").connection.close()
    store = Store(path)
    with pytest.raises(RuntimeError, match="newer"):
        await store.open()
