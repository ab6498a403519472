"""A live meeting: observations in, fused states, talk figures, the room and sinks out; the API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.fusion.registry import REGISTRY
from bot.types import (
    EmotionScores,
    FaceObservation,
    ListeningObservation,
    MeetingEvent,
    ParticipantJoinedEvent,
    ParticipantStateEvent,
    RoomEvent,
    SpeakingObservation,
    TalkEvent,
    VoiceMetrics,
    VoiceObservation,
)
from tests.conftest import make_settings
from tests.media import TrackSource
from web.app import create_app
from web.keys import MANAGER

pytestmark = pytest.mark.unit


def face(pid: str, slot: int, ts: float) -> FaceObservation:
    return FaceObservation(pid, slot, ts, EmotionScores.of(pid, ts, "face", {"happy": 1.0}))


def voice(pid: str, ts: float, speaking: bool, talk_secs: float) -> VoiceObservation:
    metrics = VoiceMetrics(speaking, talk_secs, None, None, None, None, "disabled")
    return VoiceObservation(pid, ts, metrics)


async def test_observations_become_states_talk_room_and_stored_pages(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    # No analyzer: the observations come from the test, as a session would send them.
    settings = make_settings(tmp_path, **{"analyzers.enabled": []})
    client = await aiohttp_client(create_app(settings))
    manager = client.app[MANAGER]
    record, host_token = await manager.create_meeting("Standup")
    meeting = await manager.live(record.id)
    events: list[MeetingEvent] = []
    async with meeting.subscribe() as sub:
        ada = meeting.join("Ada", TrackSource())
        bo = meeting.join("Bo", TrackSource())
        a, b = ada.record.id, bo.record.id
        t = 1000.0
        for pid in (a, b):  # as a session does when it starts listening
            meeting.observe(ListeningObservation(pid, t))
            meeting.observe(voice(pid, t, False, 0.0))
        meeting.observe(SpeakingObservation(a, t + 1, True, t + 1.3))
        meeting.observe(voice(a, t + 1.3, True, 0.3))
        meeting.observe(SpeakingObservation(a, t + 9, False, t + 9.3))
        meeting.observe(voice(a, t + 9.3, False, 8.0))
        meeting.observe(face(a, 1, t + 9.4))
        meeting.observe(face(b, 1, t + 9.4))
        meeting.observe(face(b, 2, t + 9.4))  # a second face in Bo's camera
        meeting.tick(t + 10)
        while not sub.queue.empty():
            events.append(sub.queue.get_nowait())

    joined = [e.participant for e in events if isinstance(e, ParticipantJoinedEvent)]
    assert [p.display_name for p in joined] == ["Ada", "Bo", "Bo · face 2"]
    face2 = joined[2]
    assert face2.parent_id == b and face2.face_track == 2
    talk = [e for e in events if isinstance(e, TalkEvent)][-1]
    assert talk.speech_secs == pytest.approx(8.0)
    # The tick fused each participant with the meeting's talk figures.
    ada_state = meeting.fused[a].state
    assert ada_state.talk is not None and ada_state.talk.talk_share == pytest.approx(1.0)
    assert ada_state.talk.present == 2 and ada_state.talk.turns == 1
    bo_state = meeting.fused[b].state
    assert bo_state.talk is not None and bo_state.talk.talk_share == 0.0
    bo_part, ada_part = bo_state.value("participation"), ada_state.value("participation")
    assert bo_part is not None and ada_part is not None and bo_part < ada_part
    sub_state = meeting.fused[face2.participant_id].state
    assert sub_state.face_visible and sub_state.talk is None  # the room's voice is not theirs
    rooms = [e.room for e in events if isinstance(e, RoomEvent)]
    assert rooms and rooms[-1].present == 3
    assert {e.state.participant_id for e in events if isinstance(e, ParticipantStateEvent)} == {
        a,
        b,
        face2.participant_id,
    }

    # The API: states a page at a time with a cursor, per participant, the room, the registry.
    auth = {"Authorization": f"Bearer {host_token}"}
    url = f"/api/meetings/{record.id}/states"
    seen: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        page = await (await client.get(url, params=params, headers=auth)).json()
        seen.extend(page["states"])
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert {s["participant_id"] for s in seen} == {a, b, face2.participant_id}
    assert all(
        set(s["readings"]) >= {d.name for d in REGISTRY if d.null_reason is None} for s in seen
    )
    mine = await (
        await client.get(f"/api/meetings/{record.id}/participants/{a}/states", headers=auth)
    ).json()
    assert mine["states"] and {s["participant_id"] for s in mine["states"]} == {a}
    room = await (await client.get(f"/api/meetings/{record.id}/room", headers=auth)).json()
    assert room["room"] and room["room"][-1]["present"] == 3
    resp = await client.get("/api/state-definitions")
    names = [d["name"] for d in (await resp.json())["definitions"]]
    assert names == [d.name for d in REGISTRY] and len(names) == 34
    bad = await client.get(url, params={"limit": 0}, headers=auth)
    assert bad.status == 400
    await meeting.end(ada, "left")
    await meeting.end(bo, "left")


async def test_a_source_without_media_feeds_fusion_through_emit(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    # An OpenFace-like source measures its participant itself: no tracks, observations.
    class MeasuredSource(TrackSource):
        def start(self, participant_id: str, on_track: Any, emit: Any) -> None:
            for k in range(5):
                emit(face(participant_id, 1, 1000.0 + k / 10))

    settings = make_settings(tmp_path, **{"analyzers.enabled": []})
    client = await aiohttp_client(create_app(settings))
    manager = client.app[MANAGER]
    record, _ = await manager.create_meeting("Recorded")
    meeting = await manager.live(record.id)
    participant = meeting.join("Ada", MeasuredSource())
    state = meeting.fused[participant.record.id].state
    assert state.face_visible and state.ts == pytest.approx(1000.4)
    assert state.value("happy") == pytest.approx(1.0)
    await meeting.end(participant, "left")
