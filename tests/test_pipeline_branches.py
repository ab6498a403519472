"""Pipeline branches the other tests pass by: large frames, no face in view, calibration, talk.

Each runs the real analyzer (MediaPipe port + mini-Xception, in a thread pool) on real
faces through a real :class:`~bot.session.ParticipantSession` with media pacing (frames
picked by their own timestamps, so the picks are the same on any machine), or, for
several people talking, the real meeting path: aiortc peers over loopback into the app,
read back from the sidebar socket.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from aiohttp.test_utils import TestClient
from aiortc import RTCPeerConnection

from analyzers.face.emotion import FaceEmotionParams
from analyzers.face.mediapipe.landmarker import FaceLandmarker
from analyzers.voice.synth import espeak_speech
from bot.inference import InferencePool
from bot.session import ParticipantSession
from bot.session.clock import MediaPacing
from bot.settings import PipelineSettings
from bot.types import FaceObservation, Observation
from tests.conftest import make_settings
from tests.media import (
    ScriptedTrack,
    SpeechAudioTrack,
    astronaut,
    face_frame_rgb,
    frame_from_rgb,
)
from tests.served import join_peer
from tests.test_blinks_real_frames import eyes_shut
from web.app import create_app
from web.keys import MANAGER

VIDEO_CLOCK = 90_000


class RecordingPool(InferencePool):
    """The real thread pool; it also keeps every sample it was given (size, hints, time)."""

    def __init__(self, params: FaceEmotionParams) -> None:
        super().__init__({"face_emotion": params.model_dump()}, workers=1, mode="thread")
        self.samples: list[Any] = []

    async def run(self, name: str, sample: Any, timeout_secs: float) -> Any:
        self.samples.append(sample)
        return await super().run(name, sample, timeout_secs)

    async def run_batched(
        self, name: str, sample: Any, timeout_secs: float, max_batch: int = 16
    ) -> Any:
        self.samples.append(sample)
        return await super().run_batched(name, sample, timeout_secs, max_batch)


async def analyse(
    images: list[np.ndarray], fps_in: float, params: FaceEmotionParams, **pipeline: Any
) -> tuple[RecordingPool, list[Observation]]:
    """Run a session over ``images`` (one frame each, ``fps_in`` apart in media time)."""
    pool = RecordingPool(params)
    await pool.start()
    observations: list[Observation] = []
    try:
        session = ParticipantSession(
            "p1",
            pool,
            params,
            PipelineSettings(**pipeline),
            observations.append,
            pacing=MediaPacing,
        )
        frames = [
            frame_from_rgb(image, pts=round(i * VIDEO_CLOCK / fps_in))
            for i, image in enumerate(images)
        ]
        session.add_track(ScriptedTrack(frames))
        await asyncio.wait_for(session.ended.wait(), 60)
        await session.close()
    finally:
        await pool.close()
    return pool, observations


def own_faces(observations: list[Observation]) -> list[FaceObservation]:
    return [o for o in observations if isinstance(o, FaceObservation) and o.slot == 1]


def big_face(width: int, height: int) -> np.ndarray:
    """The astronaut scaled to the frame's height, centred on grey (a close webcam shot)."""
    import cv2

    canvas = np.full((height, width, 3), 128, np.uint8)
    face = cv2.resize(astronaut(), (height, height), interpolation=cv2.INTER_AREA)
    x0 = (width - height) // 2
    canvas[:, x0 : x0 + height] = face
    return canvas


@pytest.mark.model
@pytest.mark.parametrize(
    ("size", "max_side", "analysed"),
    [
        ((1280, 720), 1280, (1280, 720)),  # a room camera's 720p is kept whole
        ((1920, 1080), 1280, (1280, 720)),
        ((1280, 720), 640, (640, 360)),
    ],
)
async def test_large_frames_are_downscaled_and_faces_followed_at_that_size(
    size: tuple[int, int], max_side: int, analysed: tuple[int, int]
) -> None:
    # 2.2 s of camera at 5 analyses a second: the detector at 0, 1 and 2 s, and the face
    # followed from its landmarks (hints in the analysed frame's pixels) in between.
    params = FaceEmotionParams(device="cpu").model_copy(update={"fps": 5.0})
    image = big_face(*size)
    pool, observations = await analyse([image] * 12, 5.0, params, analysis_max_side=max_side)
    width, height = analysed
    assert [s.image.shape for s in pool.samples] == [(height, width, 3)] * 12
    hinted = [s.face_rois is not None for s in pool.samples]
    assert hinted == [False] + [True] * 4 + [False] + [True] * 4 + [False, True]
    faces = own_faces(observations)
    # Confirmed at the second detector find (1 s), then seen on every frame: a hint in the
    # wrong frame's pixels would lose the face and bring the detector back at once.
    assert [o.emotion is not None for o in faces] == [False] * 5 + [True] * 7
    seen = [o for o in faces if o.emotion is not None]
    assert all(o.emotion.dominant == "happy" for o in seen)  # type: ignore[union-attr]
    assert {o.metrics.track_id for o in seen if o.metrics} == {1}


