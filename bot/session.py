"""ParticipantSession: one participant's media pipeline.

For each video track: a reader task drains the track into a one-slot buffer,
and an analysis task takes the newest frame at most ``fps`` times a second,
converts and downscales it on the participant's own thread, sends it to the
inference pool, fuses the result into a new state and hands that to the meeting.

For each audio track (when ``[voice] enabled``): a reader task drains every frame
into a bounded queue (audio is never "newest wins": the VAD needs it all); a
voice task hands the queued frames in batches to the participant's
:class:`~analyzers.voice.pipeline.VoicePipeline` on the participant's own thread
(resample, ring, VAD, prosody, arousal). Speaking changes go to the meeting's
talk tracker and into the state; voiced pieces of 1-4 s go, in order, to the
speech-emotion model in the inference pool when it is available (at most
:data:`VOICE_QUEUE_PIECES` wait; a model slower than speech skips the oldest).

Every task is kept and cancelled on ``close()``. Analysis failures are per
participant and never fatal: the state is marked stale and the loop goes on.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from analyzers.base import AnalyzerUnavailable
from analyzers.face.emotion import FaceEmotionParams
from analyzers.face.track_state import DetectedFace, FaceFeed
from analyzers.voice.audio import AudioChunk
from analyzers.voice.emotion import VoiceEmotionParams, VoiceEmotionResult
from analyzers.voice.pipeline import SpeakingChanged, VoicedSegment, VoiceEvent, VoicePipeline
from bot.faces import FaceSlots, face_emotion, face_metrics, sub_participant_id
from bot.fusion import fuse, fuse_face, fuse_voice, mark_stale
from bot.inference import Inference
from bot.settings import PipelineSettings, VoiceSettings
from bot.tracks import LatestSlot, MediaClock, ReceivedFrame, drain, media_time, read_video
from bot.types import (
    EmotionScores,
    FaceAnalysis,
    ParticipantState,
    VideoSample,
    VoiceEmotionStatus,
    VoiceMetrics,
)

log = logging.getLogger(__name__)

#: How many recent latency figures a session keeps for stats.
LATENCY_WINDOW = 240
#: Duration of one WebRTC audio frame (Opus decodes 20 ms frames); sizes the audio queue.
AUDIO_FRAME_SECS = 0.02
#: Voiced pieces (1-4 s each) that may wait for the speech-emotion model.
VOICE_QUEUE_PIECES = 4


@dataclass(frozen=True, slots=True)
class TalkHooks:
    """How a session reports speaking and reads the meeting's talk figures.

    Attributes:
        on_listening: Called on the event loop with ``(participant_id, ts)`` when the
            participant's audio starts being analysed.
        on_speaking: Called on the event loop with ``(participant_id, ts, is_speaking)``
            at every speaking change, ``ts`` back-dated to the onset or offset.
        figures: ``participant_id -> (talk_share, turns)`` from the meeting's tracker.
    """

    on_listening: Callable[[str, float], None]
    on_speaking: Callable[[str, float, bool], None]
    figures: Callable[[str], tuple[float | None, int]]


def _no_talk_figures(participant_id: str) -> tuple[float | None, int]:
    return None, 0


NO_TALK_HOOKS = TalkHooks(
    on_listening=lambda pid, ts: None,
    on_speaking=lambda pid, ts, speaking: None,
    figures=_no_talk_figures,
)


@dataclass(frozen=True, slots=True)
class SessionStats:
    """Pipeline figures of one participant (for benchmarks and health checks)."""

    frames_received: int
    frames_dropped: int
    frames_analyzed: int
    analysis_failures: int
    latencies_ms: tuple[float, ...]  # frame received -> state published
    inference_ms: tuple[float, ...]  # time inside the analyzer
    audio_frames: int = 0  # audio frames received
    audio_frames_dropped: int = 0  # dropped because the voice thread fell behind
    voice_emotion_runs: int = 0  # segments classified by the speech-emotion model


def _feed_all(
    pipeline: VoicePipeline, batch: list[tuple[av.AudioFrame | None, float]]
) -> list[VoiceEvent]:
    """Feed queued frames to the voice pipeline (runs on the participant's thread).

    ``None`` for a frame means no audio arrived up to ``ts`` (the track paused).
    """
    events: list[VoiceEvent] = []
    for frame, ts in batch:
        events.extend(pipeline.feed(frame, ts) if frame is not None else pipeline.advance(ts))
    return events


def analysis_size(frame: av.VideoFrame, max_side: int) -> tuple[int, int]:
    """``(width, height)`` a frame is analysed at: longer side <= ``max_side``, even sides."""
    w, h = frame.width, frame.height
    scale = min(1.0, max_side / max(w, h))
    # Even dimensions keep the yuv420p -> rgb24 conversion exact.
    return max(2, int(w * scale) // 2 * 2), max(2, int(h * scale) // 2 * 2)


def to_sample(
    participant_id: str,
    frame: av.VideoFrame,
    ts: float,
    max_side: int,
    face_rois: tuple[object, ...] | None = None,
) -> VideoSample:
    """Decode-side work for one frame: scale so the longer side <= max_side, to RGB."""
    tw, th = analysis_size(frame, max_side)
    image = frame.to_ndarray(format="rgb24", width=tw, height=th)
    return VideoSample(participant_id=participant_id, ts=ts, image=image, face_rois=face_rois)


class ParticipantSession:
    """Runs one participant's pipeline. Lives on the event loop thread.

    Args:
        participant_id: The participant.
        pool: Where face and voice-emotion inference runs.
        face_params: The face analyzer's parameters (its ``fps`` sets the rate).
        pipeline: Pipeline settings.
        on_state: Called on the event loop with every new state.
        clock: Wall clock (injectable for tests).
        face_enabled: Analyse video tracks (else they are drained).
        voice: Voice settings; ``None`` or ``enabled = false`` drains audio unanalysed.
        voice_emotion: The speech-emotion analyzer's parameters (segment lengths).
        talk: Hooks to the meeting's talk tracker.
    """

    def __init__(
        self,
        participant_id: str,
        pool: Inference,
        face_params: FaceEmotionParams,
        pipeline: PipelineSettings,
        on_state: Callable[[ParticipantState], None],
        clock: Callable[[], float] = time.time,
        face_enabled: bool = True,
        *,
        voice: VoiceSettings | None = None,
        voice_emotion: VoiceEmotionParams | None = None,
        talk: TalkHooks = NO_TALK_HOOKS,
    ) -> None:
        self.participant_id = participant_id
        self._pool = pool
        self._face_params = face_params
        self._pipeline = pipeline
        self._on_state = on_state
        self._clock = clock
        self._face_enabled = face_enabled
        self._voice_settings = voice if voice is not None and voice.enabled else None
        self._voice_emotion_params = voice_emotion or VoiceEmotionParams()
        self._talk = talk
        self._voice_pipeline: VoicePipeline | None = None
        self._voice: VoiceMetrics | None = None
        # Voiced pieces waiting for the speech-emotion model, oldest first; bounded, so a
        # model slower than speech skips the oldest pieces instead of falling behind.
        self._voice_chunks: deque[AudioChunk] = deque(maxlen=VOICE_QUEUE_PIECES)
        self._voice_chunk_ready = asyncio.Event()
        self._voice_emotion_task: asyncio.Task[None] | None = None
        self._feed: FaceFeed | None = None
        self._face_slots = FaceSlots()
        self._sub_states: dict[int, ParticipantState] = {}  # face slot >= 2 -> state
        self._voice_emotion: EmotionScores | None = None
        self._last_segment: VoicedSegment | None = None
        self._listening = 0  # audio tracks being analysed
        self._audio_frames = 0
        self._audio_dropped = 0
        self._voice_emotion_runs = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._threads = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"features.{participant_id}"
        )
        self._media_clock = MediaClock()
        self._state: ParticipantState | None = None
        self._frames_analyzed = 0
        self._failures = 0
        self._slots: list[LatestSlot[ReceivedFrame]] = []
        self._latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._inference_ms: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._closed = False
        self.ended = asyncio.Event()  # set when every track has ended

    @property
    def state(self) -> ParticipantState | None:
        """The latest state (immutable)."""
        return self._state

    def stats(self) -> SessionStats:
        """A copy of the pipeline figures."""
        return SessionStats(
            frames_received=sum(s.received for s in self._slots),
            frames_dropped=sum(s.dropped for s in self._slots),
            frames_analyzed=self._frames_analyzed,
            analysis_failures=self._failures,
            latencies_ms=tuple(self._latencies),
            inference_ms=tuple(self._inference_ms),
            audio_frames=self._audio_frames,
            audio_frames_dropped=self._audio_dropped,
            voice_emotion_runs=self._voice_emotion_runs,
        )

    @property
    def voice_pipeline(self) -> VoicePipeline | None:
        """The voice DSP of this participant once an audio track is analysed (for stats)."""
        return self._voice_pipeline

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=f"{name}.{self.participant_id}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "participant task failed",
                exc_info=task.exception(),
                extra={"task": task.get_name()},
            )
        if not self._tasks and not self._closed:
            self.ended.set()

    def add_track(self, track: MediaStreamTrack) -> None:
        """Start consuming a newly received track."""
        timeout = self._pipeline.frame_timeout_secs
        if track.kind == "video" and self._face_enabled:
            slot: LatestSlot[ReceivedFrame] = LatestSlot()
            self._slots.append(slot)
            analysis = self._spawn(self._analyse(slot), "video.analyse")
            self._spawn(self._read(track, slot, timeout, analysis), "video.read")
        elif track.kind == "audio" and self._voice_settings is not None:
            self._spawn(self._listen(track, self._voice_settings), "audio.listen")
        else:
            self._spawn(drain(track, timeout), f"{track.kind}.drain")

    async def _read(
        self,
        track: MediaStreamTrack,
        slot: LatestSlot[ReceivedFrame],
        frame_timeout_secs: float,
        analysis: asyncio.Task[None],
    ) -> None:
        await read_video(track, slot, frame_timeout_secs)
        # The track ended: nothing more will arrive for its analysis task.
        analysis.cancel()

    async def _analyse(self, slot: LatestSlot[ReceivedFrame]) -> None:
        params = self._face_params
        loop = asyncio.get_running_loop()
        next_due = 0.0
        # Faces followed from the previous frame (in images of rois_size), and when the
        # detector last ran; whether the last analysis saw any face.
        rois: tuple[object, ...] = ()
        rois_size: tuple[int, int] | None = None
        detected_at = -math.inf
        face_in_view = True
        while True:
            received = await slot.take()
            now = time.monotonic()
            if now < next_due:
                # Too early: wait, then take whatever is newest by then.
                await asyncio.sleep(next_due - now)
                if slot.has_item:  # a newer frame arrived meanwhile
                    received = await slot.take()
            now = time.monotonic()
            # While no face is in view, look less often; a face is found within 1/idle_fps.
            fps = params.fps if face_in_view else min(params.fps, params.idle_fps)
            next_due = now + 1.0 / fps
            # Follow known faces by their landmarks; search the frame now and then for
            # new ones (and whenever a followed face was lost or the resolution changed).
            size = analysis_size(received.frame, self._pipeline.analysis_max_side)
            recent = now - detected_at < params.detect_interval_secs
            hints = rois if rois and recent and size == rois_size else None
            if hints is None:
                detected_at = now
            ts = self._media_clock.to_meeting_time(media_time(received.frame), self._clock())
            try:
                sample = await loop.run_in_executor(
                    self._threads,
                    to_sample,
                    self.participant_id,
                    received.frame,
                    ts,
                    self._pipeline.analysis_max_side,
                    hints,
                )
                started = time.perf_counter()
                analysis: FaceAnalysis = await self._pool.run_batched(
                    "face_emotion", sample, self._pipeline.inference_timeout_secs
                )
                elapsed_ms = (time.perf_counter() - started) * 1000
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self._failures += 1
                log.warning(
                    "face analysis failed; state marked stale",
                    extra={"error": type(e).__name__},
                )
                self._publish(mark_stale(self._state, self.participant_id, ts))
                continue
            if elapsed_ms > self._pipeline.slow_inference_ms:
                log.warning(
                    "inference slower than realtime",
                    extra={"analyzer": "face_emotion", "delay_ms": round(elapsed_ms)},
                )
            self._frames_analyzed += 1
            self._inference_ms.append(analysis.inference_ms)
            face_in_view = bool(analysis.faces)
            if analysis.has_landmarks:
                found = tuple(f.next_roi for f in analysis.faces if f.next_roi is not None)
                # A followed face that is gone: search the next frame for faces again.
                rois = found if hints is None or len(found) == len(hints) else ()
                rois_size = size
                self._read_faces(analysis, ts)
            else:
                self._publish(fuse(self._state, analysis, now=ts))
            self._latencies.append((time.monotonic() - received.received_at) * 1000)

    def _read_faces(self, analysis: FaceAnalysis, ts: float) -> None:
        """Track the faces of one analysis and publish a state per face slot."""
        if self._feed is None:
            self._feed = FaceFeed(params=self._face_params.tracking)
        detected = [DetectedFace(f.box, f.measurement) for f in analysis.faces]
        readings = self._feed.update(ts, detected)
        shown: set[int] = set()
        for reading in readings.readings:
            slot = self._face_slots.assign(reading.track_id)
            shown.add(slot)
            pid = sub_participant_id(self.participant_id, slot)
            emotion = face_emotion(pid, reading)
            metrics = face_metrics(reading) if emotion is not None else None
            self._publish_slot(slot, fuse_face(self._slot_state(slot), pid, emotion, ts, metrics))
        for track_id in readings.ended:
            self._face_slots.release(track_id)
        # Slots whose face is gone (and the participant's own card without a face) say so.
        for slot in [1, *self._sub_states]:
            if slot not in shown:
                pid = sub_participant_id(self.participant_id, slot)
                self._publish_slot(slot, fuse_face(self._slot_state(slot), pid, None, ts))

    def _slot_state(self, slot: int) -> ParticipantState | None:
        return self._state if slot == 1 else self._sub_states.get(slot)

    def _publish_slot(self, slot: int, state: ParticipantState) -> None:
        if slot == 1:
            self._publish(state)
        else:
            self._sub_states[slot] = state
            self._on_state(state)

    # -- voice -------------------------------------------------------------------

    async def _listen(self, track: MediaStreamTrack, settings: VoiceSettings) -> None:
        """Drain one audio track into the voice pipeline until the track ends."""
        loop = asyncio.get_running_loop()
        if self._voice_pipeline is None:
            # Loading silero-vad takes 0.1-0.25 s: on the participant's thread, not the loop.
            self._voice_pipeline = await loop.run_in_executor(
                self._threads, self._new_voice_pipeline, settings
            )
            self._talk.on_listening(self.participant_id, self._clock())
            self._publish_voice(self._clock())
        pipeline = self._voice_pipeline
        if self._voice_emotion_task is None:
            self._voice_emotion_task = self._spawn(self._classify_voice(), "voice.emotion")
        self._listening += 1
        try:
            await self._run_voice(track, settings, pipeline)
        finally:
            self._listening -= 1
            if not self._listening and self._voice_emotion_task is not None:
                # No audio left to classify: let the session end when its tracks have.
                self._voice_emotion_task.cancel()
                self._voice_emotion_task = None

    async def _run_voice(
        self, track: MediaStreamTrack, settings: VoiceSettings, pipeline: VoicePipeline
    ) -> None:
        loop = asyncio.get_running_loop()
        # Bounded: if the voice thread falls behind, the oldest audio goes first.
        queue: deque[tuple[av.AudioFrame | None, float]] = deque(
            maxlen=max(1, int(settings.max_queued_secs / AUDIO_FRAME_SECS))
        )
        ready = asyncio.Event()
        clock = MediaClock()  # audio has its own RTP clock, apart from video's
        reader = self._spawn(self._read_audio(track, queue, ready, clock), "audio.read")
        next_state = 0.0
        while not (reader.done() and not queue):
            if not queue:
                ready.clear()
                waiter = asyncio.ensure_future(ready.wait())
                await asyncio.wait({waiter, reader}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                continue
            batch = list(queue)
            queue.clear()
            events = await loop.run_in_executor(self._threads, _feed_all, pipeline, batch)
            self._handle_voice_events(events)
            now = time.monotonic()
            if pipeline.is_speaking and now >= next_state:
                # Talk time grows while someone speaks: refresh it now and then.
                self._publish_voice(batch[-1][1])
                next_state = now + settings.state_interval_secs
        events = await loop.run_in_executor(self._threads, pipeline.close)
        self._handle_voice_events(events)
        self._publish_voice(self._clock())

    def _new_voice_pipeline(self, settings: VoiceSettings) -> VoicePipeline:
        params = self._voice_emotion_params
        return VoicePipeline(
            self.participant_id,
            ring_capacity_secs=settings.ring_capacity_secs,
            min_emotion_secs=params.min_secs,
            max_emotion_secs=params.max_secs,
            max_segment_secs=settings.max_segment_secs,
        )

    async def _read_audio(
        self,
        track: MediaStreamTrack,
        queue: deque[tuple[av.AudioFrame | None, float]],
        ready: asyncio.Event,
        clock: MediaClock,
    ) -> None:
        timeout = self._pipeline.frame_timeout_secs
        while True:
            try:
                frame = await asyncio.wait_for(track.recv(), timeout)
            except TimeoutError:
                # No audio for a while (packets stopped): that time is silence, so an
                # open speech run ends instead of reading "speaking" until audio resumes.
                queue.append((None, self._clock()))
                ready.set()
                continue
            except MediaStreamError:
                return
            if not isinstance(frame, av.AudioFrame):
                continue
            self._audio_frames += 1
            if len(queue) == queue.maxlen:
                self._audio_dropped += 1
            queue.append((frame, clock.to_meeting_time(media_time(frame), self._clock())))
            ready.set()

    def _handle_voice_events(self, events: list[VoiceEvent]) -> None:
        for event in events:
            if isinstance(event, SpeakingChanged):
                self._talk.on_speaking(self.participant_id, event.ts, event.is_speaking)
                self._publish_voice(event.detected_ts)
            elif isinstance(event, VoicedSegment):
                self._last_segment = event
                if event.emotion_chunks:
                    self._voice_chunks.extend(event.emotion_chunks)
                    self._voice_chunk_ready.set()
                self._publish_voice(event.detected_ts)

    def _voice_status(self) -> VoiceEmotionStatus:
        if "voice_emotion" not in self._pool.specs:
            return "disabled"
        if not self._pool.available("voice_emotion"):
            return "unavailable"
        return "ok" if self._voice_emotion is not None else "waiting"

    def _publish_voice(self, ts: float) -> None:
        pipeline = self._voice_pipeline
        if pipeline is None:
            return
        segment = self._last_segment
        share, turns = self._talk.figures(self.participant_id)
        status = self._voice_status()
        self._voice = VoiceMetrics(
            is_speaking=pipeline.is_speaking,
            talk_secs=pipeline.talk_secs,
            talk_share=share,
            turns=turns,
            arousal=segment.arousal if segment else None,
            pitch_hz=segment.prosody.f0_hz if segment else None,
            loudness_dbfs=segment.prosody.loudness_dbfs if segment else None,
            emotion=self._voice_emotion if status == "ok" else None,
            emotion_status=status,
        )
        self._publish(fuse_voice(self._state, self.participant_id, self._voice, ts))

    async def _classify_voice(self) -> None:
        """Run the speech-emotion model on the newest voiced piece, one at a time."""
        if not self._pool.available("voice_emotion"):
            return  # said once at start-up; the state says "unavailable"
        while True:
            if not self._voice_chunks:
                self._voice_chunk_ready.clear()
                await self._voice_chunk_ready.wait()
                continue
            chunk = self._voice_chunks.popleft()
            try:
                result: VoiceEmotionResult = await self._pool.run(
                    "voice_emotion", chunk, self._pipeline.inference_timeout_secs
                )
            except asyncio.CancelledError:
                raise
            except AnalyzerUnavailable:
                return
            except Exception as e:
                log.warning("voice emotion analysis failed", extra={"error": type(e).__name__})
                continue
            self._voice_emotion_runs += 1
            if not result.probs:
                continue  # the model's labels map to none of ours: nothing to show
            self._voice_emotion = EmotionScores(
                participant_id=self.participant_id,
                ts=result.ts,
                source="voice",
                probs=result.probs,
                confidence=max(result.probs.values()),
            )
            self._publish_voice(chunk.end_ts)

    def _publish(self, state: ParticipantState) -> None:
        self._state = state
        self._on_state(state)

    async def close(self) -> None:
        """Cancel and await every task of this participant, then free its thread."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._threads.shutdown(wait=False, cancel_futures=True)
