"""SQLite store for meetings, participants, fused states, the room, its moments and summaries.

One connection, owned by one thread (``store`` executor): every call goes
through it, so SQLite never sees two threads and the event loop never blocks on
disk. Writes are queued in order (:meth:`Store.add_participant_record`,
:meth:`Store.add_state`, ...) and written in one transaction every
``storage.flush_interval_secs``; ``close()`` flushes what is left, and every read
flushes first. WAL mode lets a crash lose at most the unflushed queue.

States are stored with their field groups as JSON (``emotion``, ``face``,
``voice``, ``talk``, ``readings``), so adding a field or a registry state needs no
schema migration; ``ts``, ``face_visible``, ``is_speaking``, ``stale`` and
``engagement`` are columns for queries. :meth:`Store.read_states` gives them back as
:class:`~bot.types.ParticipantState`. Readings are stored compactly (see
:func:`encode_readings`): about 1.2 kB a state, 2 states a second per participant at the
default sampling.

Only derived scores are stored, never media. The host token is stored as a
SHA-256 hash; the join token in clear, because the host needs to see the join
link again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import sqlite3
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import TypeAdapter

from bot.fusion.registry import BY_NAME, REGISTRY
from bot.store_migrations import migrate, migrate_v3, run_script
from bot.types import (
    EmotionScores,
    FaceMetrics,
    HistoryPoint,
    LeaveReason,
    Moment,
    ParticipantState,
    Reading,
    RoomPoint,
    RoomState,
    SummaryEvent,
    TalkFigures,
    VoiceMetrics,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

SCHEMA_VERSION = 4

_SCHEMA = """
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
    leave_reason TEXT,
    parent_id TEXT,
    face_track INTEGER
);
CREATE INDEX IF NOT EXISTS participants_by_meeting ON participants(meeting_id, joined_at);
"""

_STATES = """
CREATE TABLE IF NOT EXISTS states (
    id INTEGER PRIMARY KEY,
    meeting_id TEXT NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,
    participant_id TEXT NOT NULL REFERENCES participants(id) ON DELETE CASCADE,
    ts REAL NOT NULL,
    face_visible INTEGER NOT NULL,
    is_speaking INTEGER,
    stale INTEGER NOT NULL,
    engagement REAL,
    emotion TEXT,
    face TEXT,
    voice TEXT,
    talk TEXT,
    readings TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS states_by_meeting ON states(meeting_id, ts);
CREATE INDEX IF NOT EXISTS states_by_participant ON states(participant_id, ts);
CREATE TABLE IF NOT EXISTS room_states (
    id INTEGER PRIMARY KEY,
    meeting_id TEXT NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,
    ts REAL NOT NULL,
    engagement REAL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS room_by_meeting ON room_states(meeting_id, ts);
CREATE TABLE IF NOT EXISTS moments (
    id INTEGER PRIMARY KEY,
    meeting_id TEXT NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS moments_by_meeting ON moments(meeting_id, ts);
"""

#: Version 4: mood summaries, each a :class:`~bot.types.SummaryEvent` as JSON.
SUMMARIES = """
CREATE TABLE IF NOT EXISTS summaries (
    id INTEGER PRIMARY KEY,
    meeting_id TEXT NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,
    ts REAL NOT NULL,
    window_start REAL NOT NULL,
    window_end REAL NOT NULL,
    source TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS summaries_by_meeting ON summaries(meeting_id, ts);
"""

_EMOTION = TypeAdapter(EmotionScores)
_FACE = TypeAdapter(FaceMetrics)
_VOICE = TypeAdapter(VoiceMetrics)
_TALK = TypeAdapter(TalkFigures)
_ROOM = TypeAdapter(RoomState)
_MOMENT = TypeAdapter(Moment)
#: The history curves: reading name -> HistoryPoint field.
_CURVES = ("engagement", "attention", "expressiveness", "participation", "valence", "arousal")


def _json(adapter: TypeAdapter[Any], value: Any) -> str | None:
    return None if value is None else adapter.dump_json(value).decode()


def _load(adapter: TypeAdapter[T], text: str | None) -> T | None:
    return None if text is None else adapter.validate_json(text)


def encode_readings(readings: Mapping[str, Reading]) -> str:
    """Readings as compact JSON: ``name -> [value, confidence, reason, sources]``.

    Values keep 4 decimals and confidences 3; ``sources`` is a bit mask over the
    registry entry's ``inputs``; trailing empty parts are left out. Entries that
    always read ``None`` and aliases are not stored (they are restored on reading).
    """
    out: dict[str, list[Any]] = {}
    for name, r in readings.items():
        d = BY_NAME.get(name)
        if d is None or d.null_reason is not None or d.alias_of is not None:
            continue
        mask = sum(1 << d.inputs.index(s) for s in r.sources if s in d.inputs)
        item: list[Any] = [
            None if r.value is None else round(r.value, 4),
            round(r.confidence, 3),
            r.reason,
            mask,
        ]
        while len(item) > 2 and item[-1] in (None, 0):
            item.pop()
        out[name] = item
    return json.dumps(out, separators=(",", ":"))


def decode_readings(text: str) -> dict[str, Reading]:
    """The inverse of :func:`encode_readings`, with the always-null states and aliases restored."""
    data = json.loads(text)
    out: dict[str, Reading] = {}
    for d in REGISTRY:
        if d.null_reason is not None:
            out[d.name] = Reading(None, 0.0, d.null_reason)
            continue
        if d.alias_of is not None:
            target = out.get(d.alias_of)
            if target is not None:
                note = f"same as {d.alias_of}" if target.value is not None else target.reason
                out[d.name] = Reading(target.value, target.confidence, note, target.sources)
            continue
        item = data.get(d.name)
        if item is None:
            continue
        value, confidence = item[0], item[1]
        reason = item[2] if len(item) > 2 else None
        mask = item[3] if len(item) > 3 else 0
        sources = tuple(s for k, s in enumerate(d.inputs) if mask & (1 << k))
        out[d.name] = Reading(value, confidence, reason, sources)
    return out


def _state_row(meeting_id: str, s: ParticipantState) -> tuple[Any, ...]:
    return (
        meeting_id,
        s.participant_id,
        s.ts,
        int(s.face_visible),
        None if s.is_speaking is None else int(s.is_speaking),
        int(s.stale),
        s.engagement,
        _json(_EMOTION, s.emotion),
        _json(_FACE, s.face),
        _json(_VOICE, s.voice),
        _json(_TALK, s.talk),
        encode_readings(s.readings),
    )


_STATE_COLUMNS = (
    "meeting_id, participant_id, ts, face_visible, is_speaking, stale, engagement,"
    " emotion, face, voice, talk, readings"
)


def _state_of(row: sqlite3.Row) -> ParticipantState:
    speaking = row["is_speaking"]
    return ParticipantState(
        participant_id=row["participant_id"],
        ts=row["ts"],
        face_visible=bool(row["face_visible"]),
        emotion=_load(_EMOTION, row["emotion"]),
        is_speaking=None if speaking is None else bool(speaking),
        stale=bool(row["stale"]),
        face=_load(_FACE, row["face"]),
        voice=_load(_VOICE, row["voice"]),
        talk=_load(_TALK, row["talk"]),
        readings=decode_readings(row["readings"]),
    )


def hash_token(token: str) -> str:
    """SHA-256 hex of a secret token (tokens are random, so no salt is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_id(nbytes: int = 9) -> str:
    """A random URL-safe identifier that never starts with "-" (a CLI would read a flag)."""
    while True:
        ident = secrets.token_urlsafe(nbytes)
        if not ident.startswith("-"):
            return ident


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
    #: For one face of a room camera: its slot in that feed.
    face_track: int | None = None

    @classmethod
    def new(
        cls,
        meeting_id: str,
        display_name: str,
        source: str,
        joined_at: float,
        parent_id: str | None = None,
        face_track: int | None = None,
    ) -> ParticipantRecord:
        """A participant who joins now (a fresh random id)."""
        return cls(
            new_id(), meeting_id, display_name, source, joined_at, None, None, parent_id, face_track
        )


#: A queued write: SQL and a function giving its parameters (run on the store thread).
_Write = tuple[str, Callable[[], tuple[Any, ...]]]


@dataclass(frozen=True, slots=True)
class TimelineRow:
    """A stored state reduced to what questions about the meeting need (:meth:`Store.timeline`).

    ``values`` and ``reasons`` follow the order of the readings asked for.
    """

    participant_id: str
    ts: float
    face_visible: bool
    is_speaking: bool | None
    talk_secs: float | None
    values: tuple[float | None, ...]
    reasons: tuple[str | None, ...]


@dataclass(frozen=True, slots=True)
class RoomTimelineRow:
    """A stored room state reduced to its figures and who was speaking."""

    ts: float
    engagement: float | None
    valence: float | None
    arousal: float | None
    speaking: tuple[str, ...]


def _stride(count: int, max_rows: int) -> int:
    return max(1, -(-count // max(1, max_rows)))


@dataclass(frozen=True, slots=True)
class StatePage:
    """A page of stored states and the cursor for the next one.

    Attributes:
        states: ``(row id, state)`` in row order.
        next_after: Pass as ``after`` to get the rows stored after these.
    """

    states: list[tuple[int, ParticipantState]]
    next_after: int


class Store:
    """The meetmood database. Methods are coroutines; SQLite runs on one thread."""

    def __init__(self, path: Path, flush_interval_secs: float = 0.5) -> None:
        """Prepare (not yet open) the store at ``path`` (``:memory:`` works too)."""
        self.path = path
        self.flush_interval_secs = flush_interval_secs
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self._conn: sqlite3.Connection | None = None
        # Queued writes, in order: (SQL, parameters) built on the store thread.
        self._pending: list[_Write] = []
        self._flush_task: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------

    async def open(self) -> None:
        """Open or create the database, then start the periodic flush."""
        await self._call(self._open_sync)
        self._flush_task = asyncio.create_task(self._flush_loop(), name="store.flush")

    async def close(self) -> None:
        """Flush queued writes and close the database."""
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
        with conn:
            conn.execute("BEGIN")
            run_script(conn, _SCHEMA)
            migrate(conn, version, lambda: run_script(conn, _STATES), _state_row)
            run_script(conn, _STATES)
            migrate_v3(conn, version, lambda: run_script(conn, SUMMARIES))
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

    async def delete_meeting(self, meeting_id: str) -> None:
        """Remove a meeting and everything stored with it (after writing what is queued)."""
        await self.flush()
        await self._call(self._delete_meeting, meeting_id)

    def _delete_meeting(self, meeting_id: str) -> None:
        with self._db:
            # Participants, states, room states, moments and summaries cascade.
            self._db.execute("DELETE FROM meetings WHERE id = ?", (meeting_id,))

    # -- queued writes -------------------------------------------------------------

    def _queue(self, sql: str, args: Callable[[], tuple[Any, ...]]) -> None:
        """Queue one statement; ``args`` runs on the store thread, so JSON is built off the loop."""
        self._pending.append((sql, args))

    def add_participant_record(self, p: ParticipantRecord) -> None:
        """Queue a participant who joined. Call from the event loop."""
        self._queue(
            "INSERT INTO participants (id, meeting_id, display_name, source, joined_at,"
            " parent_id, face_track) VALUES (?, ?, ?, ?, ?, ?, ?)",
            lambda: (
                p.id,
                p.meeting_id,
                p.display_name,
                p.source,
                p.joined_at,
                p.parent_id,
                p.face_track,
            ),
        )

    def end_participant(self, participant_id: str, ts: float, reason: LeaveReason) -> None:
        """Queue that a participant left (the first leave wins). Call from the event loop."""
        self._queue(
            "UPDATE participants SET left_at = ?, leave_reason = ?"
            " WHERE id = ? AND left_at IS NULL",
            lambda: (ts, reason, participant_id),
        )

    def add_state(self, meeting_id: str, state: ParticipantState) -> None:
        """Queue a participant state. Call from the event loop."""
        self._queue(
            f"INSERT INTO states ({_STATE_COLUMNS}) VALUES ({', '.join('?' * 12)})",
            lambda: _state_row(meeting_id, state),
        )

    def add_room(self, meeting_id: str, room: RoomState) -> None:
        """Queue a room state. Call from the event loop."""
        self._queue(
            "INSERT INTO room_states (meeting_id, ts, engagement, data) VALUES (?, ?, ?, ?)",
            lambda: (meeting_id, room.ts, room.engagement, _json(_ROOM, room)),
        )

    def add_summary(self, meeting_id: str, summary: SummaryEvent) -> None:
        """Queue a mood summary. Call from the event loop."""
        self._queue(
            "INSERT INTO summaries (meeting_id, ts, window_start, window_end, source, data)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            lambda: (
                meeting_id,
                summary.ts,
                summary.window_start,
                summary.window_end,
                summary.source,
                summary.model_dump_json(),
            ),
        )

    def add_moment(self, meeting_id: str, moment: Moment) -> None:
        """Queue a notable moment. Call from the event loop."""
        self._queue(
            "INSERT INTO moments (meeting_id, ts, kind, data) VALUES (?, ?, ?, ?)",
            lambda: (meeting_id, moment.ts, moment.kind, _json(_MOMENT, moment)),
        )

    async def flush(self) -> None:
        """Write queued writes now, in order, in one transaction."""
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        try:
            await self._call(self._write, batch)
        except sqlite3.Error:
            # Keep them for the next try rather than losing a batch to a transient error
            # (e.g. a locked database).
            self._pending[:0] = batch
            log.exception("storing meeting data failed", extra={"count": len(batch)})

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval_secs)
            await self.flush()

    def _write(self, batch: list[_Write]) -> None:
        with self._db:
            self._db.execute("BEGIN")
            for sql, args in batch:
                self._db.execute(sql, args())

    # -- participants ------------------------------------------------------------

    async def add_participant(
        self,
        meeting_id: str,
        display_name: str,
        source: str,
        parent_id: str | None = None,
        face_track: int | None = None,
    ) -> ParticipantRecord:
        """Record a participant who joined now, and write it at once."""
        record = ParticipantRecord.new(
            meeting_id, display_name, source, time.time(), parent_id, face_track
        )
        self.add_participant_record(record)
        await self.flush()
        return record

    async def close_dangling_participants(self) -> int:
        """Mark participants still 'present' after a crash as gone; returns how many."""
        await self.flush()
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
        """A meeting's participants in joining order (flushes first)."""
        await self.flush()
        return await self._call(self._list_participants, meeting_id)

    def _list_participants(self, meeting_id: str) -> list[ParticipantRecord]:
        rows = self._db.execute(
            "SELECT * FROM participants WHERE meeting_id = ? ORDER BY joined_at", (meeting_id,)
        ).fetchall()
        return [ParticipantRecord(**dict(r)) for r in rows]

    # -- reads -------------------------------------------------------------------

    async def history(self, meeting_id: str, since_ts: float) -> dict[str, list[HistoryPoint]]:
        """Each participant's timeline since ``since_ts``, oldest first (flushes first)."""
        await self.flush()
        return await self._call(self._history, meeting_id, since_ts)

    def _history(self, meeting_id: str, since_ts: float) -> dict[str, list[HistoryPoint]]:
        curves = ", ".join(f"json_extract(readings, '$.{c}[0]') AS {c}" for c in _CURVES)
        rows = self._db.execute(
            f"SELECT participant_id, ts, face_visible, is_speaking, {curves}"
            " FROM states WHERE meeting_id = ? AND ts >= ? ORDER BY ts",
            (meeting_id, since_ts),
        ).fetchall()
        out: dict[str, list[HistoryPoint]] = {}
        for r in rows:
            speaking = r["is_speaking"]
            out.setdefault(r["participant_id"], []).append(
                HistoryPoint(
                    ts=r["ts"],
                    face_visible=bool(r["face_visible"]),
                    is_speaking=None if speaking is None else bool(speaking),
                    **{c: r[c] for c in _CURVES},
                )
            )
        return out

    async def read_states(
        self, meeting_id: str, participant_id: str | None = None, since_ts: float = 0.0
    ) -> list[ParticipantState]:
        """Stored states of a meeting (or one participant) since ``since_ts``, in time order."""
        await self.flush()
        return await self._call(self._read_states, meeting_id, participant_id, since_ts)

    def _read_states(
        self, meeting_id: str, participant_id: str | None, since_ts: float
    ) -> list[ParticipantState]:
        sql = "SELECT * FROM states WHERE meeting_id = ? AND ts >= ?"
        args: list[Any] = [meeting_id, since_ts]
        if participant_id is not None:
            sql += " AND participant_id = ?"
            args.append(participant_id)
        rows = self._db.execute(sql + " ORDER BY ts, id", args).fetchall()
        return [_state_of(r) for r in rows]

    async def state_page(
        self,
        meeting_id: str,
        participant_id: str | None = None,
        since_ts: float = 0.0,
        after: int = 0,
        limit: int = 1000,
    ) -> StatePage:
        """At most ``limit`` states stored after row ``after`` (a cursor), in row order."""
        await self.flush()
        return await self._call(
            self._state_page, meeting_id, participant_id, since_ts, after, limit
        )

    def _state_page(
        self, meeting_id: str, participant_id: str | None, since_ts: float, after: int, limit: int
    ) -> StatePage:
        sql = "SELECT * FROM states WHERE meeting_id = ? AND ts >= ? AND id > ?"
        args: list[Any] = [meeting_id, since_ts, after]
        if participant_id is not None:
            sql += " AND participant_id = ?"
            args.append(participant_id)
        rows = self._db.execute(sql + " ORDER BY id LIMIT ?", [*args, limit]).fetchall()
        states = [(int(r["id"]), _state_of(r)) for r in rows]
        return StatePage(states, states[-1][0] if states else after)

    async def room_history(self, meeting_id: str, since_ts: float) -> list[RoomPoint]:
        """The room's timeline since ``since_ts`` (flushes first)."""
        await self.flush()
        return await self._call(self._room_history, meeting_id, since_ts)

    def _room_history(self, meeting_id: str, since_ts: float) -> list[RoomPoint]:
        rows = self._db.execute(
            "SELECT ts, engagement, json_extract(data, '$.valence') AS valence,"
            " json_extract(data, '$.arousal') AS arousal FROM room_states"
            " WHERE meeting_id = ? AND ts >= ? ORDER BY ts",
            (meeting_id, since_ts),
        ).fetchall()
        return [RoomPoint(**dict(r)) for r in rows]

    async def timeline(
        self,
        meeting_id: str,
        since_ts: float,
        until_ts: float,
        readings: tuple[str, ...],
        max_rows: int = 20_000,
    ) -> tuple[list[TimelineRow], int]:
        """States from ``since_ts`` to ``until_ts`` with only the given readings (flushes first).

        When more than ``max_rows`` are stored there, only every n-th state of each
        participant is read; returns the rows (time order) and that n (1 when all were read).

        Raises:
            ValueError: a reading that is not stored (unknown, an alias, or never estimable).
        """
        for name in readings:
            d = BY_NAME.get(name)
            if d is None or d.alias_of is not None or d.null_reason is not None:
                raise ValueError(f"{name!r} is not a stored reading")
        await self.flush()
        return await self._call(self._timeline, meeting_id, since_ts, until_ts, readings, max_rows)

    def _timeline(
        self,
        meeting_id: str,
        since_ts: float,
        until_ts: float,
        readings: tuple[str, ...],
        max_rows: int,
    ) -> tuple[list[TimelineRow], int]:
        where = "meeting_id = ? AND ts >= ? AND ts <= ?"
        args = (meeting_id, since_ts, until_ts)
        (count,) = self._db.execute(f"SELECT COUNT(*) FROM states WHERE {where}", args).fetchone()
        stride = _stride(count, max_rows)
        # Reading names come from the registry (checked above), never from the request.
        cols = ", ".join(
            f"json_extract(readings, '$.{n}[0]') AS v{k},"
            f" json_extract(readings, '$.{n}[2]') AS r{k}"
            for k, n in enumerate(readings)
        )
        rows = self._db.execute(
            f"SELECT participant_id, ts, face_visible, is_speaking,"
            f" json_extract(talk, '$.talk_secs') AS talk_secs{', ' + cols if cols else ''}"
            f" FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY participant_id ORDER BY ts, id)"
            f" AS k FROM states WHERE {where}) WHERE (k - 1) % ? = 0 ORDER BY ts, id",
            (*args, stride),
        ).fetchall()
        out = []
        for r in rows:
            speaking = r["is_speaking"]
            out.append(
                TimelineRow(
                    participant_id=r["participant_id"],
                    ts=r["ts"],
                    face_visible=bool(r["face_visible"]),
                    is_speaking=None if speaking is None else bool(speaking),
                    talk_secs=r["talk_secs"],
                    values=tuple(r[f"v{k}"] for k in range(len(readings))),
                    reasons=tuple(r[f"r{k}"] for k in range(len(readings))),
                )
            )
        return out, stride

    async def room_timeline(
        self, meeting_id: str, since_ts: float, until_ts: float, max_rows: int = 10_000
    ) -> tuple[list[RoomTimelineRow], int]:
        """The room's figures and speakers between two times, thinned like :meth:`timeline`."""
        await self.flush()
        return await self._call(self._room_timeline, meeting_id, since_ts, until_ts, max_rows)

    def _room_timeline(
        self, meeting_id: str, since_ts: float, until_ts: float, max_rows: int
    ) -> tuple[list[RoomTimelineRow], int]:
        where = "meeting_id = ? AND ts >= ? AND ts <= ?"
        args = (meeting_id, since_ts, until_ts)
        (count,) = self._db.execute(
            f"SELECT COUNT(*) FROM room_states WHERE {where}", args
        ).fetchone()
        stride = _stride(count, max_rows)
        rows = self._db.execute(
            "SELECT ts, engagement, json_extract(data, '$.valence') AS valence,"
            " json_extract(data, '$.arousal') AS arousal,"
            " json_extract(data, '$.speaking') AS speaking"
            f" FROM (SELECT *, ROW_NUMBER() OVER (ORDER BY ts, id) AS k FROM room_states"
            f" WHERE {where}) WHERE (k - 1) % ? = 0 ORDER BY ts, id",
            (*args, stride),
        ).fetchall()
        return [
            RoomTimelineRow(
                ts=r["ts"],
                engagement=r["engagement"],
                valence=r["valence"],
                arousal=r["arousal"],
                speaking=tuple(json.loads(r["speaking"] or "[]")),
            )
            for r in rows
        ], stride

    async def last_ts(self, meeting_id: str) -> float | None:
        """The time of the meeting's latest stored state or room state (flushes first)."""
        await self.flush()
        return await self._call(self._last_ts, meeting_id)

    def _last_ts(self, meeting_id: str) -> float | None:
        row = self._db.execute(
            "SELECT MAX(m) FROM (SELECT MAX(ts) AS m FROM states WHERE meeting_id = ?"
            " UNION ALL SELECT MAX(ts) FROM room_states WHERE meeting_id = ?)",
            (meeting_id, meeting_id),
        ).fetchone()
        value: float | None = row[0]
        return value

    async def read_room(self, meeting_id: str, since_ts: float = 0.0) -> list[RoomState]:
        """Stored room states since ``since_ts`` (flushes first)."""
        await self.flush()
        return await self._call(self._read_room, meeting_id, since_ts)

    def _read_room(self, meeting_id: str, since_ts: float) -> list[RoomState]:
        rows = self._db.execute(
            "SELECT data FROM room_states WHERE meeting_id = ? AND ts >= ? ORDER BY ts",
            (meeting_id, since_ts),
        ).fetchall()
        return [_ROOM.validate_json(r["data"]) for r in rows]

    async def moments(self, meeting_id: str, since_ts: float = 0.0) -> list[Moment]:
        """Notable moments since ``since_ts``, oldest first (flushes first)."""
        await self.flush()
        return await self._call(self._moments, meeting_id, since_ts)

    def _moments(self, meeting_id: str, since_ts: float) -> list[Moment]:
        rows = self._db.execute(
            "SELECT data FROM moments WHERE meeting_id = ? AND ts >= ? ORDER BY ts",
            (meeting_id, since_ts),
        ).fetchall()
        return [_MOMENT.validate_json(r["data"]) for r in rows]

    async def summaries(self, meeting_id: str, limit: int | None = None) -> list[SummaryEvent]:
        """A meeting's summaries, newest first; at most ``limit`` (flushes first)."""
        await self.flush()
        return await self._call(self._summaries, meeting_id, limit)

    def _summaries(self, meeting_id: str, limit: int | None) -> list[SummaryEvent]:
        rows = self._db.execute(
            "SELECT data FROM summaries WHERE meeting_id = ? ORDER BY ts DESC, id DESC LIMIT ?",
            (meeting_id, -1 if limit is None else limit),
        ).fetchall()
        return [SummaryEvent.model_validate_json(r["data"]) for r in rows]
