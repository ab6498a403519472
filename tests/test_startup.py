"""Start-up: the server answers while its models load, and says so honestly meanwhile.

Model loading is held by a gate (:func:`model_gate`): inference runs in threads here, so
every pool's load goes through this process's ``analyzers._worker.init``, which waits
for the gate and then loads the real models. While it is closed, the server must answer
(``/healthz`` says ``starting``), a participant who joins must be drained and shown as
"analysis starting" (not "no face", not "no video"), and their page and the host's
sidebar must say so; once it opens, the notices come, then ``ready``, then real states.
No timings are asserted (speed is ``meetmood bench startup``'s).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import aioice
import pytest
from aiohttp.test_utils import TestClient
from aiortc import RTCPeerConnection

from analyzers import _worker
from analyzers.base import AnalyzerUnavailable
from analyzers.voice.synth import espeak_speech
from bot.bench_sidebar import wait_for_js
from bot.bench_startup import bench_startup, format_startup
from bot.cli import build_parser, start_server
from bot.fusion import FusionParams, fuse
from bot.fusion.inputs import FACE_STARTING_REASON
from bot.inference import InferencePool, VoiceEmotionClient
from bot.types import (
    AnalysisFailed,
    AnalysisStarting,
    Emotion,
    EmotionScores,
    FaceObservation,
    VoiceMetrics,
    VoiceObservation,
)
from tests.conftest import ADMIN, make_settings
from tests.fixtures import FAKE_MEDIA_ARGS, chromium
from tests.media import ImageVideoTrack, SpeechAudioTrack, face_frame_rgb
from tests.served import join_peer
from web.app import create_app
from web.keys import MANAGER

#: Longest a gated load waits for the test to open the gate (a failing test's backstop).
GATE_SECS = 120.0
STARTING = {"face_emotion": "starting", "voice_emotion": "starting"}
#: The face line of participant ``pid``'s card in the sidebar (a function of ``pid``).
FACE_TEXT = (
    "(pid) => document.querySelector("
    '`.participant-card[data-participant-id="${pid}"] .face-text`)?.textContent'
)


@pytest.fixture
def model_gate(aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Model loads (thread-mode pools) wait until the test sets the returned event.

    Requests ``aiohttp_client`` so that this opens the gate before any app the test made
    is shut down (a pool's shutdown waits for its loading thread).
    """
    gate = threading.Event()
    real_init = _worker.init

    def gated_init(specs: dict[str, dict[str, Any]], ignore_sigint: bool = True) -> None:
        gate.wait(GATE_SECS)
        real_init(specs, ignore_sigint)

    monkeypatch.setattr(_worker, "init", gated_init)
    yield gate
    gate.set()


async def until(check: Callable[[], Any], secs: float = 60.0) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy; return that.

    A wait, not a timed assertion: ``secs`` is only how long a broken run takes to fail.
    """
    async with asyncio.timeout(secs):
        while True:
            value = check()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return value
            await asyncio.sleep(0.05)


async def next_state(ws: Any, pid: str, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The next ``participant_state`` of ``pid`` that ``match`` accepts."""
    async with asyncio.timeout(60):
        while True:
            event = await ws.receive_json()
            if event["type"] == "participant_state" and event["state"]["participant_id"] == pid:
                if match(event["state"]):
                    return event["state"]


async def create_meeting(client: TestClient) -> dict[str, Any]:
    resp = await client.post("/api/meetings", json={"name": "Early"}, headers=ADMIN)
    assert resp.status == 201
    meeting: dict[str, Any] = await resp.json()
    return meeting


# -- the pool's readiness --------------------------------------------------------------


