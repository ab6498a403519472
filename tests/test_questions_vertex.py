"""Gemini on Vertex AI answers the host's questions, against the local Vertex REST fake.

The real google-genai client talks to the fake of ``tests/test_summaries_vertex.py``;
the meeting is the hand-built one of ``tests/test_questions.py`` (20 minutes, Ada
Lovelace P1, Bo P2, Cy P3 with the camera off). Waits between retries are recorded.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot.settings import VertexSettings
from bot.summaries.ask import QuestionResult, answer_from
from bot.summaries.questions import match_names
from bot.summaries.vertex import GeminiClient
from bot.summaries.vertex_answers import (
    ANSWER_INSTRUCTION,
    MAX_BINS,
    VertexAnswerer,
    question_payload,
    question_payload_json,
)
from tests.conftest import make_settings
from tests.media import TrackSource
from tests.test_questions import NAMES, context
from tests.test_summaries_vertex import MODEL, PATH, FakeVertex, creds, sent_text, serve_fake
from web.app import create_app
from web.keys import ANSWERER, MANAGER

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
NAME_WORDS = ("Ada", "Lovelace", "Bo", "Cy")
QUESTION = "Who seemed disengaged in the last ten minutes?"


def gemini_answer(sent: dict[str, Any]) -> str:
    """The fake's reply to a question: P2 looked least engaged, over the range it was sent."""
    return json.dumps(answer_json(sent["range"]["start_secs"], sent["range"]["end_secs"]))


def answer_json(start_secs: float, end_secs: float, **change: Any) -> dict[str, Any]:
    return {
        "answered": True,
        "text": "From 10:00 to 20:00, P2 looked least engaged (mean 0.20, low band).",
        "range": {"start_secs": start_secs, "end_secs": end_secs},
        "participants": ["P2"],
        "based_on": ["states"],
        **change,
    }


@dataclass
class FakeGemini(FakeVertex):
    """The fake, with the answerer's recorded waits and its rate limit's clock."""

    sleeps: list[float] = field(default_factory=list)
    now: float = 0.0


@pytest.fixture
async def vertex(aiohttp_server: Any) -> Any:
    fake = await serve_fake(aiohttp_server, FakeGemini(default=gemini_answer))
    yield fake
    fake.release.set()


def answerer(fake: FakeGemini, *, timeout_secs: float = 5.0, **fields: Any) -> VertexAnswerer:
    settings = VertexSettings(
        **{
            "project": "test-proj",
            "location": "us-central1",
            "model": MODEL,
            "base_url": fake.url,
            **fields,
        }
    )

    async def sleep(secs: float) -> None:
        fake.sleeps.append(secs)

    client = GeminiClient(
        settings, timeout_secs, credentials=creds(), sleep=sleep, uniform=lambda: 0.5
    )
    return VertexAnswerer(client, clock=lambda: fake.now)


async def ask_gemini(fake: FakeGemini, question: str = QUESTION, **kw: Any) -> QuestionResult:
    """Ask as :func:`bot.summaries.ask.ask` does, on the hand-built meeting."""
    match = match_names(question, [(a, n) for a, (_, n) in NAMES.by_alias.items()])
    ctx = context(match.text)
    a = answerer(fake, **kw)
    try:
        return await answer_from(question, match.text, ctx, NAMES, a, a.client.timeout_secs)
    finally:
        await a.aclose()


# -- a normal answer ---------------------------------------------------------------------------


