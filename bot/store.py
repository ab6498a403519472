"""SQLite store for meetings, participants and participant states.

One connection, owned by one thread (``store`` executor): every call goes
through it, so SQLite never sees two threads and the event loop never blocks on
disk. States are buffered and written in batches every
``storage.flush_interval_secs``; ``close()`` flushes what is left. WAL mode lets
a crash lose at most the unflushed buffer.

Only derived scores are stored, never media. The host token is stored as a
SHA-256 hash; the join token in clear, because the host needs to see the join
link again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from bot.types import EMOTIONS, FACE_AUS, HistoryPoint, LeaveReason, ParticipantState

log = logging.getLogger(__name__)
T = TypeVar("T")

SCHEMA_VERSION = 2
_PROB_COLUMNS = [f"p_{e.value}" for e in EMOTIONS]
_VOICE_PROB_COLUMNS = [f"v_{e.value}" for e in EMOTIONS]
_AU_COLUMNS = [au.lower() for au in FACE_AUS]  # au01, au02, ...

# Version 1 tables. Later versions only add columns (see _MIGRATIONS), so a
# database of any version is brought up to date in place.
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meetings (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at REAL NOT NULL,
    ended_at REAL,
    host_token_sha256 TEXT NOT NULL,
    join_token TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS participants (
    id TEXT PRIMARY KEY,
    meeting_id TEXT NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,
    display_name TEXT NOT NULL,
    source TEXT NOT NULL,
    joined_at REAL NOT NULL,
    left_at REAL,
    leave_reason TEXT
);
CREATE INDEX IF NOT EXISTS participants_by_meeting ON participants(meeting_id, joined_at);
CREATE TABLE IF NOT EXISTS states (
    meeting_id TEXT NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,
    participant_id TEXT NOT NULL REFERENCES participants(id) ON DELETE CASCADE,
    ts REAL NOT NULL,
    face_visible INTEGER NOT NULL,
    stale INTEGER NOT NULL,
    emotion_source TEXT,
    dominant TEXT,
    confidence REAL,
    {", ".join(f"{c} REAL" for c in _PROB_COLUMNS)},
    engagement REAL,
    is_speaking INTEGER
);
CREATE INDEX IF NOT EXISTS states_by_meeting ON states(meeting_id, ts);
CREATE INDEX IF NOT EXISTS states_by_participant ON states(participant_id, ts);
"""

#: Columns each schema version adds: version -> [(table, column, SQL type)].
_MIGRATIONS: dict[int, list[tuple[str, str, str]]] = {
    2: [
        # A face of a room camera is stored as its own participant under its feed.
        ("participants", "parent_id", "TEXT"),
        ("participants", "face_track", "INTEGER"),
        # Landmark readings (issue 3).
        ("states", "face_track", "INTEGER"),
        ("states", "face_calibrated", "INTEGER"),
        ("states", "blinks", "INTEGER"),
        ("states", "blink_rate_per_min", "REAL"),
        ("states", "ear", "REAL"),
        ("states", "smile", "REAL"),
        ("states", "is_smiling", "INTEGER"),
        ("states", "head_pitch", "REAL"),
        ("states", "head_yaw", "REAL"),
        ("states", "head_roll", "REAL"),
        ("states", "gaze_yaw", "REAL"),
        ("states", "gaze_pitch", "REAL"),
        ("states", "looking_away", "INTEGER"),
        *(("states", c, "REAL") for c in _AU_COLUMNS),
        ("states", "au_labels", "TEXT"),
        # Voice readings (issue 4).
        ("states", "talk_secs", "REAL"),
        ("states", "talk_share", "REAL"),
        ("states", "turns", "INTEGER"),
        ("states", "arousal", "REAL"),
        ("states", "pitch_hz", "REAL"),
        ("states", "loudness_dbfs", "REAL"),
        ("states", "voice_status", "TEXT"),
        ("states", "voice_dominant", "TEXT"),
        ("states", "voice_confidence", "REAL"),
        *(("states", c, "REAL") for c in _VOICE_PROB_COLUMNS),
    ],
}


def _opt_int(value: bool | int | None) -> int | None:
    return None if value is None else int(value)


