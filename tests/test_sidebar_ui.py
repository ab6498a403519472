"""The host sidebar in real headless Chromium: face, voice, talk and notice events render.

The real app is served on loopback (no analyzers loaded); the test opens the host
page, waits for its socket to be live, then publishes events into the live meeting
exactly as the pipeline would and reads the page's DOM. A screenshot at 400 px wide
goes to /tmp/sidebar_ui.png for a look at the layout.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from bot.meeting import LiveMeeting, MeetingManager
from bot.types import (
    Emotion,
    EmotionScores,
    FaceMetrics,
    FaceWindow,
    MeetingRef,
    NoticeEvent,
    ParticipantInfo,
    ParticipantJoinedEvent,
    ParticipantLeftEvent,
    ParticipantState,
    ParticipantStateEvent,
    SnapshotEvent,
    StateView,
    TalkEvent,
    TalkParticipantView,
    VoiceMetrics,
)
from tests.conftest import make_settings
from web.app import create_app

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("loopback_only")]

CHROMIUM = next(
    (
        p
        for p in ("/usr/lib/chromium/chromium", shutil.which("chromium") or "")
        if p and os.path.exists(p)
    ),
    "/usr/lib/chromium/chromium",
)
SCREENSHOT = Path("/tmp/sidebar_ui.png")
WIDTH_PX = 400


@pytest.fixture
async def served(aiohttp_server: Any, tmp_path: Path) -> AsyncIterator[tuple[str, MeetingManager]]:
    """The real app on a loopback port, with no models to load; yields (base URL, manager)."""
    settings = make_settings(tmp_path, **{"analyzers.enabled": []})
    manager = MeetingManager(settings)
    server = await aiohttp_server(create_app(settings, manager))
    yield str(server.make_url("")).rstrip("/"), manager


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        b = await p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield b
        finally:
            await b.close()


# -- events as the pipeline builds them ---------------------------------------------


def face_scores(pid: str, ts: float) -> EmotionScores:
    probs = {e: 0.05 for e in Emotion}
    probs[Emotion.HAPPY] = 0.7
    return EmotionScores(pid, ts, "face", probs, 0.7)


def face_metrics(**overrides: Any) -> FaceMetrics:
    fields: dict[str, Any] = {
        "track_id": 1,
        "calibrated": True,
        "blinks": 12,
        "blink_rate_per_min": 17.5,
        "ear": 0.27,
        "smile": 2.4,
        "is_smiling": True,
        "head_pitch": -4.2,
        "head_yaw": 12.0,
        "head_roll": 1.5,
        "gaze_yaw": 8.0,
        "gaze_pitch": -2.0,
        "looking_away": True,
        "aus": {"AU01": 0.2, "AU06": 1.8, "AU12": 2.4, "AU25": 1.1},
        "au_labels": ("joy",),
        "window": FaceWindow(5.0, 10, 0.29, 0.6, -4.0, 10.0, {"joy": 6, "neutral": 4}),
    }
    fields.update(overrides)
    return FaceMetrics(**fields)


def calibrating_face() -> FaceMetrics:
    """A face seen for a moment: nothing baseline-relative or windowed is known yet."""
    return face_metrics(
        calibrated=False,
        blinks=0,
        blink_rate_per_min=None,
        ear=None,
        smile=None,
        is_smiling=None,
        head_pitch=None,
        head_yaw=None,
        head_roll=None,
        gaze_yaw=None,
        gaze_pitch=None,
        looking_away=None,
        aus=None,
        au_labels=(),
        window=None,
    )


def voice(pid: str, ts: float, **overrides: Any) -> VoiceMetrics:
    fields: dict[str, Any] = {
        "is_speaking": True,
        "talk_secs": 42.5,
        "talk_share": 0.55,
        "turns": 7,
        "arousal": 0.35,
        "pitch_hz": 180.0,
        "loudness_dbfs": -22.0,
        "emotion": EmotionScores(
            pid,
            ts,
            "voice",
            {Emotion.NEUTRAL: 0.5, Emotion.HAPPY: 0.3, Emotion.ANGRY: 0.1, Emotion.SAD: 0.1},
            0.5,
        ),
        "emotion_status": "ok",
    }
    fields.update(overrides)
    return VoiceMetrics(**fields)


def state_event(
    pid: str,
    ts: float,
    *,
    face: FaceMetrics | None,
    voice: VoiceMetrics | None,
    face_visible: bool = True,
) -> ParticipantStateEvent:
    state = ParticipantState(
        participant_id=pid,
        ts=ts,
        face_visible=face_visible,
        emotion=face_scores(pid, ts) if face_visible else None,
        is_speaking=voice.is_speaking if voice else None,
        face=face,
        voice=voice,
    )
    return ParticipantStateEvent(state=StateView.of(state))


def joined(
    pid: str, name: str, ts: float, parent_id: str | None = None, face_track: int | None = None
) -> ParticipantJoinedEvent:
    return ParticipantJoinedEvent(
        participant=ParticipantInfo(
            participant_id=pid,
            display_name=name,
            joined_at=ts,
            parent_id=parent_id,
            face_track=face_track,
        )
    )


def talk_event(ts: float, speaking: list[str]) -> TalkEvent:
    def entry(pid: str, secs: float, share: float, turns: int) -> TalkParticipantView:
        return TalkParticipantView(
            participant_id=pid,
            is_speaking=pid in speaking,
            talk_secs=secs,
            talk_share=share,
            turns=turns,
            interruptions=1 if pid == "p1" else 0,
            overlap_secs=2.0,
            longest_turn_secs=15.0,
        )

    return TalkEvent(
        ts=ts,
        speaking=speaking,
        participants=[
            entry("p1", 42.5, 0.55, 7),
            entry("p2", 27.0, 0.35, 5),
            entry("p3", 7.7, 0.1, 2),
        ],
        duration_secs=130.0,
        speech_secs=77.2,
        silence_secs=52.8,
        long_silences=3,
        overlap_secs=2.0,
    )


def card(page: Page, pid: str) -> Any:
    return page.locator(f'.participant-card[data-participant-id="{pid}"]')


def field(page: Page, pid: str, name: str) -> Any:
    return card(page, pid).locator(f'[data-field="{name}"]')


async def test_sidebar_shows_face_voice_talk_and_notices(
    served: tuple[str, MeetingManager], browser: Browser
) -> None:
    base, manager = served
    record, host_token = await manager.create_meeting("Design review")
    context = await browser.new_context(viewport={"width": WIDTH_PX, "height": 900})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(f"{base}/host/{record.id}?token={host_token}")
    await page.wait_for_function("window.sidebar.socketState === 'live'", timeout=10_000)
    live: LiveMeeting = await manager.live(record.id)
    now = time.time()

    # A room camera (p1) with two more faces (joined out of track order), Grace and Linus.
    for event in (
        joined("p1", "Room A", now - 60),
        joined("p2", "Grace", now - 50),
        joined("p1~3", "Room A · face 3", now - 40, parent_id="p1", face_track=3),
        joined("p1~2", "Room A · face 2", now - 30, parent_id="p1", face_track=2),
        joined("p3", "Linus", now - 20),
    ):
        live.publish(event)
    live.publish(state_event("p1", now, face=face_metrics(), voice=voice("p1", now)))
    live.publish(
        state_event(
            "p2",
            now,
            face=calibrating_face(),
            voice=voice(
                "p2",
                now,
                is_speaking=False,
                talk_secs=27.0,
                talk_share=None,
                turns=5,
                arousal=None,
                pitch_hz=None,
                loudness_dbfs=None,
                emotion=None,
                emotion_status="waiting",
            ),
        )
    )
    live.publish(
        state_event(
            "p3",
            now,
            face=None,  # the Haar detector: no landmarks
            face_visible=False,
            voice=voice(
                "p3",
                now,
                is_speaking=False,
                arousal=-0.4,
                emotion=None,
                emotion_status="unavailable",
            ),
        )
    )
    live.publish(
        state_event("p1~2", now, face=face_metrics(track_id=2, looking_away=False), voice=None)
    )
    live.publish(state_event("p1~3", now, face=None, voice=None, face_visible=False))
    live.publish(talk_event(now, ["p1"]))
    for _ in range(2):
        live.publish(
            NoticeEvent(code="voice_emotion_unavailable", text="voice emotion model unavailable")
        )

    # Face readings: blink rate, looking away, head pose, smile.
    await expect(field(page, "p1", "blink-rate")).to_contain_text("18/min")
    await expect(field(page, "p1", "blink-rate")).to_contain_text("12 blinks")
    away = field(page, "p1", "looking-away")
    await expect(away).to_have_attribute("data-looking-away", "true")
    await expect(away).to_have_text("looking away")
    await expect(field(page, "p1", "head-pose")).to_contain_text("−4° / 12° / 2°")
    smile = field(page, "p1", "smile")
    await expect(smile).to_have_attribute("data-smiling", "true")
    await expect(smile).to_contain_text("2.4")
    await expect(smile).to_contain_text("smiling")
    await expect(field(page, "p1", "percent-away")).to_have_text("10%")

    # Voice readings: talk time, arousal meter, voice emotion (present classes only).
    await expect(field(page, "p1", "talk-time")).to_contain_text("0:42")
    await expect(field(page, "p1", "talk-time")).to_contain_text("55% · 7 turns")
    arousal = field(page, "p1", "arousal")
    await expect(arousal).to_contain_text("+0.35")
    await expect(arousal.locator('[role="meter"]')).to_have_attribute("aria-valuenow", "0.35")
    vemo = field(page, "p1", "voice-emotion")
    await expect(vemo).to_have_attribute("data-status", "ok")
    await expect(vemo).to_contain_text("neutral 50%")
    assert "surprise" not in await vemo.inner_text()
    await expect(field(page, "p3", "voice-emotion")).to_have_attribute("data-status", "unavailable")
    await expect(field(page, "p3", "voice-emotion")).to_contain_text(
        "voice emotion model unavailable"
    )
    await expect(field(page, "p3", "arousal")).to_contain_text("−0.40")

    # Unknown values: "—" or a short reason, never null/NaN/undefined.
    await expect(field(page, "p2", "calibration")).to_be_visible()
    await expect(field(page, "p2", "blink-rate")).to_contain_text("—")
    await expect(field(page, "p2", "head-pose")).to_contain_text("—")
    await expect(field(page, "p2", "looking-away")).to_have_attribute(
        "data-looking-away", "unknown"
    )
    await expect(field(page, "p2", "smile")).to_contain_text("calibrating…")
    await expect(field(page, "p2", "arousal")).to_contain_text("learning voice…")
    await expect(field(page, "p2", "voice-emotion")).to_contain_text("waiting for speech")
    await expect(field(page, "p2", "talk-time")).to_contain_text("0:27")
    await expect(field(page, "p3", "blink-rate")).to_have_text("Blink rate—")
    await expect(field(page, "p3", "smile")).to_have_attribute("data-smiling", "unknown")
    for pid in ("p1", "p2", "p3", "p1~2", "p1~3"):
        text = await card(page, pid).inner_text()
        for bad in ("null", "NaN", "undefined", "Infinity"):
            assert bad not in text, (pid, bad, text)

    # Meeting strip: who speaks now, talk share, figures.
    speakers = page.locator(".speaking-now [data-participant-id]")
    await expect(speakers).to_have_count(1)
    await expect(speakers).to_have_attribute("data-participant-id", "p1")
    await expect(speakers).to_have_text("Room A")
    await expect(page.locator("#share-bar")).to_have_attribute(
        "aria-label", "Talk share: Room A 55%, Grace 35%, Linus 10%"
    )
    await expect(page.locator("#talk-duration")).to_have_text("2:10")
    await expect(page.locator("#talk-long-silences")).to_have_text("3")

    # One notice for two identical events.
    notice = page.locator('#notices [data-code="voice_emotion_unavailable"]')
    await expect(notice).to_have_count(1)
    await expect(notice).to_contain_text("voice emotion model unavailable")
    assert await page.evaluate("window.sidebar.notices.length") == 1

    # Faces of the room camera follow it, by face track, each with its parent.
    order = await page.eval_on_selector_all(
        ".participant-card", "cards => cards.map(c => c.dataset.participantId)"
    )
    assert order == ["p1", "p1~2", "p1~3", "p2", "p3"]
    for pid in ("p1~2", "p1~3"):
        await expect(card(page, pid)).to_have_attribute("data-parent-id", "p1")
    await expect(card(page, "p1")).not_to_have_attribute("data-parent-id", "p1")
    await expect(card(page, "p1~2")).to_contain_text("Room A · face 2")

    # The exposed model for tests.
    exposed = await page.evaluate(
        "({face: window.sidebar.participants.p1.face, voice: window.sidebar.participants.p1.voice,"
        " talk: window.sidebar.talk, sub: window.sidebar.participants['p1~2'].parent_id})"
    )
    assert exposed["face"]["blinks"] == 12
    assert exposed["voice"]["emotion_status"] == "ok"
    assert exposed["talk"]["speaking"] == ["p1"]
    assert exposed["sub"] == "p1"

    # Details: a look at the AU intensities and the window features.
    await card(page, "p1").locator("details summary").click()
    details = card(page, "p1").locator("details")
    await expect(details.locator('[data-au="AU12"]')).to_contain_text("2.4")
    await expect(details).to_contain_text("joy 6, neutral 4")
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(SCREENSHOT), full_page=True)

    # Live changes: they look back and a smile fades; others speak; a face leaves.
    later = now + 1.0
    live.publish(
        state_event(
            "p1",
            later,
            face=face_metrics(looking_away=False, is_smiling=False, smile=0.3, blinks=13),
            voice=voice("p1", later, is_speaking=False),
        )
    )
    live.publish(talk_event(later, ["p2", "p3"]))
    live.publish(ParticipantLeftEvent(participant_id="p1~3", ts=later, reason="left"))
    await expect(away).to_have_attribute("data-looking-away", "false")
    await expect(away).not_to_have_text("looking away")
    await expect(field(page, "p1", "blink-rate")).to_contain_text("13 blinks")  # at once
    await expect(smile).to_have_attribute("data-smiling", "false")
    await expect(speakers).to_have_count(2)
    assert await speakers.evaluate_all("li => li.map(x => x.dataset.participantId)") == [
        "p2",
        "p3",
    ]
    await expect(card(page, "p1~3")).to_have_class(re.compile(r"\bis-left\b"))
    await expect(card(page, "p1~3")).to_have_attribute("data-parent-id", "p1")
    await expect(card(page, "p1").locator(".badge-speaking")).to_be_hidden()

    assert errors == []
    await context.close()


async def test_snapshot_brings_talk_notices_and_room_faces(
    served: tuple[str, MeetingManager], browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A (re)connecting sidebar rebuilds the strip, notices and grouped cards from the snapshot."""
    base, manager = served
    record, host_token = await manager.create_meeting("Snapshot")
    now = time.time()

    def info(
        pid: str, name: str, state: ParticipantStateEvent | None, **kw: Any
    ) -> ParticipantInfo:
        return ParticipantInfo(
            participant_id=pid,
            display_name=name,
            joined_at=now - 30,
            state=state.state if state else None,
            **kw,
        )

    notice = NoticeEvent(code="voice_emotion_unavailable", text="voice emotion model unavailable")
    snapshot = SnapshotEvent(
        meeting=MeetingRef(id=record.id, name=record.name),
        history_secs=300,
        server_ts=now,
        participants=[
            info("cam~2", "Room B · face 2", None, parent_id="cam", face_track=2),
            info("cam", "Room B", state_event("cam", now, face=calibrating_face(), voice=None)),
        ],
        history={},
        talk=talk_event(now, []),
        notices=[notice, notice],
    )

    async def fake_snapshot(meeting_id: str) -> SnapshotEvent:
        return snapshot

    monkeypatch.setattr(manager, "snapshot", fake_snapshot)
    page = await browser.new_page(viewport={"width": WIDTH_PX, "height": 900})
    await page.goto(f"{base}/host/{record.id}?token={host_token}")
    await page.wait_for_function("window.sidebar.socketState === 'live'", timeout=10_000)

    order = await page.eval_on_selector_all(
        ".participant-card", "cards => cards.map(c => c.dataset.participantId)"
    )
    assert order == ["cam", "cam~2"]
    await expect(card(page, "cam~2")).to_have_attribute("data-parent-id", "cam")
    await expect(page.locator("#notices [data-code]")).to_have_count(1)
    await expect(page.locator(".speaking-now [data-participant-id]")).to_have_count(0)
    await expect(page.locator("#speaking-none")).to_be_visible()
    await expect(page.locator("#talk-duration")).to_have_text("2:10")
    await expect(field(page, "cam", "smile")).to_contain_text("calibrating…")
    await expect(field(page, "cam", "voice-emotion")).to_have_attribute("data-status", "none")
    await expect(field(page, "cam", "arousal")).to_contain_text("—")
    # No voice and no talk figures for a face of the room camera: its voice rows stay hidden.
    await expect(field(page, "cam~2", "talk-time")).to_be_hidden()
    text = await page.locator("#cards").inner_text()
    for bad in ("null", "NaN", "undefined"):
        assert bad not in text
    assert await page.evaluate("window.sidebar.talk.duration_secs") == 130.0
    await page.close()
