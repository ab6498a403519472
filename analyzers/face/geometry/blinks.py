"""Blink events from an eye-aspect-ratio (EAR) time series, one detector per face.

A blink is an *event*: the eye closes, then reopens within a blink's duration. Seed B
counted frames above an AU45 threshold instead, which reads 30 "blinks" a second; here
a blink is counted once, on reopening.

State machine (per face):

- **Open-eye reference**: the median EAR of the most recent open-state samples
  (:attr:`BlinkParams.baseline_samples`), so it adapts to each person's eye shape,
  camera angle and distance. Until :attr:`BlinkParams.min_baseline_samples` samples are
  in, nothing is detected.
- **Closed** when ``EAR < open * closed_ratio`` (default 0.75: a blink takes EAR well
  below 75 % of the person's open value, while noise and small squints stay above).
- **Reopened** when ``EAR > open * (closed_ratio + hysteresis)`` (default 0.85); the gap
  keeps noise around one threshold from splitting one closure into two.
- On reopening, the closure counts as a blink if its duration can lie in
  ``[min_closed_secs, max_closed_secs]`` (default 0.05-0.5 s). Sampling only brackets the
  duration: at least ``last_closed - first_closed``, at most ``reopen - last_open``.
  Longer closures are "eyes closed", not blinks.
- A missing sample (no face) cancels any closure in progress, and no new closure starts
  until an open eye is seen again: neither end of such a blink was observed.

**Frame rate**: a blink keeps the eyelids below 75 % of open for roughly 100-150 ms.
A closure of length ``d`` is sampled at least once only if the frame interval is at most
``d``, so blinks are reliably observable from about **10 fps** up
(:data:`MIN_OBSERVABLE_FPS`). At a sampled rate ``f`` the chance of catching a closure
is about ``d * f``: at 2 fps roughly 20-30 %, so most blinks are invisible and a blink
rate measured there is meaningless. :attr:`BlinkDetector.observable` says which case
applies, from the median interval of recent samples.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

#: Sample rate from which a ~100 ms closure is always sampled at least once.
MIN_OBSERVABLE_FPS = 10.0
BLINK_CLOSED_RATIO = 0.75
BLINK_HYSTERESIS = 0.10
BLINK_MIN_CLOSED_SECS = 0.05
BLINK_MAX_CLOSED_SECS = 0.5


class BlinkParams(BaseModel):
    """Settings for :class:`BlinkDetector`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    closed_ratio: float = Field(
        BLINK_CLOSED_RATIO, gt=0, lt=1, description="Closed when EAR < open EAR x this."
    )
    hysteresis: float = Field(
        BLINK_HYSTERESIS,
        ge=0,
        lt=1,
        description="Reopened when EAR > open EAR x (closed_ratio + hysteresis).",
    )
    min_closed_secs: float = Field(
        BLINK_MIN_CLOSED_SECS, ge=0, description="Shortest closure that counts as a blink."
    )
    max_closed_secs: float = Field(
        BLINK_MAX_CLOSED_SECS, gt=0, description="Longest closure that counts as a blink."
    )
    baseline_samples: int = Field(
        90, ge=1, description="Open-state samples kept for the open-eye EAR median."
    )
    min_baseline_samples: int = Field(
        5, ge=1, description="Open-state samples needed before anything is detected."
    )
    min_observable_fps: float = Field(
        MIN_OBSERVABLE_FPS, gt=0, description="Sample rate below which blinks are unobservable."
    )


@dataclass(frozen=True, slots=True)
class BlinkEvent:
    """One blink, reported on reopening.

    Attributes:
        start_ts: First sample seen closed.
        end_ts: First sample seen open again (when the blink was counted).
        min_closed_secs: Shortest closure consistent with the samples.
        max_closed_secs: Longest closure consistent with the samples.
        min_ear: Lowest EAR during the closure.
    """

    start_ts: float
    end_ts: float
    min_closed_secs: float
    max_closed_secs: float
    min_ear: float


