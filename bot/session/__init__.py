"""ParticipantSession: one participant's media in, observations out.

A session is handed the participant's tracks (by a media source) and runs, per
video track, a :class:`~bot.session.video.VideoAnalysis` (faces, one observation
per face slot) and, for the audio tracks, one :class:`~bot.session.voice.VoiceAnalysis`
(speaking, prosody, voice emotion). A track nothing analyses is drained. Every
observation goes to ``emit``; the meeting fuses them (:func:`bot.fusion.fuse`). The
session keeps no state of its own beyond its analyses and figures.

Every task is kept and cancelled on ``close()``; :attr:`ParticipantSession.ended`
is set when every track has ended. Analysis failures are per participant and
never fatal.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from aiortc.mediastreams import MediaStreamTrack

from analyzers.face.emotion import FaceEmotionParams
from analyzers.voice.emotion import VoiceEmotionParams
from analyzers.voice.pipeline import VoicePipeline
from bot.inference import FaceClient, Inference, VoiceEmotionClient
from bot.load import LoadGovernor
from bot.session.clock import Clock, Pacing, RealtimePacing, SystemClock
from bot.session.video import VideoAnalysis, VideoCounters
from bot.session.voice import VoiceAnalysis, VoiceCounters
from bot.settings import PipelineSettings, VoiceSettings
from bot.tracks import drain, read_video
from bot.types import AnalysisStarting, Observation

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SessionStats:
    """Pipeline figures of one participant (for benchmarks and health checks)."""

    frames_received: int
    frames_dropped: int
    frames_analyzed: int
    analysis_failures: int
    latencies_ms: tuple[float, ...]  # frame received -> observations emitted
    inference_ms: tuple[float, ...]  # time inside the analyzer
    audio_frames: int = 0  # audio frames received
    audio_frames_dropped: int = 0  # dropped because the voice thread fell behind
    voice_emotion_runs: int = 0  # pieces classified by the speech-emotion model


class ParticipantSession:
    """Runs one participant's pipeline. Lives on the event loop thread.

    Args:
        participant_id: The participant.
        pool: Where face and voice-emotion inference runs.
        face_params: The face analyzer's parameters (its ``fps`` sets the rate).
        pipeline: Pipeline settings.
        emit: Receives every observation, on the event loop.
        face_enabled: Analyse video tracks (else they are drained).
        voice: Voice settings; ``None`` or ``enabled = false`` drains audio unanalysed.
        voice_emotion: The speech-emotion analyzer's parameters (piece lengths).
        clock: Wall and monotonic time (injectable, so a file can run on its own time).
        pacing: Which video frames are analysed (a new pacing per video track).
        load: The server's face-rate governor; it caps live video feeds only.
    """

    def __init__(
        self,
        participant_id: str,
        pool: Inference,
        face_params: FaceEmotionParams,
        pipeline: PipelineSettings,
        emit: Callable[[Observation], None],
        face_enabled: bool = True,
        *,
        voice: VoiceSettings | None = None,
        voice_emotion: VoiceEmotionParams | None = None,
        clock: Clock | None = None,
        pacing: Callable[[], Pacing] = RealtimePacing,
        load: LoadGovernor | None = None,
    ) -> None:
        self.participant_id = participant_id
        self._face_params = face_params
        self._pipeline = pipeline
        self._emit = emit
        self._clock = clock or SystemClock()
        self._pacing = pacing
        self._load = load
        self._face_enabled = face_enabled
        self._faces = FaceClient(pool, pipeline.inference_timeout_secs)
        self._threads = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"features.{participant_id}"
        )
        self._video = VideoCounters()
        self._audio = VoiceCounters()
        self._voice: VoiceAnalysis | None = None
        if voice is not None and voice.enabled:
            self._voice = VoiceAnalysis(
                participant_id,
                VoiceEmotionClient(pool, pipeline.inference_timeout_secs),
                voice,
                voice_emotion or VoiceEmotionParams(),
                pipeline,
                emit,
                self._clock,
                self._threads,
                self._audio,
                live=pacing().live,
            )
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self.ended = asyncio.Event()  # set when every track has ended

    def stats(self) -> SessionStats:
        """A copy of the pipeline figures."""
        v = self._video
        return SessionStats(
            frames_received=sum(s.received for s in v.slots),
            frames_dropped=sum(s.dropped for s in v.slots),
            frames_analyzed=v.analysed,
            analysis_failures=v.failures,
            latencies_ms=tuple(v.latencies_ms),
            inference_ms=tuple(v.inference_ms),
            audio_frames=self._audio.frames,
            audio_frames_dropped=self._audio.dropped,
            voice_emotion_runs=self._audio.emotion_runs,
        )

    @property
    def voice_pipeline(self) -> VoicePipeline | None:
        """The voice DSP of this participant once an audio track is analysed (for stats)."""
        return None if self._voice is None else self._voice.pipeline

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
            self._spawn(self._watch_video(track), "video")
        elif track.kind == "audio" and self._voice is not None:
            self._spawn(self._voice.listen(track), "audio")
        else:
            self._spawn(drain(track, timeout), f"{track.kind}.drain")

    async def _watch_video(self, track: MediaStreamTrack) -> None:
        pacing = self._pacing()
        analysis = VideoAnalysis(
            self.participant_id,
            self._faces,
            self._face_params,
            self._pipeline,
            self._emit,
            self._clock,
            pacing,
            self._threads,
            self._video,
            # A recording runs on its own time, as fast as it can: nothing to share.
            self._load if pacing.live else None,
        )
        analyser = asyncio.create_task(
            self._analyse_when_loaded(analysis), name=f"video.analyse.{self.participant_id}"
        )
        # Said at once: the track keeps being read, so nothing else would end or tell.
        analyser.add_done_callback(self._analysis_done)
        try:
            await read_video(
                track, analysis.slot, self._pipeline.frame_timeout_secs, self._clock.monotonic
            )
            log.info("video track ended", extra={"participant": self.participant_id})
            if analysis.slot.block:
                # A source that waits for analysis: let its last frame be analysed first.
                await analysis.finish(analyser)
        finally:
            # The track ended: nothing more will arrive for its analysis.
            analyser.cancel()
            await asyncio.gather(analyser, return_exceptions=True)

    def _analysis_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "video analysis failed; the participant's face is no longer analysed",
                exc_info=task.exception(),
                extra={"task": task.get_name()},
            )

    async def _analyse_when_loaded(self, analysis: VideoAnalysis) -> None:
        """Run ``analysis`` once the face model is loaded (at once, unless the server is starting).

        Meanwhile the track is drained into the analysis's one-frame slot (newest frame
        wins; a file's reader waits instead), so the first frame analysed is a current one.
        """
        if self._faces.status == "starting":
            # Fusion then reads the missing face analyses as "starting", not as no video.
            self._emit(AnalysisStarting(self.participant_id, self._clock.wall()))
            await self._faces.wait_loaded()
        await analysis.run()

    async def close(self) -> None:
        """Cancel and await every task of this participant, then free its thread."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._threads.shutdown(wait=False, cancel_futures=True)
