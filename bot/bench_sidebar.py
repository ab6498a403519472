"""Benchmark: ``meetmood bench sidebar``, the host page under a meeting's event stream.

Serves the real app on loopback (no analyzers loaded, an in-memory database), opens
the host page in headless Chromium (playwright) at 400 px wide, and publishes into
the live meeting what the pipeline would: ``participants`` participants joining,
then each one's fused state at the sidebar rate (every ``sidebar.state_interval_secs``,
0.5 s by default, staggered across participants), built with the real
:func:`bot.fusion.fuse` from synthetic observations that vary over time (gaze,
smiles and action units, speech turns), plus the talk figures (a real
:class:`~analyzers.voice.talk.TalkTracker`) and the room (:class:`~bot.fusion.room.RoomFusion`)
once a second. After a short warm-up it measures for ``seconds``.

The page counts its own work in ``window.__sidebarStats`` (messages handled and the
time spent handling them, frames rendered and the time spent rendering); the server
counts events dropped from the page's queue (:attr:`~bot.sinks.live.Subscription.dropped`);
the JS heap comes from the DevTools protocol. Runs on the event loop of the calling
thread; Chromium runs in its own processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analyzers.voice.talk import TalkTracker
from bot.bench import percentile
from bot.fusion import Fused, fuse
from bot.fusion.room import RoomFusion
from bot.meeting import LiveMeeting, MeetingManager, talk_event, talk_figures
from bot.settings import Settings
from bot.store import Store
from bot.types import (
    Emotion,
    EmotionScores,
    FaceMetrics,
    FaceObservation,
    FaceWindow,
    MeetingEvent,
    MomentEvent,
    Observation,
    ParticipantInfo,
    ParticipantJoinedEvent,
    ParticipantStateEvent,
    RoomEvent,
    TalkObservation,
    VoiceMetrics,
    VoiceObservation,
)

#: Where Chromium is looked for (Debian's package), then ``chromium`` on the PATH.
CHROMIUM_PATHS = ("/usr/lib/chromium/chromium",)
#: Chromium flags: no GPU, no background traffic of its own.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
WARMUP_SECS = 2.0
ROOM_INTERVAL_SECS = 1.0
VIEWPORT_PX = (400, 900)


@dataclass(frozen=True, slots=True)
class SidebarFigures:
    """What one run measured. Times are milliseconds of the page's main thread."""

    participants: int
    seconds: float
    events_sent: int
    events_sent_per_sec: float
    events_handled: int
    events_handled_per_sec: float
    handler_ms_mean: float
    handler_ms_p95: float
    frames: int
    frames_per_sec: float
    frame_ms_mean: float
    frame_ms_p95: float
    dropped: int
    js_heap_mb: float | None
    dom_nodes: int
    compact: bool


def find_chromium() -> str:
    """The Chromium executable, or a SystemExit that says how to get one."""
    for path in (*CHROMIUM_PATHS, shutil.which("chromium") or ""):
        if path and os.path.exists(path):
            return path
    raise SystemExit("meetmood bench sidebar needs Chromium (apt-get install chromium)")


async def wait_for_js(
    page: Any, expression: str, *, arg: Any = None, timeout_ms: float = 30_000
) -> Any:
    """Poll ``page.evaluate(expression, arg)`` until it is truthy; returns that value.

    Playwright's ``wait_for_function`` evaluates its predicate with ``eval`` inside the
    page, which the pages' Content-Security-Policy (no 'unsafe-eval') refuses; a plain
    ``evaluate`` comes from the browser's tools and is allowed. An expression that
    throws counts as not yet true (a page still loading); the timeout names the error.

    Raises:
        playwright.async_api.TimeoutError: still falsy after ``timeout_ms`` milliseconds.
    """
    from playwright.async_api import Error as PlaywrightError
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    deadline = time.monotonic() + timeout_ms / 1000
    last_error = ""
    while True:
        try:
            if value := await page.evaluate(expression, arg):
                return value
        except PlaywrightError as e:
            # Not yet true: the host link's page is still refreshing to the sidebar (its
            # context is destroyed, or the sidebar's script has not defined its names).
            last_error = f" (last error: {e.message.splitlines()[0]})"
        if time.monotonic() >= deadline:
            raise PlaywrightTimeout(
                f"{expression!r} still false after {timeout_ms:g} ms{last_error}"
            )
        await asyncio.sleep(0.05)


