"""Gemini on Vertex AI as the summarizer, against a local server that speaks Vertex's REST.

The real google-genai client is pointed at an aiohttp app on 127.0.0.1 with static-token
credentials (reference/PLATFORM.md section 6). The scheduler runs on a virtual clock;
the waits between retries are recorded, not slept.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import google.oauth2.credentials
import pytest
from aiohttp import web

from bot.backoff import backoff_secs
from bot.fusion import FusionParams
from bot.settings import SettingsError, SummarySettings, VertexSettings, load_settings
from bot.sinks.summaries import SummarySink, summarizer_for
from bot.summaries import SummaryInput
from bot.summaries.local import summarize_local
from bot.summaries.vertex import (
    SYSTEM_INSTRUCTION,
    CallLimit,
    VertexSummarizer,
    payload,
    payload_json,
)
from bot.types import (
    MeetingEvent,
    ParticipantStateEvent,
    SummaryEvent,
)
from tests.conftest import make_settings
from tests.media import TrackSource
from tests.test_summaries import T0, built, joined, window_events
from web.app import create_app
from web.keys import MANAGER

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
MODEL = "gemini-test-flash"
PATH = (
    "/v1beta1/projects/test-proj/locations/us-central1/publishers/google/models/"
    f"{MODEL}:generateContent"
)
NAMES = ("Ada", "Bo")


def creds() -> google.oauth2.credentials.Credentials:
    """Static token: never refreshed, no Application Default Credentials looked up."""
    return google.oauth2.credentials.Credentials(token="test-token")  # type: ignore[no-untyped-call]


# -- the fake Vertex AI ----------------------------------------------------------------------

Reply = Callable[[dict[str, Any]], web.StreamResponse] | str | int | float


@dataclass
class FakeVertex:
    """Answers generateContent like Vertex AI; ``script`` holds the next replies.

    A reply is an HTTP status (an error in Vertex's format), a float (seconds to stay
    silent), a string (the model's text, as is) or nothing left: ``default`` of the user
    message's JSON (a valid summary of the input it was sent: the local rules' summary,
    with a room mood of its own).
    """

    url: str = ""
    script: list[Reply] = field(default_factory=list)
    requests: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    default: Callable[[dict[str, Any]], str] | None = None

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [body for _, _, body in self.requests]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append((request.path, dict(request.headers), body))
        reply = self.script.pop(0) if self.script else None
        if isinstance(reply, int):
            status = {429: "RESOURCE_EXHAUSTED", 400: "INVALID_ARGUMENT"}.get(reply, "INTERNAL")
            error = {"code": reply, "message": "fake error", "status": status}
            return web.json_response({"error": error}, status=reply)
        if isinstance(reply, float):
            try:
                await asyncio.wait_for(self.release.wait(), reply)
            except TimeoutError:
                pass
            reply = None
        if reply is None:
            write = self.default or gemini_summary
            reply = write(json.loads(body["contents"][0]["parts"][0]["text"]))
        assert isinstance(reply, str)
        return web.json_response(
            {
                "candidates": [
                    {
                        "content": {"role": "model", "parts": [{"text": reply}]},
                        "finishReason": "STOP",
                        "index": 0,
                    }
                ],
                "usageMetadata": {
                    "promptTokenCount": 1234,
                    "candidatesTokenCount": 321,
                    "totalTokenCount": 1555,
                },
                "modelVersion": MODEL,
                "responseId": "r1",
            }
        )


def gemini_summary(sent: dict[str, Any]) -> str:
    """What the fake answers a summary request with: a valid summary of ``sent``."""
    sent = {k: v for k, v in sent.items() if k != "names"}
    output = summarize_local(SummaryInput.model_validate(sent))
    output = output.model_copy(update={"room_mood": "The room looked calm (Gemini)."})
    return output.model_dump_json()


async def serve_fake(aiohttp_server: Any, vertex: FakeVertex) -> FakeVertex:
    """Serve ``vertex`` on 127.0.0.1 and return it with its URL set."""
    app = web.Application()
    app.router.add_post("/{tail:.*}", vertex.handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    vertex.url = f"http://127.0.0.1:{server.port}"
    return vertex


@pytest.fixture
async def fake(aiohttp_server: Any) -> Any:
    vertex = await serve_fake(aiohttp_server, FakeVertex())
    yield vertex
    vertex.release.set()


def summary_settings(fake: FakeVertex, **vertex: Any) -> SummarySettings:
    fields: dict[str, Any] = {
        "project": "test-proj",
        "location": "us-central1",
        "model": MODEL,
        "base_url": fake.url,
    }
    fields.update(vertex)
    return SummarySettings(
        interval_secs=60, summarizer="vertex", timeout_secs=5.0, vertex=VertexSettings(**fields)
    )


@dataclass
class Harness:
    """A summary sink with Gemini as its summarizer; waits recorded, events published."""

    sink: SummarySink
    summarizer: VertexSummarizer
    sleeps: list[float]
    published: list[MeetingEvent]

    async def period(self, t: float, events: list[MeetingEvent] | None = None) -> SummaryEvent:
        """Feed ``events``, tick the meeting clock to ``t``, return the summary published."""
        for e in events or []:
            self.sink.handle(e)
        self.sink.tick(t)
        await self.sink.wait()
        event = self.published.pop()
        assert isinstance(event, SummaryEvent) and not self.published
        return event


def harness(settings: SummarySettings, **kwargs: Any) -> Harness:
    sleeps: list[float] = []

    async def sleep(secs: float) -> None:
        sleeps.append(secs)

    kwargs.setdefault("credentials", creds())
    summarizer = VertexSummarizer(
        settings.vertex, settings.timeout_secs, sleep=sleep, uniform=lambda: 0.5, **kwargs
    )
    published: list[MeetingEvent] = []
    sink = SummarySink(settings, FusionParams(), published.append, summarizer)
    return Harness(sink, summarizer, sleeps, published)


def later(events: list[MeetingEvent], secs: float) -> list[MeetingEvent]:
    """The window's participant states again, ``secs`` later (the next period)."""
    return [
        ParticipantStateEvent(state=replace(e.state, ts=e.state.ts + secs))
        for e in events
        if isinstance(e, ParticipantStateEvent)
    ]


