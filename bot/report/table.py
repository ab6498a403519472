"""The per-participant time series as CSV: one row per stored state, streamed from the store.

Columns: ``participant_id``, ``display_name``, ``ts`` (meeting clock, Unix seconds),
``t_secs`` (seconds since the meeting's start, as in the report), ``face_visible``,
``is_speaking``, ``stale``, then one column per quantity of the registry
(:data:`bot.fusion.registry.REGISTRY`, in its order: engagement and its components,
valence, arousal, the 7 basic expressions and the seed's 21 other states), then the
talk figures (``talk_secs``, ``talk_share``, ``turns``, ``interruptions``,
``overlap_secs``). An empty cell is a value that was not measured (``null``). States are
read a page at a time (:meth:`~bot.store.Store.state_page`), so memory does not grow
with the meeting.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence
from typing import Any

from bot.fusion.registry import REGISTRY
from bot.store import ParticipantRecord, StateCursor, Store
from bot.types import ParticipantState

#: The leading columns.
ID_COLUMNS = (
    "participant_id",
    "display_name",
    "ts",
    "t_secs",
    "face_visible",
    "is_speaking",
    "stale",
)
#: The talk columns at the end.
TALK_COLUMNS = ("talk_secs", "talk_share", "turns", "interruptions", "overlap_secs")
#: Every column, in order.
COLUMNS: tuple[str, ...] = (*ID_COLUMNS, *(d.name for d in REGISTRY), *TALK_COLUMNS)
#: States per page read from the store (and per chunk written).
PAGE_ROWS = 2000


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        return round(value, 4)
    return value


def row(state: ParticipantState, name: str, start: float) -> list[Any]:
    """One state as a CSV row (see :data:`COLUMNS`)."""
    t = state.talk
    cells: list[Any] = [
        state.participant_id,
        name,
        round(state.ts, 3),
        round(state.ts - start, 3),
        state.face_visible,
        state.is_speaking,
        state.stale,
        *(state.value(d.name) for d in REGISTRY),
        *(
            (None,) * len(TALK_COLUMNS)
            if t is None
            else (t.talk_secs, t.talk_share, t.turns, t.interruptions, t.overlap_secs)
        ),
    ]
    return [_cell(c) for c in cells]


async def csv_chunks(
    store: Store, meeting_id: str, participants: Sequence[ParticipantRecord], start: float
) -> AsyncIterator[str]:
    """The CSV text, header first, a page of states per chunk (time order)."""
    names = {p.id: p.display_name for p in participants}
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    yield buf.getvalue()
    cursor: StateCursor | None = None
    while True:
        page = await store.state_page(meeting_id, cursor=cursor, limit=PAGE_ROWS)
        buf.seek(0)
        buf.truncate()
        for state in page.states:
            writer.writerow(row(state, names.get(state.participant_id, ""), start))
        if page.states:
            yield buf.getvalue()
        if page.next is None:
            return
        cursor = page.next
