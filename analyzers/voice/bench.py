"""CPU cost of the voice path, for ``meetmood bench voice``.

Measures CPU time (``time.process_time``, all threads of this process) on the
calling thread's audio, so run it on an otherwise idle process:

- The whole per-participant path per second of audio, through
  :class:`~analyzers.voice.pipeline.VoicePipeline`: 20 ms s16 stereo 48 kHz frames
  (as aiortc delivers them) resampled to 16 kHz, the ring buffer, silero-vad, and
  prosody, the speaker baseline and emotion pieces for every segment found.
- The emotion model per voiced second, on the emotion pieces the pipeline cut.

The audio is espeak-ng speech with 1 s pauses when espeak-ng is installed, else
:func:`~analyzers.voice.synth.speech_like` tones.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from analyzers.voice.audio import SAMPLE_RATE, AudioChunk
from analyzers.voice.pipeline import VoicedSegment, VoicePipeline
from analyzers.voice.synth import espeak_available, espeak_speech, speech_like, to_audio_frames

logger = logging.getLogger(__name__)

# Room noise under the bench audio (standard deviation, full scale 1.0): about -60 dBFS.
_ROOM_NOISE = 1e-3


def _bench_audio(seconds: float) -> tuple[np.ndarray, str]:
    n = int(seconds * SAMPLE_RATE)
    pause = np.zeros(SAMPLE_RATE, dtype=np.float32)
    parts: list[np.ndarray] = []
    total = 0
    source = "espeak-ng" if espeak_available() else "speech_like"
    pitch = 30
    while total < n:
        if source == "espeak-ng":
            speech = espeak_speech(pitch=pitch)
            pitch = 30 + (pitch + 17) % 50
        else:
            speech = speech_like(3.0, f0_hz=100.0 + len(parts) * 5.0)
        parts += [speech, pause]
        total += len(speech) + len(pause)
    return np.concatenate(parts)[:n], source


def save_base_size_emotion_model(
    folder: Path, labels: tuple[str, ...] = ("neutral", "happy", "angry", "sad")
) -> Path:
    """Save a random-weight Wav2Vec2 classifier of the base size (~95 M params) to ``folder``.

    The architecture of ``superb/wav2vec2-base-superb-er``, the default model (12 layers,
    768 wide, the same feature encoder), with random weights: its scores mean nothing,
    its cost and memory are the real model's. For speed benchmarks where the real
    weights cannot be downloaded.
    """
    return _save_random_classifier(folder, labels, classifier_proj_size=256)


def save_tiny_emotion_model(
    folder: Path, labels: tuple[str, ...] = ("neutral", "happy", "angry", "sad")
) -> Path:
    """Save a random-weight tiny Wav2Vec2 classifier (~105 k params) to ``folder``.

    The configuration is PLATFORM.md section 5's; the output is meaningless but the
    compute path is the real one. Used by tests and by :func:`bench_voice`.
    """
    return _save_random_classifier(
        folder,
        labels,
        vocab_size=32,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        conv_dim=(32,) * 7,
        conv_stride=(5, 2, 2, 2, 2, 2, 2),
        conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        do_stable_layer_norm=True,
        feat_extract_norm="layer",
        classifier_proj_size=32,
    )


def _save_random_classifier(folder: Path, labels: tuple[str, ...], **config: Any) -> Path:
    """A random-weight Wav2Vec2 classifier of ``config`` and its feature extractor, saved."""
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForSequenceClassification,
    )

    cfg = Wav2Vec2Config(  # type: ignore[call-arg]  # num_labels etc. go to PretrainedConfig
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        **config,
    )
    Wav2Vec2ForSequenceClassification(cfg).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(  # type: ignore[no-untyped-call]
        feature_size=1,
        sampling_rate=SAMPLE_RATE,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=True,
    ).save_pretrained(folder)
    return folder


def _bench_emotion(chunks: list[np.ndarray], model: str, device: str) -> dict[str, Any]:
    from analyzers.voice.emotion import VoiceEmotionAnalyzer, VoiceEmotionParams

    analyzer = VoiceEmotionAnalyzer.load(
        VoiceEmotionParams(model=model, local_files_only=True, device=device)
    )
    analyzer.analyze(AudioChunk("bench", 0.0, chunks[0]))  # warm-up, not timed
    cpu = time.process_time()
    wall = time.perf_counter()
    for chunk in chunks:
        analyzer.analyze(AudioChunk("bench", 0.0, chunk))
    cpu = time.process_time() - cpu
    wall = time.perf_counter() - wall
    voiced = sum(len(c) for c in chunks) / SAMPLE_RATE
    return {
        "emotion_model": model,
        "emotion_voiced_secs": voiced,
        "emotion_cpu_ms_per_voiced_sec": cpu / voiced * 1000.0,
        "emotion_wall_ms_per_voiced_sec": wall / voiced * 1000.0,
    }


def bench_voice(
    seconds: float = 30, model: str | None = None, device: str = "cpu"
) -> dict[str, Any]:
    """Measure the voice path's CPU cost.

    The participant path is timed end to end through :class:`VoicePipeline`, as the
    server runs it: 20 ms s16 stereo 48 kHz ``av.AudioFrame`` s (made beforehand,
    not timed) are resampled, buffered, run through silero-vad, and every segment
    gets prosody, the speaker baseline and its emotion pieces cut. The audio has
    room noise at about -60 dBFS under it, as a live microphone has, so that the
    VAD's digital-silence shortcut does not flatter the figure.

    Args:
        seconds: Length of the synthesised participant audio.
        model: Emotion model id or folder (loaded with ``local_files_only=True``);
            None builds the tiny random Wav2Vec2 in a temporary folder.
        device: Torch device for the emotion model.

    Returns:
        Plain numbers: ``vad_prosody_cpu_pct_of_core`` (CPU seconds per audio second
        x 100, one participant, whole pipeline), ``emotion_cpu_ms_per_voiced_sec``
        (the emotion model on the pipeline's own emotion pieces) and friends.
    """
    audio, source = _bench_audio(seconds)
    noise = np.random.default_rng(0).normal(0.0, _ROOM_NOISE, len(audio)).astype(np.float32)
    frames = to_audio_frames(audio + noise)
    pipeline = VoicePipeline("bench")
    pieces: list[np.ndarray] = []
    cpu = time.process_time()
    wall = time.perf_counter()
    for frame in frames:
        for event in pipeline.feed(frame):
            if isinstance(event, VoicedSegment):
                pieces += [c.samples for c in event.emotion_chunks]
    for event in pipeline.close():
        if isinstance(event, VoicedSegment):
            pieces += [c.samples for c in event.emotion_chunks]
    vad_cpu = time.process_time() - cpu
    vad_wall = time.perf_counter() - wall
    stats = pipeline.stats()
    audio_secs = len(audio) / SAMPLE_RATE
    result: dict[str, Any] = {
        "audio_source": source,
        "audio_secs": audio_secs,
        "frames": len(frames),
        "segments": stats.speech_runs,
        "analysed_segments": stats.analysed_segments,
        "voiced_secs": stats.talk_secs,
        "emotion_pieces": len(pieces),
        "emotion_piece_secs": sum(len(p) for p in pieces) / SAMPLE_RATE,
        "vad_model_calls": stats.vad_model_calls,
        "vad_prosody_cpu_secs": vad_cpu,
        "vad_prosody_cpu_pct_of_core": vad_cpu / audio_secs * 100.0,
        "vad_prosody_wall_pct": vad_wall / audio_secs * 100.0,
        "ring_nbytes": stats.ring_nbytes,
    }
    if not pieces:  # no speech found: classify the raw audio in 4 s windows instead
        window = 4 * SAMPLE_RATE
        pieces = [audio[i : i + window] for i in range(0, max(1, len(audio) - window + 1), window)]
    if model is None:
        with tempfile.TemporaryDirectory(prefix="meetmood-tiny-w2v2-") as tmp:
            result |= _bench_emotion(pieces, str(save_tiny_emotion_model(Path(tmp))), device)
        result["emotion_model"] = "tiny random wav2vec2 (105k params)"
    else:
        result |= _bench_emotion(pieces, model, device)
    logger.info("voice bench done", extra=result)
    return result