def _state_row(s: ParticipantState) -> dict[str, Any]:
    """One state as column -> value (every column of ``states`` except meeting_id)."""
    e = s.emotion
    row: dict[str, Any] = {
        "participant_id": s.participant_id,
        "ts": s.ts,
        "face_visible": int(s.face_visible),
        "stale": int(s.stale),
        "emotion_source": e.source if e else None,
        "dominant": str(e.dominant) if e else None,
        "confidence": e.confidence if e else None,
        "engagement": s.engagement,
        "is_speaking": _opt_int(s.is_speaking),
    }
    for em, col in zip(EMOTIONS, _PROB_COLUMNS, strict=True):
        row[col] = e.probs.get(em) if e else None
    f = s.face
    aus = (f.aus if f else None) or {}
    row.update(
        face_track=f.track_id if f else None,
        face_calibrated=_opt_int(f.calibrated) if f else None,
        blinks=f.blinks if f else None,
        blink_rate_per_min=f.blink_rate_per_min if f else None,
        ear=f.ear if f else None,
        smile=f.smile if f else None,
        is_smiling=_opt_int(f.is_smiling) if f else None,
        head_pitch=f.head_pitch if f else None,
        head_yaw=f.head_yaw if f else None,
        head_roll=f.head_roll if f else None,
        gaze_yaw=f.gaze_yaw if f else None,
        gaze_pitch=f.gaze_pitch if f else None,
        looking_away=_opt_int(f.looking_away) if f else None,
        au_labels=",".join(f.au_labels) if f else None,
    )
    for au, col in zip(FACE_AUS, _AU_COLUMNS, strict=True):
        row[col] = aus.get(au)
    v = s.voice
    ve = v.emotion if v else None
    row.update(
        talk_secs=v.talk_secs if v else None,
        talk_share=v.talk_share if v else None,
        turns=v.turns if v else None,
        arousal=v.arousal if v else None,
        pitch_hz=v.pitch_hz if v else None,
        loudness_dbfs=v.loudness_dbfs if v else None,
        voice_status=v.emotion_status if v else None,
        voice_dominant=str(ve.dominant) if ve else None,
        voice_confidence=ve.confidence if ve else None,
    )
    for em, col in zip(EMOTIONS, _VOICE_PROB_COLUMNS, strict=True):
        # Classes the voice model cannot express stay NULL, not 0.
        row[col] = ve.probs.get(em) if ve else None
    return row


_STATE_COLUMNS = ["meeting_id", *_state_row(ParticipantState("", 0.0, False, None))]


def _migrate(conn: sqlite3.Connection) -> None:
    """Add the columns of every schema version the database lacks (idempotent)."""
    for version in sorted(_MIGRATIONS):
        for table, column, sql_type in _MIGRATIONS[version]:
            existing = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
            if column not in existing:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}")


