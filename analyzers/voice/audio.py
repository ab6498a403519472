"""Audio plumbing for the voice path: 16 kHz mono chunks, a resampler, a ring buffer.

aiortc hands us ``av.AudioFrame`` objects in s16, 48 kHz, stereo interleaved
(``to_ndarray()`` has shape ``(1, 2 * n)``). Every voice analyzer works on float32
mono 16 kHz samples in [-1, 1], so frames go through :class:`Resampler16k` once
and land in a per-participant :class:`AudioRing`, from which fixed windows are
cut on a schedule (never "clear the buffer and hope it fills", see SEEDS.md 1.5).

Nothing here imports asyncio or torch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import av
import numpy as np

logger = logging.getLogger(__name__)

#: The one sample rate of the voice path (silero-vad, wav2vec2 and prosody all expect it).
SAMPLE_RATE = 16_000
#: Default ring capacity: enough for the emotion window plus a segment of context.
RING_CAPACITY_SECS = 30.0
# Timestamp jumps smaller than this are rounding in the sender's pts, not lost audio.
_GAP_TOLERANCE_SECS = 0.002
_S16_SCALE = 32768.0


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """A stretch of one participant's audio.

    Attributes:
        participant_id: Whose microphone the audio came from.
        ts: Meeting-clock seconds of the first sample.
        samples: float32 mono samples in [-1, 1].
        sample_rate: Samples per second (always 16 kHz on the voice path).
    """

    participant_id: str
    ts: float
    samples: np.ndarray
    sample_rate: int = SAMPLE_RATE

    @property
    def duration_secs(self) -> float:
        """Length of the chunk in seconds."""
        return len(self.samples) / self.sample_rate

    @property
    def end_ts(self) -> float:
        """Meeting-clock seconds just after the last sample."""
        return self.ts + self.duration_secs


def s16_to_float(samples: np.ndarray) -> np.ndarray:
    """Convert int16 samples to float32 in [-1, 1)."""
    return (samples.astype(np.float32) / _S16_SCALE).reshape(-1)


class Resampler16k:
    """Downmixes and resamples ``av.AudioFrame`` s to float32 mono 16 kHz.

    Wraps ``av.AudioResampler(format="s16", layout="mono", rate=16000)`` (libswresample),
    which keeps filter state between frames, so use one instance per audio track and
    feed it that track's frames in order. Runs on the thread that reads the track;
    not thread-safe.
    """

    def __init__(self) -> None:
        """Create the underlying libswresample context."""
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)

    def resample(self, frame: av.AudioFrame) -> np.ndarray:
        """Resample one frame.

        The resampler delays a few samples (filter latency), so the output of one
        frame is not exactly a third of its input; over a stream the counts agree.

        Returns:
            float32 mono 16 kHz samples, possibly empty.
        """
        return self._collect(self._resampler.resample(frame))

    def flush(self) -> np.ndarray:
        """Drain the samples still held in the resampler's filter (end of stream)."""
        return self._collect(self._resampler.resample(None))

    @staticmethod
    def _collect(frames: list[av.AudioFrame]) -> np.ndarray:
        if not frames:
            return np.zeros(0, dtype=np.float32)
        # One packed s16 mono plane per frame; reading the buffer directly skips
        # to_ndarray's per-plane stacking (a measurable share of the per-frame cost).
        parts = [np.frombuffer(memoryview(f.planes[0]), np.int16, f.samples) for f in frames]
        return s16_to_float(parts[0] if len(parts) == 1 else np.concatenate(parts))


