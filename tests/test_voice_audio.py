"""Tests for the voice audio plumbing: resampler and ring buffer."""

from __future__ import annotations

import av
import numpy as np
import pytest

from analyzers.voice.audio import AudioChunk, AudioRing, Resampler16k


def _stereo_frame(start: int, n: int, hz: float = 440.0) -> av.AudioFrame:
    t = (np.arange(n) + start) / 48_000
    mono = (0.3 * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16)
    arr = np.stack([mono, mono], axis=1).reshape(1, 2 * n)
    frame = av.AudioFrame.from_ndarray(arr, format="s16", layout="stereo")
    frame.sample_rate = 48_000
    frame.pts = start
    return frame


@pytest.mark.unit
def test_resampler_48k_stereo_to_16k_mono_keeps_tone() -> None:
    resampler = Resampler16k()
    n, frames = 960, 50
    parts = [resampler.resample(_stereo_frame(k * n, n)) for k in range(frames)]
    parts.append(resampler.flush())
    y = np.concatenate(parts)
    assert y.dtype == np.float32
    assert abs(len(y) - n * frames / 3) <= 2
    assert 0.25 < float(np.max(np.abs(y))) <= 0.31
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spectrum) * 16_000 / len(y) - 440.0) < 2.0


@pytest.mark.unit
def test_ring_wraparound_keeps_newest_with_timestamps() -> None:
    ring = AudioRing("alice", capacity_secs=1.0)
    assert ring.end_ts is None and len(ring) == 0
    # 2.5 s of a ramp, appended in 0.1 s pieces starting at ts=10
    total = 40_000
    ramp = np.arange(total, dtype=np.float32) / total
    for i in range(0, total, 1600):
        ring.append(ramp[i : i + 1600], 10.0 + i / 16_000)
    assert len(ring) == 16_000
    assert ring.start_ts == pytest.approx(11.5)
    assert ring.end_ts == pytest.approx(12.5)
    latest = ring.latest(0.5)
    assert isinstance(latest, AudioChunk)
    assert latest.participant_id == "alice"
    assert latest.ts == pytest.approx(12.0)
    np.testing.assert_array_equal(latest.samples, ramp[-8000:])
    window = ring.window(11.0, 12.0)  # clipped to what is stored
    assert window.ts == pytest.approx(11.5)
    np.testing.assert_array_equal(window.samples, ramp[24_000:32_000])
    assert window.end_ts == pytest.approx(12.0)
    assert len(ring.window(5.0, 6.0).samples) == 0
    # latest asks for more than stored
    assert len(ring.latest(5.0).samples) == 16_000


@pytest.mark.unit
def test_ring_fills_gaps_with_silence_and_trims_overlap() -> None:
    ring = AudioRing("bob", capacity_secs=2.0)
    ones = np.ones(1600, dtype=np.float32)
    ring.append(ones, 0.0)
    ring.append(ones, 0.2)  # 0.1 s lost
    assert ring.end_ts == pytest.approx(0.3)
    gap = ring.window(0.1, 0.2).samples
    assert len(gap) == 1600 and not gap.any()
    ring.append(2 * ones, 0.25)  # overlaps the last 0.05 s: head dropped
    assert ring.end_ts == pytest.approx(0.35)
    np.testing.assert_array_equal(ring.window(0.3, 0.35).samples, 2 * ones[:800])
    with pytest.raises(ValueError):
        AudioRing("x", capacity_secs=0)
