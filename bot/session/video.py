"""One video track of a participant: pacing, the newest frame, the detector schedule, faces.

A reader drains the track into a one-slot buffer (:func:`bot.tracks.read_video`);
the analysis loop takes a frame when the pacing says one is due, converts and
downscales it on the participant's own thread, sends it to the face analyzer in
the inference pool and turns the result into one :class:`~bot.types.FaceObservation`
per face slot (:class:`~bot.session.faces.FaceReader`), handed to ``emit``.

Detector schedule: between detector runs the faces of the previous frame are
followed from their landmarks (their ``next_roi``, about 3x cheaper); the
detector runs at least every ``detect_interval_secs``, and at once when a followed
face is lost or the analysis size changes. While no face is in view, frames are
analysed at ``idle_fps`` instead of ``fps``. A live feed's rates and detector interval
follow the server's load (:class:`~bot.load.LoadGovernor`): lowered evenly for every
feed while the server is busy.

A failed or timed-out analysis emits :class:`~bot.types.AnalysisFailed` (the state
goes stale) and the loop carries on with the next frame.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field

import av

from analyzers.face.emotion import FaceEmotionParams
from bot.inference import FaceClient
from bot.load import LoadGovernor
from bot.session.clock import Clock, Pacing
from bot.session.faces import FaceReader
from bot.settings import PipelineSettings
from bot.tracks import LatestSlot, MediaClock, ReceivedFrame, media_time
from bot.types import AnalysisFailed, Observation, VideoSample

log = logging.getLogger(__name__)

#: How many recent latency figures a session keeps for stats.
LATENCY_WINDOW = 240
#: "inference slower than realtime" is logged at most this often (seconds), for all feeds.
SLOW_LOG_INTERVAL_SECS = 10.0


class _SlowLog:
    """Logs slow face analyses at most every :data:`SLOW_LOG_INTERVAL_SECS`, with a count.

    When the server is busy every feed's analysis is slow at once: one line per analysis
    would flood the log (and cost the event loop) exactly when it can least afford it.
    """

    def __init__(self) -> None:
        self._logged_at = -math.inf
        self._count = 0
        self._worst_ms = 0.0

    def note(self, elapsed_ms: float, now: float) -> None:
        self._count += 1
        self._worst_ms = max(self._worst_ms, elapsed_ms)
        if now - self._logged_at < SLOW_LOG_INTERVAL_SECS:
            return
        log.warning(
            "inference slower than realtime",
            extra={
                "analyzer": "face_emotion",
                "delay_ms": round(self._worst_ms),
                "count": self._count,
            },
        )
        self._logged_at, self._count, self._worst_ms = now, 0, 0.0


_slow_log = _SlowLog()


@dataclass(slots=True)
class VideoCounters:
    """Figures of a participant's video analysis (shared by their video tracks)."""

    slots: list[LatestSlot[ReceivedFrame]] = field(default_factory=list)
    analysed: int = 0
    failures: int = 0
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    inference_ms: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))


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