def hash_token(token: str) -> str:
    """SHA-256 hex of a secret token (tokens are random, so no salt is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_id(nbytes: int = 9) -> str:
    """A random URL-safe identifier."""
    return secrets.token_urlsafe(nbytes)


@dataclass(frozen=True, slots=True)
class MeetingRecord:
    """A stored meeting."""

    id: str
    name: str
    created_at: float
    ended_at: float | None
    host_token_sha256: str
    join_token: str

    def host_token_matches(self, token: str | None) -> bool:
        """Constant-time check of a host token."""
        if not token:
            return False
        return secrets.compare_digest(hash_token(token), self.host_token_sha256)

    def join_token_matches(self, token: str | None) -> bool:
        """Constant-time check of a join token."""
        return bool(token) and secrets.compare_digest(str(token), self.join_token)


@dataclass(frozen=True, slots=True)
class ParticipantRecord:
    """A stored participant."""

    id: str
    meeting_id: str
    display_name: str
    source: str
    joined_at: float
    left_at: float | None
    leave_reason: str | None
    #: For one face of a room camera: the participant whose feed it is in.
    parent_id: str | None = None
    #: For one face of a room camera: its track id in that feed.
    face_track: int | None = None


@dataclass(frozen=True, slots=True)
class StoredState:
    """A state row keyed by meeting (states carry the participant id)."""

    meeting_id: str
    state: ParticipantState


class Store:
    """The meetmood database. Methods are coroutines; SQLite runs on one thread."""

    def __init__(self, path: Path, flush_interval_secs: float = 0.5) -> None:
        """Prepare (not yet open) the store at ``path`` (``:memory:`` works too)."""
        self.path = path
        self.flush_interval_secs = flush_interval_secs
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self._conn: sqlite3.Connection | None = None
        self._pending: list[StoredState] = []
        self._flush_task: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------

    async def open(self) -> None:
        """Open or create the database, then start the periodic flush."""
        await self._call(self._open_sync)
        self._flush_task = asyncio.create_task(self._flush_loop(), name="store.flush")

    async def close(self) -> None:
        """Flush buffered states and close the database."""
        if self._flush_task is not None:
            self._flush_task.cancel()
            try:
                await self._flush_task
            except asyncio.CancelledError:
                pass
            self._flush_task = None
        if self._conn is not None:
            await self.flush()
            await self._call(self._close_sync)
        self._executor.shutdown(wait=True)

    def _open_sync(self) -> None:
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            conn.close()
            raise RuntimeError(
                f"database {self.path} has schema version {version}, newer than this "
                f"meetmood understands ({SCHEMA_VERSION}); upgrade meetmood"
            )
        conn.executescript(_SCHEMA)
        _migrate(conn)
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        self._conn = conn

    def _close_sync(self) -> None:
        assert self._conn is not None
        self._conn.close()
        self._conn = None

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("store is not open")
        return self._conn

    # -- meetings ----------------------------------------------------------------

    async def create_meeting(self, name: str) -> tuple[MeetingRecord, str]:
        """Create a meeting; returns it and its host token (shown once, stored hashed)."""
        host_token = secrets.token_urlsafe(24)
        record = MeetingRecord(
            id=new_id(),
            name=name,
            created_at=time.time(),
            ended_at=None,
            host_token_sha256=hash_token(host_token),
            join_token=secrets.token_urlsafe(12),
        )
        await self._call(self._insert_meeting, record)
        return record, host_token

    def _insert_meeting(self, m: MeetingRecord) -> None:
        self._db.execute(
            "INSERT INTO meetings (id, name, created_at, ended_at, host_token_sha256, join_token)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (m.id, m.name, m.created_at, m.ended_at, m.host_token_sha256, m.join_token),
        )

    async def get_meeting(self, meeting_id: str) -> MeetingRecord | None:
        """A meeting by id, or None."""
        return await self._call(self._get_meeting, meeting_id)

    def _get_meeting(self, meeting_id: str) -> MeetingRecord | None:
        row = self._db.execute("SELECT * FROM meetings WHERE id = ?", (meeting_id,)).fetchone()
        return MeetingRecord(**dict(row)) if row else None

    async def list_meetings(self) -> list[MeetingRecord]:
        """All meetings, newest first."""
        return await self._call(self._list_meetings)

    def _list_meetings(self) -> list[MeetingRecord]:
        rows = self._db.execute("SELECT * FROM meetings ORDER BY created_at DESC").fetchall()
        return [MeetingRecord(**dict(r)) for r in rows]

    # -- participants ------------------------------------------------------------

    async def add_participant(
        self,
        meeting_id: str,
        display_name: str,
        source: str,
        parent_id: str | None = None,
        face_track: int | None = None,
        participant_id: str | None = None,
    ) -> ParticipantRecord:
        """Record a participant who just joined (or a new face in a participant's feed)."""
        record = ParticipantRecord(
            id=participant_id or new_id(),
            meeting_id=meeting_id,
            display_name=display_name,
            source=source,
            joined_at=time.time(),
            left_at=None,
            leave_reason=None,
            parent_id=parent_id,
            face_track=face_track,
        )
        await self._call(self._insert_participant, record)
        return record

    def _insert_participant(self, p: ParticipantRecord) -> None:
        self._db.execute(
            "INSERT INTO participants"
            " (id, meeting_id, display_name, source, joined_at, parent_id, face_track)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (p.id, p.meeting_id, p.display_name, p.source, p.joined_at, p.parent_id, p.face_track),
        )

    async def end_participant(self, participant_id: str, ts: float, reason: LeaveReason) -> None:
        """Record that a participant left (first call wins)."""
        await self._call(self._end_participant, participant_id, ts, reason)

    def _end_participant(self, participant_id: str, ts: float, reason: str) -> None:
        self._db.execute(
            "UPDATE participants SET left_at = ?, leave_reason = ?"
            " WHERE id = ? AND left_at IS NULL",
            (ts, reason, participant_id),
        )

    async def close_dangling_participants(self) -> int:
        """Mark participants still 'present' after a crash as gone; returns how many."""
        return await self._call(self._close_dangling)

    def _close_dangling(self) -> int:
        # Their last stored state is the best estimate of when they were last seen.
        cur = self._db.execute(
            "UPDATE participants SET leave_reason = 'server_restart', left_at = COALESCE("
            " (SELECT MAX(ts) FROM states WHERE states.participant_id = participants.id),"
            " joined_at) WHERE left_at IS NULL"
        )
        return cur.rowcount

    async def list_participants(self, meeting_id: str) -> list[ParticipantRecord]:
        """A meeting's participants in joining order."""
        return await self._call(self._list_participants, meeting_id)

    def _list_participants(self, meeting_id: str) -> list[ParticipantRecord]:
        rows = self._db.execute(
            "SELECT * FROM participants WHERE meeting_id = ? ORDER BY joined_at", (meeting_id,)
        ).fetchall()
        return [ParticipantRecord(**dict(r)) for r in rows]

    # -- states ------------------------------------------------------------------

    def add_state(self, meeting_id: str, state: ParticipantState) -> None:
        """Buffer a state; it is written at the next flush. Call from the event loop."""
        self._pending.append(StoredState(meeting_id, state))

    async def flush(self) -> None:
        """Write buffered states now."""
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        try:
            await self._call(self._insert_states, batch)
        except sqlite3.Error:
            # Keep them for the next try rather than losing a batch to a transient error
            # (e.g. a locked database).
            self._pending[:0] = batch
            log.exception("storing participant states failed", extra={"count": len(batch)})

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval_secs)
            await self.flush()

    def _insert_states(self, batch: list[StoredState]) -> None:
        rows = [(item.meeting_id, *_state_row(item.state).values()) for item in batch]
        marks = ", ".join("?" * len(_STATE_COLUMNS))
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                f"INSERT INTO states ({', '.join(_STATE_COLUMNS)}) VALUES ({marks})", rows
            )

    async def history(self, meeting_id: str, since_ts: float) -> dict[str, list[HistoryPoint]]:
        """Each participant's timeline since ``since_ts``, oldest first (flushes first)."""
        await self.flush()
        return await self._call(self._history, meeting_id, since_ts)

    def _history(self, meeting_id: str, since_ts: float) -> dict[str, list[HistoryPoint]]:
        rows = self._db.execute(
            f"SELECT participant_id, ts, face_visible, emotion_source, {', '.join(_PROB_COLUMNS)}"
            " FROM states WHERE meeting_id = ? AND ts >= ? ORDER BY ts",
            (meeting_id, since_ts),
        ).fetchall()
        out: dict[str, list[HistoryPoint]] = {}
        for r in rows:
            probs = None
            if r["emotion_source"] is not None:
                probs = {e.value: r[f"p_{e.value}"] for e in EMOTIONS}
            out.setdefault(r["participant_id"], []).append(
                HistoryPoint(ts=r["ts"], face_visible=bool(r["face_visible"]), probs=probs)
            )
        return out

    async def states(
        self, meeting_id: str, participant_id: str | None = None, since_ts: float = 0.0
    ) -> list[dict[str, Any]]:
        """Stored state rows as plain dicts (flushes first)."""
        await self.flush()
        return await self._call(self._states, meeting_id, participant_id, since_ts)

    def _states(
        self, meeting_id: str, participant_id: str | None, since_ts: float
    ) -> list[dict[str, Any]]:
        sql = "SELECT * FROM states WHERE meeting_id = ? AND ts >= ?"
        args: list[Any] = [meeting_id, since_ts]
        if participant_id is not None:
            sql += " AND participant_id = ?"
            args.append(participant_id)
        rows = self._db.execute(sql + " ORDER BY ts", args).fetchall()
        return [dict(r) for r in rows]
