"""ParticipantSession: one participant's media pipeline.

For each video track: a reader task drains the track into a one-slot buffer,
and an analysis task takes the newest frame at most ``fps`` times a second,
converts and downscales it on the participant's own thread, sends it to the
inference pool, fuses the result into a new state and hands that to the meeting.
Audio tracks are drained (voice analysis plugs in here later).

Every task is kept and cancelled on ``close()``. Analysis failures are per
participant and never fatal: the state is marked stale and the loop goes on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import av
from aiortc.mediastreams import MediaStreamTrack

from analyzers.face.emotion import FaceEmotionParams
from bot.fusion import fuse, mark_stale
from bot.inference import InferencePool
from bot.settings import PipelineSettings
from bot.tracks import LatestSlot, MediaClock, ReceivedFrame, drain, media_time, read_video
from bot.types import FaceAnalysis, ParticipantState, VideoSample

log = logging.getLogger(__name__)

#: How many recent latency figures a session keeps for stats.
LATENCY_WINDOW = 240


@dataclass(frozen=True, slots=True)
class SessionStats:
    """Pipeline figures of one participant (for benchmarks and health checks)."""

    frames_received: int
    frames_dropped: int
    frames_analyzed: int
    analysis_failures: int
    latencies_ms: tuple[float, ...]  # frame received -> state published
    inference_ms: tuple[float, ...]  # time inside the analyzer


def to_sample(participant_id: str, frame: av.VideoFrame, ts: float, max_side: int) -> VideoSample:
    """Decode-side work for one frame: scale so the longer side <= max_side, to RGB."""
    w, h = frame.width, frame.height
    scale = min(1.0, max_side / max(w, h))
    # Even dimensions keep the yuv420p -> rgb24 conversion exact.
    tw, th = max(2, int(w * scale) // 2 * 2), max(2, int(h * scale) // 2 * 2)
    image = frame.to_ndarray(format="rgb24", width=tw, height=th)
    return VideoSample(participant_id=participant_id, ts=ts, image=image)


class ParticipantSession:
    """Runs one participant's pipeline. Lives on the event loop thread.

    Args:
        participant_id: The participant.
        pool: Where face inference runs.
        face_params: The face analyzer's parameters (its ``fps`` sets the rate).
        pipeline: Pipeline settings.
        on_state: Called on the event loop with every new state.
        clock: Wall clock (injectable for tests).
    """

    def __init__(
        self,
        participant_id: str,
        pool: InferencePool,
        face_params: FaceEmotionParams,
        pipeline: PipelineSettings,
        on_state: Callable[[ParticipantState], None],
        clock: Callable[[], float] = time.time,
        face_enabled: bool = True,
    ) -> None:
        self.participant_id = participant_id
        self._pool = pool
        self._face_params = face_params
        self._pipeline = pipeline
        self._on_state = on_state
        self._clock = clock
        self._face_enabled = face_enabled
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
        )

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
        interval = 1.0 / self._face_params.fps
        loop = asyncio.get_running_loop()
        next_due = 0.0
        while True:
            received = await slot.take()
            now = time.monotonic()
            if now < next_due:
                # Too early: wait, then take whatever is newest by then.
                await asyncio.sleep(next_due - now)
                if slot.has_item:  # a newer frame arrived meanwhile
                    received = await slot.take()
            next_due = time.monotonic() + interval
            ts = self._media_clock.to_meeting_time(media_time(received.frame), self._clock())
            try:
                sample = await loop.run_in_executor(
                    self._threads,
                    to_sample,
                    self.participant_id,
                    received.frame,
                    ts,
                    self._pipeline.analysis_max_side,
                )
                started = time.perf_counter()
                analysis: FaceAnalysis = await self._pool.run(
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
            self._publish(fuse(self._state, analysis, now=ts))
            self._latencies.append((time.monotonic() - received.received_at) * 1000)

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
