"""A camera with two people: each face is tracked, shown and stored as its own participant."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.meeting import MeetingManager
from bot.types import ParticipantJoinedEvent, ParticipantStateEvent
from tests.conftest import make_settings
from tests.media import ScriptedTrack, TrackSource, frame_from_rgb, two_faces_frame

pytestmark = pytest.mark.model


async def test_two_faces_become_a_participant_and_a_sub_participant(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        **{
            "analyzers.enabled": ["face_emotion"],
            "analyzers.face_emotion.fps": 30.0,
            # A new face needs two detector finds; these frames span under a second.
            "analyzers.face_emotion.detect_interval_secs": 0,
        },
    )
    manager = MeetingManager(settings)
    await manager.start()
    try:
        record, _ = await manager.create_meeting("Room")
        meeting = await manager.live(record.id)
        async with manager.subscribe(record.id) as sub:
            image = two_faces_frame()
            frames = [frame_from_rgb(image, pts=i * 3000) for i in range(6)]
            source = TrackSource(ScriptedTrack(frames, 0.05, linger_secs=0.5))
            participant = meeting.join("Room A", source)
            room = participant.record
            await asyncio.wait_for(participant.session.ended.wait(), 60)
            await manager.store.flush()
            events = []
            while not sub.queue.empty():
                events.append(sub.queue.get_nowait())
        joined = [e.participant for e in events if isinstance(e, ParticipantJoinedEvent)]
        face2 = next(p for p in joined if p.parent_id == room.id)
        assert face2.display_name == "Room A · face 2" and face2.face_track == 2
        states = [e.state for e in events if isinstance(e, ParticipantStateEvent)]
        seen = {s.participant_id for s in states if s.face_visible}
        assert seen == {room.id, face2.participant_id}
        # Mirror images: one face on each side, each with its own landmark readings.
        mine = next(s for s in states if s.participant_id == room.id and s.face_visible)
        theirs = next(s for s in states if s.participant_id == face2.participant_id)
        assert mine.face is not None and theirs.face is not None
        assert mine.face.track_id != theirs.face.track_id

        stored = {p.id: p for p in await manager.store.list_participants(record.id)}
        assert stored[face2.participant_id].parent_id == room.id
        snapshot = await manager.snapshot(record.id)
        assert face2.participant_id in {p.participant_id for p in snapshot.participants}

        await meeting.end(participant, "left")
        stored = {p.id: p for p in await manager.store.list_participants(record.id)}
        assert stored[face2.participant_id].leave_reason == "left"
    finally:
        await manager.close()
