"""Windowed behaviour features per participant, seed B's features done right.

Over a trailing window (default 5 s) of per-frame records:

- ``blink_freq``: blink **events** (from :class:`~analyzers.face.geometry.blinks.
  BlinkDetector`) per second of *observed* time; None when the frames' sample rate is
  too low to see blinks (see :mod:`analyzers.face.geometry.blinks`).
- ``smile_freq``: share (0-1) of face-present frames whose AU12 value is above
  ``smile_threshold``, optionally also requiring the AU06 value above ``au06_threshold``
  (a Duchenne smile). Frames whose AU12 value is unknown (None, e.g. before the
  person's neutral baseline is calibrated) are left out of the share; None when no
  frame had one. The values and thresholds must be on the same scale: the defaults are
  for baseline-subtracted proxies, :mod:`analyzers.face.track_state` passes 0-5
  intensities with its own threshold.
- ``avg_head_tilt``: mean head pitch of face-present frames, degrees (+ = looking down).
- ``percent_away``: percentage (0-100) of face-present frames flagged as looking away.
- ``emotion_counts``: counts of AU-rule labels over face-present frames (a frame can
  add several labels; "neutral" when none fired). A frame with no labels had no rules
  evaluated (e.g. no baseline yet) and adds nothing; None when no frame had labels.

Frames without a face are **excluded**, never counted as zeros (seed B counted them as
"looking at the camera"). Observed time is the sum, over face-present frames, of the
time to the next frame (the last frame gets the median frame interval), each capped at
``max_frame_gap_secs`` so a stalled stream does not count as watching. When no face was
present in the window every feature is None. Unlike seed B, features are computed from
the first face frame on; callers can require ``observed_secs`` or ``face_frames``.
"""

from __future__ import annotations

import bisect
import statistics
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

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
        au12: AU12 (lip corner pull) value on ``smile_threshold``'s scale, or None
            when unknown.
        au06: AU06 (cheek raise) value on ``au06_threshold``'s scale, or None.
        head_pitch_deg: Head pitch, degrees (+ down), or None.
        looking_away: Gaze flag from :func:`~analyzers.face.geometry.pose.looking_away`.
        labels: AU-rule labels that fired on this frame (``("neutral",)`` when none
            fired); empty when the rules were not evaluated.
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
        smile_freq: Share of face frames with an AU12 value that are smiling, 0-1,
            or None.
        avg_head_tilt: Mean head pitch, degrees, or None.
        percent_away: Percentage of face frames looking away, or None.
        emotion_counts: Label counts over face frames with labels, or None.
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
    # Plain loops: on a few hundred frames they beat numpy's per-call overhead, and
    # this runs on every frame of every face.
    ts = [f.ts for f in frames]
    gaps = [later - earlier for earlier, later in zip(ts, ts[1:], strict=False)]
    gaps.append(statistics.median(gaps) if gaps else 0.0)
    total = 0.0
    for f, gap in zip(frames, gaps, strict=True):
        if f.face_present:
            total += gap if gap < max_gap_secs else max_gap_secs
    return total


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
    if observed > 0 and all(f.blinks_observable for f in faces):
        blink_freq = sum(f.blink for f in faces) / observed

    smile_frames = smiles = 0
    pitch_sum, pitches = 0.0, 0
    away_frames = aways = 0
    labelled = 0
    label_counts: dict[str, int] = {}
    for f in faces:
        if f.au12 is not None:
            smile_frames += 1
            if f.au12 > smile_threshold and (
                not require_au06 or (f.au06 is not None and f.au06 > au06_threshold)
            ):
                smiles += 1
        if f.head_pitch_deg is not None:
            pitch_sum += f.head_pitch_deg
            pitches += 1
        if f.looking_away is not None:
            away_frames += 1
            aways += f.looking_away
        if f.labels:
            labelled += 1
            for label in f.labels:
                label_counts[label] = label_counts.get(label, 0) + 1
    return WindowFeatures(
        window_start=start,
        window_end=now,
        frames=len(in_window),
        face_frames=len(faces),
        observed_secs=observed,
        blink_freq=blink_freq,
        smile_freq=smiles / smile_frames if smile_frames else None,
        avg_head_tilt=pitch_sum / pitches if pitches else None,
        percent_away=100.0 * aways / away_frames if away_frames else None,
        emotion_counts=Counter(label_counts) if labelled else None,
    )


@dataclass(slots=True)
class _Sums:
    """Running totals over the frames in a :class:`FeatureWindow`."""

    face_frames: int = 0
    blinks: int = 0
    unobservable: int = 0
    smile_frames: int = 0
    smiles: int = 0
    pitches: int = 0
    pitch_sum: float = 0.0
    away_frames: int = 0
    aways: int = 0
    labelled: int = 0
    # Capped time to the next frame, summed over face frames that have a next frame.
    covered_secs: float = 0.0


