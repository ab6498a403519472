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
    FaceWindow,
    ParticipantState,
    Reading,
    TalkFigures,
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
    first, second = await store.read_states(meeting.id)
    assert first.emotion is not None and first.emotion.probs[Emotion.HAPPY] == pytest.approx(0.94)
    assert second.emotion is None  # no face: no emotion, not neutral
    (late,) = await store.read_states(meeting.id, p.id, since_ts=100.2)
    assert late == second
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
    (old_state,) = await store.read_states("m1")
    assert old_state.ts == 1.5 and old_state.face is None and old_state.voice is None
    assert not old_state.face_visible and old_state.emotion is None
    face = await store.add_participant("m1", "Room · face 2", "browser", "p1", 2)
    assert (face.parent_id, face.face_track) == ("p1", 2)
    await store.close()
    version = sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0]
    assert version == SCHEMA_VERSION


async def test_face_voice_talk_and_readings_come_back_typed(tmp_path: Path) -> None:
    store = Store(tmp_path / "m.sqlite3")
    await store.open()
    meeting, _ = await store.create_meeting("M")
    p = await store.add_participant(meeting.id, "Ada", "browser")
    s = dataclasses.replace(
        state(p.id, 1.0),
        face=FACE,
        voice=VOICE,
        talk=TalkFigures(4.0, 1.0, 1, 0, 0.0, 2, 4.0, 1),
        is_speaking=True,
        readings={
            "engagement": Reading(0.7, 0.8, None, ("attention", "participation")),
            "valence": Reading(None, 0.0, "no face in view"),
        },
    )
    store.add_state(meeting.id, s)
    (back,) = await store.read_states(meeting.id)
    assert back.face == FACE and back.voice == VOICE and back.talk == s.talk
    assert back.engagement == 0.7 and back.readings["valence"].reason == "no face in view"
    assert back.readings["engagement"].sources == ("attention", "participation")
    # States that never have a value are not stored, and come back from the registry.
    assert back.readings["bored"].value is None and back.readings["bored"].reason
    assert back.voice is not None and back.voice.emotion is not None
    assert Emotion.FEAR not in back.voice.emotion.probs  # the voice model cannot express it
    page = await store.state_page(meeting.id, limit=10)
    assert page.states == [back] and page.next is None  # the last page has no cursor
    store.add_state(meeting.id, dataclasses.replace(s, ts=s.ts + 1))
    first = await store.state_page(meeting.id, limit=1)
    assert first.states == [back] and first.next is not None
    second = await store.state_page(meeting.id, cursor=first.next, limit=1)
    assert [st.ts for st in second.states] == [s.ts + 1] and second.next is None
    await store.close()


