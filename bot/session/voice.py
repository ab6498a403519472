"""A participant's voice: audio frames to speaking changes, prosody and voice emotion.

A reader drains each audio track into a bounded queue (audio is never "newest
wins": the VAD needs it all; if the voice thread falls behind, the oldest audio
goes first and is counted). A feeder hands the queued frames in batches to the
participant's :class:`~analyzers.voice.pipeline.VoicePipeline` on the participant's
own thread (resample, ring, VAD, prosody, arousal) and turns its events into
observations: :class:`~bot.types.SpeakingObservation` for the meeting's talk
tracker and :class:`~bot.types.VoiceObservation` for fusion. Voiced pieces of
1-4 s go, in order, to the speech-emotion model when it is available (at most
:data:`VOICE_QUEUE_PIECES` wait; a model slower than speech skips the oldest). While
the model still loads (the server has just started), the voice readings go on, the
pieces wait the same way and the state says ``starting``.

A source that is not live (a recorded file) can wait, so nothing is dropped: the
reader waits while :data:`FILE_QUEUE_FRAMES` frames are queued, the feeder waits while
the speech-emotion model has :data:`VOICE_QUEUE_PIECES` pieces to do, every piece is
classified before the track counts as ended, and times are the file's own.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import av
from aiortc.mediastreams import MediaStreamTrack

from analyzers.base import AnalyzerUnavailable
from analyzers.voice.audio import AudioChunk
from analyzers.voice.emotion import VoiceEmotionParams
from analyzers.voice.pipeline import SpeakingChanged, VoicedSegment, VoiceEvent, VoicePipeline
from bot.inference import VoiceEmotionClient
from bot.session.clock import Clock
from bot.settings import PipelineSettings, VoiceSettings
from bot.tracks import MediaClock, media_time, receive
from bot.types import (
    EmotionScores,
    ListeningObservation,
    Observation,
    SpeakingObservation,
    VoiceEmotionStatus,
    VoiceMetrics,
    VoiceObservation,
)

log = logging.getLogger(__name__)

#: Duration of one WebRTC audio frame (Opus decodes 20 ms frames); sizes the audio queue.
AUDIO_FRAME_SECS = 0.02
#: Voiced pieces (1-4 s each) that may wait for the speech-emotion model.
VOICE_QUEUE_PIECES = 4
#: Audio frames a source that is not live may queue before its reader waits.
FILE_QUEUE_FRAMES = 25


@dataclass(slots=True)
class VoiceCounters:
    """Figures of a participant's audio analysis."""

    frames: int = 0
    dropped: int = 0
    emotion_runs: int = 0


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


