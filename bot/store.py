"""SQLite store for meetings, participants, fused states, the room, its moments and summaries.

One connection, owned by one thread (``store`` executor): every call goes
through it, so SQLite never sees two threads and the event loop never blocks on
disk. Writes are queued in order (:meth:`Store.add_participant_record`,
:meth:`Store.add_state`, ...) and written in one transaction every
``storage.flush_interval_secs``; ``close()`` flushes what is left, and every read
flushes first. WAL mode lets a crash lose at most the unflushed queue. While the
database cannot take writes (locked, disk full), the queue keeps them, up to
``max_queued_writes`` (then the oldest sampled states go); a write that fails because
of its own data never holds up the others (see :meth:`Store.flush`).

States are stored with their field groups as JSON (``emotion``, ``face``,
``voice``, ``talk``, ``readings``), so adding a field or a registry state needs no
schema migration; ``ts``, ``face_visible``, ``is_speaking``, ``stale`` and
``engagement`` are columns for queries. :meth:`Store.read_states` gives them back as
:class:`~bot.types.ParticipantState`. Readings are stored compactly (see
:func:`encode_readings`): about 1.2 kB a state, 2 states a second per participant at the
default sampling.

Only derived scores are stored, never media. The host token is stored as a
SHA-256 hash; the join token in clear, because the host needs to see the join
link again; each browser participant's token as a hash, so that they can withdraw.

Deleting: :meth:`Store.delete_meeting` empties every table of :data:`MEETING_TABLES`
for the meeting; :meth:`Store.delete_participant` removes one participant (and the
faces of their feed) and their mentions elsewhere; :meth:`Store.expired_meetings` says
which meetings are past a retention period. ``secure_delete`` zeroes what is deleted.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import math
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from pydantic import TypeAdapter

from bot.fusion.registry import BY_NAME, REGISTRY
from bot.store_migrations import migrate, migrate_v3, run_script
from bot.summaries.redact import without
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

#: Writes kept in memory while the database cannot take them (e.g. a full disk): about
#: eight minutes of a 20-person meeting's states.
MAX_QUEUED_WRITES = 20_000
#: Tries before a write that fails because of its own data is dropped.
WRITE_ATTEMPTS = 3

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

#: Each browser participant's token, hashed, so that they can withdraw (delete their
#: data) after they left too. No foreign key: the token exists from the join answer on,
#: which may be before the participant's row is written; rows go with their meeting.
_TOKENS = """
CREATE TABLE IF NOT EXISTS participant_tokens (
    participant_id TEXT PRIMARY KEY,
    meeting_id TEXT NOT NULL,
    token_sha256 TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tokens_by_meeting ON participant_tokens(meeting_id);
"""

#: How many join attempts of each meeting never connected: a count for the host, because
#: such an attempt is not a participant and leaves no participant row.
_UNCONNECTED = """
CREATE TABLE IF NOT EXISTS unconnected_joins (
    meeting_id TEXT PRIMARY KEY,
    count INTEGER NOT NULL
);
"""

#: Every table with rows of a meeting, children first (what deleting a meeting empties).
MEETING_TABLES = (
    "unconnected_joins",
    "states",
    "room_states",
    "moments",
    "summaries",
    "participant_tokens",
    "participants",
)

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
    return hashlib.sha256(token_bytes(token)).hexdigest()


def token_bytes(token: str) -> bytes:
    """A token as bytes: ``compare_digest`` refuses non-ASCII text, and any text may arrive."""
    return token.encode("utf-8", "surrogatepass")


def tokens_equal(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a token from a request with the expected one."""
    return bool(given) and secrets.compare_digest(token_bytes(str(given)), token_bytes(expected))


def hashed_token_matches(given: str | None, stored_sha256: str | None) -> bool:
    """Constant-time check of a token from a request against the stored hash of the real one."""
    if not given or not stored_sha256:
        return False
    return tokens_equal(hash_token(given), stored_sha256)


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
        return hashed_token_matches(token, self.host_token_sha256)

    def join_token_matches(self, token: str | None) -> bool:
        """Constant-time check of a join token."""
        return tokens_equal(token, self.join_token)


@dataclass(frozen=True, slots=True)
class ExpiredMeeting:
    """A meeting past its retention (:meth:`Store.expired_meetings`).

    Attributes:
        record: The meeting.
        last_activity: When it ended; if it was never ended, the latest of its creation
            and its participants' joining and leaving. A meeting with a participant still
            connected is never expired.
    """

    record: MeetingRecord
    last_activity: float


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


@dataclass(slots=True)
class _Write:
    """A queued write (event loop only).

    Attributes:
        sql: The statement.
        args: Gives its parameters; runs on the store thread, so JSON is built off the loop.
        sample: A sampled participant or room state, which may be dropped when the
            queue is full (joins, leaves, tokens, moments and summaries never are).
        failures: Tries that failed because of this write's own data (not the database's).
    """

    sql: str
    args: Callable[[], tuple[Any, ...]]
    sample: bool
    failures: int = 0


#: Errors that come from one row's data (a constraint, a value SQLite cannot bind), as
#: opposed to the database as a whole (locked, disk full, I/O), which retrying may cure.
_ROW_ERRORS = (sqlite3.IntegrityError, sqlite3.InterfaceError, sqlite3.DataError)


def _is_row_error(e: Exception) -> bool:
    # Anything that is not an SQLite error was raised while building the row's parameters.
    return isinstance(e, _ROW_ERRORS) or not isinstance(e, sqlite3.Error)


def _error_name(e: Exception) -> str:
    """A name for an error that carries no data (messages may quote the row)."""
    return str(getattr(e, "sqlite_errorname", None) or type(e).__name__)


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
class StateCursor:
    """Where a page of states ended: its last state's time and row id.

    States are read in ``(ts, id)`` order, which the ``(meeting_id, ts)`` and
    ``(participant_id, ts)`` indexes give without sorting (SQLite keeps the row id last
    in every index), so each page costs the same however deep into a meeting it starts.
    """

    ts: float
    row_id: int

    def encode(self) -> str:
        """The cursor as an opaque, URL-safe string."""
        return base64.urlsafe_b64encode(f"{self.ts!r}:{self.row_id}".encode()).decode()

    @classmethod
    def decode(cls, text: str) -> StateCursor:
        """The cursor that :meth:`encode` gave.

        Raises:
            ValueError: ``text`` is not such a cursor.
        """
        try:
            ts, row_id = base64.urlsafe_b64decode(text.encode("ascii")).decode().split(":")
            cursor = cls(float(ts), int(row_id))
        except ValueError as e:  # bad base64, text or numbers
            raise ValueError("not a cursor") from e
        if not math.isfinite(cursor.ts) or cursor.row_id < 0:
            raise ValueError("not a cursor")
        return cursor


@dataclass(frozen=True, slots=True)
class StatePage:
    """A page of stored states in time order, and where the next page starts.

    Attributes:
        states: The states, by time (then by when they were stored).
        next: Pass as ``cursor`` to get the states after these; None on the last page.
    """

    states: list[ParticipantState]
    next: StateCursor | None


@dataclass(frozen=True, slots=True)
class StateRows:
    """A page of stored states as rows, decoded only as they are iterated.

    For pages that are encoded and sent on (``GET .../states``): one state object exists
    at a time, so thousands of them never pile up for the garbage collector, whose full
    passes over them held the GIL, and with it the server, for hundreds of milliseconds.

    Attributes:
        rows: The rows, by time (then by when they were stored).
        next: Pass as ``cursor`` to get the states after these; None on the last page.
    """

    rows: list[sqlite3.Row]
    next: StateCursor | None

    def states(self) -> Iterator[ParticipantState]:
        """The states, one at a time."""
        return (_state_of(row) for row in self.rows)

    def decoded(self) -> StatePage:
        """The whole page as states."""
        return StatePage(list(self.states()), self.next)


class Store:
    """The meetmood database. Methods are coroutines; SQLite runs on one thread."""

    def __init__(
        self,
        path: Path,
        flush_interval_secs: float = 0.5,
        *,
        max_queued_writes: int = MAX_QUEUED_WRITES,
        write_attempts: int = WRITE_ATTEMPTS,
    ) -> None:
        """Prepare (not yet open) the store at ``path`` (``:memory:`` works too).

        Args:
            path: The database file.
            flush_interval_secs: How often queued writes are written.
            max_queued_writes: Most writes kept while the database cannot take them;
                beyond it the oldest sampled states are dropped (and counted).
            write_attempts: Tries before a write that fails because of its own data
                (e.g. a constraint) is dropped, so that it never holds up the others.
        """
        self.path = path
        self.flush_interval_secs = flush_interval_secs
        self.max_queued_writes = max_queued_writes
        self.write_attempts = write_attempts
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self._conn: sqlite3.Connection | None = None
        # Queued writes, in order; their parameters are built on the store thread.
        self._pending: list[_Write] = []
        # One flush at a time, so that a batch put back after a failure keeps its place.
        self._flush_lock = asyncio.Lock()
        self._flush_task: asyncio.Task[None] | None = None
        #: Writes dropped since opening: the queue was full, or their data could not be
        #: written (after ``write_attempts`` tries).
        self.dropped_full = 0
        self.dropped_failing = 0
        self._dropped_unlogged = 0
        self._failing_since: float | None = None

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
        # Deleted meetings and withdrawn participants are overwritten with zeros on disk,
        # not left in free pages.
        conn.execute("PRAGMA secure_delete=ON")
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
            run_script(conn, _TOKENS)  # new in place: older versions just ignore it
            run_script(conn, _UNCONNECTED)  # the same
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

    async def end_meeting(self, meeting_id: str, ts: float) -> MeetingRecord | None:
        """Mark a meeting ended at ``ts`` (the first end wins); None if there is no such meeting."""
        return await self._call(self._end_meeting, meeting_id, ts)

    def _end_meeting(self, meeting_id: str, ts: float) -> MeetingRecord | None:
        self._db.execute(
            "UPDATE meetings SET ended_at = ? WHERE id = ? AND ended_at IS NULL", (ts, meeting_id)
        )
        return self._get_meeting(meeting_id)

    async def delete_meeting(self, meeting_id: str) -> bool:
        """Remove a meeting and every row stored with it (after writing what is queued).

        Returns whether the meeting existed.
        """
        await self.flush()
        return await self._call(self._delete_meeting, meeting_id)

    def _delete_meeting(self, meeting_id: str) -> bool:
        db = self._db
        with db:
            db.execute("BEGIN")
            # Explicit rather than ON DELETE CASCADE: databases made by older versions
            # may lack the foreign keys, and the token table has none.
            for table in MEETING_TABLES:
                db.execute(f"DELETE FROM {table} WHERE meeting_id = ?", (meeting_id,))
            existed = db.execute("DELETE FROM meetings WHERE id = ?", (meeting_id,)).rowcount > 0
        self._truncate_wal()
        return existed

    def _truncate_wal(self) -> None:
        # Older copies of deleted pages stay in the write-ahead log until a checkpoint;
        # a reader elsewhere (the CLI beside a server) may keep it from finishing: harmless.
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    async def expired_meetings(self, cutoff: float) -> list[ExpiredMeeting]:
        """Meetings whose last activity (see :class:`ExpiredMeeting`) is before ``cutoff``."""
        await self.flush()
        return await self._call(self._expired_meetings, cutoff)

    def _expired_meetings(self, cutoff: float) -> list[ExpiredMeeting]:
        rows = self._db.execute(
            "SELECT * FROM (SELECT m.*, COALESCE(m.ended_at, MAX(m.created_at, COALESCE("
            " (SELECT MAX(COALESCE(p.left_at, p.joined_at)) FROM participants p"
            " WHERE p.meeting_id = m.id), m.created_at))) AS last_activity FROM meetings m"
            " WHERE NOT EXISTS (SELECT 1 FROM participants p"
            " WHERE p.meeting_id = m.id AND p.left_at IS NULL))"
            " WHERE last_activity < ? ORDER BY last_activity",
            (cutoff,),
        ).fetchall()
        out = []
        for r in rows:
            data = dict(r)
            last = data.pop("last_activity")
            out.append(ExpiredMeeting(MeetingRecord(**data), last))
        return out

    # -- withdrawal ------------------------------------------------------------------

    def add_participant_token(self, meeting_id: str, participant_id: str, token: str) -> None:
        """Queue the hash of a participant's token (their withdrawal key). Event loop only."""
        digest = hash_token(token)
        self._queue(
            "INSERT OR REPLACE INTO participant_tokens (participant_id, meeting_id, token_sha256)"
            " VALUES (?, ?, ?)",
            lambda: (participant_id, meeting_id, digest),
        )

    async def participant_token_matches(
        self, meeting_id: str, participant_id: str, token: str | None
    ) -> bool | None:
        """Whether ``token`` is the participant's; None when no token is stored for them."""
        await self.flush()
        stored = await self._call(self._participant_token, meeting_id, participant_id)
        if stored is None:
            return None
        return hashed_token_matches(token, stored)

    def _participant_token(self, meeting_id: str, participant_id: str) -> str | None:
        row = self._db.execute(
            "SELECT token_sha256 FROM participant_tokens WHERE participant_id = ?"
            " AND meeting_id = ?",
            (participant_id, meeting_id),
        ).fetchone()
        return None if row is None else str(row[0])

    async def delete_participant(self, meeting_id: str, participant_id: str) -> list[str]:
        """Delete a participant, the faces of their feed and all that is stored about them.

        Their participant rows, states and token go; the room's timeline, its moments and
        the summaries keep the room's figures but lose every mention of them (see
        :mod:`bot.summaries.redact`). Flushes first. Returns the ids deleted (none if the
        participant is unknown).
        """
        await self.flush()
        return await self._call(self._delete_participant, meeting_id, participant_id)

    def _delete_participant(self, meeting_id: str, participant_id: str) -> list[str]:
        db = self._db
        people = db.execute(
            "SELECT id, display_name FROM participants WHERE meeting_id = ?"
            " AND (id = ? OR parent_id = ?)",
            (meeting_id, participant_id, participant_id),
        ).fetchall()
        ids = [str(r["id"]) for r in people]
        if participant_id not in ids:
            ids.insert(0, participant_id)  # a token written before the participant row
        names = [str(r["display_name"]) for r in people if r["id"] == participant_id]
        marks = ", ".join("?" * len(ids))
        with db:
            db.execute("BEGIN")
            for table, column in (
                ("states", "participant_id"),
                ("participant_tokens", "participant_id"),
                ("participants", "id"),
            ):
                db.execute(
                    f"DELETE FROM {table} WHERE meeting_id = ? AND {column} IN ({marks})",
                    (meeting_id, *ids),
                )
            self._redact_room(meeting_id, ids)
            self._redact_moments(meeting_id, ids)
            self._redact_summaries(meeting_id, ids, names)
        self._truncate_wal()
        return [str(r["id"]) for r in people]

    def _mentioning(self, table: str, meeting_id: str, needles: list[str]) -> list[sqlite3.Row]:
        """Rows of ``table`` of the meeting whose ``data`` contains one of ``needles``."""
        needles = [n for n in needles if n]
        if not needles:
            return []
        where = " OR ".join("instr(data, ?) > 0" for _ in needles)
        return self._db.execute(
            f"SELECT id, data FROM {table} WHERE meeting_id = ? AND ({where})",
            (meeting_id, *needles),
        ).fetchall()

    def _redact_room(self, meeting_id: str, ids: list[str]) -> None:
        gone = set(ids)
        for row in self._mentioning("room_states", meeting_id, ids):
            room = _ROOM.validate_json(row["data"])
            room = replace(
                room,
                speaking=tuple(p for p in room.speaking if p not in gone),
                trends={p: t for p, t in room.trends.items() if p not in gone},
            )
            self._db.execute(
                "UPDATE room_states SET data = ? WHERE id = ?", (_json(_ROOM, room), row["id"])
            )

    def _redact_moments(self, meeting_id: str, ids: list[str]) -> None:
        gone = set(ids)
        for row in self._mentioning("moments", meeting_id, ids):
            moment = _MOMENT.validate_json(row["data"])
            if moment.participants and set(moment.participants) <= gone:
                self._db.execute("DELETE FROM moments WHERE id = ?", (row["id"],))
                continue
            moment = replace(
                moment,
                participants=tuple(p for p in moment.participants if p not in gone),
                speaking=tuple(p for p in moment.speaking if p not in gone),
            )
            self._db.execute(
                "UPDATE moments SET data = ? WHERE id = ?", (_json(_MOMENT, moment), row["id"])
            )

    def _redact_summaries(self, meeting_id: str, ids: list[str], names: list[str]) -> None:
        for row in self._mentioning("summaries", meeting_id, [*ids, *names]):
            summary = SummaryEvent.model_validate_json(row["data"])
            self._db.execute(
                "UPDATE summaries SET data = ? WHERE id = ?",
                (without(summary, ids, names).model_dump_json(), row["id"]),
            )

    # -- queued writes -------------------------------------------------------------

    def _queue(self, sql: str, args: Callable[[], tuple[Any, ...]], sample: bool = False) -> None:
        """Queue one statement; ``args`` runs on the store thread, so JSON is built off the loop.

        ``sample``: a sampled state, which may be dropped when the queue is full.
        """
        self._pending.append(_Write(sql, args, sample))
        if len(self._pending) > self.max_queued_writes:
            self._drop_oldest(len(self._pending) - self.max_queued_writes)

    def _drop_oldest(self, count: int) -> None:
        """Drop the ``count`` oldest sampled states; the oldest writes if too few are samples.

        Samples go first because the rest (a participant's row, their leaving) is what
        every later state of theirs needs. Counted here, logged at the next flush.
        """
        pending = self._pending
        dropped = i = 0
        while dropped < count and i < len(pending):
            if pending[i].sample:
                del pending[i]
                dropped += 1
            else:
                i += 1
        del pending[: count - dropped]
        self.dropped_full += count
        self._dropped_unlogged += count

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
            sample=True,
        )

    def add_room(self, meeting_id: str, room: RoomState) -> None:
        """Queue a room state. Call from the event loop."""
        self._queue(
            "INSERT INTO room_states (meeting_id, ts, engagement, data) VALUES (?, ?, ?, ?)",
            lambda: (meeting_id, room.ts, room.engagement, _json(_ROOM, room)),
            sample=True,
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
        """Write queued writes now, in order, in one transaction.

        When the database fails as a whole (locked, disk full), every write is kept for
        the next flush, up to ``max_queued_writes``. A write that fails because of its
        own data is left out of the transaction, so the others are written; it is tried
        again with the next flushes and dropped after ``write_attempts`` tries.
        """
        async with self._flush_lock:
            self._log_dropped_full()
            if not self._pending:
                return
            batch, self._pending = self._pending, []
            try:
                failed = await self._call(self._write, batch)
            except Exception as e:
                self._put_back(batch)
                if self._failing_since is None:
                    self._failing_since = time.monotonic()
                    log.warning(
                        "storing meeting data failed; keeping it to try again",
                        extra={"queued": len(self._pending), "error": _error_name(e)},
                    )
                return
            if self._failing_since is not None:
                secs = round(time.monotonic() - self._failing_since, 1)
                log.info("storing meeting data works again", extra={"after_secs": secs})
                self._failing_since = None
            self._retry_or_drop(failed)

    def _put_back(self, writes: list[_Write]) -> None:
        """Return writes to the front of the queue (they are older than what came since)."""
        self._pending[:0] = writes
        if len(self._pending) > self.max_queued_writes:
            self._drop_oldest(len(self._pending) - self.max_queued_writes)

    def _retry_or_drop(self, failed: list[tuple[_Write, str]]) -> None:
        """Queue writes that failed on their own data again, or drop them after enough tries."""
        for write, _ in failed:
            write.failures += 1
        self._put_back([w for w, _ in failed if w.failures < self.write_attempts])
        gone = [error for w, error in failed if w.failures >= self.write_attempts]
        if gone:
            self.dropped_failing += len(gone)
            log.warning(
                "dropped writes that kept failing",
                extra={
                    "count": len(gone),
                    "errors": sorted(set(gone)),
                    "attempts": self.write_attempts,
                },
            )

    def _log_dropped_full(self) -> None:
        if self._dropped_unlogged:
            log.warning(
                "store queue full: dropped the oldest queued states",
                extra={
                    "dropped": self._dropped_unlogged,
                    "dropped_total": self.dropped_full,
                    "limit": self.max_queued_writes,
                },
            )
            self._dropped_unlogged = 0

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval_secs)
            await self.flush()

    def _write(self, batch: list[_Write]) -> list[tuple[_Write, str]]:
        """Write ``batch`` in one transaction (store thread).

        Returns:
            The writes that failed because of their own data, each with its error's name.

        Raises:
            sqlite3.Error: The database failed as a whole; nothing was written.
        """
        db = self._db
        try:
            with db:
                db.execute("BEGIN")
                for write in batch:
                    db.execute(write.sql, write.args())
            return []
        except Exception as e:
            if not _is_row_error(e):
                raise
        # Some row is bad: write them one by one, each in a savepoint, leaving out those
        # that fail, all still in one transaction.
        failed: list[tuple[_Write, str]] = []
        with db:
            db.execute("BEGIN")
            for write in batch:
                db.execute("SAVEPOINT one_write")
                try:
                    db.execute(write.sql, write.args())
                except Exception as e:
                    if not _is_row_error(e):
                        raise
                    db.execute("ROLLBACK TO one_write")
                    failed.append((write, _error_name(e)))
                db.execute("RELEASE one_write")
        return failed

    async def is_writable(self) -> bool:
        """Whether the database takes writes now (it takes and gives back the write lock).

        False when it is locked by another connection beyond the busy timeout, read-only,
        or otherwise failing (logged).
        """
        try:
            await self._call(self._check_writable)
        except sqlite3.Error:
            log.exception("the database does not take writes")
            return False
        return True

    def _check_writable(self) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        db.execute("ROLLBACK")

    def set_unconnected_joins(self, meeting_id: str, count: int) -> None:
        """Queue a meeting's count of join attempts that never connected. Event loop only."""
        self._queue(
            "INSERT INTO unconnected_joins (meeting_id, count) VALUES (?, ?)"
            " ON CONFLICT (meeting_id) DO UPDATE SET count = excluded.count",
            lambda: (meeting_id, count),
        )

    async def unconnected_joins(self, meeting_id: str) -> int:
        """A meeting's count of join attempts that never connected (flushes first)."""
        await self.flush()
        return await self._call(self._unconnected_joins, meeting_id)

    def _unconnected_joins(self, meeting_id: str) -> int:
        row = self._db.execute(
            "SELECT count FROM unconnected_joins WHERE meeting_id = ?", (meeting_id,)
        ).fetchone()
        return int(row[0]) if row else 0

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
        cursor: StateCursor | None = None,
        limit: int = 1000,
    ) -> StatePage:
        """At most ``limit`` states from ``since_ts`` on, after ``cursor``, in time order.

        Start without a cursor, then pass each page's ``next`` until it is None.
        """
        rows = await self.state_rows(meeting_id, participant_id, since_ts, cursor, limit)
        return await self._call(rows.decoded)  # decoded on the store's thread

    async def state_rows(
        self,
        meeting_id: str,
        participant_id: str | None = None,
        since_ts: float = 0.0,
        cursor: StateCursor | None = None,
        limit: int = 1000,
    ) -> StateRows:
        """The page :meth:`state_page` gives, as rows decoded on iteration (see StateRows)."""
        await self.flush()
        return await self._call(
            self._state_rows, meeting_id, participant_id, since_ts, cursor, limit
        )

    def _state_rows(
        self,
        meeting_id: str,
        participant_id: str | None,
        since_ts: float,
        cursor: StateCursor | None,
        limit: int,
    ) -> StateRows:
        sql = "SELECT * FROM states WHERE meeting_id = ? AND ts >= ?"
        args: list[Any] = [meeting_id, since_ts]
        if participant_id is not None:
            sql += " AND participant_id = ?"
            args.append(participant_id)
        if cursor is not None:
            sql += " AND (ts, id) > (?, ?)"
            args += [cursor.ts, cursor.row_id]
        # One row more than asked says whether there is a next page.
        rows = self._db.execute(sql + " ORDER BY ts, id LIMIT ?", [*args, limit + 1]).fetchall()
        last = rows[limit - 1] if len(rows) > limit else None
        following = None if last is None else StateCursor(last["ts"], last["id"])
        return StateRows(rows[:limit], following)

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
