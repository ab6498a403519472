"""The host sidebar in real headless Chromium: fused states, the room, moments, talk, notices.

The real app is served on loopback (no analyzers loaded); each test opens the host
page, waits for its socket to be live, then publishes events into the live meeting
exactly as the pipeline would and reads the page's DOM. Participant states come from
the real fusion (``bot.fusion.fuse``) fed with observations on a virtual clock; the
room from :class:`bot.fusion.room.RoomFusion`. Screenshots at 400 px wide go to the
test's ``tmp_path``.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import Browser, Page, expect

from bot.bench import format_figures
from bot.bench_sidebar import bench_sidebar, wait_for_js
from bot.fusion import Fused, FusionParams, fuse
from bot.fusion.registry import band, definitions
from bot.fusion.room import RoomFusion
from bot.meeting import LiveMeeting, MeetingManager
from bot.settings import VertexSettings
from bot.summaries.vertex import VertexSummarizer
from bot.types import (
    Emotion,
    EmotionScores,
    FaceMetrics,
    FaceObservation,
    FaceWindow,
    HistoryPoint,
    MeetingEvent,
    MeetingRef,
    Moment,
    MomentEvent,
    NoticeEvent,
    Observation,
    ParticipantInfo,
    ParticipantJoinedEvent,
    ParticipantLeftEvent,
    ParticipantState,
    ParticipantStateEvent,
    RoomEvent,
    RoomPoint,
    RoomState,
    SnapshotEvent,
    TalkEvent,
    TalkFigures,
    TalkObservation,
    TalkParticipantView,
    VoiceMetrics,
    VoiceObservation,
)
from tests.conftest import make_settings
from tests.fixtures import CHROMIUM, open_host_link
from web import ws as web_ws
from web.app import create_app

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("loopback_only")]

WIDTH_PX = 400
PARAMS = FusionParams()
TABLE_GROUPS = {"basic": 7, "vocal": 11, "composite": 10}


@pytest.fixture
async def served(
    aiohttp_server: Any, tmp_path: Path
) -> AsyncIterator[tuple[str, MeetingManager, web.Application]]:
    """The real app on a loopback port, with no models to load; yields (base URL, manager, app)."""
    settings = make_settings(tmp_path, **{"analyzers.enabled": [], "sidebar.history_secs": 120})
    manager = MeetingManager(settings)
    app = create_app(settings, manager)
    server = await aiohttp_server(app)
    yield str(server.make_url("")).rstrip("/"), manager, app


# -- observations on a virtual clock, fused as the meeting fuses them ---------------------


def face_scores(pid: str, ts: float, happy: float = 0.7) -> EmotionScores:
    probs = {e: (1.0 - happy) / 6 for e in Emotion}
    probs[Emotion.HAPPY] = happy
    return EmotionScores(pid, ts, "face", probs, happy)


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
        "emotion_relative": {"happy": 0.4, "neutral": -0.4},
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
        emotion_relative=None,
    )


def voice(pid: str, ts: float, **overrides: Any) -> VoiceMetrics:
    fields: dict[str, Any] = {
        "is_speaking": True,
        "talk_secs": 42.5,
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
        "segment_end_ts": ts - 0.2,
        "prosody_z": {"loudness": 0.5, "pitch": 0.3, "range": 0.1, "rate": 0.2},
        "pause_ratio": 0.1,
    }
    fields.update(overrides)
    return VoiceMetrics(**fields)


def talk_figures(secs: float, share: float, turns: int) -> TalkFigures:
    return TalkFigures(secs, share, turns, 0, 2.0, 3, 77.2, 14)


class Fuser:
    """One participant's fusion, as the meeting keeps it."""

    def __init__(self, pid: str, *, voice_attributable: bool = True) -> None:
        self.pid = pid
        self.fused: Fused | None = None
        self.voice_attributable = voice_attributable

    def feed(self, observations: Iterable[Observation], ts: float) -> ParticipantState:
        self.fused = fuse(
            self.fused,
            self.pid,
            observations,
            ts,
            PARAMS,
            voice_attributable=self.voice_attributable,
        )
        return self.fused.state


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


async def publish_all(live: LiveMeeting, events: Iterable[MeetingEvent]) -> None:
    """Publish like the pipeline does: in bursts, with the loop turning in between."""
    for i, event in enumerate(events):
        live.publish(event)
        if i % 40 == 39:
            await asyncio.sleep(0.02)


def base_ts(secs_ago: int) -> float:
    """A whole second in the past, so that 0.5 s steps add up exactly."""
    return float(int(time.time()) - secs_ago)


def js_round_pct(v: float) -> str:
    return f"{math.floor(v * 100 + 0.5)}%"


# -- page helpers ---------------------------------------------------------------------------


def card(page: Page, pid: str) -> Any:
    return page.locator(f'.participant-card[data-participant-id="{pid}"]')


