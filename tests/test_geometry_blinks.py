"""Blink events from synthetic EAR series (30 fps, seeded noise)."""

from __future__ import annotations

import numpy as np
import pytest

from analyzers.face.geometry.blinks import BlinkDetector, BlinkEvent, BlinkParams

pytestmark = pytest.mark.unit

FPS = 30.0
OPEN_EAR = 0.30
NOISE = 0.01


def ear_series(
    secs: float, blinks: list[float], closures: list[tuple[float, float]] = (), fps: float = FPS
) -> tuple[np.ndarray, np.ndarray]:
    """Open EAR with noise, 0.3 s blink dips starting at ``blinks``, long ``closures``."""
    rng = np.random.default_rng(0)
    ts = np.arange(0.0, secs, 1.0 / fps)
    ear = OPEN_EAR + rng.normal(0.0, NOISE, ts.size)
    for start in blinks:
        phase = (ts - start) / 0.3
        inside = (phase >= 0) & (phase <= 1)
        ear[inside] -= 0.22 * np.sin(np.pi * phase[inside])
    for start, end in closures:
        ear[(ts >= start) & (ts < end)] = 0.05 + rng.normal(0.0, 0.005)
    return ts, ear


def run(detector: BlinkDetector, ts: np.ndarray, ear: np.ndarray) -> list[BlinkEvent]:
    events = [detector.update(float(e), float(t)) for t, e in zip(ts, ear, strict=True)]
    return [e for e in events if e is not None]


def test_counts_known_blinks_exactly() -> None:
    blinks = [2.0, 4.5, 7.0, 9.2, 12.0, 15.5]
    ts, ear = ear_series(18.0, blinks)
    detector = BlinkDetector()
    events = run(detector, ts, ear)
    assert len(events) == len(blinks)
    for event, start in zip(events, blinks, strict=True):
        assert start < event.start_ts < event.end_ts < start + 0.35
        assert 0.05 <= event.max_closed_secs <= 0.5
    assert detector.open_ear == pytest.approx(OPEN_EAR, abs=0.01)
    assert detector.observable


def test_long_closure_is_not_a_blink() -> None:
    ts, ear = ear_series(10.0, blinks=[8.0], closures=[(3.0, 4.0)])
    events = run(BlinkDetector(), ts, ear)
    assert len(events) == 1
    assert events[0].start_ts > 8.0


def test_noise_alone_gives_no_blinks() -> None:
    ts, ear = ear_series(30.0, blinks=[])
    assert run(BlinkDetector(), ts, ear) == []


def test_adapts_to_a_low_open_ear() -> None:
    # Narrow eyes (open EAR 0.2): a fixed 0.21 threshold would read "closed" throughout.
    ts, ear = ear_series(10.0, blinks=[3.0, 6.0])
    ear = ear * (0.2 / OPEN_EAR)
    assert len(run(BlinkDetector(), ts, ear)) == 2


def test_missing_face_during_closure_cancels_it() -> None:
    ts, ear = ear_series(6.0, blinks=[3.0])
    values: list[float | None] = [float(e) for e in ear]
    mid = int(np.argmin(ear))
    values[mid] = None
    detector = BlinkDetector()
    events = [detector.update(e, float(t)) for t, e in zip(ts, values, strict=True)]
    assert [e for e in events if e is not None] == []


def test_low_frame_rate_is_not_observable() -> None:
    ts, ear = ear_series(20.0, blinks=[], fps=2.0)
    detector = BlinkDetector()
    run(detector, ts, ear)
    assert detector.sample_fps == pytest.approx(2.0)
    assert not detector.observable
    assert BlinkDetector(BlinkParams(min_observable_fps=1.0)).observable is False  # no samples


def test_no_detection_before_baseline() -> None:
    detector = BlinkDetector(BlinkParams(min_baseline_samples=5))
    assert detector.open_ear is None
    for i, e in enumerate([0.3, 0.05, 0.3, 0.3]):
        assert detector.update(e, i / FPS) is None
    assert not detector.is_closed
