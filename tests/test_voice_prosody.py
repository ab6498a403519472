"""Tests for YIN, prosody features, the speaker baseline and the arousal score."""

from __future__ import annotations

import numpy as np
import pytest

from analyzers.voice.prosody import (
    WARMUP_SEGMENTS,
    ProsodyFeatures,
    SpeakerBaseline,
    extract_prosody,
    hz_to_semitones,
    yin,
)
from analyzers.voice.synth import espeak_speech, harmonic_tone

SR = 16_000


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return espeak_speech()


@pytest.mark.unit
@pytest.mark.parametrize("hz", [70.0, 110.0, 196.0, 310.0, 390.0])
def test_yin_pure_tone_within_2_percent(hz: float) -> None:
    t = np.arange(SR) / SR
    f0 = yin(0.3 * np.sin(2 * np.pi * hz * t))
    assert np.mean(np.isnan(f0)) < 0.05
    assert abs(float(np.nanmedian(f0)) - hz) / hz < 0.02


@pytest.mark.unit
def test_yin_silence_and_noise_unvoiced() -> None:
    assert np.isnan(yin(np.zeros(SR))).all()
    noise = 0.1 * np.random.default_rng(0).normal(size=SR)
    assert np.mean(~np.isnan(yin(noise))) < 0.2


@pytest.mark.unit
def test_harmonic_tones_ordered_pitch() -> None:
    low = extract_prosody(harmonic_tone(120.0, 1.0))
    high = extract_prosody(harmonic_tone(220.0, 1.0))
    assert low.f0_hz == pytest.approx(120.0, rel=0.02)
    assert high.f0_hz == pytest.approx(220.0, rel=0.02)
    assert low.pitch_st is not None and high.pitch_st is not None
    assert high.pitch_st - low.pitch_st == pytest.approx(12 * np.log2(220 / 120), abs=0.3)
    assert low.pitch_range_st is not None and low.pitch_range_st < 0.5
    assert low.voiced_ratio > 0.9
    assert low.pause_ratio == 0.0
    assert float(hz_to_semitones(200.0)) == pytest.approx(12.0)


@pytest.mark.model
def test_espeak_pitch_levels_ordered() -> None:
    low = extract_prosody(espeak_speech(pitch=20))
    high = extract_prosody(espeak_speech(pitch=80))
    assert low.pitch_st is not None and high.pitch_st is not None
    assert high.pitch_st > low.pitch_st + 2.0
    assert 65.0 <= (low.f0_hz or 0) < (high.f0_hz or 0) <= 400.0


@pytest.mark.model
def test_loudness_ordered_by_amplitude(speech: np.ndarray) -> None:
    quiet = extract_prosody(0.25 * speech)
    loud = extract_prosody(speech)
    assert loud.loudness_dbfs - quiet.loudness_dbfs == pytest.approx(20 * np.log10(4), abs=0.1)
    assert loud.loudness_p90_dbfs > quiet.loudness_p90_dbfs + 10
    assert loud.loudness_p90_dbfs > loud.loudness_dbfs


@pytest.mark.model
def test_rate_proxy_and_pauses() -> None:
    slow = extract_prosody(espeak_speech(words_per_minute=100))
    fast = extract_prosody(espeak_speech(words_per_minute=250))
    assert fast.rate_nuclei_per_sec > 1.5 * slow.rate_nuclei_per_sec
    with_pause = np.concatenate(
        [harmonic_tone(150.0, 1.0), np.zeros(SR, np.float32), harmonic_tone(150.0, 1.0)]
    )
    assert extract_prosody(with_pause).pause_ratio == pytest.approx(1 / 3, abs=0.05)
    with pytest.raises(ValueError):
        extract_prosody(np.zeros(0, np.float32))


def _features(loud: float, pitch: float, rng: np.random.Generator) -> ProsodyFeatures:
    return ProsodyFeatures(
        duration_secs=2.0,
        f0_hz=100 * 2 ** (pitch / 12),
        pitch_st=pitch,
        pitch_range_st=4.0 + rng.normal(0, 0.3),
        loudness_dbfs=loud,
        loudness_p90_dbfs=loud + 4,
        rate_nuclei_per_sec=4.0 + rng.normal(0, 0.2),
        pause_ratio=0.1,
        voiced_ratio=0.5,
    )


@pytest.mark.unit
def test_baseline_warmup_then_arousal_rises() -> None:
    rng = np.random.default_rng(0)
    baseline = SpeakerBaseline()
    for i in range(WARMUP_SEGMENTS):
        est = baseline.update(_features(-25 + rng.normal(0, 1), 5 + rng.normal(0, 0.5), rng))
        assert est.arousal is None, i
        assert est.segments_seen == i
    usual = baseline.z_scores(_features(-25, 5, rng))
    assert all(abs(z) < 1.5 for z in usual.values())
    calm = baseline.update(_features(-25, 5, rng)).arousal
    excited = baseline.update(_features(-17, 9, rng)).arousal
    flat = baseline.update(_features(-33, 2, rng)).arousal
    assert calm is not None and excited is not None and flat is not None
    assert -1 <= flat < calm < excited <= 1
    assert excited > 0.5 and flat < -0.5
    baseline.reset()
    assert baseline.update(_features(-25, 5, rng)).arousal is None


@pytest.mark.model
def test_baseline_on_real_speech(speech: np.ndarray) -> None:
    baseline = SpeakerBaseline()
    parts = np.array_split(speech, WARMUP_SEGMENTS)
    for part in parts:
        assert baseline.update(extract_prosody(0.3 * part)).arousal is None
    normal = baseline.update(extract_prosody(0.3 * speech)).arousal
    louder_higher = baseline.update(extract_prosody(espeak_speech(pitch=85))).arousal
    assert normal is not None and louder_higher is not None
    assert louder_higher > normal
    assert louder_higher > 0