V2_SCHEMA = """
CREATE TABLE meetings (id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at REAL NOT NULL,
    ended_at REAL, host_token_sha256 TEXT NOT NULL, join_token TEXT NOT NULL);
CREATE TABLE participants (id TEXT PRIMARY KEY, meeting_id TEXT NOT NULL, display_name TEXT
    NOT NULL, source TEXT NOT NULL, joined_at REAL NOT NULL, left_at REAL, leave_reason TEXT,
    parent_id TEXT, face_track INTEGER);
CREATE TABLE states (meeting_id TEXT NOT NULL, participant_id TEXT NOT NULL, ts REAL NOT NULL,
    face_visible INTEGER NOT NULL, stale INTEGER NOT NULL, emotion_source TEXT, dominant TEXT,
    confidence REAL, p_angry REAL, p_disgust REAL, p_fear REAL, p_happy REAL, p_sad REAL,
    p_surprise REAL, p_neutral REAL, engagement REAL, is_speaking INTEGER, face_track INTEGER,
    face_calibrated INTEGER, blinks INTEGER, blink_rate_per_min REAL, ear REAL, smile REAL,
    is_smiling INTEGER, head_pitch REAL, head_yaw REAL, head_roll REAL, gaze_yaw REAL,
    gaze_pitch REAL, looking_away INTEGER, au01 REAL, au02 REAL, au04 REAL, au06 REAL, au12 REAL,
    au15 REAL, au25 REAL, au26 REAL, au_labels TEXT, talk_secs REAL, talk_share REAL,
    turns INTEGER, arousal REAL, pitch_hz REAL, loudness_dbfs REAL, voice_status TEXT,
    voice_dominant TEXT, voice_confidence REAL, v_angry REAL, v_disgust REAL, v_fear REAL,
    v_happy REAL, v_sad REAL, v_surprise REAL, v_neutral REAL);
CREATE INDEX states_by_meeting ON states(meeting_id, ts);
INSERT INTO meetings VALUES ('m1', 'Old', 1.0, NULL, 'x', 'j');
INSERT INTO participants VALUES ('p1', 'm1', 'Ada', 'browser', 1.0, 2.0, 'left', NULL, NULL);
INSERT INTO states (meeting_id, participant_id, ts, face_visible, stale, emotion_source,
    dominant, confidence, p_angry, p_disgust, p_fear, p_happy, p_sad, p_surprise, p_neutral,
    is_speaking, face_track, face_calibrated, blinks, smile, is_smiling, head_yaw, looking_away,
    au12, au_labels, talk_secs, talk_share, turns, voice_status, v_neutral, v_happy, v_angry,
    v_sad) VALUES ('m1', 'p1', 1.5, 1, 0, 'face', 'happy', 0.9, 0.02, 0.02, 0.02, 0.9, 0.02,
    0.01, 0.01, 1, 1, 1, 3, 2.5, 1, -30.0, 1, 2.5, 'joy,neutral', 4.0, 1.0, 2, 'ok', 0.25, 0.5,
    0.25, 0.0);
PRAGMA user_version=2;
"""


async def test_version_2_database_is_converted_in_place(tmp_path: Path) -> None:
    path = tmp_path / "v2.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(V2_SCHEMA)
    conn.close()
    store = Store(path)
    await store.open()
    (s,) = await store.read_states("m1")
    assert s.emotion is not None and s.emotion.dominant == Emotion.HAPPY
    assert s.face is not None and s.face.au_labels == ("joy", "neutral")
    assert (s.face.blinks, s.face.head_yaw, s.face.looking_away) == (3, -30.0, True)
    assert s.face.aus == {"AU12": 2.5} and s.face.head_pitch is None
    assert s.voice is not None and s.voice.emotion is not None
    assert s.voice.emotion.probs == {
        Emotion.NEUTRAL: 0.25,
        Emotion.HAPPY: 0.5,
        Emotion.ANGRY: 0.25,
        Emotion.SAD: 0.0,
    }
    assert s.talk is not None and (s.talk.talk_share, s.talk.turns) == (1.0, 2)
    assert s.talk.present is None  # not recorded then: unknown, not made up
    await store.close()
    version = sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0]
    assert version == SCHEMA_VERSION


FACE = FaceMetrics(
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
    window=FaceWindow(5.0, 10, 0.2, 0.6, -4.0, 10.0, {"joy": 6}),
    emotion_relative={"happy": 0.4, "neutral": -0.4},
)
VOICE = VoiceMetrics(
    is_speaking=True,
    talk_secs=4.0,
    arousal=0.3,
    pitch_hz=180.0,
    loudness_dbfs=-20.0,
    emotion=EmotionScores("p", 1.0, "voice", {Emotion.NEUTRAL: 0.25, Emotion.ANGRY: 0.75}, 0.75),
    emotion_status="ok",
    segment_end_ts=0.9,
    prosody_z={"loudness": 1.0, "pitch": -0.5},
    pause_ratio=0.1,
)


def test_ids_never_start_with_a_dash() -> None:
    # `meetmood report -abc` would be read as a flag.
    from bot.store import new_id

    assert not any(new_id().startswith("-") for _ in range(2000))
