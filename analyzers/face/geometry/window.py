"""Windowed behaviour features per participant, seed B's features done right.

Over a trailing window (default 5 s) of per-frame records:

- ``blink_freq``: blink **events** (from :class:`~analyzers.face.geometry.blinks.
  BlinkDetector`) per second of *observed* time; None when the frames' sample rate is
  too low to see blinks (see :mod:`analyzers.face.geometry.blinks`).
- ``smile_freq``: share (0-1) of face-present frames whose AU12 proxy is above
  ``smile_threshold``, optionally also requiring the AU06 proxy above ``au06_threshold``
  (a Duchenne smile).
- ``avg_head_tilt``: mean head pitch of face-present frames, degrees (+ = looking down).
- ``percent_away``: percentage (0-100) of face-present frames flagged as looking away.
- ``emotion_counts``: counts of AU-rule labels over face-present frames (a frame can
  add several labels; "neutral" when none fired).

Frames without a face are **excluded**, never counted as zeros (seed B counted them as
"looking at the camera"). Observed time is the sum, over face-present frames, of the
time to the next frame (the last frame gets the median frame interval), each capped at
``max_frame_gap_secs`` so a stalled stream does not count as watching. When no face was
present in the window every feature is None. Unlike seed B, features are computed from
the first face frame on; callers can require ``observed_secs`` or ``face_frames``.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

#: Default window length, seconds (seed B's).
WINDOW_SECS = 5.0
#: Default AU12 proxy threshold for "smiling": corner lift above the lip centre of 2 %
#: of the inter-ocular distance, on a baseline-subtracted proxy. Not calibrated on data.
SMILE_THRESHOLD = 0.02
#: Default AU06 proxy threshold for the optional Duchenne gate (baseline-subtracted).
AU06_THRESHOLD = 0.01
#: Longest interval one frame can stand for in observed time, seconds.
MAX_FRAME_GAP_SECS = 1.0


@dataclass(frozen=True, slots=True)
class FrameFeatures:
    """One frame's inputs to the window, for one participant.

    Attributes:
        ts: Seconds, increasing.
        face_present: False when no face was found; the other fields are then ignored.
        blink: True on the frame where a blink event ended.
        blinks_observable: The blink detector's ``observable`` flag at this frame.
        au12: AU12 (lip corner pull) proxy, or None.
        au06: AU06 (cheek raise) proxy, or None.
        head_pitch_deg: Head pitch, degrees (+ down), or None.
        looking_away: Gaze flag from :func:`~analyzers.face.geometry.pose.looking_away`.
        labels: AU-rule labels that fired on this frame.
    """

    ts: float
    face_present: bool
    blink: bool = False
    blinks_observable: bool = True
    au12: float | None = None
    au06: float | None = None
    head_pitch_deg: float | None = None
    looking_away: bool | None = None
    labels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class WindowFeatures:
    """Features of one window; every feature is None when no face was present.

    Attributes:
        window_start: Start of the window, seconds (exclusive).
        window_end: End of the window, seconds (inclusive; the ``now`` passed in).
        frames: Frames in the window.
        face_frames: Frames with a face (the denominator of the shares).
        observed_secs: Seconds of face-present time.
        blink_freq: Blinks per observed second, or None.
        smile_freq: Share of face frames smiling, 0-1, or None.
        avg_head_tilt: Mean head pitch, degrees, or None.
        percent_away: Percentage of face frames looking away, or None.
        emotion_counts: Label counts over face frames, or None.
    """

    window_start: float
    window_end: float
    frames: int
    face_frames: int
    observed_secs: float
    blink_freq: float | None
    smile_freq: float | None
    avg_head_tilt: float | None
    percent_away: float | None
    emotion_counts: Counter[str] | None


def _observed_secs(frames: Sequence[FrameFeatures], max_gap_secs: float) -> float:
    if not frames:
        return 0.0
    ts = np.array([f.ts for f in frames])
    gaps = np.diff(ts)
    last = float(np.median(gaps)) if gaps.size else 0.0
    cover = np.minimum(np.append(gaps, last), max_gap_secs)
    present = np.array([f.face_present for f in frames])
    return float(cover[present].sum())


def window_features(
    frames: Iterable[FrameFeatures],
    now: float,
    *,
    window_secs: float = WINDOW_SECS,
    smile_threshold: float = SMILE_THRESHOLD,
    require_au06: bool = False,
    au06_threshold: float = AU06_THRESHOLD,
    max_frame_gap_secs: float = MAX_FRAME_GAP_SECS,
) -> WindowFeatures:
    """Features over the frames with ``now - window_secs < ts <= now``.

    Args:
        frames: One participant's frames, in time order (others are filtered out).
        now: End of the window, seconds.
        window_secs: Window length.
        smile_threshold: AU12 proxy above which a frame counts as smiling.
        require_au06: Also require the AU06 proxy above ``au06_threshold``.
        au06_threshold: AU06 threshold for the gate.
        max_frame_gap_secs: Cap on one frame's share of observed time.

    Returns:
        The window's features.
    """
    start = now - window_secs
    in_window = [f for f in frames if start < f.ts <= now]
    faces = [f for f in in_window if f.face_present]
    observed = _observed_secs(in_window, max_frame_gap_secs)
    if not faces:
        return WindowFeatures(start, now, len(in_window), 0, 0.0, None, None, None, None, None)

    blink_freq: float | None = None
    if all(f.blinks_observable for f in faces) and observed > 0:
        blink_freq = sum(f.blink for f in faces) / observed

    def smiling(f: FrameFeatures) -> bool:
        if f.au12 is None or f.au12 <= smile_threshold:
            return False
        return not require_au06 or (f.au06 is not None and f.au06 > au06_threshold)

    smile_freq = sum(smiling(f) for f in faces) / len(faces)
    pitches = [f.head_pitch_deg for f in faces if f.head_pitch_deg is not None]
    away = [f.looking_away for f in faces if f.looking_away is not None]
    counts: Counter[str] = Counter()
    for f in faces:
        counts.update(f.labels)
    return WindowFeatures(
        window_start=start,
        window_end=now,
        frames=len(in_window),
        face_frames=len(faces),
        observed_secs=observed,
        blink_freq=blink_freq,
        smile_freq=smile_freq,
        avg_head_tilt=float(np.mean(pitches)) if pitches else None,
        percent_away=100.0 * sum(away) / len(away) if away else None,
        emotion_counts=counts,
    )


class FeatureWindow:
    """Trailing window of one participant's frames; runs inline on the frame path.

    Keeps only the frames still inside the window and computes
    :func:`window_features` on demand.

    Args:
        window_secs: Window length, seconds.
    """

    def __init__(self, window_secs: float = WINDOW_SECS) -> None:
        """Start empty."""
        self.window_secs = window_secs
        self._frames: deque[FrameFeatures] = deque()

    def add(self, frame: FrameFeatures) -> None:
        """Append a frame and drop frames that left the window.

        Args:
            frame: The newest frame; timestamps must increase.
        """
        self._frames.append(frame)
        while self._frames and self._frames[0].ts <= frame.ts - self.window_secs:
            self._frames.popleft()

    def features(
        self,
        now: float,
        *,
        smile_threshold: float = SMILE_THRESHOLD,
        require_au06: bool = False,
        au06_threshold: float = AU06_THRESHOLD,
        max_frame_gap_secs: float = MAX_FRAME_GAP_SECS,
    ) -> WindowFeatures:
        """Features of the window ending at ``now``; see :func:`window_features`.

        Args:
            now: End of the window, seconds.
            smile_threshold: AU12 proxy above which a frame counts as smiling.
            require_au06: Also require the AU06 proxy above ``au06_threshold``.
            au06_threshold: AU06 threshold for the gate.
            max_frame_gap_secs: Cap on one frame's share of observed time.

        Returns:
            The window's features.
        """
        return window_features(
            self._frames,
            now,
            window_secs=self.window_secs,
            smile_threshold=smile_threshold,
            require_au06=require_au06,
            au06_threshold=au06_threshold,
            max_frame_gap_secs=max_frame_gap_secs,
        )