class BlinkDetector:
    """Blink state machine for one face; not thread-safe, runs inline per frame.

    Args:
        params: Thresholds and durations.
    """

    def __init__(self, params: BlinkParams | None = None) -> None:
        """Start in the open state with an empty open-eye reference."""
        self.params = params or BlinkParams()
        self._open_ears: deque[float] = deque(maxlen=self.params.baseline_samples)
        self._intervals: deque[float] = deque(maxlen=30)
        self._last_ts: float | None = None
        self._last_open_ts: float | None = None
        self._closed_since: float | None = None
        self._last_closed_ts: float | None = None
        self._min_ear = float("inf")
        # Medians cached between appends: both are read on every frame.
        self._open_ear: float | None = None
        self._sample_fps: float | None = None
        # After a missing sample a closure may already be under way; wait for an open
        # eye before a new closure can start, so half a blink is not counted.
        self._awaiting_open = False

    @property
    def open_ear(self) -> float | None:
        """The person's open-eye EAR (median of recent open samples), or None yet."""
        if len(self._open_ears) < self.params.min_baseline_samples:
            return None
        if self._open_ear is None:
            self._open_ear = statistics.median(self._open_ears)
        return self._open_ear

    @property
    def sample_fps(self) -> float | None:
        """Sample rate from the median interval of recent samples, or None yet."""
        if not self._intervals:
            return None
        if self._sample_fps is None:
            median = statistics.median(self._intervals)
            self._sample_fps = 0.0 if median <= 0 else 1.0 / median
        return self._sample_fps or None

    @property
    def observable(self) -> bool:
        """Whether the sample rate is high enough to see most blinks."""
        fps = self.sample_fps
        return fps is not None and fps >= self.params.min_observable_fps

    def _add_open(self, ear: float) -> None:
        self._open_ears.append(ear)
        self._open_ear = None

    @property
    def is_closed(self) -> bool:
        """True while a closure is in progress."""
        return self._closed_since is not None

    def update(self, ear: float | None, ts: float) -> BlinkEvent | None:
        """Feed one sample.

        Args:
            ear: Mean EAR of both eyes, or None when there is no face.
            ts: Timestamp in seconds, increasing.

        Returns:
            A :class:`BlinkEvent` on the sample where a blink ends, else None.
        """
        if self._last_ts is not None and ts > self._last_ts:
            self._intervals.append(ts - self._last_ts)
            self._sample_fps = None
        self._last_ts = ts
        if ear is None:
            # The closure's end was not seen, so it cannot be counted.
            self._closed_since = None
            self._last_open_ts = None
            self._awaiting_open = True
            return None
        open_ear = self.open_ear
        if open_ear is None:
            self._add_open(ear)
            self._last_open_ts = ts
            return None
        p = self.params
        if self._awaiting_open:
            if ear > open_ear * (p.closed_ratio + p.hysteresis):
                self._awaiting_open = False
                self._last_open_ts = ts
            return None
        if self._closed_since is None:
            if ear < open_ear * p.closed_ratio:
                self._closed_since = ts
                self._last_closed_ts = ts
                self._min_ear = ear
                return None
            # Only clearly open samples feed the reference, so partial closures
            # do not drag it down.
            if ear > open_ear * (p.closed_ratio + p.hysteresis):
                self._add_open(ear)
            self._last_open_ts = ts
            return None
        if ear <= open_ear * (p.closed_ratio + p.hysteresis):
            self._last_closed_ts = ts
            self._min_ear = min(self._min_ear, ear)
            return None
        start = self._closed_since
        last_closed = self._last_closed_ts if self._last_closed_ts is not None else start
        shortest = last_closed - start
        longest = ts - (self._last_open_ts if self._last_open_ts is not None else start)
        self._closed_since = None
        self._last_open_ts = ts
        self._add_open(ear)
        if longest >= p.min_closed_secs and shortest <= p.max_closed_secs:
            return BlinkEvent(start, ts, shortest, longest, self._min_ear)
        return None