class VideoAnalysis:
    """Analyses one video track of one participant. Lives on the event loop thread.

    Args:
        participant_id: Whose camera.
        faces: The face analyzer.
        params: The face analyzer's parameters (rates, detector schedule, tracking).
        pipeline: Pipeline settings (frame timeout, analysis size, slow threshold).
        emit: Receives every observation, on the event loop.
        clock: Wall and monotonic time.
        pacing: Which frames are analysed.
        threads: The participant's own thread, for frame conversion.
        counters: Where figures are counted.
        load: The server's face-rate governor (``None``: the configured rates hold).
    """

    def __init__(
        self,
        participant_id: str,
        faces: FaceClient,
        params: FaceEmotionParams,
        pipeline: PipelineSettings,
        emit: Callable[[Observation], None],
        clock: Clock,
        pacing: Pacing,
        threads: Executor,
        counters: VideoCounters,
        load: LoadGovernor | None = None,
    ) -> None:
        self.participant_id = participant_id
        self._faces = faces
        self._params = params
        self._pipeline = pipeline
        self._emit = emit
        self._clock = clock
        self._pacing = pacing
        self._threads = threads
        self._counters = counters
        self._load = load
        self._reader = FaceReader(participant_id, params.tracker, params.tracking)
        self._media_clock = MediaClock(5.0 if pacing.live else None, fastest=True)
        self.slot: LatestSlot[ReceivedFrame] = LatestSlot(block=not pacing.live)
        counters.slots.append(self.slot)
        self._idle = asyncio.Event()  # set while waiting for a frame

    async def finish(self, runner: asyncio.Task[None]) -> None:
        """Wait until ``runner`` (running :meth:`run`) has analysed every frame put in the slot."""
        while not runner.done():
            if self._idle.is_set():
                if not self.slot.has_item:
                    return
                await asyncio.sleep(0)  # the runner is about to take the frame
            else:
                await self._idle.wait()

    async def run(self) -> None:
        """Take and analyse frames from :attr:`slot` until cancelled."""
        if self._load is None:
            await self._run(None)
            return
        self._load.feed_started(self)
        try:
            await self._run(self._load)
        finally:
            self._load.feed_ended(self)

    async def _run(self, load: LoadGovernor | None) -> None:
        params = self._params
        loop = asyncio.get_running_loop()
        # Faces followed from the previous frame (in images of rois_size), and when the
        # detector last ran; whether the last analysis saw any face.
        rois: tuple[object, ...] = ()
        rois_size: tuple[int, int] | None = None
        detected_at = -math.inf
        face_in_view = True
        while True:
            self._idle.set()
            received = await self.slot.take()
            self._idle.clear()
            media_ts = media_time(received.frame)
            if not await self._pacing.wait_due(self._clock, media_ts or 0.0):
                continue
            if self._pacing.live and self.slot.has_item:
                received = await self.slot.take()  # a newer frame arrived meanwhile
                media_ts = media_time(received.frame)
            # The detector schedule runs on wall time when live, on media time otherwise
            # (a file then gets the same detector runs on any machine).
            now = self._clock.monotonic() if self._pacing.live else (media_ts or 0.0)
            # While no face is in view, look less often; a face is found within 1/idle_fps.
            fps = params.fps if face_in_view else min(params.fps, params.idle_fps)
            detect_interval = params.detect_interval_secs
            if load is not None:
                fps = load.face_fps(fps)
                detect_interval = load.detect_interval(detect_interval)
            self._pacing.analysed(self._clock, media_ts or 0.0, fps)
            size = analysis_size(received.frame, self._pipeline.analysis_max_side)
            recent = now - detected_at < detect_interval
            hints = rois if rois and recent and size == rois_size else None
            if hints is None:
                detected_at = now
            picked = self._clock.wall()
            arrived = picked - (self._clock.monotonic() - received.received_at)
            ts = self._media_clock.to_meeting_time(media_ts, arrived)
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
                started = self._clock.monotonic()
                analysis = await self._faces.analyse(sample)
                elapsed_ms = (self._clock.monotonic() - started) * 1000
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self._counters.failures += 1
                log.warning(
                    "face analysis failed; state marked stale",
                    extra={"error": type(e).__name__},
                )
                self._emit(AnalysisFailed(self.participant_id, ts, "face"))
                continue
            if elapsed_ms > self._pipeline.slow_inference_ms:
                _slow_log.note(elapsed_ms, self._clock.monotonic())
            self._counters.analysed += 1
            self._counters.inference_ms.append(analysis.inference_ms)
            face_in_view = bool(analysis.faces)
            if analysis.has_landmarks:
                found = tuple(f.next_roi for f in analysis.faces if f.next_roi is not None)
                # A followed face that is gone: search the next frame for faces again.
                rois = found if hints is None or len(found) == len(hints) else ()
                rois_size = size
            for observation in self._reader.read(analysis):
                self._emit(observation)
            if load is not None:
                load.face_read(self, ts, arrived, picked)
            self._counters.latencies_ms.append(
                (self._clock.monotonic() - received.received_at) * 1000
            )
