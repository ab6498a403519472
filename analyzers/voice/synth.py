"""Synthetic test and benchmark audio: espeak-ng speech and speech-like tones.

Used by the voice tests and :mod:`analyzers.voice.bench`, never on the live path.
:func:`espeak_speech` runs the ``espeak-ng`` binary (Debian package ``espeak-ng``)
in a subprocess on the calling thread; :func:`speech_like` needs nothing but numpy.
"""

from __future__ import annotations

import fractions
import io
import shutil
import subprocess

import av
import numpy as np

from analyzers.voice.audio import SAMPLE_RATE, Resampler16k

#: Sentence used when no text is given: about 3 s of speech at espeak's default rate.
DEFAULT_TEXT = "The quarterly numbers look good, and we should ship the new release next week."


def espeak_available() -> bool:
    """Whether the ``espeak-ng`` binary is on PATH."""
    return shutil.which("espeak-ng") is not None


def espeak_speech(
    text: str = DEFAULT_TEXT,
    pitch: int = 50,
    amplitude: int = 100,
    words_per_minute: int = 160,
    voice: str = "en",
) -> np.ndarray:
    """Synthesise ``text`` with espeak-ng and return float32 mono 16 kHz samples.

    Args:
        text: What to say.
        pitch: espeak-ng ``-p`` (0-99, default 50).
        amplitude: espeak-ng ``-a`` (0-200, default 100).
        words_per_minute: espeak-ng ``-s``.
        voice: espeak-ng ``-v``.

    Raises:
        RuntimeError: If espeak-ng is missing or fails.
    """
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    args = [exe, "--stdout", "-v", voice, "-p", str(pitch), "-a", str(amplitude)]
    args += ["-s", str(words_per_minute), text]
    try:
        wav = subprocess.run(args, check=True, capture_output=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise RuntimeError("espeak-ng failed") from e
    resampler = Resampler16k()
    parts: list[np.ndarray] = []
    with av.open(io.BytesIO(wav), mode="r", format="wav") as container:
        for frame in container.decode(audio=0):
            parts.append(resampler.resample(frame))
    parts.append(resampler.flush())
    return np.concatenate(parts).astype(np.float32)


def harmonic_tone(
    f0_hz: float, secs: float, amplitude: float = 0.3, n_harmonics: int = 8
) -> np.ndarray:
    """A voiced-like tone: ``n_harmonics`` harmonics of ``f0_hz`` with 1/k amplitudes.

    Returns:
        float32 mono 16 kHz samples with peak close to ``amplitude``.
    """
    t = np.arange(int(secs * SAMPLE_RATE)) / SAMPLE_RATE
    y = np.zeros_like(t)
    for k in range(1, n_harmonics + 1):
        if k * f0_hz < SAMPLE_RATE / 2:
            y += np.sin(2 * np.pi * k * f0_hz * t) / k
    y *= amplitude / max(float(np.max(np.abs(y))), 1e-9)
    return y.astype(np.float32)


def speech_like(
    secs: float,
    f0_hz: float = 120.0,
    syllables_per_sec: float = 4.0,
    amplitude: float = 0.3,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """A crude speech stand-in: a gliding harmonic tone gated into syllables and pauses.

    Each syllable is a raised-cosine burst of a harmonic tone whose pitch wanders
    within ±2 semitones of ``f0_hz``; every few syllables there is a short pause.
    Enough to exercise prosody code paths at realistic cost; it is not speech and
    a VAD may or may not call it speech.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    n = int(secs * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    semitones = 2.0 * np.sin(2 * np.pi * 0.3 * t + rng.uniform(0, 2 * np.pi))
    phase = 2 * np.pi * np.cumsum(f0_hz * 2.0 ** (semitones / 12.0)) / SAMPLE_RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 9))
    envelope = np.zeros(n)
    pos = 0
    syllable = int(SAMPLE_RATE / syllables_per_sec)
    count = 0
    while pos + syllable <= n:
        envelope[pos : pos + syllable] = np.hanning(syllable) * rng.uniform(0.6, 1.0)
        pos += syllable
        count += 1
        if count % 5 == 0:
            pos += int(rng.uniform(0.2, 0.5) * SAMPLE_RATE)
    y = voiced * envelope + rng.normal(0.0, 0.002, n)
    y *= amplitude / max(float(np.max(np.abs(y))), 1e-9)
    return y.astype(np.float32)


def to_audio_frames(
    samples: np.ndarray,
    sample_rate: int = 48_000,
    layout: str = "stereo",
    sample_format: str = "s16",
    frame_secs: float = 0.02,
    start_pts: int = 0,
) -> list[av.AudioFrame]:
    """Cut 16 kHz mono float samples into ``av.AudioFrame`` s as aiortc would deliver them.

    The audio is resampled with libswresample to ``sample_rate``, ``layout`` and
    ``sample_format`` (default: aiortc's s16 packed stereo 48 kHz) and cut into
    frames of ``frame_secs`` (the last one may be shorter). Each frame has
    ``pts`` counted in samples from ``start_pts`` and ``time_base = 1 / sample_rate``.
    """
    mono = np.clip(np.asarray(samples, dtype=np.float32).reshape(1, -1), -1.0, 1.0)
    source = av.AudioFrame.from_ndarray(mono, format="flt", layout="mono")
    source.sample_rate = SAMPLE_RATE
    resampler = av.AudioResampler(format=sample_format, layout=layout, rate=sample_rate)
    converted = resampler.resample(source) + resampler.resample(None)
    arrays = [f.to_ndarray() for f in converted]
    if not arrays:
        return []
    planar = converted[0].format.is_planar
    channels = len(converted[0].layout.channels)
    data = np.concatenate(arrays, axis=1)
    step = 1 if planar else channels  # packed: samples of all channels interleaved in one row
    n_total = data.shape[1] // step
    per_frame = max(1, int(round(frame_secs * sample_rate)))
    time_base = fractions.Fraction(1, sample_rate)
    frames: list[av.AudioFrame] = []
    for start in range(0, n_total, per_frame):
        part = np.ascontiguousarray(data[:, start * step : (start + per_frame) * step])
        frame = av.AudioFrame.from_ndarray(part, format=sample_format, layout=layout)
        frame.sample_rate = sample_rate
        frame.pts = start_pts + start
        frame.time_base = time_base
        frames.append(frame)
    return frames