class _Synthetic:
    """One synthetic participant: observations that vary over time, fused as the meeting would.

    Args:
        index: The participant's number; phases and amplitudes depend on it.
        participant_id: Their id.
        params: Fusion settings.
    """

    def __init__(self, index: int, participant_id: str, settings: Settings) -> None:
        self.index = index
        self.pid = participant_id
        self.params = settings.fusion
        self.fused: Fused | None = None
        self.phase = index * 0.37
        self.talk_secs = 0.0
        self.is_speaking = False

    def observations(self, ts: float, speaking: bool) -> list[Observation]:
        """A face frame and, now and then, a voice reading at ``ts``."""
        w = 2 * math.pi / 40.0  # a 40 s cycle of attention and expression
        x = 0.5 + 0.5 * math.sin(w * ts + self.phase)
        face_visible = (ts + self.index) % 30 > 2  # out of view 2 s in every 30
        out: list[Observation] = []
        if face_visible:
            happy = 0.2 + 0.6 * x
            probs = {e: (1.0 - happy) / 6 for e in Emotion}
            probs[Emotion.HAPPY] = happy
            metrics = FaceMetrics(
                track_id=1,
                calibrated=True,
                blinks=int(ts / 3) % 1000,
                blink_rate_per_min=15.0 + 5 * x,
                ear=0.27,
                smile=4.0 * x,
                is_smiling=x > 0.6,
                head_pitch=-3.0 + 6 * x,
                head_yaw=10.0 * math.sin(w * ts),
                head_roll=1.0,
                gaze_yaw=5.0,
                gaze_pitch=-2.0,
                looking_away=x < 0.25,
                aus={"AU01": 0.3, "AU06": 2.0 * x, "AU12": 3.0 * x, "AU25": 0.5},
                au_labels=("joy",) if x > 0.6 else (),
                window=FaceWindow(5.0, 40, 0.25, x, -1.0, 100 * (1 - x) / 4, {"joy": 10}),
                emotion_relative={"happy": 0.4 * x, "neutral": -0.4 * x},
            )
            emotion = EmotionScores(self.pid, ts, "face", probs, happy)
            out.append(FaceObservation(self.pid, 1, ts, emotion, metrics))
        else:
            out.append(FaceObservation(self.pid, 1, ts, None, None))
        if speaking != self.is_speaking or speaking:
            self.is_speaking = speaking
            if speaking:
                self.talk_secs += 0.5
            voice = VoiceMetrics(
                is_speaking=speaking,
                talk_secs=self.talk_secs,
                arousal=0.6 * x - 0.3,
                pitch_hz=140.0 + 40 * x,
                loudness_dbfs=-24.0 + 6 * x,
                emotion=EmotionScores(
                    self.pid,
                    ts,
                    "voice",
                    {
                        Emotion.NEUTRAL: 0.6 - 0.3 * x,
                        Emotion.HAPPY: 0.3 * x + 0.2,
                        Emotion.SAD: 0.2,
                    },
                    0.5,
                ),
                emotion_status="ok",
                segment_end_ts=ts - 0.1,
                prosody_z={"loudness": x - 0.5, "pitch": 0.2, "range": 0.1, "rate": 0.0},
                pause_ratio=0.15,
            )
            out.append(VoiceObservation(self.pid, ts, voice))
        return out

    def feed(self, observations: list[Observation], ts: float) -> ParticipantStateEvent:
        """Fuse and wrap as the meeting publishes it."""
        self.fused = fuse(self.fused, self.pid, observations, ts, self.params)
        return ParticipantStateEvent(state=self.fused.state)


