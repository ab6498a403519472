"""Tests for the streaming silero-vad wrapper on espeak-ng speech, silence and noise."""

from __future__ import annotations

import numpy as np
import pytest

from analyzers.voice.synth import espeak_speech
from analyzers.voice.vad import (
    CHUNK_SAMPLES,
    ZERO_CHUNKS_SCORED,
    SileroOnnxModel,
    SpeechSegment,
    StreamingVad,
    load_vad_model,
)

SR = 16_000
TS0 = 100.0


def _run(
    vad: StreamingVad, audio: np.ndarray, piece: int = 320
) -> tuple[list[SpeechSegment], bool]:
    segments: list[SpeechSegment] = []
    was_speaking = False
    for i in range(0, len(audio), piece):
        segments += vad.process(audio[i : i + piece], TS0 + i / SR)
        was_speaking |= vad.is_speaking
    last = vad.flush()
    if last is not None:
        segments.append(last)
    return segments, was_speaking


@pytest.fixture(scope="module")
def vad() -> StreamingVad:
    return StreamingVad()


@pytest.mark.model
def test_speech_segments_inside_speech_span(vad: StreamingVad) -> None:
    vad.reset()
    speech = espeak_speech("Hello everyone, thanks for joining the meeting today.")
    silence = np.zeros(SR, dtype=np.float32)
    segments, was_speaking = _run(vad, np.concatenate([silence, speech, silence]))
    start, end = TS0 + 1.0, TS0 + 1.0 + len(speech) / SR
    assert segments, "no speech found"
    assert was_speaking
    for seg in segments:
        assert seg.start_ts >= start - 0.3, seg
        assert seg.end_ts <= end + 0.3, seg
        assert seg.duration_secs >= 0.25
    # speech covers most of the span
    assert sum(s.duration_secs for s in segments) > 0.6 * (end - start)
    assert segments[0].start_ts < start + 0.3
    assert not vad.is_speaking


@pytest.mark.model
@pytest.mark.parametrize("kind", ["silence", "noise"])
def test_no_segments_in_silence_or_noise(vad: StreamingVad, kind: str) -> None:
    vad.reset()
    if kind == "silence":
        audio = np.zeros(3 * SR, dtype=np.float32)
    else:
        audio = (0.05 * np.random.default_rng(0).uniform(-1, 1, 3 * SR)).astype(np.float32)
    segments, was_speaking = _run(vad, audio)
    assert segments == []
    assert not was_speaking


@pytest.mark.model
def test_chunking_is_independent_of_piece_size(vad: StreamingVad) -> None:
    speech = espeak_speech("One two three four.")
    audio = np.concatenate([np.zeros(SR // 2, np.float32), speech, np.zeros(SR, np.float32)])
    vad.reset()
    a, _ = _run(vad, audio, piece=320)
    vad.reset()
    b, _ = _run(vad, audio, piece=4000)
    assert a and len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.start_ts == pytest.approx(y.start_ts) and x.end_ts == pytest.approx(y.end_ts)
    with pytest.raises(ValueError):
        vad.chunk_prob(np.zeros(CHUNK_SAMPLES + 1, dtype=np.float32))


@pytest.mark.model
def test_torchscript_model_loads_without_warnings() -> None:
    vad = StreamingVad(onnx=False)
    assert vad.chunk_prob(np.zeros(CHUNK_SAMPLES, dtype=np.float32)) < 0.05
    # ...and it hears speech: the TorchScript model works, not only loads.
    speech = espeak_speech("One two three four.")
    probs = [
        vad.chunk_prob(speech[i : i + CHUNK_SAMPLES])
        for i in range(0, len(speech) - CHUNK_SAMPLES, CHUNK_SAMPLES)
    ]
    assert max(probs) > 0.9


@pytest.mark.model
def test_numpy_onnx_runner_matches_silero_wrapper() -> None:
    import torch
    from silero_vad import load_silero_vad

    speech = espeak_speech("One two three four.")
    wrapper = load_silero_vad(onnx=True)
    model = load_vad_model()
    assert isinstance(model, SileroOnnxModel)
    for _ in range(2):  # and again after a reset
        for i in range(0, len(speech) - CHUNK_SAMPLES + 1, CHUNK_SAMPLES):
            chunk = speech[i : i + CHUNK_SAMPLES]
            expected = float(wrapper(torch.from_numpy(chunk.copy()), SR).item())
            assert float(model(chunk, SR).item()) == pytest.approx(expected, abs=1e-6)
        wrapper.reset_states()
        model.reset_states()
    with pytest.raises(ValueError):
        model(np.zeros(256, np.float32), SR)


@pytest.mark.model
def test_digital_silence_skips_the_model_and_onset_is_back_dated(vad: StreamingVad) -> None:
    vad.reset()
    calls, skipped = vad.model_calls, vad.skipped_silent_chunks
    zeros = np.zeros(2 * SR, dtype=np.float32)
    assert vad.process(zeros, TS0) == []
    n_chunks = len(zeros) // CHUNK_SAMPLES
    assert vad.model_calls - calls == ZERO_CHUNKS_SCORED
    assert vad.skipped_silent_chunks - skipped == n_chunks - ZERO_CHUNKS_SCORED
    assert vad.scored_until_ts == pytest.approx(TS0 + n_chunks * CHUNK_SAMPLES / SR)
    speech = espeak_speech("Hello everyone, thanks for joining.")
    onset = None
    for i in range(0, len(speech), 320):
        vad.process(speech[i : i + 320], TS0 + (len(zeros) + i) / SR)
        if vad.is_speaking and onset is None:
            onset = vad.speech_start_ts
            assert onset is not None and vad.speech_end_ts is not None
            assert vad.speech_end_ts - onset >= 0.25  # confirmed after 0.25 s of speech
    assert onset is not None and abs(onset - (TS0 + 2.0)) < 0.1
    vad.flush()
    assert vad.speech_start_ts is None and vad.speech_end_ts is None
