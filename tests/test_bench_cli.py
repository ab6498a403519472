"""``meetmood bench faces`` and ``bench voice``: tiny settings, JSON keys, no timed assertions."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np
import pytest

from analyzers.face.bench import (
    ASTRONAUT_LABEL,
    FRAME_SIZE,
    bench_frames,
    deepface_random_home,
    format_face_bench,
    time_calls,
)
from bot.cli import format_voice_bench, main

RATE_KEYS = {
    "batch_size",
    "calls",
    "frames",
    "faces",
    "seconds",
    "frames_per_sec",
    "faces_per_sec",
    "faces_per_frame",
    "ms_per_call_p50",
}


# offline (DeepFace must not try to download) and the root logger's restore: tests/fixtures.py.


@pytest.mark.unit
def test_bench_frames_are_deterministic_real_faces() -> None:
    frames = bench_frames(4)
    again = bench_frames(4)
    assert [len(f.faces) for f in frames] == [1, 2, 3, 1]
    for frame, other in zip(frames, again, strict=True):
        assert frame.image.shape == (FRAME_SIZE[1], FRAME_SIZE[0], 3)
        assert frame.image.dtype == np.uint8
        np.testing.assert_array_equal(frame.image, other.image)
        assert frame.faces[0][1] == ASTRONAUT_LABEL
        assert all(label is None for _, label in frame.faces[1:])
        for (x, y, w, h), _ in frame.faces:
            assert 0 <= x and x + w <= FRAME_SIZE[0] and 0 <= y and y + h <= FRAME_SIZE[1]


@pytest.mark.unit
def test_time_calls_counts_calls_frames_and_faces() -> None:
    frames = [np.full((2, 2, 3), i, np.uint8) for i in range(3)]
    seen: list[list[int]] = []

    def call(chunk: Sequence[np.ndarray]) -> int:
        seen.append([int(f[0, 0, 0]) for f in chunk])
        return 2 * len(chunk)

    rate = time_calls(call, frames, 2, seconds=0.0, repeats=3)
    assert seen == [[0, 1], [0, 1], [2, 0], [1, 2]]  # warm-up, then cycling slices
    assert (rate.batch_size, rate.calls, rate.frames, rate.faces) == (2, 3, 6, 12)
    assert rate.faces_per_frame == 2.0
    assert rate.faces_per_sec == pytest.approx(rate.faces / rate.seconds)
    with pytest.raises(ValueError, match="batch_size"):
        time_calls(call, frames, 0, seconds=0.0, repeats=1)


@pytest.mark.model
def test_deepface_random_home_restores_environment_and_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from deepface.modules import modeling

    monkeypatch.setenv("DEEPFACE_HOME", "/nonexistent/decoy")
    before = modeling.__dict__.get("cached_models")
    with deepface_random_home() as home:
        assert os.environ["DEEPFACE_HOME"] == str(home)
        weights = home / ".deepface" / "weights" / "facial_expression_model_weights.pth"
        assert weights.is_file()
    assert os.environ["DEEPFACE_HOME"] == "/nonexistent/decoy"
    assert modeling.__dict__.get("cached_models") is before
    assert not home.exists()


@pytest.mark.model
def test_bench_faces_tiny_json(capsys: pytest.CaptureFixture[str], offline: list[object]) -> None:
    code = main(
        [
            "bench",
            "faces",
            "--batch-sizes",
            "1,2",
            "--seconds",
            "0",
            "--repeats",
            "1",
            "--device",
            "cpu",
            "--json",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads(out)  # stdout is pure JSON: DeepFace's messages went to stderr
    assert result["device"] == "cpu"
    assert result["detector"] == "mediapipe"
    assert result["frame_size"] == [640, 480]
    assert result["distinct_frames"] == 8
    assert [p["batch_size"] for p in result["pipeline"]] == [1, 2]
    for rate in result["pipeline"]:
        assert set(rate) == RATE_KEYS
        assert rate["calls"] == 1
    deepface = result["deepface"]
    assert set(deepface) == RATE_KEYS | {"call", "weights"}
    assert deepface["weights"] == "random (speed only)"
    assert deepface["batch_size"] == 1
    assert deepface["faces"] >= 1  # DeepFace's Haar finds the astronaut
    assert set(result["speedup"]) == {"1", "2", "followed1", "followed2"}
    assert [p["batch_size"] for p in result["followed"]] == [1, 2]
    for rate in result["followed"]:
        assert set(rate) == RATE_KEYS
    accuracy = result["accuracy"]
    assert accuracy["label"] == "happy"
    assert accuracy["labelled_faces"] == 8  # the astronaut in each of the 8 frames
    # The deterministic frames: every astronaut is found and read as happy.
    assert (accuracy["pipeline_found"], accuracy["pipeline_correct"]) == (8, 8)
    assert accuracy["deepface_crops_found"] >= 1
    assert accuracy["deepface_crops_correct"] >= 1  # mini-Xception reads her as happy
    text = format_face_bench(result)
    assert "DeepFace's emotion weights are random here (no download): speed only." in text
    assert "detect + landmarks + emotion" in text


@pytest.mark.model
def test_bench_faces_haar_without_deepface(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bench", "faces", "--batch-sizes", "2", "--seconds", "0", "--repeats", "1"]
    code = main([*args, "--detector", "haar", "--device", "cpu", "--no-deepface", "--threads", "1"])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("face bench: detector haar, model mini_xception, device cpu")
    assert "torch threads 1, OpenCV threads 1" in lines[0]
    assert any(line.startswith("detect (haar) + emotion") for line in lines)
    assert "DeepFace" not in out


@pytest.mark.unit
def test_bench_faces_rejects_bad_batch_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["bench", "faces", "--batch-sizes", "0,8"])
    assert e.value.code == 2
    assert "expected numbers >= 1" in capsys.readouterr().err


@pytest.mark.model
def test_bench_voice_tiny_model(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "voice", "--seconds", "4", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads(out)
    for key in (
        "audio_secs",
        "segments",
        "vad_prosody_cpu_pct_of_core",
        "emotion_model",
        "emotion_cpu_ms_per_voiced_sec",
    ):
        assert key in result
    assert result["audio_secs"] == pytest.approx(4.0)
    assert result["emotion_model"] == "tiny random wav2vec2 (105k params)"
    text = format_voice_bench(result)
    assert text.splitlines()[0].startswith("audio ")
    assert "ms per voiced second" in text