@pytest.mark.unit
async def test_a_pool_reads_starting_while_it_loads_and_a_failed_load_is_said_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    gate = threading.Event()

    def failing_init(specs: dict[str, dict[str, Any]], ignore_sigint: bool = True) -> None:
        gate.wait(GATE_SECS)
        raise RuntimeError("weights truncated")

    monkeypatch.setattr(_worker, "init", failing_init)
    pool = InferencePool({"face_emotion": {}}, workers=1, mode="thread")
    assert pool.status("face_emotion") == "ok"  # never started: its calls decide
    assert pool.status("voice_emotion") == "disabled"
    loading = asyncio.create_task(pool.load())
    try:
        await asyncio.sleep(0)
        assert pool.status("face_emotion") == "starting"
        assert not pool.available("face_emotion")
        voice = VoiceEmotionClient(pool, 1.0)
        assert voice.status == "disabled"  # not enabled, loading or not
        waiting = asyncio.create_task(pool.wait_loaded("face_emotion"))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        with caplog.at_level(logging.ERROR, logger="bot.inference"):
            gate.set()
            assert await waiting == "unavailable"  # load() does not raise
            await loading
        assert pool.status("face_emotion") == "unavailable"
        # The executor reports its initializer's failure as a broken pool (the error itself
        # is in the log, from the worker).
        reason = pool.unavailable["face_emotion"]
        assert reason.startswith("its model failed to load (BrokenThreadPool")
        assert caplog.messages.count("analyzer failed to load") == 1
        # Calls fail at once, with the reason; no worker is started again per call.
        with pytest.raises(AnalyzerUnavailable, match="failed to load"):
            await pool.run_batched("face_emotion", object(), timeout_secs=5)
        with pytest.raises(AnalyzerUnavailable, match="failed to load"):
            await pool.run("face_emotion", object(), timeout_secs=5)
    finally:
        gate.set()
        await pool.close()


# -- fusion before the first face analysis -----------------------------------------------


@pytest.mark.unit
def test_a_state_before_any_face_analysis_says_analysis_starting_not_no_video() -> None:
    params = FusionParams()
    starting = fuse(None, "p1", [AnalysisStarting("p1", 10.0)], 10.0, params)
    state = starting.state
    assert not state.face_visible and state.emotion is None
    for name in ("attention", "expressiveness"):
        assert state.readings[name].value is None
        assert state.readings[name].reason == FACE_STARTING_REASON
    assert (state.readings["happy"].reason or "").startswith(FACE_STARTING_REASON)
    # The same participant without the observation: no face analyses means no video.
    voice = VoiceMetrics(False, 0.0, None, None, None, None, "starting")
    silent = fuse(None, "p1", [VoiceObservation("p1", 10.0, voice)], 10.0, params).state
    assert silent.readings["attention"].reason == "no video (camera off or not sending)"
    assert (silent.readings["happy"].reason or "").endswith("; voice emotion model loading")
    # The first face analysis replaces it for good.
    probs = dict.fromkeys(Emotion, 0.0) | {Emotion.HAPPY: 1.0}
    face = FaceObservation("p1", 1, 10.5, EmotionScores("p1", 10.5, "face", probs, 1.0))
    analysed = fuse(starting, "p1", [face], 10.5, params).state
    assert analysed.face_visible
    assert analysed.readings["attention"].reason != FACE_STARTING_REASON
    later = fuse(starting, "p1", [AnalysisStarting("p1", 11.0)], 11.0, params)
    assert later.memory.face_starting  # still nothing analysed: still starting
    after = fuse(fuse(starting, "p1", [face], 10.5, params), "p1", [], 30.0, params).state
    assert after.readings["attention"].reason == "no video (camera off or not sending)"
    # A face model that turned out unavailable: its analyses fail. The starting readings
    # are not repeated as if they were the last good ones: stale, without face input.
    failed = fuse(starting, "p1", [AnalysisFailed("p1", 12.0, "face")], 12.0, params)
    assert failed.state.stale and not failed.memory.face_starting
    assert failed.state.readings["attention"].reason == "no video (camera off or not sending)"


# -- the server -------------------------------------------------------------------------