def field(page: Page, pid: str, name: str) -> Any:
    return card(page, pid).locator(f'[data-field="{name}"]')


def row(page: Page, pid: str) -> Any:
    return page.locator(f'.p-row[data-participant-id="{pid}"]')


ROW_ORDER_JS = """(want) => JSON.stringify(
  Array.from(document.querySelectorAll('.p-row')).map(r => r.dataset.participantId)
) === JSON.stringify(want)"""

DARK_PIXELS_JS = """(node) => {
  const c = node.querySelector('canvas');
  if (!c || !c.width || !c.height) return 0;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i] < 70 && d[i + 1] < 70 && d[i + 2] < 70 && d[i + 3] > 200) n++;
  }
  return n;
}"""


async def open_host(
    browser: Browser, base: str, meeting_id: str, token: str, height: int = 900
) -> tuple[Page, list[str], list[str]]:
    """The host page at 400 px wide, live; with its page errors and every URL it requested."""
    page = await browser.new_page(viewport={"width": WIDTH_PX, "height": height})
    errors: list[str] = []
    requests: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # A Content-Security-Policy violation is reported on the console: count it as an error.
    page.on(
        "console", lambda m: errors.extend([m.text] if "Content Security Policy" in m.text else [])
    )
    page.on("request", lambda r: requests.append(r.url))
    await open_host_link(page, base, meeting_id, token)
    return page, errors, requests


def assert_local(requests: list[str], base: str) -> None:
    ws_base = base.replace("http://", "ws://", 1)
    outside = [u for u in requests if not (u.startswith(base) or u.startswith(ws_base))]
    assert outside == []


async def assert_no_bad_words(page: Page, selector: str) -> None:
    text = await page.locator(selector).inner_text()
    for bad in ("null", "NaN", "undefined", "Infinity"):
        assert bad not in text, (selector, bad)


# -- tests --------------------------------------------------------------------------------


