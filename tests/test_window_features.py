"""Windowed features on scripted frame sequences."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from analyzers.face.geometry.window import FeatureWindow, FrameFeatures, window_features

pytestmark = pytest.mark.unit


def scripted() -> list[FrameFeatures]:
    """50 frames at 10 fps, ts 0.1..5.0; the first 10 have no face (with junk values)."""
    frames = []
    for i in range(50):
        ts = round(0.1 * (i + 1), 10)
        if i < 10:
            # Values a no-face frame must never contribute (seed B counted zeros).
            frames.append(
                FrameFeatures(
                    ts=ts,
                    face_present=False,
                    blink=True,
                    au12=9.0,
                    au06=9.0,
                    head_pitch_deg=90.0,
                    looking_away=True,
                    labels=("joy",),
                )
            )
            continue
        k = i - 10  # 0..39
        frames.append(
            FrameFeatures(
                ts=ts,
                face_present=True,
                blink=k in (5, 25),
                au12=0.05 if k < 10 else 0.0,
                au06=0.05 if k < 4 else 0.0,
                head_pitch_deg=10.0 if k < 20 else 20.0,
                looking_away=k >= 32,
                labels=("joy",) if k < 4 else (("neutral",) if k < 38 else ("sadness", "joy")),
            )
        )
    return frames


def test_scripted_window_exact_values() -> None:
    result = window_features(scripted(), now=5.0)
    assert result.frames == 50
    assert result.face_frames == 40
    assert result.observed_secs == pytest.approx(4.0)
    assert result.blink_freq == pytest.approx(2 / 4.0)
    assert result.smile_freq == pytest.approx(10 / 40)
    assert result.avg_head_tilt == pytest.approx(15.0)
    assert result.percent_away == pytest.approx(100.0 * 8 / 40)
    assert result.emotion_counts == Counter({"neutral": 34, "joy": 6, "sadness": 2})
    assert (result.window_start, result.window_end) == (0.0, 5.0)


def test_smile_gated_by_au06() -> None:
    result = window_features(scripted(), now=5.0, require_au06=True)
    assert result.smile_freq == pytest.approx(4 / 40)


def test_window_excludes_old_frames() -> None:
    # Window (2.5, 5.0]: frames k = 15..39 (25 frames), no no-face frames.
    result = window_features(scripted(), now=5.0, window_secs=2.5)
    assert result.face_frames == result.frames == 25
    assert result.blink_freq == pytest.approx(1 / 2.5)
    assert result.smile_freq == 0.0
    assert result.avg_head_tilt == pytest.approx((5 * 10.0 + 20 * 20.0) / 25)


def test_no_face_gives_none() -> None:
    frames = [
        FrameFeatures(ts=0.1 * i, face_present=False, looking_away=True) for i in range(1, 40)
    ]
    result = window_features(frames, now=4.0)
    assert result.frames == 39
    assert result.face_frames == 0
    assert result.observed_secs == 0.0
    assert result.blink_freq is None
    assert result.smile_freq is None
    assert result.avg_head_tilt is None
    assert result.percent_away is None
    assert result.emotion_counts is None


def test_blinks_unobservable_gives_none() -> None:
    frames = [
        FrameFeatures(ts=0.5 * i, face_present=True, blinks_observable=False) for i in range(1, 11)
    ]
    result = window_features(frames, now=5.0)
    assert result.blink_freq is None
    # No AU12 value and no rule labels on any frame: unknown, not 0.
    assert result.smile_freq is None
    assert result.emotion_counts is None
    assert result.observed_secs == pytest.approx(5.0)


def test_frames_without_au12_or_labels_are_left_out() -> None:
    # 4 frames before a baseline (no AU12, no labels), then 6 with values.
    frames = [FrameFeatures(ts=0.1 * (i + 1), face_present=True) for i in range(4)]
    frames += [
        FrameFeatures(
            ts=0.1 * (i + 5),
            face_present=True,
            au12=0.05 if i < 3 else 0.0,
            labels=("joy",) if i < 3 else ("neutral",),
        )
        for i in range(6)
    ]
    result = window_features(frames, now=1.0)
    assert result.face_frames == 10
    assert result.smile_freq == pytest.approx(3 / 6)
    assert result.emotion_counts == Counter({"joy": 3, "neutral": 3})


def test_observed_time_caps_stalls() -> None:
    stalled = [FrameFeatures(ts=0.5, face_present=True)]
    # A 3.5 s stall counts as 1 s; the last frame stands for the median interval.
    stalled += [FrameFeatures(ts=4.0 + 0.1 * i, face_present=True) for i in range(4)]
    result = window_features(stalled, now=5.0)
    assert result.observed_secs == pytest.approx(1.0 + 0.1 * 3 + 0.1)


def test_feature_window_keeps_only_recent_frames() -> None:
    window = FeatureWindow(window_secs=5.0)
    for frame in scripted():
        window.add(frame)
    window.add(FrameFeatures(ts=7.0, face_present=True, head_pitch_deg=-4.0))
    result = window.features(now=7.0)
    # (2.0, 7.0]: k = 10..39 (ts 2.1..5.0) plus the new frame.
    assert result.frames == 31
    assert result.face_frames == 31
    assert result.avg_head_tilt == pytest.approx((10 * 10.0 + 20 * 20.0 - 4.0) / 31)


def random_frames(n: int, seed: int = 0) -> list[FrameFeatures]:
    """Irregular frames (some stalls) with every field sometimes missing."""
    rng = np.random.default_rng(seed)
    frames, ts = [], 0.0
    for _ in range(n):
        ts += float(rng.choice([rng.uniform(0.02, 0.15), rng.uniform(0.5, 2.5)], p=[0.9, 0.1]))
        present = bool(rng.random() < 0.8)
        frames.append(
            FrameFeatures(
                ts=ts,
                face_present=present,
                blink=bool(rng.random() < 0.05),
                blinks_observable=bool(rng.random() < 0.97),
                au12=None if rng.random() < 0.2 else float(rng.uniform(0.0, 2.0)),
                au06=None if rng.random() < 0.2 else float(rng.uniform(0.0, 2.0)),
                head_pitch_deg=None if rng.random() < 0.1 else float(rng.normal(5.0, 10.0)),
                looking_away=None if rng.random() < 0.1 else bool(rng.random() < 0.3),
                labels=tuple(
                    str(label)
                    for label in rng.choice(["joy", "neutral", "sadness"], size=rng.integers(0, 3))
                ),
            )
        )
    return frames


@pytest.mark.parametrize("require_au06", [False, True])
def test_running_totals_match_the_pure_function(require_au06: bool) -> None:
    window = FeatureWindow(
        window_secs=3.0, smile_threshold=1.0, require_au06=require_au06, au06_threshold=0.5
    )
    frames = random_frames(800)
    for i, frame in enumerate(frames):
        window.add(frame)
        fast = window.features(frame.ts)
        pure = window_features(
            frames[: i + 1],
            frame.ts,
            window_secs=3.0,
            smile_threshold=1.0,
            require_au06=require_au06,
            au06_threshold=0.5,
        )
        assert (fast.frames, fast.face_frames) == (pure.frames, pure.face_frames)
        assert fast.observed_secs == pytest.approx(pure.observed_secs, abs=1e-9)
        for name in ("blink_freq", "smile_freq", "avg_head_tilt", "percent_away"):
            a, b = getattr(fast, name), getattr(pure, name)
            assert (a is None) == (b is None), (i, name)
            if a is not None:
                assert a == pytest.approx(b, rel=1e-9, abs=1e-9), (i, name)
        assert fast.emotion_counts == pure.emotion_counts


def test_other_now_or_thresholds_use_the_pure_function() -> None:
    window = FeatureWindow(window_secs=5.0)
    for frame in scripted():
        window.add(frame)
    assert window.features(4.5) == window_features(scripted(), 4.5)
    assert window.features(5.0, require_au06=True) == window_features(
        scripted(), 5.0, require_au06=True
    )