async def test_gemini_answers_from_aggregated_pseudonymised_figures(
    vertex: FakeGemini, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot")
    res = await ask_gemini(vertex)
    assert (res.source, res.model, res.label) == ("vertex", MODEL, f"Gemini answer ({MODEL})")
    a = res.answer
    assert a.text == "From 10:00 to 20:00, Bo looked least engaged (mean 0.20, low band)."
    assert [p.display_name for p in a.participants] == ["Bo"] and a.participants[0].participant_id
    assert (a.kind, a.subject, a.answered, a.sources, a.note) == (
        "who",
        "engagement",
        True,
        ["states"],
        None,
    )
    assert a.range.text == "the last 10 minutes (10:00–20:00)"

    # What reached "Vertex AI": the question with pseudonyms, aggregated figures, no name.
    ((path, headers, body),) = vertex.requests
    assert path == PATH and headers["Authorization"] == "Bearer test-token"
    assert set(body) == {"contents", "systemInstruction", "generationConfig"}
    match = match_names(QUESTION, [(x, n) for x, (_, n) in NAMES.by_alias.items()])
    assert sent_text(body) == question_payload_json(match.text, context(match.text), NAMES)
    assert body["systemInstruction"]["parts"] == [{"text": ANSWER_INSTRUCTION}]
    config = body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert set(config["responseSchema"]["properties"]) == {
        "answered",
        "text",
        "range",
        "participants",
        "based_on",
    }
    raw = json.dumps(body)
    for word in NAME_WORDS:
        assert not re.search(rf"\b{word}\b", raw, re.IGNORECASE), f"{word} left the machine"
    sent = json.loads(sent_text(body))
    assert "names" not in sent and [p["alias"] for p in sent["participants"]] == ["P1", "P2", "P3"]

    (usage,) = [r for r in caplog.records if r.getMessage() == "gemini answered"]
    assert usage.purpose == "answer" and usage.total_tokens == 1555  # type: ignore[attr-defined]
    for record in caplog.records:
        logged = record.getMessage() + json.dumps(record.__dict__, default=str)
        assert "P2" not in logged and "engaged" not in logged


def test_the_payload_holds_aggregates_and_short_series_only() -> None:
    # The whole meeting: 240 states per participant, 1200 room states, cut to MAX_BINS points.
    ctx = context("how engaged was P3?")
    sent = question_payload("how engaged was P3?", ctx, NAMES)
    assert len(ctx.participants[0].t) == 240 and len(ctx.room.t) == 1200
    assert sent["bins"] == {"start_secs": 0.0, "bin_secs": 60.0, "count": MAX_BINS}
    p1, p2, p3 = sent["participants"]
    assert set(p1) == {
        "alias",
        "joined_secs",
        "left_secs",
        "observed_secs",
        "readings",
        "talk_secs",
        "talk_share",
        "face_out_secs",
        "series",
    }
    assert p1["readings"]["engagement"] == {
        "mean": 0.7,
        "first": 0.7,
        "last": 0.7,
        "low": 0.7,
        "high": 0.7,
        "secs": 1200.0,
        "reason": None,
    }
    assert (p1["talk_secs"], p1["talk_share"], p2["talk_secs"]) == (200.0, 0.69, 90.0)
    assert p2["series"]["engagement"][9:11] == [0.5, 0.2]  # the fall at 10:00
    assert p2["face_out_secs"] == 60.0 and p2["series"]["face_in_view"][12] == 0.0
    # Cy: not measured, with the reason, never zero.
    assert p3["readings"]["engagement"]["mean"] is None
    assert p3["readings"]["engagement"]["reason"] == "no face in view"
    assert set(p3["series"]["engagement"]) == {None} and p3["talk_secs"] is None
    assert all(len(v) == MAX_BINS for p in sent["participants"] for v in p["series"].values())
    room = sent["room"]
    assert room["silence_secs"] == 60.0 and room["longest_silence"] == [900.0, 960.0]
    assert room["speaking_secs"]["P2"][8] == 50.0  # Bo spoke 8:00-8:50 (as the room saw it)
    assert sent["moments"][0]["speaking"] == ["P2"]
    assert len(question_payload_json("how engaged was P3?", ctx, NAMES)) < 8000


async def test_names_are_sent_only_when_the_host_opts_in(vertex: FakeGemini) -> None:
    res = await ask_gemini(vertex, share_names=True)
    assert res.source == "vertex"
    sent = json.loads(sent_text(vertex.bodies[0]))
    assert sent["names"] == {"P1": "Ada Lovelace", "P2": "Bo", "P3": "Cy"}


async def test_a_surname_in_the_question_is_replaced_too(vertex: FakeGemini) -> None:
    res = await ask_gemini(vertex, "how long did lovelace speak?")
    sent = json.loads(sent_text(vertex.bodies[0]))
    assert sent["question"] == "how long did P1 speak?"
    assert res.question == "how long did lovelace speak?"


# -- failures: the local answer with a note saying why -----------------------------------------


def reply(**change: Any) -> str:
    return json.dumps(answer_json(600.0, 1200.0, **change))


@pytest.mark.parametrize(
    ("script", "says"),
    [
        (["{not json"], "returned invalid output (not JSON (line 1, column 2))"),
        ([""], "returned invalid output (no text)"),
        (
            [json.dumps({"answered": True, "text": "P2."})],
            "returned invalid output (not the response schema: range: Field required)",
        ),
        ([reply(text="  ")], "returned invalid output (an empty answer)"),
        ([reply(participants=["P7"])], "returned invalid output (names 'P7', who is not in "
                                        "the meeting)"),
        ([reply(text="Ask P4.")], "returned invalid output (names 'P4', who is not in the "
                                  "meeting)"),
        (
            [reply(range={"start_secs": 0, "end_secs": 1200})],
            "returned invalid output (looked at 0:00–20:00, not within 10:00–20:00)",
        ),
        ([400], "failed: HTTP 400 INVALID_ARGUMENT"),
        ([500, 503, 500], "failed: HTTP 500 INTERNAL after 3 attempts"),
    ],
)  # fmt: skip
async def test_failures_give_the_local_answer_with_a_note(
    vertex: FakeGemini, script: list[Any], says: str
) -> None:
    vertex.script = list(script)
    res = await ask_gemini(vertex)
    assert (res.source, res.label, res.model) == ("local", "local answer", None)
    assert res.answer.note == f"the Gemini answer ({MODEL}) {says}; local answer instead"
    assert res.answer.text.startswith("In the last 10 minutes (10:00–20:00): Bo (mean engagement")
    assert len(vertex.requests) == len(script), "only 408, 429 and 5xx are retried"
    assert vertex.sleeps == ([0.5, 1.0] if len(script) == 3 else [])


async def test_a_slow_answer_times_out_to_the_local_answer(vertex: FakeGemini) -> None:
    vertex.script = [5.0]
    res = await ask_gemini(vertex, timeout_secs=0.3, request_timeout_secs=0.2)
    assert res.source == "local"
    assert (
        res.answer.note
        == f"the Gemini answer ({MODEL}) timed out after 0.3 s; local answer instead"
    )


async def test_questions_to_gemini_are_rate_limited_per_hour(vertex: FakeGemini) -> None:
    a = answerer(vertex, max_calls_per_hour=1)
    match = match_names(QUESTION, [(x, n) for x, (_, n) in NAMES.by_alias.items()])
    ctx = context(match.text)
    sources = []
    for now in (0.0, 10.0, 3601.0):
        vertex.now = now
        res = await answer_from(QUESTION, match.text, ctx, NAMES, a, 5.0)
        sources.append(res.source)
        if res.source == "local":
            assert res.answer.note == (
                f"the Gemini answer ({MODEL}) was not asked: the limit of 1 per hour is "
                "reached; local answer instead"
            )
    assert sources == ["vertex", "local", "vertex"] and len(vertex.requests) == 2
    await a.aclose()


# -- the API and the README --------------------------------------------------------------------


async def test_the_api_says_gemini_answered(
    vertex: FakeGemini, aiohttp_client: Any, tmp_path: Path
) -> None:
    settings = make_settings(
        tmp_path,
        **{
            "analyzers.enabled": [],
            "summaries.enabled": False,
            "summaries.summarizer": "vertex",
            "summaries.vertex.project": "test-proj",
            "summaries.vertex.location": "us-central1",
            "summaries.vertex.model": MODEL,
            "summaries.vertex.base_url": vertex.url,
        },
    )
    app = create_app(settings)
    assert isinstance(app[ANSWERER], VertexAnswerer)
    app[ANSWERER] = answerer(vertex)
    client = await aiohttp_client(app)
    manager = client.app[MANAGER]
    record, host_token = await manager.create_meeting("Retro")
    meeting = await manager.live(record.id)
    t0 = time.time() - 30
    meeting.clock = lambda: t0 + 20
    meeting.join("Ada Lovelace", TrackSource())
    meeting.join("Bo", TrackSource())
    resp = await client.post(
        f"/api/meetings/{record.id}/questions",
        json={"question": "Who seemed disengaged?"},
        headers={"Authorization": f"Bearer {host_token}"},
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert (body["source"], body["model"], body["label"]) == (
        "vertex",
        MODEL,
        f"Gemini answer ({MODEL})",
    )
    assert "Bo looked least engaged" in body["answer"]["text"]
    assert body["answer"]["participants"][0]["display_name"] == "Bo"
    sent = json.loads(sent_text(vertex.bodies[0]))
    assert sent["question"] == "Who seemed disengaged?"
    raw = json.dumps(vertex.bodies[0])
    for word in NAME_WORDS:
        assert not re.search(rf"\b{word}\b", raw), f"{word} left the machine"


def pretty(data: Any) -> str:
    """Indented JSON with each list of plain values on one line (as the README shows it)."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    return re.sub(
        r"\[\s*([^\[\]{}]*?)\s*\]",
        lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]",
        text,
    )


def test_readme_shows_the_question_payload() -> None:
    question = "when did the mood drop?"
    data = question_payload(question, context(question), NAMES)
    example = pretty(data)
    assert json.loads(example) == data
    assert f"```json\n{example}\n```" in README
