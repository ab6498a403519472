"""One participant's voice DSP: audio frames in, speaking events and analysed segments out.

:class:`VoicePipeline` is the whole per-participant voice path short of the emotion
model. It runs on that participant's feature thread (``features.<pid>``), is fed
every audio frame of the track in order, and for each frame:

1. downmixes and resamples it to 16 kHz mono float32 (:class:`~analyzers.voice.audio.Resampler16k`,
   PyAV/libswresample; a new resampler whenever the input format, layout or rate changes);
2. appends the samples to a bounded :class:`~analyzers.voice.audio.AudioRing`
   (``ring_capacity_secs``, 30 s = 1.9 MB by default);
3. runs :class:`~analyzers.voice.vad.StreamingVad` (silero-vad) over them;
4. when a speech run has been confirmed or has ended, returns events
   (:class:`SpeakingChanged`, :class:`VoicedSegment`).

Timeline. Sample ``i`` after the first frame has meeting time ``t0 + i / 16000``,
where ``t0`` is the first frame's ``ts`` (libswresample's output is aligned with
its input, so no delay correction is needed). Every frame's ``ts`` is checked
against the end of the previous frame:

- within ``±2 ms``: continuous;
- later by up to ``max_fill_secs`` (lost packets, DTX): the gap is filled with
  zeros, so the VAD hears silence there and timestamps stay right (the
  resampler's ~1 ms filter tail then lands after the fill, not before it);
- later by more (a long mute, a re-anchored clock): the open speech run is ended
  at its last speech, the VAD is reset and the timeline jumps (a *resync*);
- earlier by up to ``max_fill_secs``: a duplicate or late frame, dropped;
- earlier by more (the clock went back): resync on a fresh ring.

When no frame comes at all for a while (the reader's ``recv()`` timed out), the
caller says so with :meth:`VoicePipeline.advance`, which treats the missing time
as such a gap, so an open speech run ends instead of hanging on.

All-zero frames (a muted track) need nothing special: they are silence, and the
VAD skips its model on runs of digital silence (:data:`~analyzers.voice.vad.DIGITAL_SILENCE_PEAK`).

VAD lag, honestly. The VAD decides late: speech is confirmed after 0.25 s of it
and ended after 0.30 s of silence, in 32 ms chunks. So :attr:`VoicePipeline.is_speaking`
turns on about 0.25-0.3 s after the onset and off about 0.3-0.35 s after the
offset. Events therefore carry two times: ``ts``/``start_ts``/``end_ts``, the
back-dated onset and offset on the meeting clock (padded by 30 ms, as
:class:`~analyzers.voice.vad.SpeechSegment` is), which is what talk statistics
should use; and ``detected_ts``, the end of the audio processed when the decision
was made (``detected_ts - ts`` is the lag). Anything computed at ``detected_ts``
is missing the newest 0.3 s of speech.

Analysis segments. Prosody, the speaker baseline, arousal and the emotion pieces
are computed per *analysis segment*: a whole speech run (a VAD segment), except
that a run still going on is cut every ``max_segment_secs`` (8 s) once
``max_segment_secs + min_emotion_secs`` of it are known, so a monologue gets
analysed while it lasts, the ring never has to hold a whole run, and the
remainder at the end is at least ``min_emotion_secs`` long. The speaking state
and talk time are not affected by the cuts.

Emotion pieces. An analysis segment of ``d`` seconds gives ``n = ceil(d / 4)``
contiguous pieces of equal length (``d / n``, so between 2 and 4 s when ``d > 4``)
when ``d >= 1`` s, and none when it is shorter: the emotion model (1-4 s, see
:mod:`analyzers.voice.emotion`) never sees silence or fragments. Splitting rather
than keeping only the last 4 s means every voiced second is classified once; a
caller short of inference capacity can submit only ``emotion_chunks[-1]``.

Nothing here imports asyncio; the caller moves events to the event loop.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeAlias

import av
import numpy as np

from analyzers.voice.audio import (
    RING_CAPACITY_SECS,
    SAMPLE_RATE,
    AudioChunk,
    AudioRing,
    Resampler16k,
)
from analyzers.voice.emotion import VOICE_MAX_SECS, VOICE_MIN_SECS
from analyzers.voice.prosody import ProsodyFeatures, SpeakerBaseline, extract_prosody
from analyzers.voice.vad import SpeechSegment, StreamingVad, VadModel

logger = logging.getLogger(__name__)

#: A speech run longer than this is cut into analysis segments of this length while it lasts.
MAX_SEGMENT_SECS = 8.0
#: Gaps in the frame timestamps up to this long are filled with silence; longer ones resync.
MAX_FILL_SECS = 5.0
# Timestamp differences below this are rounding, not lost or repeated audio.
_TS_TOLERANCE_SECS = 0.002
# VAD chunk size; the VAD is fed at most this many samples at a time so that no
# speaking-state change inside a long array is missed.
_VAD_PIECE = 512


@dataclass(frozen=True, slots=True)
class SpeakingChanged:
    """The participant started or stopped speaking.

    Attributes:
        participant_id: Whose voice.
        ts: Meeting-clock seconds of the onset (``is_speaking`` True) or offset,
            back-dated to where the speech really starts or ends (±30 ms padding).
        is_speaking: The new state.
        detected_ts: Meeting-clock seconds of the end of the audio processed when
            the VAD decided; ``detected_ts - ts`` is the VAD lag (about 0.3 s).
    """

    participant_id: str
    ts: float
    is_speaking: bool
    detected_ts: float


@dataclass(frozen=True, slots=True)
class VoicedSegment:
    """One analysed stretch of speech: its prosody, arousal and audio for the emotion model.

    Attributes:
        participant_id: Whose voice.
        start_ts: Meeting-clock seconds where the stretch starts.
        end_ts: Meeting-clock seconds where it ends.
        prosody: Prosody features of the stretch.
        z: z-scores of the features against the speaker's baseline before this
            stretch (``loudness``, ``pitch``, ``range``, ``rate``, ``alpha_ratio``,
            ``hammarberg``; absent until seen).
        arousal: the arousal model's ``tanh(sum(w * z) / 2)`` in [-1, 1]; None until the
            baseline holds :data:`~analyzers.voice.prosody.WARMUP_SEGMENTS` segments.
        emotion_chunks: 16 kHz float32 pieces of 1-4 s for the emotion model, in
            time order; empty when the stretch is shorter than 1 s.
        is_run_end: False when the stretch was cut from a speech run that goes on.
        detected_ts: Meeting-clock end of the audio processed when it was emitted.
    """

    participant_id: str
    start_ts: float
    end_ts: float
    prosody: ProsodyFeatures
    z: Mapping[str, float]
    arousal: float | None
    emotion_chunks: tuple[AudioChunk, ...]
    is_run_end: bool
    detected_ts: float

    @property
    def duration_secs(self) -> float:
        """Length of the stretch in seconds."""
        return self.end_ts - self.start_ts


#: What :meth:`VoicePipeline.feed` returns, in time order.
VoiceEvent: TypeAlias = SpeakingChanged | VoicedSegment


@dataclass(frozen=True, slots=True)
class VoicePipelineStats:
    """Counters and memory of one :class:`VoicePipeline`.

    Attributes:
        participant_id: Whose voice.
        frames: Frames (or arrays) fed.
        dropped_frames: Frames dropped as duplicates or late (timestamp behind the stream).
        filled_gaps: Gaps in the timestamps filled with silence.
        filled_secs: Seconds of silence filled in.
        resyncs: Timeline jumps (gaps over ``max_fill_secs``, clocks going back).
        resamplers: Resamplers created (one per input format, layout and rate run).
        audio_secs: Seconds of 16 kHz audio processed, fills included.
        speech_runs: Speech runs ended (VAD segments).
        analysed_segments: :class:`VoicedSegment` s emitted.
        emotion_chunks: Emotion pieces emitted.
        talk_secs: Seconds of speech so far (see :attr:`VoicePipeline.talk_secs`).
        vad_model_calls: VAD chunks scored by the model.
        vad_skipped_chunks: Digital-silence VAD chunks given probability 0 without the model.
        ring_capacity_secs: Capacity of the ring buffer.
        ring_stored_secs: Audio now held in the ring.
        ring_nbytes: Bytes of the ring's sample buffer (fixed at creation).
        stream_ts: Meeting-clock end of the audio processed; None before the first frame.
    """

    participant_id: str
    frames: int
    dropped_frames: int
    filled_gaps: int
    filled_secs: float
    resyncs: int
    resamplers: int
    audio_secs: float
    speech_runs: int
    analysed_segments: int
    emotion_chunks: int
    talk_secs: float
    vad_model_calls: int
    vad_skipped_chunks: int
    ring_capacity_secs: float
    ring_stored_secs: float
    ring_nbytes: int
    stream_ts: float | None


def emotion_pieces(
    chunk: AudioChunk,
    min_secs: float = VOICE_MIN_SECS,
    max_secs: float = VOICE_MAX_SECS,
) -> tuple[AudioChunk, ...]:
    """Split ``chunk`` into equal contiguous pieces of ``min_secs``..``max_secs``.

    ``n = ceil(samples / max_samples)`` pieces of (almost) equal length; none when
    the chunk is shorter than ``min_secs``. Lengths are counted in samples, so a
    piece is never a sample short of what the emotion model accepts.

    Raises:
        ValueError: If ``max_secs < 2 * min_secs`` (equal pieces could then be too short).
    """
    if max_secs < 2 * min_secs:
        raise ValueError("max_secs must be at least twice min_secs")
    samples = chunk.samples
    n_samples = len(samples)
    if n_samples < int(math.ceil(min_secs * chunk.sample_rate)):
        return ()
    max_n = int(math.floor(max_secs * chunk.sample_rate))
    n = -(-n_samples // max_n)
    pieces: list[AudioChunk] = []
    offset = 0
    for part in np.array_split(samples, n):
        ts = chunk.ts + offset / chunk.sample_rate
        pieces.append(AudioChunk(chunk.participant_id, ts, part, chunk.sample_rate))
        offset += len(part)
    return tuple(pieces)


def _frame_key(frame: av.AudioFrame) -> tuple[str, str, int]:
    return (frame.format.name, frame.layout.name, int(frame.sample_rate))


class VoicePipeline:
    """One participant's voice path: resample, ring, VAD, prosody, baseline, emotion pieces.

    Feed it every audio frame of the participant's track, in order, with
    :meth:`feed`; each call returns the events it produced. Runs on that
    participant's feature thread (``features.<pid>``); not thread-safe. Memory is
    bounded: the ring, the VAD's < 32 ms buffer and the resampler's filter; events
    are returned, never kept. See the module docstring for the timeline, the VAD
    lag and how segments are cut.

    Args:
        participant_id: Whose audio.
        vad: A :class:`StreamingVad` of this participant's own (tests share one);
            by default a fresh one with its own silero-vad model (0.1-0.25 s to load).
        vad_model: A silero-vad model for the default VAD (ignored with ``vad``).
        baseline: The speaker's baseline (a fresh one by default).
        ring_capacity_secs: Seconds of 16 kHz audio the ring keeps.
        min_emotion_secs: Shortest emotion piece (shorter stretches give none).
        max_emotion_secs: Longest emotion piece.
        max_segment_secs: Length at which a speech run still going on is cut.
        max_fill_secs: Longest timestamp gap filled with silence.

    Raises:
        ValueError: If the ring cannot hold a whole analysis segment plus the VAD lag,
            or the emotion lengths are inconsistent.
    """

    def __init__(
        self,
        participant_id: str,
        *,
        vad: StreamingVad | None = None,
        vad_model: VadModel | None = None,
        baseline: SpeakerBaseline | None = None,
        ring_capacity_secs: float = RING_CAPACITY_SECS,
        min_emotion_secs: float = VOICE_MIN_SECS,
        max_emotion_secs: float = VOICE_MAX_SECS,
        max_segment_secs: float = MAX_SEGMENT_SECS,
        max_fill_secs: float = MAX_FILL_SECS,
    ) -> None:
        if max_emotion_secs < 2 * min_emotion_secs or min_emotion_secs <= 0:
            raise ValueError("need 0 < 2 * min_emotion_secs <= max_emotion_secs")
        if max_segment_secs < max_emotion_secs:
            raise ValueError("max_segment_secs must be at least max_emotion_secs")
        # The longest analysis segment is max_segment + min_emotion seconds, cut
        # about a second after its end at worst (VAD lag plus one frame).
        if ring_capacity_secs < max_segment_secs + min_emotion_secs + 1.0:
            raise ValueError("ring_capacity_secs too small for max_segment_secs")
        self.participant_id = participant_id
        self.min_emotion_secs = min_emotion_secs
        self.max_emotion_secs = max_emotion_secs
        self.max_segment_secs = max_segment_secs
        self.max_fill_secs = max_fill_secs
        self.vad = vad if vad is not None else StreamingVad(model=vad_model)
        self.baseline = baseline if baseline is not None else SpeakerBaseline()
        self._capacity_secs = ring_capacity_secs
        self.ring = AudioRing(participant_id, ring_capacity_secs)
        self._resampler: Resampler16k | None = None
        self._resampler_key: tuple[str, str, int] | None = None
        self._t0: float | None = None  # meeting time of output sample 0
        self._n_out = 0  # output samples on the timeline (fills included)
        self._in_end_ts = 0.0  # meeting time just after the last input frame
        self._speaking = False  # what the last SpeakingChanged said
        self._run_start: float | None = None  # padded start of the open run
        self._analysed_until: float | None = None  # end of the last cut in the open run
        self._talk_closed = 0.0
        self._events: list[VoiceEvent] = []
        self._frames = 0
        self._dropped = 0
        self._filled_gaps = 0
        self._filled_samples = 0
        self._resyncs = 0
        self._resamplers = 0
        self._audio_samples = 0
        self._runs = 0
        self._segments = 0
        self._emotion_chunks = 0

    # ----------------------------------------------------------------- state

    @property
    def is_speaking(self) -> bool:
        """Whether the participant is speaking, as of the audio processed (lags ~0.3 s)."""
        return self._speaking

    @property
    def talk_secs(self) -> float:
        """Seconds of speech so far: ended runs, plus the open run up to its newest speech."""
        open_secs = 0.0
        if self._speaking and self._run_start is not None:
            end = self.vad.speech_end_ts
            if end is not None:
                open_secs = max(0.0, end - self._run_start)
        return self._talk_closed + open_secs

    @property
    def stream_ts(self) -> float | None:
        """Meeting-clock end of the audio processed; None before the first frame."""
        return None if self._t0 is None else self._ts_at(self._n_out)

    def stats(self) -> VoicePipelineStats:
        """Counters, talk time and ring memory."""
        return VoicePipelineStats(
            participant_id=self.participant_id,
            frames=self._frames,
            dropped_frames=self._dropped,
            filled_gaps=self._filled_gaps,
            filled_secs=self._filled_samples / SAMPLE_RATE,
            resyncs=self._resyncs,
            resamplers=self._resamplers,
            audio_secs=self._audio_samples / SAMPLE_RATE,
            speech_runs=self._runs,
            analysed_segments=self._segments,
            emotion_chunks=self._emotion_chunks,
            talk_secs=self.talk_secs,
            vad_model_calls=self.vad.model_calls,
            vad_skipped_chunks=self.vad.skipped_silent_chunks,
            ring_capacity_secs=self.ring.capacity / SAMPLE_RATE,
            ring_stored_secs=len(self.ring) / SAMPLE_RATE,
            ring_nbytes=self.ring.nbytes,
            stream_ts=self.stream_ts,
        )

    # ----------------------------------------------------------------- input

    def feed(self, frame: av.AudioFrame, ts: float | None = None) -> list[VoiceEvent]:
        """Process one audio frame of any sample format, layout and rate.

        Args:
            frame: The frame as aiortc delivers it (typically s16 stereo 48 kHz, 20 ms).
            ts: Meeting-clock seconds of its first sample; by default
                ``frame.pts * frame.time_base``, and without a pts the frame is
                taken to follow the previous one.

        Returns:
            The events produced, oldest first.
        """
        self._frames += 1
        if frame.samples == 0:
            return []
        if ts is None and frame.pts is not None:
            time_base = frame.time_base
            if time_base is not None:
                ts = frame.pts * time_base.numerator / time_base.denominator
        if not self._align(ts):
            return self._take_events()
        key = _frame_key(frame)
        if self._resampler is None or key != self._resampler_key:
            self._flush_resampler()
            self._resampler = Resampler16k()
            self._resampler_key = key
            self._resamplers += 1
        self._push(self._resampler.resample(frame))
        self._in_end_ts += frame.samples / frame.sample_rate
        return self._take_events()

    def feed_samples(self, samples: np.ndarray, ts: float | None = None) -> list[VoiceEvent]:
        """Process 16 kHz mono samples (float in [-1, 1]) instead of a frame.

        Args:
            samples: The audio, any length.
            ts: Meeting-clock seconds of the first sample; None continues the stream.

        Returns:
            The events produced, oldest first.
        """
        self._frames += 1
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if len(samples) == 0:
            return []
        if not self._align(ts):
            return self._take_events()
        self._flush_resampler()
        self._push(samples)
        self._in_end_ts += len(samples) / SAMPLE_RATE
        return self._take_events()

    def advance(self, ts: float) -> list[VoiceEvent]:
        """No audio came up to meeting time ``ts`` (``recv()`` timed out, packets stopped).

        The missing time counts as silence, as for a gap between frames (filled up
        to ``max_fill_secs``, a resync beyond), so an open speech run ends instead
        of staying on until the next frame. A frame arriving later with an
        earlier ``ts`` is then dropped as late; call this only after a real wait.

        Returns:
            The events produced, oldest first.
        """
        if self._t0 is not None and ts > self._in_end_ts + _TS_TOLERANCE_SECS:
            self._flush_resampler()
            self._align(ts)
        return self._take_events()

    def close(self) -> list[VoiceEvent]:
        """End of the track: drain the resampler and end an open speech run.

        The pipeline may be fed again afterwards; the timeline goes on.

        Returns:
            The events produced, oldest first.
        """
        self._flush_resampler()
        self._end_run()
        return self._take_events()

    # ------------------------------------------------------------ internals

    def _ts_at(self, n: int) -> float:
        assert self._t0 is not None
        return self._t0 + n / SAMPLE_RATE

    def _take_events(self) -> list[VoiceEvent]:
        events, self._events = self._events, []
        return events

    def _align(self, ts: float | None) -> bool:
        """Reconcile ``ts`` with the timeline; False when the input is to be dropped."""
        if self._t0 is None:
            start = 0.0 if ts is None else ts
            self._t0 = start
            self._in_end_ts = start
            return True
        if ts is None:
            return True
        drift = ts - self._in_end_ts
        if abs(drift) <= _TS_TOLERANCE_SECS:
            return True
        if 0 < drift <= self.max_fill_secs:
            gap = int(round((ts - self._t0) * SAMPLE_RATE)) - int(
                round((self._in_end_ts - self._t0) * SAMPLE_RATE)
            )
            if gap > 0:
                self._filled_gaps += 1
                self._filled_samples += gap
                logger.debug("audio gap filled with silence", extra={"gap_samples": gap})
                self._push(np.zeros(gap, dtype=np.float32))
            self._in_end_ts = ts
            return True
        if -self.max_fill_secs <= drift < 0:
            self._dropped += 1
            logger.debug("late audio frame dropped", extra={"behind_secs": -drift})
            return False
        self._resync(ts, forward=drift > 0)
        return True

    def _resync(self, ts: float, forward: bool) -> None:
        self._resyncs += 1
        logger.info("audio timeline resync", extra={"forward": forward})
        self._flush_resampler()
        self._end_run()
        self.vad.reset()
        if forward:
            assert self._t0 is not None
            self._n_out = int(round((ts - self._t0) * SAMPLE_RATE))
        else:
            self.ring = AudioRing(self.participant_id, self._capacity_secs)
            self._t0 = ts
            self._n_out = 0
        self._in_end_ts = ts

    def _flush_resampler(self) -> None:
        if self._resampler is not None:
            tail = self._resampler.flush()
            self._resampler = None
            self._resampler_key = None
            if len(tail):
                self._push(tail)

    def _push(self, samples: np.ndarray) -> None:
        """Append samples at the end of the timeline and run the VAD over them."""
        n = len(samples)
        if n == 0:
            return
        ts = self._ts_at(self._n_out)
        self.ring.append(samples, ts)
        for i in range(0, n, _VAD_PIECE):
            piece = samples[i : i + _VAD_PIECE]
            ended = self.vad.process(piece, self._ts_at(self._n_out + i))
            self._after_vad(ended, self._ts_at(self._n_out + i + len(piece)))
        self._n_out += n
        self._audio_samples += n

    def _after_vad(self, ended: list[SpeechSegment], now: float) -> None:
        for segment in ended:
            self._run_ended(segment, now)
        if self._speaking and not self.vad.is_speaking and self.vad.speech_start_ts is None:
            # the VAD dropped the run without a segment (it cannot, but stay consistent)
            self._stop(now, now)
        if self.vad.is_speaking and not self._speaking:
            start = self.vad.speech_start_ts
            self._run_start = start if start is not None else now
            self._analysed_until = self._run_start
            self._speaking = True
            self._events.append(SpeakingChanged(self.participant_id, self._run_start, True, now))
        if self._speaking:
            self._maybe_cut(now)

    def _maybe_cut(self, now: float) -> None:
        speech_end = self.vad.speech_end_ts
        if speech_end is None or self._analysed_until is None:
            return
        if speech_end - self._analysed_until >= self.max_segment_secs + self.min_emotion_secs:
            start = self._analysed_until
            end = start + self.max_segment_secs
            self._analysed_until = end
            self._analyse(start, end, is_run_end=False, now=now)

    def _run_ended(self, segment: SpeechSegment, now: float) -> None:
        if not self._speaking:
            self._run_start = segment.start_ts
            self._analysed_until = segment.start_ts
            self._events.append(SpeakingChanged(self.participant_id, segment.start_ts, True, now))
        start = self._analysed_until if self._analysed_until is not None else segment.start_ts
        self._talk_closed += segment.duration_secs
        self._runs += 1
        self._stop(segment.end_ts, now)
        self._analyse(start, segment.end_ts, is_run_end=True, now=now)

    def _stop(self, ts: float, now: float) -> None:
        self._speaking = False
        self._run_start = None
        self._analysed_until = None
        self._events.append(SpeakingChanged(self.participant_id, ts, False, now))

    def _end_run(self) -> None:
        if self._t0 is None:
            return
        now = self._ts_at(self._n_out)
        segment = self.vad.flush()
        self._after_vad([segment] if segment is not None else [], now)
        if self._speaking:
            self._stop(now, now)

    def _analyse(self, start: float, end: float, is_run_end: bool, now: float) -> None:
        chunk = self.ring.window(start, end)
        if len(chunk.samples) == 0:
            logger.warning("voiced segment no longer in the ring", extra={"secs": end - start})
            return
        estimate = self.baseline.update(extract_prosody(chunk.samples))
        pieces = emotion_pieces(chunk, self.min_emotion_secs, self.max_emotion_secs)
        self._segments += 1
        self._emotion_chunks += len(pieces)
        self._events.append(
            VoicedSegment(
                participant_id=self.participant_id,
                start_ts=start,
                end_ts=end,
                prosody=estimate.features,
                z=estimate.z,
                arousal=estimate.arousal,
                emotion_chunks=pieces,
                is_run_end=is_run_end,
                detected_ts=now,
            )
        )
