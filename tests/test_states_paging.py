"""GET .../states over a long meeting: every state once, in bounded pages, server responsive.

States are written straight into a real SQLite database, as a long meeting leaves them:
72,000 small ones (four people for 2.5 hours at the default sampling) to page through,
and a meeting of full-size states (every registry reading) for the largest page. Both
are read back through the real aiohttp app.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.fusion.registry import REGISTRY
from bot.store import _STATE_COLUMNS, Store, _state_row
from bot.types import EMOTIONS, Emotion, EmotionScores, ParticipantState, Reading
from tests.conftest import make_settings
from web.app import create_app
from web.views import STATES_PAGE_MAX

pytestmark = pytest.mark.unit

ROWS = 72_000
PEOPLE = 4
T0 = 1_700_000_000.0
#: Seconds between one person's stored states (``storage.state_interval_secs``).
STEP = 0.5


@dataclass(frozen=True)
class Meeting:
    id: str
    host_token: str
    participants: list[str]


@dataclass(frozen=True)
class Seeded:
    database: Path
    long: Meeting  # ROWS small states
    heavy: Meeting  # STATES_PAGE_MAX full-size states


def a_state(pid: str, ts: float, k: int, full: bool) -> ParticipantState:
    """A state; ``full``: with every registry reading, as large as fusion makes them."""
    probs = {e: (0.4 if e is Emotion.HAPPY else 0.1) for e in EMOTIONS}
    readings = {
        d.name: Reading(round(0.05 + (k % 9) / 10, 4), 0.8, None, tuple(d.inputs[:1]))
        for d in REGISTRY
    }
    return ParticipantState(
        pid,
        ts,
        face_visible=True,
        emotion=EmotionScores(pid, ts, "face", probs, 0.9),
        is_speaking=k % 3 == 0,
        readings=readings if full else {},
    )


async def _meetings(database: Path) -> list[Meeting]:
    store = Store(database)
    await store.open()
    meetings = []
    try:
        for name in ("Long meeting", "Heavy meeting"):
            record, host_token = await store.create_meeting(name)
            people = [await store.add_participant(record.id, f"P{i}", "browser") for i in range(4)]
            meetings.append(Meeting(record.id, host_token, [p.id for p in people]))
    finally:
        await store.close()
    return meetings


def _rows(meeting: Meeting, count: int, full: bool) -> Iterator[list[Any]]:
    # Encoding a state is the slow part: encode a few, then vary who and when.
    pids = meeting.participants
    protos = [_state_row(meeting.id, a_state(pids[k % PEOPLE], T0, k, full)) for k in range(36)]
    for i in range(count):
        row = list(protos[i % len(protos)])
        row[2] = T0 + (i // PEOPLE) * STEP  # the same ts for all four: ties go by row id
        yield row


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """One database holding both meetings; each tick has all four people."""
    database = tmp_path_factory.mktemp("states") / "meetmood.sqlite3"
    long, heavy = asyncio.run(_meetings(database))
    insert = f"INSERT INTO states ({_STATE_COLUMNS}) VALUES ({', '.join('?' * 12)})"
    conn = sqlite3.connect(database)
    with conn:
        conn.executemany(insert, _rows(long, ROWS, full=False))
        conn.executemany(insert, _rows(heavy, STATES_PAGE_MAX, full=True))
    conn.close()
    return Seeded(database, long, heavy)


@pytest.fixture
async def client(aiohttp_client: Any, seeded: Seeded, tmp_path: Path) -> AsyncIterator[Any]:
    settings = make_settings(
        tmp_path, **{"storage.database": str(seeded.database), "analyzers.enabled": []}
    )
    yield await aiohttp_client(create_app(settings))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def read_all(
    client: Any, url: str, token: str, params: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[int]]:
    """Every page of ``url``: the states and each page's size."""
    states: list[dict[str, Any]] = []
    sizes: list[int] = []
    query = dict(params)
    while True:
        resp = await client.get(url, params=query, headers=bearer(token))
        assert resp.status == 200, await resp.text()
        page = await resp.json()
        states.extend(page["states"])
        sizes.append(len(page["states"]))
        if page["next_cursor"] is None:
            return states, sizes
        query["cursor"] = page["next_cursor"]


