"""Bringing an older meetmood database up to the current schema, in place.

Version 1 had one column per face probability; version 2 added a column per
landmark and voice reading. Version 3 stores each field group as JSON (see
:mod:`bot.store`). Older states are converted row by row into
:class:`~bot.types.ParticipantState` and written in the new form, inside the
transaction that opens the database, so a failed migration changes nothing.
Version 4 adds the ``summaries`` table (:func:`migrate_v3`); nothing is converted.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from bot.types import (
    EMOTIONS,
    FACE_AUS,
    EmotionScores,
    FaceMetrics,
    ParticipantState,
    TalkFigures,
    VoiceMetrics,
)

#: Participant columns added after version 1.
_PARTICIPANT_COLUMNS = (("parent_id", "TEXT"), ("face_track", "INTEGER"))
_BATCH = 2000


def run_script(conn: sqlite3.Connection, script: str) -> None:
    """Run ``;``-separated statements one by one (``executescript`` would commit)."""
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}


def _bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _emotion(pid: str, ts: float, source: str, probs: dict[str, Any]) -> EmotionScores | None:
    known = {k: v for k, v in probs.items() if v is not None}
    return EmotionScores.of(pid, ts, source, known) if known else None  # type: ignore[arg-type]


def v2_state(row: dict[str, Any]) -> ParticipantState:
    """A version 1 or 2 state row as a :class:`ParticipantState` (absent columns read None)."""
    pid, ts = row["participant_id"], row["ts"]
    emotion = None
    if row.get("emotion_source") is not None:
        emotion = _emotion(pid, ts, "face", {e.value: row.get(f"p_{e.value}") for e in EMOTIONS})
    face = None
    if row.get("face_track") is not None:
        aus = {au: row[au.lower()] for au in FACE_AUS if row.get(au.lower()) is not None}
        labels = row.get("au_labels")
        face = FaceMetrics(
            track_id=int(row["face_track"]),
            calibrated=bool(row.get("face_calibrated")),
            blinks=int(row.get("blinks") or 0),
            blink_rate_per_min=row.get("blink_rate_per_min"),
            ear=row.get("ear"),
            smile=row.get("smile"),
            is_smiling=_bool(row.get("is_smiling")),
            head_pitch=row.get("head_pitch"),
            head_yaw=row.get("head_yaw"),
            head_roll=row.get("head_roll"),
            gaze_yaw=row.get("gaze_yaw"),
            gaze_pitch=row.get("gaze_pitch"),
            looking_away=_bool(row.get("looking_away")),
            aus=aus or None,
            au_labels=tuple(labels.split(",")) if labels else (),
            window=None,
        )
    voice = None
    talk = None
    if row.get("voice_status") is not None:
        voice_emotion = _emotion(
            pid, ts, "voice", {e.value: row.get(f"v_{e.value}") for e in EMOTIONS}
        )
        voice = VoiceMetrics(
            is_speaking=bool(row.get("is_speaking")),
            talk_secs=float(row.get("talk_secs") or 0.0),
            arousal=row.get("arousal"),
            pitch_hz=row.get("pitch_hz"),
            loudness_dbfs=row.get("loudness_dbfs"),
            emotion=voice_emotion,
            emotion_status=row["voice_status"],
        )
        talk = TalkFigures(
            talk_secs=float(row.get("talk_secs") or 0.0),
            talk_share=row.get("talk_share"),
            turns=int(row.get("turns") or 0),
        )
    speaking = row.get("is_speaking")
    return ParticipantState(
        participant_id=pid,
        ts=ts,
        face_visible=bool(row["face_visible"]),
        emotion=emotion,
        is_speaking=None if speaking is None else bool(speaking),
        stale=bool(row["stale"]),
        face=face,
        voice=voice,
        talk=talk,
    )


def migrate(
    conn: sqlite3.Connection,
    version: int,
    create_states: Callable[[], None],
    state_row: Callable[[str, ParticipantState], tuple[Any, ...]],
) -> None:
    """Bring a database of ``version`` (0 = new) to the current schema; inside a transaction."""
    if version == 0 or version >= 3:
        return
    have = _columns(conn, "participants")
    for column, sql_type in _PARTICIPANT_COLUMNS:
        if column not in have:
            conn.execute(f"ALTER TABLE participants ADD COLUMN {column} {sql_type}")
    conn.execute("DROP INDEX IF EXISTS states_by_meeting")
    conn.execute("DROP INDEX IF EXISTS states_by_participant")
    conn.execute("ALTER TABLE states RENAME TO states_v2")
    create_states()
    cur = conn.execute("SELECT * FROM states_v2 ORDER BY ts")
    marks = ", ".join("?" * 12)
    while rows := cur.fetchmany(_BATCH):
        converted = []
        for r in rows:
            data = dict(r)
            converted.append(state_row(data["meeting_id"], v2_state(data)))
        conn.executemany(
            "INSERT INTO states (meeting_id, participant_id, ts, face_visible, is_speaking, stale,"
            f" engagement, emotion, face, voice, talk, readings) VALUES ({marks})",
            converted,
        )
    conn.execute("DROP TABLE states_v2")


def migrate_v3(
    conn: sqlite3.Connection, version: int, create_summaries: Callable[[], None]
) -> None:
    """Bring a new, version 3 (or older, already converted) database to version 4.

    Version 4 adds the ``summaries`` table; no row changes.
    """
    if version < 4:
        create_summaries()