@pytest.mark.model
async def test_no_face_in_view_is_analysed_at_the_idle_rate() -> None:
    # 2 s of an empty room, then 1.5 s of a face, at 30 frames a second of media time.
    params = FaceEmotionParams(device="cpu").model_copy(update={"fps": 15.0, "idle_fps": 2.0})
    empty = np.full((480, 640, 3), 128, np.uint8)
    face = face_frame_rgb()
    pool, observations = await analyse([empty] * 60 + [face] * 45, 30.0, params)
    start = pool.samples[0].ts
    times = [round(s.ts - start, 3) for s in pool.samples]
    # Full rate until the first analysis finds nobody, then 2 a second (each pick up to a
    # quarter interval early, as media pacing allows)...
    empty_room = [t for t in times if t < 2.0]
    assert empty_room == [0.0, 0.067, 0.467, 0.967, 1.467, 1.967], times
    # ...and the face that appears at 2 s is found within 1 / idle_fps. The pick after it was
    # already due at the idle rate (the rate is set before each analysis); then 15 fps.
    with_face = [t for t in times if t >= 2.0]
    assert with_face[:3] == [2.467, 2.967, 3.133], times
    assert len(with_face) >= 8 and np.allclose(np.diff(with_face[2:]), 1 / 15, atol=0.004)
    faces = own_faces(observations)
    assert [o.emotion is None for o in faces[:6]] == [True] * 6


@pytest.mark.model
async def test_calibration_completes_on_real_frames() -> None:
    # The astronaut for 4.5 s at 10 fps (blinks are observable from 10 fps on), her eyes
    # painted shut for 0.2 s twice after her calibration, with a 2 s baseline and a 2.5 s
    # feature window so that all of it fits in a few seconds of media.
    face = face_frame_rgb()
    (found,) = FaceLandmarker("cpu").process([face])[0]
    shut = eyes_shut(face, found.landmarks)
    shut_at = {31, 32, 38, 39}  # frames (0.1 s each): shut at 3.1-3.2 s and 3.8-3.9 s
    images = [shut if i in shut_at else face for i in range(45)]
    params = FaceEmotionParams.model_validate(
        {
            "device": "cpu",
            "fps": 10.0,
            "tracking": {"window_secs": 2.5, "baseline": {"calibration_secs": 2.0}},
        }
    )
    pool, observations = await analyse(images, 10.0, params)
    start = pool.samples[0].ts
    by_time = {round(o.ts - start, 1): o.metrics for o in own_faces(observations)}
    assert all(m is not None for t, m in by_time.items() if t >= 1.0)  # seen from 1 s on
    calibrated = [t for t, m in by_time.items() if m is not None and m.calibrated]
    # Calibrated after 2 s of face (seen from 1 s): nothing relative is made up before.
    assert min(calibrated) == pytest.approx(3.0, abs=0.15)
    before = by_time[2.5]
    assert before is not None and before.aus is None and before.smile is None
    assert before.looking_away is None
    after = by_time[3.0]
    assert after is not None and after.aus is not None
    # Relative to her own neutral face (her usual smile): no AU moves, she is not "smiling"
    # more than usual, and she looks where she usually looks.
    assert max(after.aus.values()) < 0.5
    assert after.smile is not None and after.smile < 0.5 and after.is_smiling is False
    assert after.looking_away is False
    # Shut eyes: AU45 (blink) rises over her baseline; open again: back to 0.
    shut_face = by_time[3.2]
    assert shut_face is not None and shut_face.aus is not None
    assert shut_face.aus["AU45"] > 1.0 and after.aus["AU45"] == 0.0
    end = by_time[4.4]
    assert end is not None
    assert end.blinks == 2
    # Two blinks in the 2.5 s window: 48 a minute (far above the usual 15: painted blinks).
    assert end.blink_rate_per_min == pytest.approx(2 / 2.5 * 60, rel=0.1)


