"""ParticipantSession: drains tracks, newest frame wins, inference off the loop, honest states."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from analyzers import _worker
from analyzers.face.emotion import FaceEmotionParams
from bot.fusion import Fused, FusionParams, fuse
from bot.inference import InferencePool
from bot.session import ParticipantSession
from bot.session.clock import MediaPacing
from bot.settings import PipelineSettings
from bot.tracks import LatestSlot, MediaClock, drain
from bot.types import (
    FaceAnalysis,
    FaceEmotion,
    FaceObservation,
    ListeningObservation,
    Observation,
    ParticipantState,
    SpeakingObservation,
)
from tests.media import ScriptedTrack, face_frame_rgb, frame_from_rgb, make_video_frame

pytestmark = pytest.mark.unit

HAPPY = (0.0, 0.0, 0.0, 0.9, 0.0, 0.0, 0.1)


class RecordingExecutor(Executor):
    """Runs calls on a real worker thread and records which thread ran them."""

    def __init__(self) -> None:
        self._inner = ThreadPoolExecutor(max_workers=1)
        self.threads: list[int] = []
        self.calls: list[tuple[str, Any]] = []

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        def record() -> Any:
            self.threads.append(threading.get_ident())
            self.calls.append((args[0] if args else "", args[1] if len(args) > 1 else None))
            return fn(*args, **kwargs)

        return self._inner.submit(record)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._inner.shutdown(wait=wait, cancel_futures=cancel_futures)


class ScriptedPool(InferencePool):
    """An InferencePool whose 'model' answers from a script, slowly, off the loop."""

    def __init__(self, answers: list[Any], delay_secs: float = 0.0) -> None:
        self.executor = RecordingExecutor()
        super().__init__({}, executor=self.executor)
        self.answers = answers
        self.delay_secs = delay_secs
        self.samples: list[Any] = []

    async def run(self, name: str, sample: Any, timeout_secs: float) -> Any:
        self.samples.append(sample)
        answer = self.answers.pop(0) if self.answers else self.answers_default(sample)

        def work() -> Any:
            threading.Event().wait(self.delay_secs)
            if isinstance(answer, Exception):
                raise answer
            return answer

        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(
            loop.run_in_executor(self.executor, lambda *_: work(), name, sample), timeout_secs
        )

    async def run_batched(
        self, name: str, sample: Any, timeout_secs: float, max_batch: int = 16
    ) -> Any:
        return await self.run(name, sample, timeout_secs)

    @staticmethod
    def answers_default(sample: Any) -> FaceAnalysis:
        return FaceAnalysis(sample.participant_id, sample.ts, (64, 48), (), "scripted", 1.0)


def face_result(sample: Any) -> FaceAnalysis:
    return FaceAnalysis(
        sample.participant_id, sample.ts, (64, 48), (FaceEmotion((1, 2, 3, 4), HAPPY),), "s", 1.0
    )


class Fusing:
    """Receives a session's observations and fuses the participant's own (slot 1) state."""

    def __init__(self) -> None:
        self.observations: list[Observation] = []
        self.states: list[ParticipantState] = []
        self._fused: Fused | None = None

    def __call__(self, obs: Observation) -> None:
        self.observations.append(obs)
        if isinstance(obs, (SpeakingObservation, ListeningObservation)):
            return
        if isinstance(obs, FaceObservation) and obs.slot != 1:
            return
        self._fused = fuse(self._fused, obs.participant_id, [obs], obs.ts, FusionParams())
        self.states.append(self._fused.state)


def pipeline(**changes: Any) -> PipelineSettings:
    return PipelineSettings(**{"frame_timeout_secs": 1.0, **changes})


async def run_session(
    frames: list[Any],
    pool: InferencePool,
    fps: float = 50.0,
    interval: float = 0.0,
    params: FaceEmotionParams | None = None,
) -> tuple[ParticipantSession, list[ParticipantState]]:
    sink = Fusing()
    face_params = (params or FaceEmotionParams()).model_copy(update={"fps": fps})
    session = ParticipantSession("p1", pool, face_params, pipeline(), sink)
    session.add_track(ScriptedTrack(frames, interval_secs=interval, linger_secs=0.3))
    await asyncio.wait_for(session.ended.wait(), 10)
    await session.close()
    return session, sink.states


async def test_no_face_means_no_face_not_neutral() -> None:
    pool = ScriptedPool([])
    _, states = await run_session([make_video_frame(pts=0)], pool)
    assert len(states) == 1
    assert states[0].face_visible is False
    assert states[0].emotion is None


async def test_face_state_and_inference_off_the_loop() -> None:
    loop_thread = threading.get_ident()
    frame = make_video_frame(pts=0)
    pool = ScriptedPool([])
    pool.answers = [face_result(type("S", (), {"participant_id": "p1", "ts": 0.0})())]
    _, states = await run_session([frame], pool)
    (state,) = states
    assert state.face_visible and state.emotion is not None
    assert state.emotion.dominant == "happy" and state.emotion.confidence == pytest.approx(0.9)
    assert pool.executor.threads and loop_thread not in pool.executor.threads
    sample = pool.samples[0]
    assert sample.image.shape == (48, 64, 3)  # RGB, analysis size


async def test_newest_frame_wins_and_nothing_queues() -> None:
    # 40 frames arrive at once while inference is slow: only a few are analysed, and
    # the last analysed one is the newest that existed then, never a backlog.
    frames = [make_video_frame(pts=i * 3000) for i in range(40)]
    pool = ScriptedPool([], delay_secs=0.05)
    session, states = await run_session(frames, pool, fps=1000.0)
    stats = session.stats()
    assert stats.frames_received == 40  # every frame was drained
    assert stats.frames_analyzed == len(states) < 10
    assert stats.frames_dropped >= 30
    ts = [s.ts for s in states]
    assert ts == sorted(ts)


async def test_rate_limit_follows_fps() -> None:
    frames = [make_video_frame(pts=i * 3000) for i in range(30)]  # 30 fps for 1 s
    pool = ScriptedPool([])
    loop = asyncio.get_running_loop()
    started = loop.time()
    session, states = await run_session(frames, pool, fps=4.0, interval=1 / 30)
    elapsed = loop.time() - started
    # Never more than fps allows over the time the frames took (plus the first frame),
    # however slow or fast the machine; and frames were dropped rather than queued.
    assert 2 <= len(states) <= int(elapsed * 4.0) + 1
    assert session.stats().frames_dropped > 0


async def test_failure_marks_stale_and_carries_on() -> None:
    frames = [make_video_frame(pts=i * 9000) for i in range(3)]
    pool = ScriptedPool([RuntimeError("model exploded"), TimeoutError()])
    _, states = await run_session(frames, pool, fps=1000.0, interval=0.05)
    assert [s.stale for s in states[:2]] == [True, True]
    assert states[0].face_visible is False and states[0].emotion is None
    assert states[-1].stale is False


@pytest.mark.model
async def test_real_analyzer_through_worker_module() -> None:
    # The real face analyzer (MediaPipe port + mini-Xception), loaded by the worker
    # initializer in-process; faces are tracked in the session.
    # The detector on every frame: a new face needs two detector finds, and these few
    # frames are closer together than detect_interval_secs.
    params = FaceEmotionParams(device="cpu", detect_interval_secs=0)
    specs = {"face_emotion": params.model_dump()}
    pool = InferencePool(specs, workers=1, mode="thread")
    await pool.start()
    try:
        face = face_frame_rgb()
        frames = [frame_from_rgb(face, pts=i * 9000) for i in range(5)]
        frames.append(make_video_frame(320, 240, pts=45000))
        # Frames 0.1 s apart: a slow machine may skip some (newest frame wins).
        _, states = await run_session(frames, pool, fps=1000.0, interval=0.1, params=params)
    finally:
        await pool.close()
    assert "face_emotion" in _worker._loaded
    # A new face is confirmed on its second detector find (one-frame false positives and
    # detector false positives followed from their landmarks get no card).
    assert states[0].face_visible is False
    seen = next(s for s in states if s.face_visible)
    assert seen.emotion is not None and seen.emotion.dominant == "happy"
    assert seen.face is not None and seen.face.track_id == 1
    assert seen.face.head_yaw is not None and abs(seen.face.head_yaw) < 30
    assert seen.face.calibrated is False  # the neutral baseline needs 3 s of face
    assert states[-1].face_visible is False and states[-1].emotion is None
    assert states[-1].face is None


@pytest.mark.model
async def test_haar_detector_reads_boxes_only() -> None:
    specs = {"face_emotion": FaceEmotionParams(device="cpu", detector="haar").model_dump()}
    pool = InferencePool(specs, workers=1, mode="thread")
    await pool.start()
    try:
        frames = [frame_from_rgb(face_frame_rgb(), pts=0), make_video_frame(320, 240, pts=9000)]
        _, states = await run_session(frames, pool, fps=1000.0, interval=0.05)
    finally:
        await pool.close()
    assert states[0].face_visible and states[0].emotion is not None
    assert states[0].emotion.dominant == "happy"
    assert states[0].face is None  # no landmarks: no blinks, pose or AUs, and no made-up ones
    assert states[1].face_visible is False and states[1].emotion is None


async def test_drain_counts_until_stream_error() -> None:
    assert await drain(ScriptedTrack([make_video_frame() for _ in range(5)]), 0.2) == 5


async def test_latest_slot_overwrites() -> None:
    slot: LatestSlot[int] = LatestSlot()
    for i in range(5):
        slot.put(i)
    assert await slot.take() == 4
    assert (slot.received, slot.dropped, slot.has_item) == (5, 4, False)


def test_media_clock_keeps_media_spacing_and_reanchors() -> None:
    clock = MediaClock(max_drift_secs=5)
    assert clock.to_meeting_time(10.0, wall_now=1000.0) == 1000.0
    assert clock.to_meeting_time(10.5, wall_now=1000.9) == 1000.5  # network jitter ignored
    assert clock.to_meeting_time(500.0, wall_now=1001.0) == 1001.0  # pts jump: re-anchored
    assert clock.to_meeting_time(None, wall_now=1002.0) == 1002.0
    assert clock.to_meeting_time(498.0, wall_now=1006.0) == 1006.0  # pts back 2 s, 5 s later


def test_media_clock_anchors_on_the_fastest_frame() -> None:
    # A first frame that arrived late (a busy start) must not put later frames ahead of
    # their arrival: the fastest frame sets the anchor, and waiting shows as lag.
    clock = MediaClock(max_drift_secs=5, fastest=True)
    assert clock.to_meeting_time(10.0, wall_now=1000.8) == 1000.8
    assert clock.to_meeting_time(11.0, wall_now=1001.0) == 1001.0  # came faster: re-anchored
    assert clock.to_meeting_time(12.0, wall_now=1002.3) == 1002.0  # waited 0.3 s: lag
    # A file keeps its own timeline, however fast it is read.
    file_clock = MediaClock(max_drift_secs=None, fastest=True)
    assert file_clock.to_meeting_time(10.0, wall_now=1000.0) == 1000.0
    assert file_clock.to_meeting_time(20.0, wall_now=1000.1) == 1010.0


async def test_faces_are_followed_between_detector_runs() -> None:
    # After a frame with a face, the next frames carry its ROI (no detector) until
    # detect_interval_secs has passed; a followed face that is lost brings the detector
    # back at once.
    lost_at: list[int] = []

    def landmark_result(sample: Any) -> FaceAnalysis:
        # From the 6th frame on, the first followed face is lost once.
        lost = sample.face_rois is not None and len(pool.samples) >= 6 and not lost_at
        if lost:
            lost_at.append(len(pool.samples) - 1)
        faces = () if lost else (FaceEmotion((1, 2, 30, 40), HAPPY, 0.9, None, "roi"),)
        return FaceAnalysis(
            sample.participant_id, sample.ts, (64, 48), faces, "s", 1.0, has_landmarks=True
        )

    pool = ScriptedPool([])
    pool.answers_default = landmark_result  # type: ignore[method-assign]
    params = FaceEmotionParams(detect_interval_secs=0.2).model_copy(update={"fps": 1000.0})
    session = ParticipantSession("p1", pool, params, pipeline(), lambda obs: None)
    frames = [make_video_frame(pts=i * 3000) for i in range(10)]
    session.add_track(ScriptedTrack(frames, interval_secs=0.06, linger_secs=0.3))
    await asyncio.wait_for(session.ended.wait(), 10)
    await session.close()
    hints = [s.face_rois for s in pool.samples]
    assert hints[0] is None and hints[1] == ("roi",) and hints[2] == ("roi",)
    assert None in hints[3:6]  # the detector runs again after 0.2 s
    assert lost_at and hints[lost_at[0] + 1] is None  # lost: the detector runs next


@pytest.mark.model
async def test_audio_track_is_analysed_and_the_session_ends_with_it() -> None:
    # Speech then silence, as 20 ms aiortc-like frames; when the track ends, so does the
    # session (no task is left waiting for audio that will never come).
    from analyzers.voice.synth import espeak_speech, to_audio_frames
    from bot.settings import VoiceSettings

    class AudioTrack(ScriptedTrack):
        kind = "audio"

    speech = espeak_speech("Hello, this is a short test.")
    samples = np.concatenate([np.zeros(8000, np.float32), speech, np.zeros(16000, np.float32)])
    frames = to_audio_frames(samples)
    sink = Fusing()
    session = ParticipantSession(
        "p1", ScriptedPool([]), FaceEmotionParams(), pipeline(), sink, voice=VoiceSettings()
    )
    session.add_track(AudioTrack(frames))  # as fast as it can: the queue keeps every frame
    await asyncio.wait_for(session.ended.wait(), 20)
    await session.close()
    states = sink.states
    talk = [(o.ts, o.is_speaking) for o in sink.observations if isinstance(o, SpeakingObservation)]
    assert isinstance(sink.observations[0], ListeningObservation)
    assert [on for _, on in talk] == [True, False]
    start, end = talk[0][0], talk[1][0]
    assert end - start == pytest.approx(len(speech) / 16_000, abs=0.5)
    voice = states[-1].voice
    assert voice is not None and not voice.is_speaking
    assert voice.talk_secs == pytest.approx(end - start, abs=0.1)
    assert voice.emotion_status == "disabled"  # no voice_emotion analyzer in this pool
    assert session.stats().audio_frames == len(frames)

    # Fusion: arousal needs a known usual voice (5 stretches), so one sentence gives none.
    assert states[-1].value("arousal") is None


async def test_media_pacing_picks_frames_by_their_own_time() -> None:
    # A file-like source: 60 frames, 10 s of media at 6 fps, delivered as fast as they can
    # be read. Media pacing at 2 fps analyses one frame per 0.5 s of media time, on any
    # machine, and the blocking slot drops none.
    frames = [make_video_frame(pts=i * 15000) for i in range(60)]
    pool = ScriptedPool([])
    sink = Fusing()
    params = FaceEmotionParams().model_copy(update={"fps": 2.0, "idle_fps": 2.0})
    session = ParticipantSession("p1", pool, params, pipeline(), sink, pacing=MediaPacing)
    session.add_track(ScriptedTrack(frames))
    await asyncio.wait_for(session.ended.wait(), 10)
    await session.close()
    stats = session.stats()
    assert stats.frames_received == 60 and stats.frames_dropped == 0
    media_ts = [round(s.ts - pool.samples[0].ts, 3) for s in pool.samples]
    assert media_ts == [round(0.5 * k, 3) for k in range(20)]