class FeatureWindow:
    """Trailing window of one participant's frames; runs inline on the frame path.

    Keeps only the frames still inside the window. :meth:`features` at the newest
    frame's timestamp, with the thresholds given here, reads running totals kept up to
    date by :meth:`add` (microseconds, whatever the window holds); any other ``now`` or
    thresholds fall back to :func:`window_features` over the kept frames. Both give the
    same numbers (up to float rounding in the running sums).

    Args:
        window_secs: Window length, seconds.
        smile_threshold: AU12 value above which a frame counts as smiling.
        require_au06: Also require the AU06 value above ``au06_threshold``.
        au06_threshold: AU06 threshold for the gate.
        max_frame_gap_secs: Cap on one frame's share of observed time.
    """

    def __init__(
        self,
        window_secs: float = WINDOW_SECS,
        *,
        smile_threshold: float = SMILE_THRESHOLD,
        require_au06: bool = False,
        au06_threshold: float = AU06_THRESHOLD,
        max_frame_gap_secs: float = MAX_FRAME_GAP_SECS,
    ) -> None:
        """Start empty."""
        self.window_secs = window_secs
        self.smile_threshold = smile_threshold
        self.require_au06 = require_au06
        self.au06_threshold = au06_threshold
        self.max_frame_gap_secs = max_frame_gap_secs
        self._frames: deque[FrameFeatures] = deque()
        # _gaps[i] = _frames[i + 1].ts - _frames[i].ts; _sorted_gaps for the median.
        self._gaps: deque[float] = deque()
        self._sorted_gaps: list[float] = []
        self._sums = _Sums()
        self._label_counts: dict[str, int] = {}

    def _smiling(self, f: FrameFeatures) -> bool:
        if f.au12 is None or f.au12 <= self.smile_threshold:
            return False
        return not self.require_au06 or (f.au06 is not None and f.au06 > self.au06_threshold)

    def _count(self, f: FrameFeatures, sign: int) -> None:
        if not f.face_present:
            return
        s = self._sums
        s.face_frames += sign
        s.blinks += sign * f.blink
        s.unobservable += sign * (not f.blinks_observable)
        if f.au12 is not None:
            s.smile_frames += sign
            s.smiles += sign * self._smiling(f)
        if f.head_pitch_deg is not None:
            s.pitches += sign
            s.pitch_sum = s.pitch_sum + sign * f.head_pitch_deg if s.pitches else 0.0
        if f.looking_away is not None:
            s.away_frames += sign
            s.aways += sign * f.looking_away
        if f.labels:
            s.labelled += sign
            counts = self._label_counts
            for label in f.labels:
                n = counts.get(label, 0) + sign
                if n:
                    counts[label] = n
                else:
                    del counts[label]

    def _cover(self, gap: float) -> float:
        return gap if gap < self.max_frame_gap_secs else self.max_frame_gap_secs

    def add(self, frame: FrameFeatures) -> None:
        """Append a frame and drop frames that left the window.

        Args:
            frame: The newest frame; timestamps must increase.
        """
        frames = self._frames
        if frames:
            last = frames[-1]
            gap = frame.ts - last.ts
            self._gaps.append(gap)
            bisect.insort(self._sorted_gaps, gap)
            if last.face_present:
                self._sums.covered_secs += self._cover(gap)
        frames.append(frame)
        self._count(frame, 1)
        while frames and frames[0].ts <= frame.ts - self.window_secs:
            old = frames.popleft()
            self._count(old, -1)
            if self._gaps:
                gap = self._gaps.popleft()
                del self._sorted_gaps[bisect.bisect_left(self._sorted_gaps, gap)]
                if old.face_present:
                    self._sums.covered_secs -= self._cover(gap)
        if self._sums.face_frames == 0:
            self._sums.covered_secs = 0.0

    def features(
        self,
        now: float,
        *,
        smile_threshold: float | None = None,
        require_au06: bool | None = None,
        au06_threshold: float | None = None,
        max_frame_gap_secs: float | None = None,
    ) -> WindowFeatures:
        """Features of the window ending at ``now``; see :func:`window_features`.

        Args:
            now: End of the window, seconds.
            smile_threshold: AU12 value above which a frame counts as smiling
                (default: the window's).
            require_au06: Also require the AU06 value above ``au06_threshold``
                (default: the window's).
            au06_threshold: AU06 threshold for the gate (default: the window's).
            max_frame_gap_secs: Cap on one frame's share of observed time
                (default: the window's).

        Returns:
            The window's features.
        """
        own = (self.smile_threshold, self.require_au06, self.au06_threshold)
        asked = (
            own[0] if smile_threshold is None else smile_threshold,
            own[1] if require_au06 is None else require_au06,
            own[2] if au06_threshold is None else au06_threshold,
        )
        cap = self.max_frame_gap_secs if max_frame_gap_secs is None else max_frame_gap_secs
        frames = self._frames
        if not frames or now != frames[-1].ts or asked != own or cap != self.max_frame_gap_secs:
            return window_features(
                frames,
                now,
                window_secs=self.window_secs,
                smile_threshold=asked[0],
                require_au06=asked[1],
                au06_threshold=asked[2],
                max_frame_gap_secs=cap,
            )
        s = self._sums
        start = now - self.window_secs
        if s.face_frames == 0:
            return WindowFeatures(start, now, len(frames), 0, 0.0, None, None, None, None, None)
        observed = s.covered_secs
        if frames[-1].face_present:
            observed += self._cover(_sorted_median(self._sorted_gaps))
        observed = max(observed, 0.0)
        return WindowFeatures(
            window_start=start,
            window_end=now,
            frames=len(frames),
            face_frames=s.face_frames,
            observed_secs=observed,
            blink_freq=s.blinks / observed if observed > 0 and s.unobservable == 0 else None,
            smile_freq=s.smiles / s.smile_frames if s.smile_frames else None,
            avg_head_tilt=s.pitch_sum / s.pitches if s.pitches else None,
            percent_away=100.0 * s.aways / s.away_frames if s.away_frames else None,
            emotion_counts=Counter(self._label_counts) if s.labelled else None,
        )


def _sorted_median(values: Sequence[float]) -> float:
    n = len(values)
    if n == 0:
        return 0.0
    mid = n // 2
    return values[mid] if n % 2 else (values[mid - 1] + values[mid]) / 2.0