@pytest.mark.e2e
async def test_serve_answers_before_the_models_are_loaded(
    tmp_path: Path, model_gate: threading.Event
) -> None:
    # start_server is what `meetmood serve` runs.
    runner, url = await start_server(make_settings(tmp_path))
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/healthz") as resp:
                assert resp.status == 200
                health = await resp.json()
            assert health == {"status": "ok", "models": "starting", "analyzers": STARTING}
            async with http.get(f"{url}/") as resp:
                assert resp.status == 200  # the home page too
            model_gate.set()

            async def loaded() -> dict[str, Any] | None:
                async with http.get(f"{url}/healthz") as resp:
                    health: dict[str, Any] = await resp.json()
                return health if health["models"] == "ready" else None

            health = await until(loaded, 120)
            assert health["analyzers"] == {"face_emotion": "ok", "voice_emotion": "unavailable"}
    finally:
        model_gate.set()
        await runner.cleanup()


@pytest.mark.e2e
@pytest.mark.usefixtures("loopback_only")
async def test_a_participant_who_joins_while_the_models_load_is_analysed_once_they_are(
    aiohttp_client: Any, tmp_path: Path, model_gate: threading.Event
) -> None:
    # conftest's settings: the voice model is not cached, so it turns out unavailable.
    client = await aiohttp_client(create_app(make_settings(tmp_path)))
    manager = client.app[MANAGER]
    meeting = await create_meeting(client)
    auth = {"Authorization": f"Bearer {meeting['host_token']}"}
    ws = await client.ws_connect(f"/api/meetings/{meeting['id']}/ws", headers=auth)
    snapshot = await ws.receive_json()
    assert snapshot["models"] == {"type": "models", "state": "starting", "analyzers": STARTING}
    assert snapshot["notices"] == []  # nothing is known about the models yet
    speech = espeak_speech("Hello everyone, I joined a little early today.")
    pc = RTCPeerConnection()
    pc.addTrack(ImageVideoTrack(face_frame_rgb(), fps=15))
    pc.addTrack(SpeechAudioTrack(speech, lead_secs=0.5))
    try:
        token = meeting["join_url"].split("token=")[1]
        joined = await join_peer(
            client, f"/api/meetings/{meeting['id']}/participants", token, pc, "Early"
        )
        pid = joined["participant_id"]

        # While the models load: a state that says so (no face analysed yet is not
        # "no face"), the voice readings going on with their tone "starting"...
        state = await next_state(
            ws, pid, lambda s: s["readings"]["attention"]["reason"] == FACE_STARTING_REASON
        )
        assert not state["face_visible"] and state["emotion"] is None
        for name in ("attention", "expressiveness"):
            assert state["readings"][name] == {
                "value": None,
                "confidence": 0.0,
                "reason": FACE_STARTING_REASON,
                "sources": [],
            }
        state = await next_state(ws, pid, lambda s: s["voice"] is not None)
        assert state["voice"]["emotion_status"] == "starting"
        assert state["readings"]["attention"]["reason"] == FACE_STARTING_REASON
        # ...and the video drained meanwhile, newest frame wins: received, none analysed.
        stats = await until(lambda: (s := manager.stats().get(pid)) and s.frames_received > 5 and s)
        assert stats.frames_analyzed == 0
        health = await (await client.get("/healthz")).json()
        assert health["models"] == "starting"

        model_gate.set()
        # Loading ends: the notice of what could not be loaded, then "ready".
        notices: list[str] = []
        async with asyncio.timeout(120):
            while True:
                event = await ws.receive_json()
                if event["type"] == "notice":
                    notices.append(event["text"])
                elif event["type"] == "models":
                    break
        assert notices == ["voice emotion model unavailable"]
        assert event == {
            "type": "models",
            "state": "ready",
            "analyzers": {"face_emotion": "ok", "voice_emotion": "unavailable"},
        }
        # Then real states: the face analysed, the voice's tone said unavailable.
        face = await next_state(ws, pid, lambda s: s["face_visible"])
        assert face["emotion"] is not None and face["face"] is not None
        assert face["readings"]["attention"]["reason"] != FACE_STARTING_REASON
        voice = await next_state(ws, pid, lambda s: s["voice"]["emotion_status"] != "starting")
        assert voice["voice"]["emotion_status"] == "unavailable"
        stats = manager.stats()[pid]
        assert stats.frames_analyzed > 0
        # The frames that came while loading were not queued for analysis.
        assert stats.frames_dropped > 0
    finally:
        await pc.close()
        await ws.close()


