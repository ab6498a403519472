"""Streaming voice activity detection with silero-vad, per participant.

silero-vad (MIT) ships its model inside the ``silero_vad`` wheel, so nothing is
downloaded. The model is recurrent: it keeps a hidden state and 64 samples of
context between calls, which is why every participant gets its own
:class:`StreamingVad` with its own model instance. It scores 512-sample (32 ms)
chunks of 16 kHz audio with a speech probability.

Probabilities become segments with hysteresis, like silero's own ``VADIterator``:

- A segment *starts* at the first chunk with probability >= :data:`START_THRESHOLD`.
- While in a segment, a chunk below :data:`END_THRESHOLD` starts a candidate
  silence; a chunk at or above :data:`START_THRESHOLD` cancels it (chunks in
  between leave it as it is). When the silence has lasted :data:`MIN_SILENCE_SECS`
  the segment ends where the silence began.
- Segments shorter than :data:`MIN_SPEECH_SECS` are dropped (clicks, coughs).
- Emitted segments are widened by :data:`PAD_SECS` on both sides (never before the
  first sample seen) so that soft onsets and word ends are kept.

``is_speaking`` turns on once the current run of speech has lasted
:data:`MIN_SPEECH_SECS` and off when the segment ends, so it never flickers on
for a click. It therefore lags the audio: it turns on about ``MIN_SPEECH_SECS``
(0.25-0.29 s) after the onset and off about ``MIN_SILENCE_SECS`` (0.30-0.33 s) after
the offset; :attr:`StreamingVad.speech_start_ts` gives the back-dated onset.

Digital silence (chunks whose peak is below :data:`DIGITAL_SILENCE_PEAK`, about
-80 dBFS: a muted track, a gap filled with zeros; no microphone is that quiet) is
scored by the model only for the first :data:`ZERO_CHUNKS_SCORED` chunks of a run,
which lets the model's state settle on silence; later such chunks get probability
0 without a model call, so a muted participant costs almost no CPU.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from analyzers.voice.audio import SAMPLE_RATE

logger = logging.getLogger(__name__)

#: Samples per VAD call; silero-vad accepts exactly 512 at 16 kHz (32 ms).
CHUNK_SAMPLES = 512
#: Speech probability at which a segment starts (silero's default threshold).
START_THRESHOLD = 0.5
#: Probability below which a chunk counts as silence inside a segment (silero: threshold - 0.15).
END_THRESHOLD = 0.35
#: Shortest segment reported, in seconds.
MIN_SPEECH_SECS = 0.25
#: Silence needed to end a segment, in seconds.
MIN_SILENCE_SECS = 0.30
#: Padding added to both ends of a reported segment, in seconds.
PAD_SECS = 0.03
# Samples of the previous chunk the model sees before each chunk (silero's context).
_CONTEXT_SAMPLES = 64
#: Peak (full scale 1.0) at or below which a chunk is digital silence: 3 LSB of s16, -80 dBFS.
DIGITAL_SILENCE_PEAK = 1e-4
#: Digital-silence chunks in a row still scored by the model (its hangover lasts ~3 chunks).
ZERO_CHUNKS_SCORED = 4


class VadModel(Protocol):
    """What :class:`StreamingVad` needs from a silero-vad model (jit or ONNX wrapper)."""

    def __call__(self, x: object, sr: int) -> object:
        """Return the speech probability of one 512-sample chunk (a 1x1 tensor)."""

    def reset_states(self, batch_size: int = 1) -> None:
        """Forget the recurrent state and context."""


@dataclass(frozen=True, slots=True)
class SpeechSegment:
    """One stretch of speech found by the VAD, on the meeting clock.

    Attributes:
        start_ts: Seconds where speech starts (padded by :data:`PAD_SECS`).
        end_ts: Seconds where speech ends (padded by :data:`PAD_SECS`).
    """

    start_ts: float
    end_ts: float

    @property
    def duration_secs(self) -> float:
        """Length of the segment in seconds."""
        return self.end_ts - self.start_ts


class SileroOnnxModel:
    """silero-vad's ONNX model run on numpy arrays, without torch.

    The same computation as silero's own ``OnnxWrapper`` at 16 kHz, batch 1: the
    model sees the previous chunk's last :data:`_CONTEXT_SAMPLES` samples before
    each 512-sample chunk and carries a ``(2, 1, 128)`` recurrent state. Skipping
    the wrapper's per-chunk torch conversions saves about a quarter of the VAD's CPU.
    Not thread-safe; one per stream (the session may be shared).
    """

    def __init__(self, session: Any) -> None:
        """Wrap an ``onnxruntime.InferenceSession`` of ``silero_vad.onnx``."""
        self.session = session
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros((1, _CONTEXT_SAMPLES), dtype=np.float32)

    def reset_states(self, batch_size: int = 1) -> None:
        """Forget the recurrent state and context."""
        if batch_size != 1:
            raise ValueError("SileroOnnxModel runs batch 1 only")
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros((1, _CONTEXT_SAMPLES), dtype=np.float32)

    def __call__(self, x: object, sr: int) -> np.ndarray:
        """Speech probability of one 512-sample chunk, as a ``(1, 1)`` array.

        Raises:
            ValueError: If ``sr`` is not 16 kHz or ``x`` is not 512 samples.
        """
        chunk = np.asarray(x, dtype=np.float32).reshape(1, -1)
        if sr != SAMPLE_RATE or chunk.shape[1] != CHUNK_SAMPLES:
            raise ValueError("SileroOnnxModel takes 512 samples at 16 kHz")
        inp = np.concatenate([self._context, chunk], axis=1)
        out, self._state = self.session.run(
            None, {"input": inp, "state": self._state, "sr": self._sr}
        )
        self._context = inp[:, -_CONTEXT_SAMPLES:]
        prob: np.ndarray = out
        return prob


def load_vad_model(onnx: bool = True) -> VadModel:
    """Load a fresh silero-vad model from the files inside the ``silero_vad`` wheel.

    Each call returns an independent model (its own recurrent state); give every
    stream its own. The ONNX models share one onnxruntime session (a session holds no
    stream's state and runs calls from several threads at once), loaded on first use
    without importing torch: a participant's VAD then costs a few kB, not the ~10 MB of
    a session of its own, and the server process does not carry torch (~200 MB) for it.

    Args:
        onnx: Use the ONNX model through onnxruntime on numpy arrays (default;
            :class:`SileroOnnxModel`, ~0.25 ms per chunk, single-threaded session)
            instead of the TorchScript one (~0.7 ms, loaded through silero's torch code).

    Returns:
        The model, called as ``model(chunk_of_512, 16000)`` (a torch tensor for
        the TorchScript model).
    """
    if onnx:
        return SileroOnnxModel(_shared_onnx_session())
    from silero_vad import load_silero_vad

    with warnings.catch_warnings():
        # torch 2.13 deprecates torch.jit.load, which silero's jit path still uses;
        # the model itself loads and runs fine.
        warnings.simplefilter("ignore", DeprecationWarning)
        jit_model: VadModel = load_silero_vad(onnx=False)
    return jit_model


def silero_onnx_path() -> Path:
    """``silero_vad.onnx`` inside the installed ``silero_vad`` wheel (without importing it).

    The package's ``__init__`` imports torch; its data files are found from its spec.
    """
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the silero-vad package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.onnx"


@functools.cache
def _shared_onnx_session() -> Any:
    """One single-threaded onnxruntime session of silero-vad for the whole process."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1  # as silero's own loader: one chunk is tiny
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(
        str(silero_onnx_path()), sess_options=options, providers=["CPUExecutionProvider"]
    )


class StreamingVad:
    """One participant's VAD: silero probabilities plus hysteresis, fed incrementally.

    Feed any number of 16 kHz float32 samples with :meth:`process`; it scores every
    complete 512-sample chunk and returns the segments that ended. Holds the model's
    recurrent state, so it must be fed one participant's audio in time order. Runs
    on that participant's feature thread (``features.<pid>``); not thread-safe.
    """

    def __init__(self, model: VadModel | None = None, onnx: bool = True) -> None:
        """Use ``model`` (not shared with any other stream) or load a fresh one."""
        self._model = model if model is not None else load_vad_model(onnx=onnx)
        self._pending = np.zeros(0, dtype=np.float32)
        self._pending_ts = 0.0
        self._first_ts: float | None = None
        self._start_ts: float | None = None  # start of the open segment, unpadded
        self._silence_ts: float | None = None  # start of a candidate silence in the segment
        self._speech_end_ts = 0.0  # end of the last chunk scored as speech
        self._zero_run = 0  # digital-silence chunks in a row just seen
        self.is_speaking = False
        #: Probability of the most recently scored chunk (0.0 before any).
        self.last_prob = 0.0
        #: Chunks scored by the model, and chunks given 0 as digital silence, since creation.
        self.model_calls = 0
        self.skipped_silent_chunks = 0

    @property
    def speech_start_ts(self) -> float | None:
        """Padded start of the open segment, as it will be reported; None outside one."""
        if self._start_ts is None:
            return None
        first = self._first_ts if self._first_ts is not None else self._start_ts
        return max(first, self._start_ts - PAD_SECS)

    @property
    def speech_end_ts(self) -> float | None:
        """End of the newest chunk scored as speech in the open segment; None outside one."""
        return None if self._start_ts is None else self._speech_end_ts

    @property
    def scored_until_ts(self) -> float | None:
        """Meeting time just after the last scored chunk (samples after it are buffered)."""
        return None if self._first_ts is None else self._pending_ts

    def reset(self) -> None:
        """Forget everything: model state, buffered samples and any open segment."""
        self._model.reset_states()
        self._pending = np.zeros(0, dtype=np.float32)
        self._pending_ts = 0.0
        self._first_ts = None
        self._start_ts = None
        self._silence_ts = None
        self._speech_end_ts = 0.0
        self._zero_run = 0
        self.is_speaking = False
        self.last_prob = 0.0

    def chunk_prob(self, chunk: np.ndarray) -> float:
        """Score exactly 512 samples (advances the model's state).

        Raises:
            ValueError: If ``chunk`` does not hold 512 samples.
        """
        if chunk.shape != (CHUNK_SAMPLES,):
            raise ValueError(f"silero-vad needs chunks of exactly {CHUNK_SAMPLES} samples")
        chunk = np.ascontiguousarray(chunk, np.float32)
        if isinstance(self._model, SileroOnnxModel):
            return float(self._model(chunk, SAMPLE_RATE).item())
        import torch

        out = self._model(torch.from_numpy(chunk), SAMPLE_RATE)
        return float(out.item())  # type: ignore[attr-defined]

    def process(self, samples: np.ndarray, ts: float) -> list[SpeechSegment]:
        """Feed samples starting at meeting time ``ts``.

        ``ts`` is used only when nothing is buffered: samples are otherwise assumed
        to follow the previous call without a gap (the ring buffer fills gaps).

        Returns:
            Segments that ended within these samples, oldest first.
        """
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if len(self._pending) == 0:
            self._pending_ts = ts
        if self._first_ts is None:
            self._first_ts = ts
        buf = np.concatenate([self._pending, samples]) if len(self._pending) else samples
        n_chunks = len(buf) // CHUNK_SAMPLES
        ended: list[SpeechSegment] = []
        chunk_secs = CHUNK_SAMPLES / SAMPLE_RATE
        for k in range(n_chunks):
            chunk = buf[k * CHUNK_SAMPLES : (k + 1) * CHUNK_SAMPLES]
            chunk_ts = self._pending_ts + k * chunk_secs
            if float(np.max(np.abs(chunk))) > DIGITAL_SILENCE_PEAK:
                self._zero_run = 0
            else:
                self._zero_run += 1
            if self._zero_run > ZERO_CHUNKS_SCORED:
                prob = 0.0
                self.skipped_silent_chunks += 1
            else:
                prob = self.chunk_prob(chunk)
                self.model_calls += 1
            self.last_prob = prob
            segment = self._step(prob, chunk_ts, chunk_ts + chunk_secs)
            if segment is not None:
                ended.append(segment)
        self._pending = buf[n_chunks * CHUNK_SAMPLES :].copy()
        self._pending_ts += n_chunks * chunk_secs
        return ended

    def flush(self) -> SpeechSegment | None:
        """End the stream: close an open segment at the last speech chunk, if long enough."""
        segment = None
        if self._start_ts is not None:
            end = self._silence_ts if self._silence_ts is not None else self._speech_end_ts
            segment = self._close(end)
        self.reset()
        return segment

    def _step(self, prob: float, chunk_ts: float, chunk_end_ts: float) -> SpeechSegment | None:
        if self._start_ts is None:
            if prob >= START_THRESHOLD:
                self._start_ts = chunk_ts
                self._silence_ts = None
                self._speech_end_ts = chunk_end_ts
                self.is_speaking = chunk_end_ts - chunk_ts >= MIN_SPEECH_SECS
            return None
        if prob >= START_THRESHOLD:
            self._silence_ts = None
        elif prob < END_THRESHOLD and self._silence_ts is None:
            self._silence_ts = chunk_ts
        if self._silence_ts is None:
            self._speech_end_ts = chunk_end_ts
            if chunk_end_ts - self._start_ts >= MIN_SPEECH_SECS:
                self.is_speaking = True
            return None
        if chunk_end_ts - self._silence_ts >= MIN_SILENCE_SECS:
            return self._close(self._silence_ts)
        return None

    def _close(self, end_ts: float) -> SpeechSegment | None:
        start = self._start_ts
        self._start_ts = None
        self._silence_ts = None
        self.is_speaking = False
        if start is None or end_ts - start < MIN_SPEECH_SECS:
            return None
        first = self._first_ts if self._first_ts is not None else start
        return SpeechSegment(max(first, start - PAD_SECS), end_ts + PAD_SECS)