def sent_text(body: dict[str, Any]) -> str:
    (content,) = body["contents"]
    (part,) = content["parts"]
    assert set(part) == {"text"}, "text only: no inline data, no files"
    assert content["role"] == "user"
    text = part["text"]
    assert isinstance(text, str)
    return text


# -- a normal summary ------------------------------------------------------------------------


async def test_gemini_writes_the_summary_from_pseudonymised_figures(
    fake: FakeVertex, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot")
    h = harness(summary_settings(fake))
    event = await h.period(T0 + 60, window_events())
    assert (event.source, event.model, event.note, event.error) == ("vertex", MODEL, None, None)
    assert event.label == f"Gemini summary ({MODEL})"
    assert event.room_mood == "The room looked calm (Gemini)."
    # Pseudonyms are mapped back to names here, on this machine.
    assert [p.display_name for p in event.participants] == ["Ada", "Bo"]
    assert event.participants[1].text.startswith("Bo: low engagement")
    assert event.text.startswith(f"Gemini summary ({MODEL})\nAda: ")

    # What reached "Vertex AI": the REST path and token, and exactly the payload.
    ((path, headers, body),) = fake.requests
    assert path == PATH and headers["Authorization"] == "Bearer test-token"
    assert set(body) == {"contents", "systemInstruction", "generationConfig"}
    inp, names = built()  # the same window, built the same way
    assert sent_text(body) == payload_json(inp, names)
    assert body["systemInstruction"]["parts"] == [{"text": SYSTEM_INSTRUCTION}]
    config = body["generationConfig"]
    assert config["responseMimeType"] == "application/json" and config["temperature"] == 0.2
    assert set(config["responseSchema"]["properties"]) == {
        "participants",
        "room_mood",
        "changes",
        "suggestion",
    }
    raw = json.dumps(body)
    for name in NAMES:
        assert not re.search(rf"\b{name}\b", raw), f"{name} left the machine"
    sent = json.loads(sent_text(body))
    assert [p["alias"] for p in sent["participants"]] == ["P1", "P2"] and "names" not in sent
    assert sent["room"]["moments"][0]["speaking"] == ["P2"]

    # Token counts are logged; no log line carries a name, a figure or text.
    (usage,) = [r for r in caplog.records if r.getMessage() == "gemini answered"]
    assert (usage.prompt_tokens, usage.output_tokens, usage.total_tokens) == (1234, 321, 1555)  # type: ignore[attr-defined]
    assert usage.attempts == 1 and usage.model == MODEL  # type: ignore[attr-defined]
    for record in caplog.records:
        logged = record.getMessage() + json.dumps(record.__dict__, default=str)
        assert not any(re.search(rf"\b{n}\b", logged) for n in NAMES), record.__dict__
        assert "calm" not in logged and "P1" not in logged

    info = h.sink.info
    assert (info.name, info.model) == ("vertex", MODEL)
    assert info.where == (
        f"Gemini ({MODEL}) on Vertex AI, project test-proj (us-central1) via {fake.url}: "
        "aggregated, pseudonymised figures are sent, never images, audio or words"
    )
    await h.sink.close()


async def test_names_are_sent_only_when_the_host_opts_in(fake: FakeVertex) -> None:
    h = harness(summary_settings(fake, share_names=True))
    event = await h.period(T0 + 60, window_events())
    assert event.source == "vertex"
    (body,) = fake.bodies
    sent = json.loads(sent_text(body))
    assert sent["names"] == {"P1": "Ada", "P2": "Bo"}
    assert [p["alias"] for p in sent["participants"]] == ["P1", "P2"]  # still the keys
    assert "aggregated figures and display names are sent" in h.sink.info.where
    await h.sink.close()


# -- retries, failures and the way back ------------------------------------------------------


async def test_429_is_retried_after_a_jittered_backoff(fake: FakeVertex) -> None:
    fake.script = [429]
    h = harness(summary_settings(fake, backoff_initial_secs=2.0))
    event = await h.period(T0 + 60, window_events())
    assert event.source == "vertex" and event.note is None
    assert len(fake.requests) == 2
    assert h.sleeps == [1.0]  # full jitter: 0.5 * min(8, 2 * 2**0)
    await h.sink.close()


async def test_500_until_retries_run_out_gives_the_local_summary_then_gemini_again(
    fake: FakeVertex,
) -> None:
    fake.script = [500, 503, 500]
    h = harness(summary_settings(fake, max_attempts=3))
    first = await h.period(T0 + 60, window_events())
    assert len(fake.requests) == 3 and h.sleeps == [0.5, 1.0]
    assert (first.source, first.label, first.model) == ("local", "local summary", None)
    assert first.note == (
        f"the Gemini summary ({MODEL}) failed: HTTP 500 INTERNAL after 3 attempts; "
        "local summary instead"
    )
    assert first.text.splitlines()[1] == f"({first.note})"  # shown with the summary
    assert first.participants[0].display_name == "Ada"
    # The next period asks Gemini again.
    second = await h.period(T0 + 120, later(window_events(), 60))
    assert (second.source, second.note) == ("vertex", None) and len(fake.requests) == 4
    await h.sink.close()


async def test_connection_errors_are_retried(fake: FakeVertex) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    h = harness(summary_settings(fake, base_url=f"http://127.0.0.1:{port}"))
    event = await h.period(T0 + 60, window_events())
    assert event.source == "local" and h.sleeps == [0.5, 1.0]
    assert event.note == (
        f"the Gemini summary ({MODEL}) failed: connection failed after 3 attempts; "
        "local summary instead"
    )
    await h.sink.close()


@pytest.mark.parametrize(
    ("reply", "says"),
    [
        ("{not json", "returned invalid output (not JSON (line 1, column 2))"),
        ("", "returned invalid output (no text)"),
        (
            json.dumps({"participants": [], "room_mood": "Calm."}),
            "returned invalid output (not the response schema: changes: Field required)",
        ),
        (
            json.dumps(
                {
                    "participants": [
                        {"participant": "P1", "engagement_band": "loud", "sentence": "x"}
                    ],
                    "room_mood": "Calm.",
                    "changes": [],
                    "suggestion": "Go on.",
                }
            ),
            "returned invalid output (not the response schema: participants.0.engagement_band: "
            "Input should be 'low', 'medium', 'high' or 'unknown')",
        ),
        (
            json.dumps(
                {
                    "participants": [
                        {"participant": "P1", "engagement_band": "high", "sentence": "Fine."},
                        {"participant": "P2", "engagement_band": "low", "sentence": "Ask P3."},
                    ],
                    "room_mood": "Calm.",
                    "changes": [],
                    "suggestion": "Go on.",
                }
            ),
            "returned invalid output (names 'P3', who is not in the input)",
        ),
        (400, "failed: HTTP 400 INVALID_ARGUMENT"),
    ],
)
async def test_invalid_answers_give_the_local_summary_with_a_note(
    fake: FakeVertex, reply: str | int, says: str
) -> None:
    fake.script = [reply]
    h = harness(summary_settings(fake))
    event = await h.period(T0 + 60, window_events())
    assert event.source == "local" and event.error is None
    assert event.note == f"the Gemini summary ({MODEL}) {says}; local summary instead"
    assert len(fake.requests) == 1, "invalid output and 4xx are not retried"
    await h.sink.close()


async def test_a_slow_answer_is_retried_then_times_out(fake: FakeVertex) -> None:
    # The first request gets no answer within request_timeout_secs: retried, and answered.
    fake.script = [5.0]
    h = harness(summary_settings(fake, request_timeout_secs=0.2, backoff_initial_secs=0.0))
    event = await h.period(T0 + 60, window_events())
    assert event.source == "vertex" and len(fake.requests) == 2
    await h.sink.close()

    # No answer within summaries.timeout_secs: the local summary, "timed out".
    fake.requests.clear()
    fake.script = [5.0, 5.0]
    settings = summary_settings(fake, request_timeout_secs=0.2).model_copy(
        update={"timeout_secs": 0.3}
    )
    h = harness(settings)
    event = await h.period(T0 + 60, window_events())
    assert event.source == "local"
    assert event.note == (
        f"the Gemini summary ({MODEL}) timed out after 0.3 s; local summary instead"
    )
    assert len(fake.requests) == 1  # the backoff would have passed the deadline
    await h.sink.close()


async def test_the_rate_limit_is_per_meeting_and_per_hour_of_meeting_time(
    fake: FakeVertex,
) -> None:
    h = harness(summary_settings(fake, max_calls_per_hour=2))
    h.sink.handle(joined("a", "Ada"))
    sources = []
    for t in (10.0, 20.0, 30.0, 3610.0, 3615.0):
        event = await h.sink.summarize_now(T0 + t)
        h.published.clear()
        sources.append(event.source)
        if event.source == "local":
            assert event.note == (
                f"the Gemini summary ({MODEL}) was not asked: the limit of 2 per hour of "
                "meeting is reached; local summary instead"
            )
    # 10 and 20 s go to Gemini, 30 s does not; at 3610 s the call at 10 s has left the hour.
    assert sources == ["vertex", "vertex", "local", "vertex", "local"]
    assert len(fake.requests) == 3
    # Another meeting has its own limit.
    other = harness(summary_settings(fake, max_calls_per_hour=2))
    other.sink.handle(joined("b", "Bo"))
    assert (await other.sink.summarize_now(T0 + 40)).source == "vertex"
    await h.sink.close()
    await other.sink.close()


async def test_missing_credentials_give_the_local_summary_and_the_server_runs(
    fake: FakeVertex,
    aiohttp_client: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No Application Default Credentials anywhere: no key file, no gcloud, no metadata server.
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("NO_GCE_CHECK", "true")
    settings = make_settings(
        tmp_path,
        **{
            "analyzers.enabled": [],
            "summaries.summarizer": "vertex",
            "summaries.vertex.project": "test-proj",
            "summaries.vertex.location": "us-central1",
            "summaries.vertex.model": MODEL,
            "summaries.vertex.base_url": fake.url,
        },
    )
    client = await aiohttp_client(create_app(settings))
    manager = client.app[MANAGER]
    record, host_token = await manager.create_meeting("Retro")
    meeting = await manager.live(record.id)
    assert isinstance(meeting.summaries.summarizer, VertexSummarizer)
    now = [T0]
    meeting.clock = lambda: now[0]
    url = f"/api/meetings/{record.id}/summaries"
    auth = {"Authorization": f"Bearer {host_token}"}
    ada = meeting.join("Ada", TrackSource())

    now[0] = T0 + 60
    meeting.tick(now[0])
    await meeting.summaries.wait()
    listing = await (await client.get(url, headers=auth)).json()
    (first,) = listing["summaries"]
    assert first["source"] == "local" and first["error"] is None
    assert first["note"] == (
        f"the Gemini summary ({MODEL}) failed: no Google Cloud credentials (Application "
        "Default Credentials: run `gcloud auth application-default login`); "
        "local summary instead"
    )
    assert fake.requests == []
    info = listing["summarizer"]
    assert (info["name"], info["model"], info["label"]) == (
        "vertex",
        MODEL,
        f"Gemini summary ({MODEL})",
    )
    assert "pseudonymised figures are sent" in info["where"]

    # Credentials arrive (here: a static token): the next period is Gemini's.
    await meeting.summaries.summarizer.aclose()
    meeting.summaries.summarizer = VertexSummarizer(
        settings.summaries.vertex, settings.summaries.timeout_secs, credentials=creds()
    )
    now[0] = T0 + 120
    meeting.tick(now[0])
    await meeting.summaries.wait()
    newest = (await (await client.get(url, headers=auth)).json())["summaries"][0]
    assert (newest["source"], newest["model"], newest["note"]) == ("vertex", MODEL, None)
    assert newest["participants"][0]["display_name"] == "Ada"
    (body,) = fake.bodies
    assert "Ada" not in json.dumps(body)
    await meeting.end(ada, "left")


# -- pure parts ------------------------------------------------------------------------------


def test_backoff_is_full_jitter_and_capped() -> None:
    assert [backoff_secs(n, 1.0, 8.0, 0.999) for n in (1, 2, 3, 4, 5)] == pytest.approx(
        [0.999, 1.998, 3.996, 7.992, 7.992]
    )
    assert backoff_secs(3, 1.0, 8.0, 0.0) == 0.0


def test_call_limit_is_a_sliding_window() -> None:
    limit = CallLimit(2, per_secs=100.0)
    assert [limit.take(t) for t in (0, 10, 50, 100, 105, 110, 111)] == [
        True,
        True,
        False,
        True,  # the call at 0 left the window
        False,
        True,  # the call at 10 left it
        False,
    ]


def test_vertex_needs_a_project_and_sane_settings() -> None:
    with pytest.raises(SettingsError) as e:
        load_settings(environ={}, overrides={"summaries.summarizer": "vertex"})
    assert str(e.value) == (
        'summaries.vertex: project is required when summaries.summarizer = "vertex" '
        "(set summaries.vertex.project to your Google Cloud project id)"
    )
    with pytest.raises(SettingsError, match=r"^summaries.vertex.base_url: must start with"):
        load_settings(environ={}, overrides={"summaries.vertex.base_url": "localhost:9"})
    vertex = load_settings(
        environ={"MEETMOOD_SUMMARIES__SUMMARIZER": "vertex"},
        overrides={"summaries.vertex.project": "p"},
    ).summaries
    assert (vertex.summarizer, vertex.vertex.model, vertex.vertex.share_names) == (
        "vertex",
        "gemini-3.5-flash",
        False,
    )
    assert isinstance(summarizer_for(vertex), VertexSummarizer)


def test_google_genai_is_not_imported_unless_vertex_summarizes() -> None:
    code = (
        "import sys\n"
        "from bot.settings import SummarySettings\n"
        "from bot.sinks.summaries import summarizer_for\n"
        "import web.app, bot.meeting, bot.cli\n"
        "summarizer_for(SummarySettings())\n"
        "summarizer_for(SummarySettings(summarizer='vertex', vertex={'project': 'p'}))\n"
        "assert 'google.genai' not in sys.modules, 'google.genai imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


def test_readme_shows_the_exact_payload() -> None:
    inp, names = built()
    example = json.dumps(payload(inp, names), indent=2, ensure_ascii=False)
    assert f"```json\n{example}\n```" in README
    # On the wire it is the same JSON without whitespace.
    assert payload_json(inp, names) == json.dumps(json.loads(example), separators=(",", ":"))
