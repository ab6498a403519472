"""The SQLite store: WAL, persistence across restarts, states by meeting and participant."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest

from bot.store import SCHEMA_VERSION, Store
from bot.types import (
    EMOTIONS,
    Emotion,
    EmotionScores,
    FaceMetrics,
    ParticipantState,
    VoiceMetrics,
)

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


V1_SCHEMA = """
CREATE TABLE meetings (id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at REAL NOT NULL,
    ended_at REAL, host_token_sha256 TEXT NOT NULL, join_token TEXT NOT NULL);
CREATE TABLE participants (id TEXT PRIMARY KEY, meeting_id TEXT NOT NULL, display_name TEXT
    NOT NULL, source TEXT NOT NULL, joined_at REAL NOT NULL, left_at REAL, leave_reason TEXT);
CREATE TABLE states (meeting_id TEXT NOT NULL, participant_id TEXT NOT NULL, ts REAL NOT NULL,
    face_visible INTEGER NOT NULL, stale INTEGER NOT NULL, emotion_source TEXT, dominant TEXT,
    confidence REAL, p_angry REAL, p_disgust REAL, p_fear REAL, p_happy REAL, p_sad REAL,
    p_surprise REAL, p_neutral REAL, engagement REAL, is_speaking INTEGER);
INSERT INTO meetings VALUES ('m1', 'Old', 1.0, NULL, 'x', 'j');
INSERT INTO participants VALUES ('p1', 'm1', 'Ada', 'browser', 1.0, 2.0, 'left');
INSERT INTO states (meeting_id, participant_id, ts, face_visible, stale) VALUES
    ('m1', 'p1', 1.5, 0, 0);
PRAGMA user_version=1;
"""


async def test_version_1_database_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(V1_SCHEMA)
    conn.close()
    store = Store(path)
    await store.open()
    (old,) = await store.list_participants("m1")
    assert old.display_name == "Ada" and old.parent_id is None
    (row,) = await store.states("m1")
    assert row["ts"] == 1.5 and row["blink_rate_per_min"] is None and row["talk_secs"] is None
    face = await store.add_participant("m1", "Room · face 2", "browser", "p1", 2)
    assert (face.parent_id, face.face_track) == ("p1", 2)
    await store.close()
    version = sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0]
    assert version == SCHEMA_VERSION


async def test_face_and_voice_readings_are_stored_as_columns(tmp_path: Path) -> None:
    store = Store(tmp_path / "m.sqlite3")
    await store.open()
    meeting, _ = await store.create_meeting("M")
    p = await store.add_participant(meeting.id, "Ada", "browser")
    face = FaceMetrics(
        track_id=1,
        calibrated=True,
        blinks=3,
        blink_rate_per_min=12.0,
        ear=0.3,
        smile=2.5,
        is_smiling=True,
        head_pitch=5.0,
        head_yaw=-30.0,
        head_roll=1.0,
        gaze_yaw=-35.0,
        gaze_pitch=2.0,
        looking_away=True,
        aus={"AU06": 1.5, "AU12": 2.5},
        au_labels=("joy",),
        window=None,
    )
    voice_emotion = EmotionScores(
        p.id, 1.0, "voice", {Emotion.NEUTRAL: 0.25, Emotion.ANGRY: 0.75}, 0.75
    )
    voice = VoiceMetrics(
        is_speaking=True,
        talk_secs=4.0,
        talk_share=1.0,
        turns=1,
        arousal=None,
        pitch_hz=180.0,
        loudness_dbfs=-20.0,
        emotion=voice_emotion,
        emotion_status="ok",
    )
    s = state(p.id, 1.0)
    store.add_state(meeting.id, dataclasses.replace(s, face=face, voice=voice, is_speaking=True))
    (row,) = await store.states(meeting.id)
    assert (row["blink_rate_per_min"], row["looking_away"], row["head_yaw"]) == (12.0, 1, -30.0)
    assert (row["smile"], row["au12"], row["au04"], row["au_labels"]) == (2.5, 2.5, None, "joy")
    assert (row["talk_secs"], row["is_speaking"], row["arousal"]) == (4.0, 1, None)
    assert (row["voice_dominant"], row["v_angry"]) == ("angry", 0.75)
    assert row["v_fear"] is None  # a class the voice model cannot express: unknown, not 0
    await store.close()