async def test_cards_show_engagement_states_room_and_talk(
    served: tuple[str, MeetingManager, web.Application], browser: Browser, tmp_path: Path
) -> None:
    base, manager, _ = served
    record, host_token = await manager.create_meeting("Design review")
    page, errors, requests = await open_host(browser, base, record.id, host_token)
    live = await manager.live(record.id)
    t0 = base_ts(70)

    # A room camera (p1) with two more faces (joined out of track order), Grace and Linus.
    await publish_all(
        live,
        [
            joined("p1", "Room A", t0 - 60),
            joined("p2", "Grace", t0 - 50),
            joined("p1~3", "Room A · face 3", t0 - 40, parent_id="p1", face_track=3),
            joined("p1~2", "Room A · face 2", t0 - 30, parent_id="p1", face_track=2),
            joined("p3", "Linus", t0 - 20),
        ],
    )

    # 60 s of observations at 2 per second: Room A looks at the screen, smiles and speaks
    # (then looks away); Grace's face is still calibrating and she has no audio; Linus has
    # no face in view and a voice whose emotion model is unavailable.
    fusers = {
        pid: Fuser(pid, voice_attributable=not pid.startswith("p1~"))
        for pid in ("p1", "p2", "p3", "p1~2", "p1~3")
    }
    room = RoomFusion(PARAMS)
    states: dict[str, ParticipantState] = {}
    room_state: RoomState | None = None
    events: list[MeetingEvent] = []
    for k in range(121):
        ts = t0 + k * 0.5
        observations: dict[str, list[Observation]] = {
            "p1": [
                FaceObservation(
                    "p1", 1, ts, face_scores("p1", ts), face_metrics(looking_away=k > 100)
                ),
                VoiceObservation("p1", ts, voice("p1", ts)),
                TalkObservation("p1", ts, talk_figures(42.5, 0.55, 7)),
            ],
            "p2": [FaceObservation("p2", 1, ts, face_scores("p2", ts), calibrating_face())],
            "p3": [
                FaceObservation("p3", 1, ts, None, None),
                VoiceObservation(
                    "p3",
                    ts,
                    voice(
                        "p3",
                        ts,
                        is_speaking=False,
                        arousal=-0.4,
                        emotion=None,
                        emotion_status="unavailable",
                    ),
                ),
                TalkObservation("p3", ts, talk_figures(7.7, 0.1, 2)),
            ],
            "p1~2": [
                FaceObservation("p1", 2, ts, face_scores("p1~2", ts, 0.4), face_metrics(track_id=2))
            ],
            "p1~3": [FaceObservation("p1", 3, ts, None, None)],
        }
        for pid, obs in observations.items():
            state = fusers[pid].feed(obs, ts)
            states[pid] = state
            room.observe(state)
            events.append(ParticipantStateEvent(state=state))
        if k % 2 == 0:
            room_state, _ = room.tick(ts)
            events.append(RoomEvent(room=room_state))
    assert room_state is not None
    now = t0 + 60
    events += [
        MomentEvent(moment=Moment(now - 10, "joint_smiles", ("p1", "p1~2"), (), 2.0, 2.0)),
        MomentEvent(moment=Moment(now - 2, "long_silence", ("p2",), ("p1",), 320.0, 320.0)),
        talk_event(now, ["p1"]),
    ]
    events += [
        NoticeEvent(code="voice_emotion_unavailable", text="voice emotion model unavailable")
    ] * 2
    await publish_all(live, events)
    p1, p2, p3 = states["p1"], states["p2"], states["p3"]

    # Engagement leads each card: band word, value and confidence, from the fused state.
    eng = p1.readings["engagement"]
    assert eng.value is not None
    engagement = field(page, "p1", "engagement")
    await expect(engagement.locator(".eng-value")).to_have_text(f"{eng.value:.2f}")
    await expect(engagement.locator(".band-chip")).to_have_text(str(band(eng.value, PARAMS)))
    await expect(engagement.locator(".band-chip")).to_have_attribute(
        "data-band", str(band(eng.value, PARAMS))
    )
    await expect(engagement.locator(".eng-conf")).to_have_text(
        f"conf {js_round_pct(eng.confidence)}"
    )
    # Its three components, each with its value; Room A looked away at the end: attention fell.
    for name in ("attention", "expressiveness", "participation"):
        r = p1.readings[name]
        assert r.value is not None
        await expect(engagement.locator(f'[data-field="{name}"] .rd-value')).to_have_text(
            js_round_pct(r.value)
        )
    # Grace: no gaze baseline and no audio yet, so no engagement; each null part says why.
    g_eng = field(page, "p2", "engagement")
    await expect(g_eng.locator(".band-chip")).to_have_attribute("data-band", "unknown")
    await expect(g_eng.locator(".eng-value")).to_have_text("—")
    reason = p2.readings["engagement"].reason
    assert p2.readings["engagement"].value is None and reason
    await expect(g_eng.locator(".eng-note")).to_have_text(reason)
    for name in ("attention", "participation"):
        r = p2.readings[name]
        assert r.value is None and r.reason
        line = g_eng.locator(f'[data-field="{name}"]')
        await expect(line).to_have_class(re.compile(r"\bis-null\b"))
        await expect(line.locator(".rd-value")).to_have_text("—")
        await expect(line.locator(".rd-note")).to_have_text(r.reason)
    # Linus: engagement from participation alone, with its caveat.
    l_eng = p3.readings["engagement"]
    assert l_eng.value is not None and l_eng.reason
    await expect(field(page, "p3", "engagement").locator(".eng-note")).to_have_text(l_eng.reason)

    # Valence and arousal, with what they were read from.
    valence = field(page, "p1", "valence")
    v = p1.readings["valence"].value
    assert v is not None
    await expect(valence.locator(".rd-value")).to_contain_text(f"{abs(v):.2f}")
    await expect(valence.locator(".rd-note")).to_contain_text("face expression")
    await expect(field(page, "p3", "valence").locator(".rd-note")).to_have_text(
        str(p3.readings["valence"].reason)
    )

    # Fused expression bars from the readings; a null one shows its reason.
    bars = card(page, "p1").locator(".bar-row")
    await expect(bars).to_have_count(7)
    happy = p1.readings["happy"].value
    assert happy is not None
    await expect(card(page, "p1").locator('.bar-row[data-state="happy"] .bar-pct')).to_have_text(
        js_round_pct(happy)
    )
    surprise = p1.readings["surprise"]
    assert surprise.value is None and surprise.reason
    await expect(card(page, "p1").locator('.bar-row[data-state="surprise"] .bar-why')).to_have_text(
        surprise.reason
    )
    await expect(card(page, "p1").locator(".dominant-emotion")).to_have_attribute(
        "data-emotion", "happy"
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
    await expect(field(page, "p1", "percent-away")).to_have_text("10%")

    # Voice readings: talk time (the talk event's figures), arousal, pitch, voice tone.
    await expect(field(page, "p1", "talk-time")).to_contain_text("0:42")
    await expect(field(page, "p1", "talk-time")).to_contain_text("55% · 7 turns")
    arousal = field(page, "p1", "voice-arousal")
    await expect(arousal).to_contain_text("+0.35")
    await expect(arousal.locator('[role="meter"]')).to_have_attribute("aria-valuenow", "0.35")
    await expect(field(page, "p1", "pitch")).to_contain_text("180 Hz")
    vemo = field(page, "p1", "voice-emotion")
    await expect(vemo).to_have_attribute("data-status", "ok")
    await expect(vemo).to_contain_text("neutral 50%")
    assert "surprise" not in await vemo.inner_text()
    await expect(field(page, "p3", "voice-emotion")).to_contain_text(
        "voice emotion model unavailable"
    )
    await expect(field(page, "p3", "voice-arousal")).to_contain_text("−0.40")
    await expect(field(page, "p2", "calibration")).to_be_visible()
    await expect(field(page, "p2", "smile")).to_contain_text("calibrating…")
    await expect(card(page, "p3").locator('[data-field="face"]')).to_have_attribute(
        "data-face-visible", "false"
    )

    # Every other state in collapsed tables: 7 + 11 + 10 rows, live values and reasons.
    states_details = card(page, "p1").locator("details.states")
    await expect(states_details).not_to_have_attribute("open", "")
    await states_details.locator("summary").click()
    for group, n in TABLE_GROUPS.items():
        await expect(states_details.locator(f'table[data-group="{group}"] tbody tr')).to_have_count(
            n
        )
    numeric = await states_details.locator(".st-num").evaluate_all(
        "ns => ns.filter(n => /\\d/.test(n.textContent)).length"
    )
    assert numeric >= 10
    bored = states_details.locator('tr[data-state="bored"]')
    await expect(bored).to_have_class(re.compile(r"\bis-not-estimable\b"))
    await expect(bored.locator(".st-num")).to_have_text("not estimable")
    await expect(bored.locator(".st-why")).to_have_text(str(p1.readings["bored"].reason))
    await expect(bored.locator(".support")).to_have_text("none")
    title = await bored.locator("th").get_attribute("title")
    assert title and "Bored" in title
    calm_def = next(d for d in definitions() if d.name == "calm")
    calm_title = await states_details.locator('tr[data-state="calm"] th').get_attribute("title")
    assert calm_title and calm_def.definition in calm_title and calm_def.formula in calm_title

    # The meeting strip: room engagement and band, mood, moments newest first with names.
    assert room_state.engagement is not None and room_state.mood
    await expect(page.locator("#room-engagement")).to_have_text(f"{room_state.engagement:.2f}")
    await expect(page.locator("#room-band")).to_have_text(str(band(room_state.engagement, PARAMS)))
    await expect(page.locator("#room-mood")).to_contain_text(room_state.mood)
    first = page.locator("#moments .moment").first
    await expect(first).to_have_attribute("data-kind", "long_silence")
    await expect(first).to_contain_text("Grace silent for 5 min")
    await expect(first).to_contain_text("while Room A spoke")
    await expect(page.locator("#moments .moment").nth(1)).to_contain_text(
        "Room A and Room A · face 2 smiled"
    )

    # Talk: who speaks now, talk share, figures.
    speakers = page.locator(".speaking-now [data-participant-id]")
    await expect(speakers).to_have_count(1)
    await expect(speakers).to_have_text("Room A")
    await expect(page.locator("#share-bar")).to_have_attribute(
        "aria-label", "Talk share: Room A 55%, Grace 35%, Linus 10%"
    )
    await expect(page.locator("#talk-duration")).to_have_text("2:10")
    await expect(page.locator("#talk-long-silences")).to_have_text("3")

    # One notice for two identical events.
    notice = page.locator('#notices [data-code="voice_emotion_unavailable"]')
    await expect(notice).to_have_count(1)
    assert await page.evaluate("window.sidebar.notices.length") == 1

    # Five entries: cards, not compact rows; faces of the room camera follow it by track.
    assert await page.evaluate("window.sidebar.compact") is False
    await expect(page.locator(".p-row").first).to_be_hidden()
    order = await page.eval_on_selector_all(
        "#people > .person", "items => items.map(c => c.dataset.participantId)"
    )
    assert order == ["p1", "p1~2", "p1~3", "p2", "p3"]
    for pid in ("p1~2", "p1~3"):
        await expect(card(page, pid)).to_have_attribute("data-parent-id", "p1")
    await expect(card(page, "p1~2")).to_contain_text("Room A · face 2")
    await expect(field(page, "p1~2", "talk-time")).to_be_hidden()

    # Timelines draw (those in view: scrolled to): the engagement line, dark, on each card's
    # chart and on the room's.
    for pid in ("p1", "p3"):
        chart = card(page, pid).locator(".person-chart")
        await chart.scroll_into_view_if_needed()
        await expect(chart.locator("canvas")).to_have_count(1)
        await wait_for_js(
            page,
            f"(n => ({DARK_PIXELS_JS})(n) > 20)(document.querySelector("
            f"'.participant-card[data-participant-id=\"{pid}\"] .person-chart'))",
            timeout_ms=5_000,
        )
    await wait_for_js(
        page, f"({DARK_PIXELS_JS})(document.getElementById('room-chart')) > 20", timeout_ms=5_000
    )
    for pid in ("p1", "p2", "p3", "p1~2", "p1~3"):
        await assert_no_bad_words(page, f'.participant-card[data-participant-id="{pid}"]')
    await assert_no_bad_words(page, "#meeting-strip")

    # The AU details still open on demand.
    await card(page, "p1").locator("details.more summary").click()
    details = card(page, "p1").locator("details.more")
    await expect(details.locator('[data-au="AU12"]')).to_contain_text("2.4")
    await expect(details).to_contain_text("joy 6, neutral 4")
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(tmp_path / "sidebar_3_participants.png"), full_page=True)

    # Live changes: Room A looks back and stops speaking; others speak; a face leaves.
    later = now + 1.0
    back = fusers["p1"].feed(
        [
            FaceObservation(
                "p1",
                1,
                later,
                face_scores("p1", later),
                face_metrics(looking_away=False, is_smiling=False, smile=0.3, blinks=13),
            ),
            VoiceObservation("p1", later, voice("p1", later, is_speaking=False)),
        ],
        later,
    )
    live.publish(ParticipantStateEvent(state=back))
    live.publish(talk_event(later, ["p2", "p3"]))
    live.publish(ParticipantLeftEvent(participant_id="p1~3", ts=later, reason="left"))
    await expect(away).to_have_attribute("data-looking-away", "false")
    await expect(field(page, "p1", "blink-rate")).to_contain_text("13 blinks")
    await expect(smile).to_have_attribute("data-smiling", "false")
    await expect(speakers).to_have_count(2)
    await expect(card(page, "p1~3")).to_have_class(re.compile(r"\bis-left\b"))
    await expect(card(page, "p1~3")).to_have_attribute("data-parent-id", "p1")
    await expect(card(page, "p1").locator(".badge-speaking")).to_be_hidden()
    back_eng = back.readings["engagement"].value
    assert back_eng is not None
    await expect(engagement.locator(".eng-value")).to_have_text(f"{back_eng:.2f}")

    assert errors == []
    assert_local(requests, base)
    await page.close()


