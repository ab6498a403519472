"""Integration: a real aiortc peer joins through the API; its state reaches the sidebar socket."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from aiortc import RTCPeerConnection

from analyzers.voice.bench import save_tiny_emotion_model
from analyzers.voice.synth import espeak_speech
from bot.settings import Settings
from tests.conftest import ADMIN, make_settings
from tests.media import ImageVideoTrack, SpeechAudioTrack, face_frame_rgb
from tests.served import join_peer
from web.app import create_app
from web.keys import MANAGER

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("loopback_only")]


async def create_meeting(client: TestClient, name: str = "Standup") -> dict[str, Any]:
    resp = await client.post("/api/meetings", json={"name": name}, headers=ADMIN)
    assert resp.status == 201
    return await resp.json()


def host_auth(meeting: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {meeting['host_token']}"}


async def join(
    client: TestClient, meeting: dict[str, Any], pc: RTCPeerConnection, name: str = "Ada"
) -> dict[str, Any]:
    token = meeting["join_url"].split("token=")[1]
    return await join_peer(client, f"/api/meetings/{meeting['id']}/participants", token, pc, name)


async def next_event(ws: Any, kind: str, wait_secs: float = 20.0, **match: Any) -> dict[str, Any]:
    """The next sidebar event of type ``kind`` whose fields match."""

    async def wait() -> dict[str, Any]:
        while True:
            event = await ws.receive_json()
            if event["type"] != kind:
                continue
            if all(event.get(k) == v for k, v in match.items()):
                return event

    return await asyncio.wait_for(wait(), wait_secs)


async def next_event_of(ws: Any, kinds: set[str], wait_secs: float = 20.0) -> dict[str, Any]:
    """The next sidebar event whose type is one of ``kinds``."""

    async def wait() -> dict[str, Any]:
        while True:
            event = await ws.receive_json()
            if event["type"] in kinds:
                return event

    return await asyncio.wait_for(wait(), wait_secs)


async def notices_once_loaded(ws: Any, snapshot: dict[str, Any]) -> list[str]:
    """The notices a sidebar has once the server's models are loaded.

    The models load while the server answers: a snapshot taken before they are loaded
    says ``starting`` and has no notices yet; they come as events, before the
    ``models`` event that says ``ready``.
    """
    texts = [n["text"] for n in snapshot["notices"]]
    if snapshot["models"]["state"] == "ready":
        return texts
    assert texts == [], "nothing is known about the models while they load"
    while True:
        event = await next_event_of(ws, {"models", "notice"}, wait_secs=60)
        if event["type"] == "notice":
            texts.append(event["text"])
        elif event["state"] == "ready":
            assert "starting" not in event["analyzers"].values()
            return texts


async def test_video_reaches_sidebar(aiohttp_client: Any, settings: Settings) -> None:
    client = await aiohttp_client(create_app(settings))
    meeting = await create_meeting(client)
    ws = await client.ws_connect(f"/api/meetings/{meeting['id']}/ws", headers=host_auth(meeting))
    snapshot = await ws.receive_json()
    assert snapshot["type"] == "snapshot"
    assert snapshot["participants"] == []

    pc = RTCPeerConnection()
    pc.addTrack(ImageVideoTrack(face_frame_rgb(), fps=15))
    try:
        joined = await join(client, meeting, pc)
        pid = joined["participant_id"]
        event = await next_event(ws, "participant_joined")
        assert event["participant"]["display_name"] == "Ada"

        # The astronaut's face: visible, with 7 probabilities that sum to 1, happy on top.
        while True:
            event = await next_event(ws, "participant_state")
            state = event["state"]
            assert state["participant_id"] == pid
            if state["face_visible"]:
                break
        emotion = state["emotion"]
        assert set(emotion["probs"]) == {
            "angry",
            "disgust",
            "fear",
            "happy",
            "sad",
            "surprise",
            "neutral",
        }
        # Her smile, through VP8 over loopback: the model reads happy 0.98 on the raw photo.
        assert emotion["probs"]["happy"] > 0.9
        assert emotion["confidence"] == pytest.approx(max(emotion["probs"].values()))
        # Fusion: every registry state is there, each a value or a reason.
        readings = state["readings"]
        assert {d["name"] for d in snapshot["definitions"]} == set(readings)
        assert all(r["value"] is not None or r["reason"] for r in readings.values())
        assert readings["happy"]["value"] is not None  # the face fed the fused expression
        assert readings["participation"]["value"] is None  # no microphone in this call

        # A second sidebar that connects now gets the participant in its snapshot.
        ws2 = await client.ws_connect(
            f"/api/meetings/{meeting['id']}/ws", headers=host_auth(meeting)
        )
        snap2 = await ws2.receive_json()
        assert [p["participant_id"] for p in snap2["participants"]] == [pid]
        assert snap2["history"][pid], "the timeline has points"
        await ws2.close()

        resp = await client.post(
            f"/api/meetings/{meeting['id']}/participants/{pid}/leave",
            json={"token": joined["participant_token"]},
        )
        assert resp.status == 204
        left = await next_event(ws, "participant_left", participant_id=pid)
        assert left["reason"] == "left"
    finally:
        await pc.close()
        await ws.close()

    # States were stored in SQLite, keyed by meeting and participant.
    store = client.app[MANAGER].store
    stored = await store.read_states(meeting["id"], pid)
    assert any(s.emotion is not None and s.emotion.dominant == "happy" for s in stored)
    (record,) = await store.list_participants(meeting["id"])
    assert record.leave_reason == "left"


async def test_closing_the_peer_ends_the_participant(
    aiohttp_client: Any, settings: Settings
) -> None:
    client = await aiohttp_client(create_app(settings))
    meeting = await create_meeting(client)
    ws = await client.ws_connect(f"/api/meetings/{meeting['id']}/ws", headers=host_auth(meeting))
    await ws.receive_json()
    pc = RTCPeerConnection()
    pc.addTrack(ImageVideoTrack(face_frame_rgb(), fps=15))
    joined = await join(client, meeting, pc)
    await next_event(ws, "participant_state")
    await pc.close()  # like a closed tab: no leave request
    left = await next_event(ws, "participant_left", participant_id=joined["participant_id"])
    assert left["reason"] in ("disconnected", "failed")
    await ws.close()


async def test_speech_reaches_sidebar_with_talk_time(aiohttp_client: Any, tmp_path: Path) -> None:
    # A tiny random speech-emotion model built here: the real loading and inference path.
    model = save_tiny_emotion_model(tmp_path / "tiny-er")
    settings = make_settings(tmp_path, **{"analyzers.voice_emotion.model": str(model)})
    client = await aiohttp_client(create_app(settings))
    meeting = await create_meeting(client)
    ws = await client.ws_connect(f"/api/meetings/{meeting['id']}/ws", headers=host_auth(meeting))
    snapshot = await ws.receive_json()
    # The voice model loaded: nothing to warn about.
    assert await notices_once_loaded(ws, snapshot) == []
    speech = espeak_speech("This is a test of the meeting bot. I am speaking for a while now.")
    pc = RTCPeerConnection()
    pc.addTrack(SpeechAudioTrack(speech, lead_secs=1.0))
    try:
        joined = await join(client, meeting, pc)
        pid = joined["participant_id"]

        # Read the sidebar socket until the speech is over and its tone is classified.
        spoke = False
        speakers: list[list[str]] = []
        voice: dict[str, Any] | None = None
        talk: dict[str, Any] | None = None
        state: dict[str, Any] = {}
        while not (spoke and voice and not voice["is_speaking"] and voice["emotion"] and talk):
            event = await next_event_of(ws, {"participant_state", "talk"}, wait_secs=30)
            if event["type"] == "talk":
                speakers.append(event["speaking"])
                continue
            state = event["state"]
            voice = state["voice"]
            spoke = spoke or bool(voice and voice["is_speaking"])
            talk = state["talk"] if spoke and state["talk"] and state["talk"]["turns"] else None
        assert [pid] in speakers  # the meeting strip saw them speaking
        assert voice["emotion_status"] == "ok"
        assert set(voice["emotion"]["probs"]) <= {"neutral", "happy", "angry", "sad"}
        assert voice["pitch_hz"] is not None and 60 < voice["pitch_hz"] < 400
        speech_secs = len(speech) / 16_000
        # VAD onsets and offsets are back-dated; pauses between words may not count.
        assert 0.5 * speech_secs < voice["talk_secs"] < speech_secs + 0.5
        assert talk is not None
        assert talk["turns"] == 1 and talk["talk_share"] == pytest.approx(1.0)
        # Alone in the meeting, they have all the talk: participation reads high.
        participation = state["readings"]["participation"]
        assert participation["value"] is not None and participation["value"] > 0.6
    finally:
        await pc.close()
        await ws.close()
    stored = await client.app[MANAGER].store.read_states(meeting["id"], pid)
    assert any(s.is_speaking and s.voice is not None and s.voice.talk_secs > 0 for s in stored)


async def test_missing_voice_model_is_said_once_and_voice_goes_on(
    aiohttp_client: Any, settings: Settings
) -> None:
    # conftest's settings point the voice model at the (empty) offline cache.
    client = await aiohttp_client(create_app(settings))
    meeting = await create_meeting(client)
    ws = await client.ws_connect(f"/api/meetings/{meeting['id']}/ws", headers=host_auth(meeting))
    snapshot = await ws.receive_json()
    notices = await notices_once_loaded(ws, snapshot)
    assert notices == ["voice emotion model unavailable"]
    # A sidebar that connects now has it in its snapshot, once.
    ws2 = await client.ws_connect(f"/api/meetings/{meeting['id']}/ws", headers=host_auth(meeting))
    snap2 = await ws2.receive_json()
    assert snap2["models"]["state"] == "ready"
    assert [n["text"] for n in snap2["notices"]] == notices
    await ws2.close()
    pc = RTCPeerConnection()
    pc.addTrack(SpeechAudioTrack(espeak_speech("Hello there, can you hear me?"), lead_secs=0.5))
    try:
        await join(client, meeting, pc)
        while True:
            event = await next_event(ws, "participant_state", wait_secs=30)
            voice = event["state"]["voice"]
            if voice is not None and voice["is_speaking"]:
                break
        assert voice["emotion_status"] == "unavailable" and voice["emotion"] is None
    finally:
        await pc.close()
        await ws.close()