@pytest.mark.e2e
@pytest.mark.usefixtures("loopback_only")
async def test_the_join_page_and_the_sidebar_say_analysis_starting(
    aiohttp_server: Any, tmp_path: Path, model_gate: threading.Event
) -> None:
    server = await aiohttp_server(create_app(make_settings(tmp_path)))
    base = str(server.make_url("")).rstrip("/")
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/api/meetings", json={"name": "E"}, headers=ADMIN) as resp:
            meeting = await resp.json()
    async with chromium(*FAKE_MEDIA_ARGS) as browser:
        context = await browser.new_context()
        host = await context.new_page()
        await host.goto(meeting["host_url"])
        await wait_for_js(host, "window.sidebar.socketState === 'live'")
        assert await host.evaluate("window.sidebar.models") == "starting"
        line = host.locator('#notices [data-code="models_starting"]')
        assert await line.is_visible()
        text = await line.locator(".notice-text").inner_text()
        assert text == "analysis starting (models loading)…"

        page = await context.new_page()
        await page.goto(meeting["join_url"])
        await page.fill("#display-name", "Early")
        await page.click("#agree")
        await wait_for_js(page, "window.meetmood.analysis === 'starting'", timeout_ms=30_000)
        status = page.locator("#status")
        assert await status.inner_text() == "Connected — analysis starting (models loading)…"
        pid = await page.evaluate("window.meetmood.participantId")
        card = host.locator(f'.participant-card[data-participant-id="{pid}"]')
        await wait_for_js(host, f"{FACE_TEXT} === 'analysis starting'", arg=pid)
        assert "no-face" not in (await card.get_attribute("class") or "")

        model_gate.set()
        await wait_for_js(page, "window.meetmood.analysis === 'running'", timeout_ms=120_000)
        assert await status.inner_text() == "Connected — analysis running"
        await wait_for_js(host, "window.sidebar.models === 'ready'", timeout_ms=120_000)
        assert not await line.is_visible()
        voice = host.locator('#notices [data-code="voice_emotion_unavailable"]')
        assert await voice.is_visible()
        await wait_for_js(host, f"{FACE_TEXT} !== 'analysis starting'", arg=pid)
        await page.click("#leave")


# -- the benchmark ----------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.usefixtures("loopback_only")
async def test_bench_startup_measures_a_real_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    """`meetmood bench startup` in miniature: one launch, face analysis only; no timings checked."""
    # The bench makes this process's peers offer loopback only: put that back afterwards.
    monkeypatch.setattr(aioice.ice, "get_host_addresses", aioice.ice.get_host_addresses)
    figures = await bench_startup(runs=1, sets=('analyzers.enabled=["face_emotion"]',))
    (run,) = figures.per_run
    assert run["analyzers"] == {"face_emotion": "ok"}
    assert 0 < run["first_http_secs"] <= run["models_ready_secs"]
    assert 0 < run["join_to_first_state_secs"] <= run["join_to_face_secs"]
    assert figures.first_http_secs == round(run["first_http_secs"], 2)
    text = format_startup(figures, as_json=False)
    assert text.splitlines()[0].split() == ["median", "run", "1"]
    assert json.loads(format_startup(figures, as_json=True))["runs"] == 1
    args = build_parser().parse_args(["bench", "startup", "--runs", "2", "--json"])
    assert (args.bench_command, args.runs, args.json) == ("startup", 2, True)