async def test_compact_rows_for_a_large_meeting(
    served: tuple[str, MeetingManager, web.Application], browser: Browser, tmp_path: Path
) -> None:
    """49 participants: compact rows sorted by engagement, each expanding into its card."""
    base, manager, _ = served
    record, host_token = await manager.create_meeting("All hands")
    page, errors, requests = await open_host(browser, base, record.id, host_token, height=1000)
    live = await manager.live(record.id)
    t0 = base_ts(20)
    n = 49
    pids = [f"u{i:02d}" for i in range(n)]
    names = {pid: f"Person {(i * 17) % n:02d}" for i, pid in enumerate(pids)}
    await publish_all(live, [joined(pid, names[pid], t0 - 60 + i) for i, pid in enumerate(pids)])

    # Each looks at the screen a different share of the time with a different amount of
    # movement; every third one speaks.
    room = RoomFusion(PARAMS)
    events: list[MeetingEvent] = []
    final: dict[str, ParticipantState] = {}
    for i, pid in enumerate(pids):
        fuser = Fuser(pid)
        scale = i / (n - 1)
        for k in range(21):
            ts = t0 + k * 0.5
            obs: list[Observation] = [
                FaceObservation(
                    pid,
                    1,
                    ts,
                    face_scores(pid, ts, 0.3 + 0.5 * scale),
                    face_metrics(
                        looking_away=(k * 7 + i) % 10 >= 3 + (i % 7),
                        aus={"AU06": 2.0 * scale, "AU12": 2.5 * scale, "AU01": 0.3},
                        emotion_relative={"happy": 0.3 * scale, "neutral": -0.3 * scale},
                    ),
                )
            ]
            if i % 3 == 0:
                obs.append(VoiceObservation(pid, ts, voice(pid, ts, is_speaking=k % 4 < 2)))
                obs.append(TalkObservation(pid, ts, talk_figures(10.0 + i, 1 / 17, 2)))
            final[pid] = fuser.feed(obs, ts)
        room.observe(final[pid])
        events.append(ParticipantStateEvent(state=final[pid]))
    room_state, _ = room.tick(t0 + 10)
    events.append(RoomEvent(room=room_state))
    await publish_all(live, events)

    # Compact rows, lowest engagement first (unknown after known), faces and speaking shown.
    await wait_for_js(page, "window.sidebar.compact === true", timeout_ms=10_000)
    rows = page.locator(".p-row")
    await expect(rows).to_have_count(n)

    def by_engagement(pid: str) -> tuple[int, float, int]:
        v = final[pid].readings["engagement"].value
        return (0, v, pids.index(pid)) if v is not None else (1, 0.0, pids.index(pid))

    expected = sorted(pids, key=by_engagement)
    values = [final[pid].readings["engagement"].value for pid in pids]
    assert len({round(v, 2) for v in values if v is not None}) > 20  # a real spread
    await wait_for_js(page, ROW_ORDER_JS, arg=expected, timeout_ms=10_000)
    lowest = expected[0]
    low_value = final[lowest].readings["engagement"].value
    assert low_value is not None
    await expect(row(page, lowest).locator(".row-eng")).to_have_text(f"{low_value:.2f}")
    await expect(row(page, lowest).locator(".band-chip")).to_have_text(str(band(low_value, PARAMS)))
    await expect(row(page, pids[0]).locator(".row-face")).to_have_attribute(
        "data-face-visible", "true"
    )
    speaking = [pid for pid in pids if final[pid].is_speaking]
    assert speaking
    await expect(row(page, speaking[0]).locator(".row-speaking")).to_have_attribute(
        "data-speaking", "true"
    )
    await expect(row(page, pids[1]).locator(".row-speaking")).to_have_attribute(
        "data-speaking", "false"
    )
    # Cards are not built until asked for (those of the first six may exist from before the
    # list turned compact): the page stays light.
    assert await page.locator(".participant-card").count() <= 6
    await expect(page.locator(".participant-card:visible")).to_have_count(0)
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(tmp_path / "sidebar_49_participants.png"), full_page=True)

    # A row expands into the full card, timeline included.
    target = expected[-1]
    await row(page, target).click()
    await expect(row(page, target)).to_have_attribute("aria-expanded", "true")
    expanded = card(page, target)
    await expect(expanded).to_be_visible()
    high = final[target].readings["engagement"].value
    assert high is not None
    await expect(expanded.locator('[data-field="engagement"] .eng-value')).to_have_text(
        f"{high:.2f}"
    )
    await expect(expanded.locator('[data-field="attention"]')).to_be_visible()
    await expect(expanded.locator(".person-chart canvas")).to_have_count(1)
    await page.screenshot(path=str(tmp_path / "sidebar_49_expanded.png"), full_page=False)
    await row(page, target).click()
    await expect(expanded).to_be_hidden()

    # Sorted by name on request; the toggle shows full cards.
    await page.select_option("#sort", "name")
    by_name = sorted(pids, key=lambda pid: names[pid])
    await wait_for_js(page, ROW_ORDER_JS, arg=by_name, timeout_ms=10_000)
    await page.click("#view-toggle")
    await wait_for_js(page, "window.sidebar.compact === false", timeout_ms=5_000)
    await expect(page.locator(".participant-card")).to_have_count(n)
    await expect(page.locator(".p-row").first).to_be_hidden()

    assert errors == []
    assert_local(requests, base)
    await page.close()


