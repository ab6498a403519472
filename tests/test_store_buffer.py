"""The store's write queue on a real SQLite database: what it keeps, drops and never blocks.

- A write that always fails because of its own data (a NaN time, a state of a deleted
  participant, parameters that cannot be built) is left out, tried again and dropped
  after ``write_attempts`` tries; the writes around and after it are stored.
- A database that fails as a whole (full, here through ``PRAGMA max_page_count``) loses
  nothing: every write is kept and stored once it has room, however many flushes fail.
- While it cannot write, the queue holds at most ``max_queued_writes``: the oldest
  sampled states go first, counted and logged without scores or names.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from bot.store import ParticipantRecord, Store
from bot.types import EMOTIONS, Emotion, EmotionScores, ParticipantState, Reading

pytestmark = pytest.mark.unit

#: A probability no log line may show.
SCORE = 0.9173
NAME = "Ada Lovelace"


def state(pid: str, ts: float) -> ParticipantState:
    probs = {e: (SCORE if e is Emotion.HAPPY else (1 - SCORE) / 6) for e in EMOTIONS}
    return ParticipantState(pid, ts, True, EmotionScores(pid, ts, "face", probs, SCORE))


async def open_store(path: Path, **kwargs: int) -> tuple[Store, str, str]:
    """An open store (flushed by hand) with a meeting and one participant."""
    store = Store(path, flush_interval_secs=3600, **kwargs)
    await store.open()
    meeting, _ = await store.create_meeting("Weekly")
    person = await store.add_participant(meeting.id, NAME, "browser")
    return store, meeting.id, person.id


async def stored_ts(store: Store, meeting_id: str) -> list[float]:
    return [s.ts for s in await store.read_states(meeting_id)]


async def fill_the_disk(store: Store) -> None:
    """No page more for the store's connection: every insert fails with SQLITE_FULL."""

    def full() -> None:
        pages = store._db.execute("PRAGMA page_count").fetchone()[0]
        store._db.execute(f"PRAGMA max_page_count = {pages}")

    await store._call(full)


async def free_the_disk(store: Store) -> None:
    await store._call(lambda: store._db.execute("PRAGMA max_page_count = 1073741823"))


def assert_no_scores_or_names(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        text = f"{record.getMessage()} {record.__dict__}"
        assert str(SCORE) not in text and NAME not in text, text


async def test_a_write_that_always_fails_is_dropped_and_never_blocks_the_rest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store, meeting_id, pid = await open_store(tmp_path / "m.sqlite3", write_attempts=3)
    try:
        store.add_state(meeting_id, state(pid, 1.0))
        # NaN is stored as NULL: the NOT NULL constraint on ts refuses it.
        store.add_state(meeting_id, state(pid, float("nan")))
        # A participant with no row (e.g. deleted when they withdrew): foreign key.
        store.add_state(meeting_id, state("withdrawn", 2.0))
        # Parameters that cannot be built: the error comes from encoding, not SQLite.
        unencodable = {"engagement": Reading("x")}  # type: ignore[arg-type]
        store.add_state(meeting_id, ParticipantState(pid, 3.0, True, None, readings=unencodable))
        store.add_state(meeting_id, state(pid, 4.0))
        with caplog.at_level(logging.INFO, logger="bot.store"):
            await store.flush()
            assert await stored_ts(store, meeting_id) == [1.0, 4.0]
            for ts in (5.0, 6.0):
                store.add_state(meeting_id, state(pid, ts))
                await store.flush()
            await store.flush()
        # Every good state is in; the three bad ones went after their third try.
        assert await stored_ts(store, meeting_id) == [1.0, 4.0, 5.0, 6.0]
        assert store.dropped_failing == 3 and store._pending == []
        (dropped,) = [r for r in caplog.records if r.getMessage().startswith("dropped")]
        assert dropped.count == 3  # type: ignore[attr-defined]
        assert set(dropped.errors) == {  # type: ignore[attr-defined]
            "SQLITE_CONSTRAINT_NOTNULL",
            "SQLITE_CONSTRAINT_FOREIGNKEY",
            "TypeError",
        }
        assert_no_scores_or_names(caplog)
    finally:
        await store.close()


async def test_a_full_disk_loses_nothing_however_long_it_lasts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store, meeting_id, pid = await open_store(tmp_path / "m.sqlite3", write_attempts=2)
    try:
        await fill_the_disk(store)
        with caplog.at_level(logging.INFO, logger="bot.store"):
            for flush in range(5):  # more failed flushes than write_attempts
                for k in range(40):
                    store.add_state(meeting_id, state(pid, flush * 100 + k))
                await store.flush()
            assert await stored_ts(store, meeting_id) == []
            assert len(store._pending) == 200
            await free_the_disk(store)
            await store.flush()
        assert await stored_ts(store, meeting_id) == [
            f * 100 + k for f in range(5) for k in range(40)
        ]
        assert store.dropped_failing == store.dropped_full == 0
        messages = [r.getMessage() for r in caplog.records]
        # Said once when it starts, once when it ends, not at every flush.
        assert messages.count("storing meeting data failed; keeping it to try again") == 1
        assert messages.count("storing meeting data works again") == 1
        assert_no_scores_or_names(caplog)
    finally:
        await store.close()


async def test_the_queue_is_bounded_and_drops_the_oldest_states_first(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store, meeting_id, pid = await open_store(tmp_path / "m.sqlite3", max_queued_writes=50)
    try:
        await fill_the_disk(store)
        # A second person joins while the disk is full; their row must survive the drops.
        late = ParticipantRecord.new(meeting_id, "Bo", "browser", joined_at=time.time())
        store.add_participant_record(late)
        with caplog.at_level(logging.INFO, logger="bot.store"):
            for k in range(100):
                store.add_state(meeting_id, state(pid if k % 2 else late.id, float(k)))
            assert len(store._pending) == 50
            await store.flush()
            await free_the_disk(store)
            await store.flush()
        # The participant row and the 49 newest states.
        assert await stored_ts(store, meeting_id) == [float(k) for k in range(51, 100)]
        assert late.id in {p.id for p in await store.list_participants(meeting_id)}
        assert store.dropped_full == 51
        (full,) = [r for r in caplog.records if r.getMessage().startswith("store queue full")]
        assert (full.dropped, full.limit) == (51, 50)  # type: ignore[attr-defined]
        assert_no_scores_or_names(caplog)
    finally:
        await store.close()
