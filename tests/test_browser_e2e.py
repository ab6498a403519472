"""End to end in real headless Chromium against a real ``meetmood serve`` process.

Chromium's fake camera plays a y4m made at test time from a real face image;
the participant opens the join page, reads the notice, agrees, and streams. The
host's sidebar (a second page, and the sidebar WebSocket read directly) must show
a visible face with emotion probabilities, and a mood summary when the host asks.
Runs on loopback in a private network namespace (see conftest.loopback_only).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from playwright.async_api import Browser

from analyzers.voice.synth import espeak_speech
from bot.bench_sidebar import wait_for_js
from tests.fixtures import FAKE_MEDIA_ARGS, chromium
from tests.media import write_wav, write_y4m
from tests.served import serve

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("loopback_only")]


@dataclass(frozen=True)
class Server:
    """A running server: its base URL and the admin token it printed at first start."""

    url: str
    admin: dict[str, str]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    """A real ``meetmood serve`` on a free loopback port."""
    # This run's environment (empty model caches) and these settings, no developer's
    # MEETMOOD_* ones. Inference in worker processes and private ICE candidates refused,
    # as users run it.
    served = await serve(
        tmp_path / "e2e.sqlite3",
        **{
            "analyzers.face_emotion.device": "cpu",
            "inference.mode": "process",
            "limits.allow_private_candidates": False,
        },
    )
    try:
        admin = (await served.line_matching(r"^admin token: (\S+)$")).group(1)  # first start
        yield Server(served.url, {"Authorization": f"Bearer {admin}"})
    finally:
        code = await served.stop()  # SIGINT: Ctrl-C, the clean shutdown path
    assert code == 0, served.output[-3000:]
    assert "stopped" in served.output


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    """Debian's Chromium with a fake camera (y4m of a real face) and microphone (speech).

    The microphone plays espeak-ng speech followed by silence, in a loop.
    """
    y4m = write_y4m(tmp_path / "face.y4m", frames=60)
    speech = espeak_speech("Good morning everyone. Let us look at the plan for this week.")
    pcm = np.concatenate([speech, np.zeros(32_000, np.float32)]) * 32767
    wav = write_wav(tmp_path / "speech.wav", pcm, 16_000)
    async with chromium(
        *FAKE_MEDIA_ARGS,
        f"--use-file-for-fake-video-capture={y4m}",
        f"--use-file-for-fake-audio-capture={wav}",
    ) as b:
        yield b


async def _events(ws: aiohttp.ClientWebSocketResponse) -> AsyncIterator[dict[str, Any]]:
    async for msg in ws:
        yield json.loads(msg.data)


async def test_browser_participant_shows_in_sidebar(
    server: Server, browser: Browser, tmp_path: Path
) -> None:
    async with aiohttp.ClientSession() as http:
        url = f"{server.url}/api/meetings"
        async with http.post(url, json={"name": "E2E"}, headers=server.admin) as resp:
            assert resp.status == 201
            meeting = await resp.json()
        ws = await http.ws_connect(
            f"{server.url}/api/meetings/{meeting['id']}/ws",
            headers={"Authorization": f"Bearer {meeting['host_token']}"},
        )
        events = _events(ws)
        assert (await anext(events))["type"] == "snapshot"

        # The host opens the sidebar page; the host link's token leaves the address.
        context = await browser.new_context()
        host = await context.new_page()
        console: list[str] = []
        host.on("console", lambda m: console.append(m.text))
        await host.goto(meeting["host_url"])
        await host.wait_for_url(f"{server.url}/host/{meeting['id']}")

        # A participant opens the join link: the notice comes first, nothing is captured.
        page = await context.new_page()
        page.on("console", lambda m: console.append(m.text))
        await page.goto(meeting["join_url"])
        notice = await page.inner_text("#notice")
        assert "not recorded" in notice or "No video or audio" in notice
        assert await page.evaluate("window.meetmood.state") == "idle"
        await page.fill("#display-name", "Grace")
        await page.click("#agree")
        await wait_for_js(page, "window.meetmood.state === 'connected'", timeout_ms=20_000)
        # The server asks the camera, on the page's data channel, for no more than the
        # analysis takes; the page caps the video encoder to that.
        await wait_for_js(page, "window.meetmood.sendRequest", timeout_ms=20_000)
        encoding = await page.evaluate(
            "window.meetmood.pc.getSenders().find((s) => s.track && s.track.kind === 'video')"
            ".getParameters().encodings[0]"
        )
        assert encoding["maxFramerate"] == 15 and encoding["maxBitrate"] == 900_000

        # The sidebar socket reports a visible face with 7 probabilities and landmark
        # readings, the voice (speaking, with talk time), and once the person's usual gaze
        # is known (3 s of face) and they have spoken, engagement with all three components.
        face_state = voice_state = fused_state = None
        async with asyncio.timeout(90):
            async for event in events:
                if event["type"] != "participant_state":
                    continue
                state = event["state"]
                if state["face_visible"] and state["face"]:
                    face_state = state
                voice = state["voice"]
                if voice and voice["is_speaking"] and voice["talk_secs"] > 0.5:
                    voice_state = state
                readings = state["readings"]
                parts = ("engagement", "attention", "expressiveness", "participation")
                if all(readings[n]["value"] is not None for n in parts):
                    fused_state = state
                if face_state and voice_state and fused_state:
                    break
        assert face_state is not None and voice_state is not None and fused_state is not None
        readings = fused_state["readings"]
        # Looking at the camera the whole time: attentive; engagement from all three parts.
        assert readings["attention"]["value"] > 0.8
        assert set(readings["engagement"]["sources"]) == {
            "attention",
            "expressiveness",
            "participation",
        }
        # No speech-emotion model here: the fused expressions come from the face only.
        assert readings["happy"]["sources"] == ["face_fer"]
        assert readings["bored"]["value"] is None and readings["bored"]["reason"]
        probs = face_state["emotion"]["probs"]
        assert len(probs) == 7
        assert abs(sum(probs.values()) - 1.0) < 1e-3
        assert face_state["face"]["head_yaw"] is not None
        pid = face_state["participant_id"]
        # The default speech-emotion model is not cached here: said, not faked.
        assert voice_state["voice"]["emotion_status"] == "unavailable"

        # The host's sidebar page shows the card with the face visible.
        card = host.locator(f'.participant-card[data-participant-id="{pid}"]')
        await card.wait_for(timeout=10_000)
        face_on = '.face-indicator[data-face-visible="true"]'
        await host.wait_for_selector(
            f'.participant-card[data-participant-id="{pid}"] {face_on}', timeout=10_000
        )
        assert "Grace" in await card.inner_text()
        assert await host.evaluate("window.sidebar.socketState") == "live"
        talk = card.locator('[data-field="talk-time"]')
        await wait_for_js(
            host, "el => /\\d:\\d\\d/.test(el.textContent)", arg=await talk.element_handle()
        )
        # Engagement leads the card: its band and value, and the three components with
        # live values (the participant looks at the camera and speaks).
        engagement = card.locator('[data-field="engagement"]')
        await wait_for_js(
            host,
            "el => /(low|medium|high)\\s*\\d\\.\\d\\d/i.test(el.textContent)",
            arg=await engagement.element_handle(),
            timeout_ms=30_000,
        )
        for name in ("attention", "expressiveness", "participation"):
            line = card.locator(f'li[data-field="{name}"] .rd-value')
            await wait_for_js(
                host, "el => /\\d/.test(el.textContent)", arg=await line.element_handle()
            )
        # The 28 states, grouped basic / vocal / composite, with live values and reasons.
        await card.locator("details.states > summary").click()
        rows = card.locator("tr.st-row")
        await rows.nth(27).wait_for()
        assert await rows.count() == 28
        for group, n in (("basic", 7), ("vocal", 11), ("composite", 10)):
            assert await card.locator(f'table[data-group="{group}"] tr.st-row').count() == n
        happy = card.locator('tr[data-state="happy"] .st-num')
        await wait_for_js(
            host, "el => /\\d/.test(el.textContent)", arg=await happy.element_handle()
        )
        bored = card.locator('tr[data-state="bored"]')
        assert "is-not-estimable" in (await bored.get_attribute("class") or "")
        assert "posture" in await bored.inner_text()
        assert await card.locator('tr[data-state="happy"] th').get_attribute("title")
        # The host asks for a mood summary: the feed shows it, with Grace's engagement.
        await host.click("#summarize-now")
        summary = host.locator("#summaries .summary").first
        await summary.wait_for(timeout=10_000)
        assert "local summary" in await summary.locator(".sum-source").inner_text()
        line = await summary.locator(f'.sum-person[data-participant-id="{pid}"]').inner_text()
        assert re.match(r"Grace: (low|medium|high) engagement \(\d\.\d\d", line), line
        assert "Suggestion: " in await summary.inner_text()
        await host.screenshot(path=str(tmp_path / "host.png"), full_page=True)

        # Leaving ends the participant cleanly.
        await page.click("#leave")
        async with asyncio.timeout(15):
            async for event in events:
                if event["type"] == "participant_left" and event["participant_id"] == pid:
                    assert event["reason"] == "left"
                    break
        assert await page.evaluate("window.meetmood.state") == "left"
        await ws.close()
        await context.close()
    # Both pages ran under the server's Content-Security-Policy without a violation.
    assert not [m for m in console if "Content Security Policy" in m], console


async def test_declining_captures_nothing(server: Server, browser: Browser) -> None:
    async with aiohttp.ClientSession() as http:
        url = f"{server.url}/api/meetings"
        async with http.post(url, json={}, headers=server.admin) as resp:
            meeting = await resp.json()
    page = await browser.new_page()
    await page.goto(meeting["join_url"])
    await page.click("#decline")
    assert await page.evaluate("window.meetmood.state") == "declined"
    # No camera was opened: no media tracks exist on the page.
    assert await page.evaluate("window.meetmood.pc") is None
    await page.close()