# -- several people talking, through the real meeting path ---------------------------------


async def join(
    client: TestClient, meeting_id: str, join_token: str, pc: RTCPeerConnection, name: str
) -> str:
    url = f"/api/meetings/{meeting_id}/participants"
    body = await join_peer(client, url, join_token, pc, name)
    participant_id: str = body["participant_id"]
    return participant_id


@pytest.mark.e2e
@pytest.mark.usefixtures("loopback_only")
async def test_several_people_talking_through_the_meeting(
    aiohttp_client: Any, tmp_path: Any
) -> None:
    # Ada speaks, then Bo (after a pause), then Cy says nothing: talk time, turns and shares
    # come out of the real meeting (VAD per peer, the meeting's talk tracker).
    settings = make_settings(
        tmp_path,
        **{
            "analyzers.enabled": [],
            "webrtc.drop_mdns_candidates": True,
            "limits.allow_private_candidates": True,
        },
    )
    client = await aiohttp_client(create_app(settings))
    manager = client.app[MANAGER]
    record, host_token = await manager.create_meeting("Talk")
    ws = await client.ws_connect(
        f"/api/meetings/{record.id}/ws", headers={"Authorization": f"Bearer {host_token}"}
    )
    assert (await ws.receive_json())["type"] == "snapshot"
    ada_says = espeak_speech("Good morning everyone, here is the plan for this week.")
    bo_says = espeak_speech("Thanks, that sounds good to me.")
    ada_secs, bo_secs = len(ada_says) / 16_000, len(bo_says) / 16_000
    pcs = [RTCPeerConnection() for _ in range(3)]
    pcs[0].addTrack(SpeechAudioTrack(ada_says, lead_secs=0.5))
    pcs[1].addTrack(SpeechAudioTrack(bo_says, lead_secs=0.5 + ada_secs + 1.5))
    pcs[2].addTrack(SpeechAudioTrack(np.zeros(16_000, np.float32), lead_secs=0.5))
    try:
        ids = [
            await join(client, record.id, record.join_token, pc, name)
            for pc, name in zip(pcs, ("Ada", "Bo", "Cy"), strict=True)
        ]
        ada, bo, cy = ids
        speaking: list[list[str]] = []
        talk: dict[str, Any] = {}

        async def until_both_spoke() -> None:
            while True:
                event = await ws.receive_json()
                if event["type"] != "talk":
                    continue
                if not speaking or event["speaking"] != speaking[-1]:
                    speaking.append(event["speaking"])
                talk.update(event)
                people = {p["participant_id"]: p for p in event["participants"]}
                if people.get(bo, {}).get("turns") == 1 and not event["speaking"]:
                    return

        await asyncio.wait_for(until_both_spoke(), 40)
    finally:
        for pc in pcs:
            await pc.close()
        await ws.close()
    # One at a time, in order, and nobody else.
    assert [s for s in speaking if s] == [[ada], [bo]]
    people = {p["participant_id"]: p for p in talk["participants"]}
    assert set(people) == {ada, bo, cy}
    # Talk time as spoken (VAD back-dates onsets and offsets; short pauses inside a
    # sentence count): within 0.6 s of the speech each played.
    assert people[ada]["talk_secs"] == pytest.approx(ada_secs, abs=0.6)
    assert people[bo]["talk_secs"] == pytest.approx(bo_secs, abs=0.6)
    assert (people[ada]["turns"], people[bo]["turns"], people[cy]["turns"]) == (1, 1, 0)
    assert people[cy]["talk_secs"] == 0.0 and people[cy]["talk_share"] == 0.0
    share = ada_secs / (ada_secs + bo_secs)
    assert people[ada]["talk_share"] == pytest.approx(share, abs=0.08)
    assert people[ada]["talk_share"] + people[bo]["talk_share"] == pytest.approx(1.0)
    assert talk["overlap_secs"] == 0.0
    assert all(p["interruptions"] == 0 for p in people.values())