class _Driver:
    """Publishes the synthetic meeting into ``meeting`` and counts what it sent."""

    def __init__(self, meeting: LiveMeeting, settings: Settings, participants: int) -> None:
        self.meeting = meeting
        self.settings = settings
        self.interval = settings.sidebar.state_interval_secs or 0.5
        self.people = [_Synthetic(i, f"bench-{i:02d}", settings) for i in range(participants)]
        self.room = RoomFusion(settings.fusion)
        self.sent = 0
        self.talk: TalkTracker | None = None

    def publish(self, event: MeetingEvent) -> None:
        """Publish into the meeting, as the pipeline does, and count it."""
        self.meeting.publish(event)
        self.sent += 1

    def join(self, now: float) -> None:
        """Everyone joins (and is listened to) at ``now``."""
        self.talk = TalkTracker(now, long_silence_secs=self.settings.voice.long_silence_secs)
        for i, p in enumerate(self.people):
            info = ParticipantInfo(
                participant_id=p.pid, display_name=f"Participant {i + 1}", joined_at=now
            )
            self.publish(ParticipantJoinedEvent(participant=info))
            self.talk.joined(p.pid, now)

    def speaker(self, ts: float) -> int:
        """Who speaks now: one person at a time, 6 s turns, in a shuffled order."""
        turn = int(ts // 6)
        return (turn * 7) % len(self.people)

    async def run(self, until: float) -> None:
        """Publish states (staggered), talk and room events until wall-clock ``until``."""
        assert self.talk is not None
        n = len(self.people)
        # A hair over the interval, so that float rounding never makes two states of one
        # participant closer than the sidebar's rate limit.
        step = self.interval * 1.001 / n
        start = time.time()
        k = 0
        next_room = start + ROOM_INTERVAL_SECS
        while True:
            ts = start + k * step
            if ts >= until:
                break
            delay = ts - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            p = self.people[k % n]
            speaking = self.speaker(ts) == p.index
            if speaking != p.is_speaking:
                if speaking:
                    self.talk.speaking_started(p.pid, ts)
                else:
                    self.talk.speaking_stopped(p.pid, ts)
            state = p.feed(p.observations(ts, speaking), ts)
            self.room.observe(state.state)
            self.publish(state)
            if ts >= next_room:
                self.tick(ts)
                next_room += ROOM_INTERVAL_SECS
            k += 1

    def tick(self, now: float) -> None:
        """Once a second, as the meeting does: talk figures (also fused), then the room."""
        assert self.talk is not None
        snap = self.talk.snapshot(now)
        self.publish(talk_event(snap))
        figures = talk_figures(snap)
        for p in self.people:
            if p.pid in figures:
                p.fused = fuse(
                    p.fused, p.pid, [TalkObservation(p.pid, now, figures[p.pid])], now, p.params
                )
        room, moments = self.room.tick(now)
        self.publish(RoomEvent(room=room))
        for moment in moments:
            self.publish(MomentEvent(moment=moment))


_RESET_STATS = """() => {
  const s = window.__sidebarStats;
  s.messages = 0; s.handlerMs = 0; s.frames = 0; s.renderMs = 0;
  s.handlerSamples.length = 0; s.renderSamples.length = 0;
}"""
_READ_STATS = """() => {
  const s = window.__sidebarStats;
  return {messages: s.messages, handlerMs: s.handlerMs, frames: s.frames, renderMs: s.renderMs,
          handlerSamples: Array.from(s.handlerSamples), renderSamples: Array.from(s.renderSamples),
          domNodes: document.getElementsByTagName('*').length,
          compact: !!(window.sidebar && window.sidebar.compact)};
}"""


async def bench_sidebar(
    settings: Settings,
    participants: int = 4,
    seconds: float = 20.0,
    *,
    chromium: str | None = None,
) -> SidebarFigures:
    """Drive the host page with ``participants`` synthetic participants for ``seconds``."""
    try:
        from playwright.async_api import TimeoutError as PlaywrightTimeout
        from playwright.async_api import async_playwright
    except ImportError as e:  # pragma: no cover - depends on the install
        raise SystemExit("meetmood bench sidebar needs playwright: pip install -e '.[test]'") from e
    from aiohttp import web

    from web.app import create_app

    if participants < 1 or seconds <= 0:
        raise ValueError("need at least one participant and a positive duration")
    executable = chromium or find_chromium()
    settings = settings.model_copy(
        update={
            "analyzers": settings.analyzers.model_copy(update={"enabled": []}),
            "server": settings.server.model_copy(update={"host": "127.0.0.1", "port": 0}),
        }
    )
    manager = MeetingManager(settings, store=Store(Path(":memory:")))
    manager.report_load = False  # the page's work under the synthetic stream alone
    runner = web.AppRunner(create_app(settings, manager), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        record, host_token = await manager.create_meeting("bench")
        meeting = await manager.live(record.id)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=executable, headless=True, args=list(CHROMIUM_ARGS)
            )
            try:
                width, height = VIEWPORT_PX
                page = await browser.new_page(viewport={"width": width, "height": height})
                await page.goto(f"http://127.0.0.1:{port}/host/{record.id}?token={host_token}")
                live = "window.sidebar && window.sidebar.socketState === 'live'"
                await wait_for_js(page, live, timeout_ms=15_000)
                driver = _Driver(meeting, settings, participants)
                driver.join(time.time())
                await driver.run(time.time() + WARMUP_SECS)
                await asyncio.sleep(0.5)
                await page.evaluate(_RESET_STATS)
                # What reached the page's queue: the driver's events after the sidebar
                # throttle, and the server's own (its load, once a second).
                sent_before = sum(s.pushed for s in meeting.live.subscribers)
                dropped_before = sum(s.dropped for s in meeting.live.subscribers)
                started = time.monotonic()
                await driver.run(time.time() + seconds)
                elapsed = time.monotonic() - started
                sent = sum(s.pushed for s in meeting.live.subscribers) - sent_before
                dropped = sum(s.dropped for s in meeting.live.subscribers) - dropped_before
                # Let the last events arrive (all but those dropped) and render.
                with contextlib.suppress(PlaywrightTimeout):
                    await wait_for_js(
                        page,
                        "n => window.__sidebarStats.messages >= n",
                        arg=sent - dropped,
                        timeout_ms=5_000,
                    )
                await asyncio.sleep(0.3)
                raw: dict[str, Any] = await page.evaluate(_READ_STATS)
                cdp = await page.context.new_cdp_session(page)
                heap = await cdp.send("Runtime.getHeapUsage")
                heap_mb = float(heap["usedSize"]) / 2**20 if "usedSize" in heap else None
            finally:
                await browser.close()
    finally:
        await runner.cleanup()
    handled = int(raw["messages"])
    frames = int(raw["frames"])
    return SidebarFigures(
        participants=participants,
        seconds=round(elapsed, 1),
        events_sent=sent,
        events_sent_per_sec=round(sent / elapsed, 1),
        events_handled=handled,
        events_handled_per_sec=round(handled / elapsed, 1),
        handler_ms_mean=round(float(raw["handlerMs"]) / handled, 3) if handled else 0.0,
        handler_ms_p95=round(percentile([float(x) for x in raw["handlerSamples"]], 95), 3),
        frames=frames,
        frames_per_sec=round(frames / elapsed, 1),
        frame_ms_mean=round(float(raw["renderMs"]) / frames, 2) if frames else 0.0,
        frame_ms_p95=round(percentile([float(x) for x in raw["renderSamples"]], 95), 2),
        dropped=dropped,
        js_heap_mb=round(heap_mb, 1) if heap_mb is not None else None,
        dom_nodes=int(raw["domNodes"]),
        compact=bool(raw["compact"]),
    )