async def test_every_state_comes_once_in_time_order_in_bounded_pages(
    client: Any, seeded: Seeded
) -> None:
    url = f"/api/meetings/{seeded.long.id}/states"
    token = seeded.long.host_token
    states, sizes = await read_all(client, url, token, {"limit": STATES_PAGE_MAX})
    assert len(states) == ROWS
    keys = [(s["ts"], s["participant_id"]) for s in states]
    assert len(set(keys)) == ROWS  # no state twice
    assert keys == sorted(keys, key=lambda k: k[0])  # time order across pages
    assert sizes == [STATES_PAGE_MAX] * (ROWS // STATES_PAGE_MAX) + [ROWS % STATES_PAGE_MAX]

    # Without a limit a page holds 1000; one participant's states from a time on.
    resp = await client.get(url, headers=bearer(token))
    assert len((await resp.json())["states"]) == 1000
    pid = seeded.long.participants[2]
    since = T0 + 8000
    mine, sizes = await read_all(
        client,
        f"/api/meetings/{seeded.long.id}/participants/{pid}/states",
        token,
        {"since": since, "limit": 700},
    )
    expected = int((ROWS // PEOPLE * STEP - 8000) / STEP)
    assert len(mine) == expected and max(sizes) == 700
    assert {s["participant_id"] for s in mine} == {pid}
    assert [s["ts"] for s in mine] == [since + k * STEP for k in range(expected)]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"limit": STATES_PAGE_MAX + 1}, "limit: must be between 1 and"),
        ({"limit": 0}, "limit: must be between 1 and"),
        ({"cursor": "not-a-cursor"}, "cursor:"),
        ({"cursor": "bmFuOjE="}, "cursor:"),  # "nan:1"
    ],
)
async def test_bad_limit_or_cursor_is_a_400(
    client: Any, seeded: Seeded, query: dict[str, Any], message: str
) -> None:
    url = f"/api/meetings/{seeded.long.id}/states"
    resp = await client.get(url, params=query, headers=bearer(seeded.long.host_token))
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["code"] == "invalid_field" and error["message"].startswith(message)
    assert (await client.get("/healthz")).status == 200


async def test_the_largest_page_never_blocks_the_event_loop(
    client: Any, seeded: Seeded, caplog: pytest.LogCaptureFixture
) -> None:
    """Reading and encoding a page run off the loop: /healthz answers all the while.

    asyncio's debug mode logs every callback that holds the loop longer than
    ``slow_callback_duration``: encoding 5000 full states (18 MB of JSON) on the loop
    held it for 0.7-1.4 s; off the loop the longest hold is a garbage collection of
    under 0.1 s.
    """
    url = f"/api/meetings/{seeded.heavy.id}/states"
    auth = bearer(seeded.heavy.host_token)
    await (await client.get(url, params={"limit": 1}, headers=auth)).read()  # warm up
    loop = asyncio.get_running_loop()
    loop.slow_callback_duration = 0.5
    answered_meanwhile = 0

    async def big_read() -> bytes:
        resp = await client.get(url, params={"limit": STATES_PAGE_MAX}, headers=auth)
        assert resp.status == 200
        return bytes(await resp.read())  # parsed after the check: json.loads blocks too

    # Everything the earlier tests of this run left on the heap stays out of the garbage
    # collector's full passes here: in a long run they alone can hold the loop for 0.7 s.
    gc.collect()
    gc.freeze()
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        loop.set_debug(True)
        try:
            read = asyncio.create_task(big_read())
            while not read.done():
                resp = await client.get("/healthz")
                assert resp.status == 200
                answered_meanwhile += not read.done()
                await asyncio.sleep(0.01)
            body = await read
        finally:
            loop.set_debug(False)
            gc.unfreeze()
    slow = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert not slow, slow
    assert answered_meanwhile >= 1
    page = json.loads(body)
    assert len(page["states"]) == STATES_PAGE_MAX and page["next_cursor"] is None
    assert set(page["states"][0]["readings"]) >= {d.name for d in REGISTRY}