async def test_snapshot_rebuilds_after_reconnect(
    served: tuple[str, MeetingManager, web.Application],
    browser: Browser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A (re)connecting sidebar rebuilds cards, timelines, room, moments and talk from the
    snapshot, and keeps working after the server drops the socket."""
    base, manager, app = served
    record, host_token = await manager.create_meeting("Snapshot")
    t0 = base_ts(60)
    cam = Fuser("cam")
    state = cam.feed(
        [FaceObservation("cam", 1, t0, face_scores("cam", t0), calibrating_face())], t0
    )

    def info(pid: str, name: str, st: ParticipantState | None, **kw: Any) -> ParticipantInfo:
        return ParticipantInfo(
            participant_id=pid, display_name=name, joined_at=t0 - 30, state=st, **kw
        )

    history = [
        HistoryPoint(
            ts=t0 - 50 + i,
            face_visible=i % 10 != 0,
            is_speaking=i % 7 == 0,
            engagement=0.3 + 0.01 * i,
            attention=0.8,
            expressiveness=0.3,
            participation=0.2,
            valence=0.1,
            arousal=0.0,
        )
        for i in range(50)
    ]
    room_state = RoomState(
        ts=t0,
        present=2,
        engagement=0.42,
        engagement_n=1,
        valence=0.2,
        arousal=-0.3,
        mood="positive, calm",
        dominant="neutral",
        speaking=(),
        trend="falling",
        trend_change=-0.15,
        trends={"cam": "falling"},
    )
    notice = NoticeEvent(code="voice_emotion_unavailable", text="voice emotion model unavailable")
    snapshot = SnapshotEvent(
        meeting=MeetingRef(id=record.id, name=record.name),
        history_secs=300,
        server_ts=t0,
        participants=[
            info("cam~2", "Room B · face 2", None, parent_id="cam", face_track=2),
            info("cam", "Room B", state),
        ],
        history={"cam": history},
        definitions=definitions(),
        engagement_bands=PARAMS.bands,
        room=room_state,
        room_history=[
            RoomPoint(ts=t0 - 40 + i, engagement=0.5 - 0.002 * i, valence=0.1, arousal=0.0)
            for i in range(40)
        ],
        moments=[Moment(t0 - 5, "engagement_drop", (), ("cam",), -0.2, 60.0)],
        talk=talk_event(t0, []),
        notices=[notice, notice],
    )
    calls = 0

    async def fake_snapshot(meeting_id: str) -> SnapshotEvent:
        nonlocal calls
        calls += 1
        return snapshot

    monkeypatch.setattr(manager, "snapshot", fake_snapshot)
    page, errors, requests = await open_host(browser, base, record.id, host_token)

    async def check() -> None:
        order = await page.eval_on_selector_all(
            ".participant-card", "cards => cards.map(c => c.dataset.participantId)"
        )
        assert order == ["cam", "cam~2"]
        await expect(card(page, "cam~2")).to_have_attribute("data-parent-id", "cam")
        await expect(page.locator("#notices [data-code]")).to_have_count(1)
        await expect(page.locator("#speaking-none")).to_be_visible()
        await expect(page.locator("#talk-duration")).to_have_text("2:10")
        await expect(page.locator("#room-engagement")).to_have_text("0.42")
        await expect(page.locator("#room-band")).to_have_text("medium")
        await expect(page.locator("#room-trend")).to_have_attribute("data-trend", "falling")
        await expect(page.locator("#room-mood")).to_contain_text("positive, calm")
        await expect(page.locator("#moments .moment")).to_have_count(1)
        await expect(page.locator("#moments .moment")).to_contain_text(
            "Room engagement fell 0.20 within 60 s"
        )
        await expect(page.locator("#moments .moment")).to_contain_text("while Room B spoke")
        await expect(card(page, "cam").locator(".card-head .trend")).to_have_attribute(
            "data-trend", "falling"
        )
        await expect(field(page, "cam", "smile")).to_contain_text("calibrating…")
        await expect(field(page, "cam~2", "talk-time")).to_be_hidden()
        await expect(
            card(page, "cam~2").locator('[data-field="engagement"] .eng-note')
        ).to_have_text("waiting for the first analysis")
        # The history reached the timeline (50 points: the engagement line is drawn).
        assert await page.evaluate("window.sidebar.participants.cam.participant_id") == "cam"
        await card(page, "cam").locator(".person-chart").scroll_into_view_if_needed()
        await wait_for_js(
            page,
            f"(n => ({DARK_PIXELS_JS})(n) > 20)(document.querySelector("
            "'.participant-card[data-participant-id=\"cam\"] .person-chart'))",
            timeout_ms=5_000,
        )
        await assert_no_bad_words(page, "#people")

    await check()
    assert calls == 1
    # The server drops the socket: the page reconnects (1 s backoff) and rebuilds, once.
    await web_ws.close_all(app)
    await wait_for_js(page, "window.sidebar.socketState !== 'live'", timeout_ms=5_000)
    await wait_for_js(page, "window.sidebar.socketState === 'live'", timeout_ms=10_000)
    assert calls == 2
    await check()
    await expect(page.locator("#people > .person")).to_have_count(2)

    assert errors == []
    assert_local(requests, base)
    await page.close()


async def test_summary_feed_shows_summaries_newest_first(
    served: tuple[str, MeetingManager, web.Application], browser: Browser, tmp_path: Path
) -> None:
    """The feed says which summarizer is active; "Summarize now" and scheduled summaries
    appear newest first, once each, and come back from the snapshot after a reload."""
    base, manager, _ = served
    record, host_token = await manager.create_meeting("Summaries")
    page, errors, requests = await open_host(browser, base, record.id, host_token)
    feed = page.locator("#summaries .summary")
    await expect(page.locator("#summarizer")).to_contain_text("local summary every 60 s")
    await expect(page.locator("#summarizer")).to_contain_text("nothing leaves this machine")
    await expect(page.locator("#summaries-none")).to_be_visible()
    live = await manager.live(record.id)
    t0 = base_ts(30)
    grace = Fuser("g")
    events: list[MeetingEvent] = [joined("g", "Grace", t0)]
    for k in range(40):  # 20 s with a smiling face in view
        ts = t0 + k * 0.5
        obs = [FaceObservation("g", 1, ts, face_scores("g", ts), face_metrics())]
        events.append(ParticipantStateEvent(state=grace.feed(obs, ts)))
    await publish_all(live, events)

    await page.click("#summarize-now")
    await expect(feed).to_have_count(1)  # the answer and the socket's push are one summary
    first = feed.first
    await expect(first.locator(".sum-source")).to_have_text("local summary")
    await expect(first.locator(".sum-reason")).to_have_text("on request")
    await expect(first.locator(".sum-when")).to_contain_text("–")
    await expect(first.locator('.sum-person[data-participant-id="g"]')).to_contain_text("Grace: ")
    await expect(first.locator(".sum-mood")).to_contain_text("Room mood")
    await expect(first.locator(".sum-suggestion")).to_contain_text("Suggestion: ")
    await expect(page.locator("#summaries-none")).to_be_hidden()

    # A scheduled summary arrives over the socket and goes on top.
    live.summaries.start(time.time() + 1, "interval")
    await live.summaries.wait()
    await expect(feed).to_have_count(2)
    await expect(feed.nth(1).locator(".sum-reason")).to_have_text("on request")
    await expect(feed.first.locator(".sum-reason")).to_have_count(0)
    ids = await page.evaluate("window.sidebar.summaries.map(s => s.id)")
    stored = [s.id for s in await manager.store.summaries(record.id)]
    assert ids == stored and len(ids) == 2

    # With Gemini on Vertex AI configured, the feed says so and what is sent.
    live.summaries.summarizer = VertexSummarizer(
        VertexSettings(project="test-proj", model="gemini-test"), timeout_secs=30
    )
    await page.reload()
    await wait_for_js(page, "window.sidebar.socketState === 'live'", timeout_ms=10_000)
    await expect(feed).to_have_count(2)
    assert await page.evaluate("window.sidebar.summaries.map(s => s.id)") == stored
    await expect(page.locator("#summarizer")).to_have_text(
        "Active: Gemini summary (gemini-test) every 60 s; Gemini (gemini-test) on Vertex AI, "
        "project test-proj (global): aggregated, pseudonymised figures are sent, never images, "
        "audio or words."
    )
    await assert_no_bad_words(page, "#summaries-panel")
    await page.screenshot(path=str(tmp_path / "summaries.png"), full_page=True)
    assert errors == []
    assert_local(requests, base)
    await page.close()


async def test_ask_about_the_meeting(
    served: tuple[str, MeetingManager, web.Application], browser: Browser, tmp_path: Path
) -> None:
    """The feed shows a summary, and a question typed in the box (sent with Enter) gets an
    answer beneath it from the stored readings, with the range it looked at; a question the
    rules cannot answer says so. Newest answer first."""
    base, manager, _ = served
    record, host_token = await manager.create_meeting("Questions")
    page, errors, requests = await open_host(browser, base, record.id, host_token)
    live = await manager.live(record.id)
    t0 = base_ts(30)
    grace = Fuser("g")
    events: list[MeetingEvent] = [joined("g", "Grace Hopper", t0)]
    for k in range(40):  # 20 s with a face in view
        ts = t0 + k * 0.5
        obs = [FaceObservation("g", 1, ts, face_scores("g", ts), face_metrics())]
        events.append(ParticipantStateEvent(state=grace.feed(obs, ts)))
    await publish_all(live, events)
    await page.click("#summarize-now")
    await expect(page.locator("#summaries .summary")).to_have_count(1)

    answers = page.locator("#answers .answer")
    await page.locator("#ask-input").focus()
    await page.keyboard.type("How long was Grace's face in view?")
    await page.keyboard.press("Enter")
    await expect(answers).to_have_count(1)
    first = answers.first
    await expect(first.locator(".ans-question")).to_have_text("How long was Grace's face in view?")
    await expect(first.locator(".ans-text")).to_have_text(
        re.compile(
            r"^In the whole meeting \(0:00–0:\d\d\): Grace Hopper's face was in view for "
            r"\d+ s of \d+ s observed\.$"
        )
    )
    await expect(first.locator(".ans-range")).to_have_text(
        re.compile(r"^Looked at the whole meeting \(0:00–0:\d\d\)$")
    )
    await expect(first.locator(".ans-source")).to_have_text("local answer")
    await expect(page.locator("#ask-input")).to_have_value("")

    await page.fill("#ask-input", "What is the weather like?")
    await page.click("#ask-button")
    await expect(answers).to_have_count(2)
    await expect(answers.first).to_have_attribute("data-answered", "false")
    await expect(answers.first.locator(".ans-text")).to_contain_text("I can answer, for example")
    await expect(answers.nth(1).locator(".ans-question")).to_contain_text("Grace's face")
    kinds = await page.evaluate("window.sidebar.answers.map(a => a.answer.kind)")
    assert kinds == ["value", "how_long"]
    await assert_no_bad_words(page, "#answers")
    await page.screenshot(path=str(tmp_path / "answers.png"), full_page=True)
    assert errors == []
    assert_local(requests, base)
    await page.close()


async def test_bench_sidebar_reports_what_the_page_handled(tmp_path: Path) -> None:
    """`meetmood bench sidebar` in miniature: every event sent reaches the page, none dropped."""
    settings = make_settings(tmp_path)
    figures = await bench_sidebar(settings, participants=3, seconds=1.5, chromium=CHROMIUM)
    assert figures.participants == 3
    assert figures.events_sent > 6
    assert figures.events_handled == figures.events_sent
    assert figures.dropped == 0
    assert figures.frames > 0
    assert figures.handler_ms_p95 >= 0 and figures.frame_ms_p95 >= 0
    assert figures.compact is False
    text = format_figures(figures, as_json=False)
    assert "events_handled_per_sec" in text