class VoiceAnalysis:
    """Analyses the audio tracks of one participant. Lives on the event loop thread.

    Args:
        participant_id: Whose microphone.
        emotion: The speech-emotion analyzer.
        settings: Voice settings.
        emotion_params: The speech-emotion analyzer's parameters (piece lengths).
        pipeline: Pipeline settings (frame timeout).
        emit: Receives every observation, on the event loop.
        clock: Wall time.
        threads: The participant's own thread, for the DSP.
        counters: Where figures are counted.
        live: Whether audio arrives live (else the source waits and nothing is dropped).
    """

    def __init__(
        self,
        participant_id: str,
        emotion: VoiceEmotionClient,
        settings: VoiceSettings,
        emotion_params: VoiceEmotionParams,
        pipeline: PipelineSettings,
        emit: Callable[[Observation], None],
        clock: Clock,
        threads: Executor,
        counters: VoiceCounters,
        *,
        live: bool = True,
    ) -> None:
        self.participant_id = participant_id
        self._emotion = emotion
        self._settings = settings
        self._emotion_params = emotion_params
        self._pipeline_settings = pipeline
        self._emit = emit
        self._clock = clock
        self._threads = threads
        self._counters = counters
        self._live = live
        self.pipeline: VoicePipeline | None = None
        self._started = asyncio.Lock()
        self._segment: VoicedSegment | None = None
        self._scores: EmotionScores | None = None
        # Voiced pieces waiting for the speech-emotion model, oldest first; bounded when
        # live, so a model slower than speech skips the oldest pieces instead of falling
        # behind (a file's feeder waits instead, see _classifier_room).
        self._pieces: deque[AudioChunk] = deque(maxlen=VOICE_QUEUE_PIECES if live else None)
        self._piece_ready = asyncio.Event()
        self._piece_done = asyncio.Event()  # set whenever the model finished a piece
        self._classifying = False
        self._listening = 0  # audio tracks being analysed
        self._classifier: asyncio.Task[None] | None = None

    async def listen(self, track: MediaStreamTrack) -> None:
        """Analyse one audio track until it ends (several tracks share one pipeline)."""
        loop = asyncio.get_running_loop()
        async with self._started:
            if self.pipeline is None:
                # Loading silero-vad takes 0.1-0.25 s: on the participant's thread.
                self.pipeline = await loop.run_in_executor(self._threads, self._new_pipeline)
                now = self._clock.wall()
                self._emit(ListeningObservation(self.participant_id, now))
                self._publish(now)
        pipeline = self.pipeline
        # Bounded: if the voice thread falls behind, the oldest audio goes first.
        queue: deque[tuple[av.AudioFrame | None, float]] = deque(
            maxlen=max(1, int(self._settings.max_queued_secs / AUDIO_FRAME_SECS))
        )
        ready = asyncio.Event()
        taken = asyncio.Event()  # set when the feeder empties the queue
        # Audio has its own RTP clock, apart from video's; a file keeps its own timeline.
        media_clock = MediaClock(5.0 if self._live else None)

        def on_frame(frame: av.VideoFrame | av.AudioFrame) -> None:
            if not isinstance(frame, av.AudioFrame):
                return
            self._counters.frames += 1
            if len(queue) == queue.maxlen:
                self._counters.dropped += 1
            ts = media_clock.to_meeting_time(media_time(frame), self._clock.wall())
            queue.append((frame, ts))
            ready.set()

        async def on_file_frame(frame: av.VideoFrame | av.AudioFrame) -> None:
            while len(queue) >= FILE_QUEUE_FRAMES:
                taken.clear()
                await taken.wait()
            on_frame(frame)

        def on_timeout() -> None:
            # No audio for a while (packets stopped): that time is silence, so an open
            # speech run ends instead of reading "speaking" until audio resumes.
            queue.append((None, self._clock.wall()))
            ready.set()

        timeout = self._pipeline_settings.frame_timeout_secs
        # A file's frames wait for the feeder; a pause in them is the analysis, not silence.
        reading = (
            receive(track, on_frame, timeout, on_timeout)
            if self._live
            else receive(track, on_file_frame, timeout)
        )
        reader = asyncio.create_task(reading, name=f"audio.read.{self.participant_id}")
        if self._classifier is None:
            self._classifier = asyncio.create_task(
                self._classify(), name=f"voice.emotion.{self.participant_id}"
            )
        self._listening += 1
        closed = False
        try:
            await self._feed(pipeline, queue, ready, taken, reader)
            if not self._live and self._listening == 1:
                # The last track of a file: its last segment and every piece are analysed.
                self._handle(await loop.run_in_executor(self._threads, pipeline.close))
                closed = True
                await self._classifier_room(0)
        finally:
            self._listening -= 1
            reader.cancel()
            tasks: list[asyncio.Task[Any]] = [reader]
            if not self._listening and self._classifier is not None:
                # No audio left to classify.
                tasks.append(self._classifier)
                self._classifier.cancel()
                self._classifier = None
            await asyncio.gather(*tasks, return_exceptions=True)
        if not closed:
            self._handle(await loop.run_in_executor(self._threads, pipeline.close))
        self._publish(self._clock.wall())

    async def _feed(
        self,
        pipeline: VoicePipeline,
        queue: deque[tuple[av.AudioFrame | None, float]],
        ready: asyncio.Event,
        taken: asyncio.Event,
        reader: asyncio.Task[int],
    ) -> None:
        loop = asyncio.get_running_loop()
        next_state = -math.inf
        while not (reader.done() and not queue):
            if not queue:
                ready.clear()
                waiter = asyncio.ensure_future(ready.wait())
                await asyncio.wait({waiter, reader}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                continue
            if not self._live:
                await self._classifier_room(VOICE_QUEUE_PIECES)
            batch = list(queue)
            queue.clear()
            taken.set()
            events = await loop.run_in_executor(self._threads, _feed_all, pipeline, batch)
            self._handle(events)
            # Live: wall time; a file: its own time, so states come as often per media second.
            now = self._clock.monotonic() if self._live else batch[-1][1]
            if pipeline.is_speaking and now >= next_state:
                # Talk time grows while someone speaks: refresh it now and then.
                self._publish(batch[-1][1])
                next_state = now + self._settings.state_interval_secs

    async def _classifier_room(self, pieces: int) -> None:
        """Wait until at most ``pieces`` voiced pieces wait for (or are in) the model."""
        while (
            self._classifier is not None
            and not self._classifier.done()
            and len(self._pieces) + self._classifying > pieces
        ):
            self._piece_done.clear()
            done = asyncio.ensure_future(self._piece_done.wait())
            await asyncio.wait({done, self._classifier}, return_when=asyncio.FIRST_COMPLETED)
            done.cancel()

    def _new_pipeline(self) -> VoicePipeline:
        params = self._emotion_params
        return VoicePipeline(
            self.participant_id,
            ring_capacity_secs=self._settings.ring_capacity_secs,
            min_emotion_secs=params.min_secs,
            max_emotion_secs=params.max_secs,
            max_segment_secs=self._settings.max_segment_secs,
        )

    def _handle(self, events: list[VoiceEvent]) -> None:
        for event in events:
            if isinstance(event, SpeakingChanged):
                self._emit(
                    SpeakingObservation(
                        self.participant_id, event.ts, event.is_speaking, event.detected_ts
                    )
                )
                self._publish(event.detected_ts)
            elif isinstance(event, VoicedSegment):
                self._segment = event
                if event.emotion_chunks and self._emotion.status in ("ok", "starting"):
                    self._pieces.extend(event.emotion_chunks)
                    self._piece_ready.set()
                self._publish(event.detected_ts)

    def _status(self) -> VoiceEmotionStatus:
        status = self._emotion.status
        if status != "ok":
            return status
        return "ok" if self._scores is not None else "waiting"

    def metrics(self) -> VoiceMetrics | None:
        """The voice readings now (``None`` before the audio is analysed)."""
        pipeline = self.pipeline
        if pipeline is None:
            return None
        segment = self._segment
        status = self._status()
        return VoiceMetrics(
            is_speaking=pipeline.is_speaking,
            talk_secs=pipeline.talk_secs,
            arousal=segment.arousal if segment else None,
            pitch_hz=segment.prosody.f0_hz if segment else None,
            loudness_dbfs=segment.prosody.loudness_dbfs if segment else None,
            emotion=self._scores if status == "ok" else None,
            emotion_status=status,
            segment_end_ts=segment.end_ts if segment else None,
            prosody_z=dict(segment.z) if segment and segment.arousal is not None else {},
            pause_ratio=segment.prosody.pause_ratio if segment else None,
        )

    def _publish(self, ts: float) -> None:
        voice = self.metrics()
        if voice is not None:
            self._emit(VoiceObservation(self.participant_id, ts, voice))

    async def _classify(self) -> None:
        """Run the speech-emotion model on the queued voiced pieces, one at a time."""
        if self._emotion.status == "starting":
            status = await self._emotion.wait_loaded()
            self._publish(self._clock.wall())  # the state no longer reads "starting"
        else:
            status = self._emotion.status
        if status != "ok":
            self._pieces.clear()
            return  # said once when loaded; the state says "unavailable" or "disabled"
        while True:
            if not self._pieces:
                self._piece_ready.clear()
                await self._piece_ready.wait()
                continue
            piece = self._pieces.popleft()
            self._classifying = True
            try:
                result = await self._emotion.classify(piece)
            except asyncio.CancelledError:
                raise
            except AnalyzerUnavailable:
                return
            except Exception as e:
                log.warning("voice emotion analysis failed", extra={"error": type(e).__name__})
                continue
            finally:
                self._classifying = False
                self._piece_done.set()
            self._counters.emotion_runs += 1
            end_ts = piece.ts + len(piece.samples) / piece.sample_rate
            scores = EmotionScores.of(self.participant_id, end_ts, "voice", result.probs)
            if scores is None:
                continue  # the model's labels map to none of ours: nothing to show
            self._scores = scores
            self._publish(end_ts)
