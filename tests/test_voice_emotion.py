"""Tests for the voice emotion analyzer with tiny self-made Wav2Vec2 classifiers."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from analyzers.types import Emotion
from analyzers.voice.audio import AudioChunk
from analyzers.voice.bench import bench_voice, save_tiny_emotion_model
from analyzers.voice.emotion import (
    VoiceEmotionAnalyzer,
    VoiceEmotionParams,
    VoiceEmotionResult,
    VoiceModelUnavailable,
)
from analyzers.voice.labels import LABEL_TABLE, expressible, map_label, map_probs
from analyzers.voice.synth import espeak_speech

SR = 16_000
FOUR = {Emotion.NEUTRAL, Emotion.HAPPY, Emotion.ANGRY, Emotion.SAD}


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return espeak_speech()


def _load(folder: Path, **kw: object) -> VoiceEmotionAnalyzer:
    params = VoiceEmotionParams(model=str(folder), local_files_only=True, device="cpu", **kw)
    return VoiceEmotionAnalyzer.load(params)


@pytest.mark.model
def test_tiny_model_probs_over_its_four_classes(tmp_path: Path, speech: np.ndarray) -> None:
    analyzer = _load(save_tiny_emotion_model(tmp_path / "m"))
    result = analyzer.analyze(AudioChunk("alice", 3.0, speech[: int(1.5 * SR)]))
    assert isinstance(result, VoiceEmotionResult)
    assert result.participant_id == "alice" and result.ts == 3.0
    assert set(result.probs) == FOUR
    assert set(result.raw) == {"neutral", "happy", "angry", "sad"}
    # The model's own four classes map one to one: nothing is renormalised or reordered.
    assert {e.value: p for e, p in result.probs.items()} == pytest.approx(result.raw, abs=1e-9)
    assert result.model == str(tmp_path / "m")
    assert result.inference_ms > 0
    assert VoiceEmotionAnalyzer.name == "voice_emotion"
    assert VoiceEmotionAnalyzer.params_type is VoiceEmotionParams


@pytest.mark.model
def test_iemocap_labels_map_to_same_four(tmp_path: Path, speech: np.ndarray) -> None:
    folder = save_tiny_emotion_model(tmp_path / "iemocap", labels=("neu", "hap", "ang", "sad"))
    result = _load(folder).analyze(AudioChunk("bob", 0.0, speech[: 2 * SR]))
    assert set(result.probs) == FOUR
    assert set(result.raw) == {"neu", "hap", "ang", "sad"}
    assert result.probs[Emotion.NEUTRAL] == pytest.approx(result.raw["neu"])


@pytest.mark.model
def test_unmapped_label_excluded_and_renormalised(tmp_path: Path, speech: np.ndarray) -> None:
    folder = save_tiny_emotion_model(tmp_path / "odd", labels=("calm", "happy", "xyz"))
    result = _load(folder).analyze(AudioChunk("c", 0.0, speech[: 2 * SR]))
    assert set(result.raw) == {"calm", "happy", "xyz"}
    assert set(result.probs) == {Emotion.NEUTRAL, Emotion.HAPPY}
    mapped = result.raw["calm"] + result.raw["happy"]
    assert result.probs[Emotion.NEUTRAL] == pytest.approx(result.raw["calm"] / mapped)
    assert sum(result.probs.values()) == pytest.approx(1.0)


@pytest.mark.model
def test_short_chunk_refused_and_long_chunk_trimmed(tmp_path: Path, speech: np.ndarray) -> None:
    analyzer = _load(save_tiny_emotion_model(tmp_path / "m"), max_secs=2.0)
    with pytest.raises(ValueError, match="min_secs"):
        analyzer.analyze(AudioChunk("a", 0.0, speech[: int(0.9 * SR)]))
    long = np.concatenate([speech, speech])[: 4 * SR]
    result = analyzer.analyze(AudioChunk("a", 10.0, long))
    assert result.ts == pytest.approx(12.0)
    same = analyzer.analyze(AudioChunk("a", 12.0, long[2 * SR :]))
    for e in FOUR:
        assert result.probs[e] == pytest.approx(same.probs[e], abs=1e-6)


@pytest.mark.model
def test_missing_model_offline_raises_without_touching_the_network(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # local_files_only means no connection is even tried (what made it quick offline).
    connects: list[object] = []

    def no_connect(self: socket.socket, address: object) -> None:
        connects.append(address)
        raise OSError("[Errno 101] Network is unreachable")

    monkeypatch.setattr(socket.socket, "connect", no_connect)
    params = VoiceEmotionParams(
        model="meetmood-test/no-such-model", local_files_only=True, device="cpu"
    )
    with pytest.raises(VoiceModelUnavailable, match="meetmood-test/no-such-model"):
        VoiceEmotionAnalyzer.load(params)
    assert connects == []
    assert issubclass(VoiceModelUnavailable, RuntimeError)


@pytest.mark.unit
def test_params_validation() -> None:
    params = VoiceEmotionParams()
    assert params.model == "superb/wav2vec2-base-superb-er"
    assert (params.min_secs, params.max_secs, params.torch_threads) == (1.0, 4.0, 1)
    assert params.local_files_only is False and params.device == "auto"
    for field in VoiceEmotionParams.model_fields.values():
        assert field.description
    with pytest.raises(ValidationError):
        VoiceEmotionParams(unknown=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        VoiceEmotionAnalyzer.load(object())  # type: ignore[arg-type]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("spellings", "emotion"),
    [
        (("neu", "neutral", "Neutral", " NEU "), Emotion.NEUTRAL),
        (("hap", "happy", "happiness", "HAPPY"), Emotion.HAPPY),
        (("ang", "angry", "anger"), Emotion.ANGRY),
        (("sad", "sadness", "SAD"), Emotion.SAD),
        (("fea", "fear", "fearful"), Emotion.FEAR),
        (("dis", "disgust"), Emotion.DISGUST),
        (("sur", "surprise", "surprised"), Emotion.SURPRISE),
        (("calm",), Emotion.NEUTRAL),
    ],
)
def test_label_table(spellings: tuple[str, ...], emotion: Emotion) -> None:
    for label in spellings:
        assert map_label(label) is emotion, label


@pytest.mark.unit
def test_unmapped_labels_and_absent_classes() -> None:
    for label in ("xyz", "fru", "oth", ""):
        assert map_label(label) is None
    assert set(LABEL_TABLE.values()) == set(Emotion)
    probs = map_probs({"neu": 0.2, "calm": 0.2, "ang": 0.2, "xyz": 0.4})
    assert probs == pytest.approx({Emotion.NEUTRAL: 2 / 3, Emotion.ANGRY: 1 / 3})
    assert Emotion.FEAR not in probs  # not expressible: absent, not zero
    assert map_probs({"xyz": 1.0}) == {}
    assert expressible({0: "neu", 1: "hap", 2: "xyz"}) == {Emotion.NEUTRAL, Emotion.HAPPY}


@pytest.mark.model
def test_bench_voice_reports_numbers() -> None:
    result = bench_voice(seconds=6)
    assert result["audio_secs"] == pytest.approx(6.0)
    assert result["frames"] == 300  # 20 ms frames through the whole VoicePipeline
    assert result["segments"] >= 1
    assert result["emotion_pieces"] >= 1
    assert 1.0 <= result["emotion_piece_secs"] / result["emotion_pieces"] <= 4.0
    assert 0 < result["vad_prosody_cpu_pct_of_core"] < 100
    assert result["emotion_cpu_ms_per_voiced_sec"] > 0


@pytest.mark.model
@pytest.mark.usefixtures("loopback_only")
def test_hub_model_not_cached_offline_is_unavailable_without_retrying(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Not local_files_only: the hub is tried only if reachable, and here it is not
    # (no network in the test namespace), so loading fails at once instead of retrying.
    # The tests' HF_HUB_OFFLINE would answer before the probe; this test is about the probe.
    from huggingface_hub import constants

    from analyzers.voice.emotion import hub_reachable

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)

    assert hub_reachable(timeout_secs=1.0) is False
    with pytest.raises(VoiceModelUnavailable, match="locally or from the hub"):
        VoiceEmotionAnalyzer.load(VoiceEmotionParams(model="meetmood/not-cached", device="cpu"))