class AudioRing:
    """A bounded ring of one participant's 16 kHz samples on the meeting clock.

    Keeps the newest ``capacity_secs`` of audio. Every stored sample has an absolute
    index since the first append, and sample ``i`` has timestamp ``t0 + i / 16000``,
    where ``t0`` is the ``ts`` of the first append. A later ``append`` whose ``ts``
    lies beyond the current end (lost packets, a muted track) is preceded by zeros
    so that timestamps stay right; one that overlaps the end has its overlapping
    head dropped. One writer (the participant's audio reader); reads copy, so a
    feature thread may call :meth:`window` while the reader appends only if the
    caller serialises the two (e.g. both on the participant's feature executor).
    """

    def __init__(
        self,
        participant_id: str,
        capacity_secs: float = RING_CAPACITY_SECS,
        sample_rate: int = SAMPLE_RATE,
    ) -> None:
        """Allocate the buffer.

        Raises:
            ValueError: If ``capacity_secs`` is not positive.
        """
        if capacity_secs <= 0:
            raise ValueError("capacity_secs must be positive")
        self.participant_id = participant_id
        self.sample_rate = sample_rate
        self.capacity = int(round(capacity_secs * sample_rate))
        self._buf = np.zeros(self.capacity, dtype=np.float32)
        self._t0: float | None = None
        self._end = 0  # absolute index one past the newest sample

    @property
    def start_index(self) -> int:
        """Absolute index of the oldest sample still stored."""
        return max(0, self._end - self.capacity)

    @property
    def end_index(self) -> int:
        """Absolute index one past the newest sample."""
        return self._end

    def ts_of(self, index: int) -> float:
        """Meeting-clock time of absolute sample ``index``.

        Raises:
            ValueError: If nothing has been appended yet.
        """
        if self._t0 is None:
            raise ValueError("the ring is empty")
        return self._t0 + index / self.sample_rate

    @property
    def start_ts(self) -> float | None:
        """Timestamp of the oldest stored sample, or None when empty."""
        return None if self._t0 is None else self.ts_of(self.start_index)

    @property
    def end_ts(self) -> float | None:
        """Timestamp just after the newest stored sample, or None when empty."""
        return None if self._t0 is None else self.ts_of(self._end)

    @property
    def nbytes(self) -> int:
        """Bytes of the sample buffer, fixed at creation."""
        return int(self._buf.nbytes)

    def __len__(self) -> int:
        """Number of samples stored."""
        return self._end - self.start_index

    def append(self, samples: np.ndarray, ts: float) -> None:
        """Store ``samples`` whose first sample is at meeting time ``ts``."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if self._t0 is None:
            self._t0 = ts
        expected = self.ts_of(self._end)
        if ts > expected + _GAP_TOLERANCE_SECS:
            gap = int(round((ts - expected) * self.sample_rate))
            logger.debug("audio gap filled with silence", extra={"gap_samples": gap})
            self._write(np.zeros(min(gap, self.capacity), dtype=np.float32), skip=gap)
        elif ts < expected - _GAP_TOLERANCE_SECS:
            overlap = int(round((expected - ts) * self.sample_rate))
            samples = samples[overlap:]
        self._write(samples, skip=len(samples))

    def _write(self, samples: np.ndarray, skip: int) -> None:
        # ``skip`` may exceed len(samples) for a gap longer than the ring: the
        # index advances by the whole gap but only the last ``capacity`` are written.
        n = len(samples)
        if n > self.capacity:
            samples = samples[-self.capacity :]
            n = self.capacity
        start = self._end + skip - n
        if n > 0:
            pos = start % self.capacity
            first = min(n, self.capacity - pos)
            self._buf[pos : pos + first] = samples[:first]
            self._buf[: n - first] = samples[first:]
        self._end += skip

    def window(self, start_ts: float, end_ts: float) -> AudioChunk:
        """Copy the stored samples in ``[start_ts, end_ts)``, clipped to what is stored.

        Returns:
            A chunk whose ``ts`` is the time of its first sample; empty if nothing
            stored falls in the window.
        """
        if self._t0 is None:
            return AudioChunk(self.participant_id, start_ts, np.zeros(0, dtype=np.float32))
        first = int(np.ceil((start_ts - self._t0) * self.sample_rate - 1e-6))
        stop = int(np.ceil((end_ts - self._t0) * self.sample_rate - 1e-6))
        first = max(first, self.start_index)
        stop = min(stop, self._end)
        if stop <= first:
            empty = np.zeros(0, dtype=np.float32)
            return AudioChunk(self.participant_id, self.ts_of(max(first, 0)), empty)
        samples = self._buf[np.arange(first, stop) % self.capacity].copy()
        return AudioChunk(self.participant_id, self.ts_of(first), samples, self.sample_rate)

    def latest(self, secs: float) -> AudioChunk:
        """Copy the newest ``secs`` seconds (fewer if fewer are stored)."""
        if self._t0 is None:
            return AudioChunk(self.participant_id, 0.0, np.zeros(0, dtype=np.float32))
        n = min(int(round(secs * self.sample_rate)), len(self))
        first = self._end - n
        samples = self._buf[np.arange(first, self._end) % self.capacity].copy()
        return AudioChunk(self.participant_id, self.ts_of(first), samples, self.sample_rate)
