"""Stable ids for the faces in one participant's video feed.

One :class:`FaceTracker` per feed turns each frame's face boxes into track ids
``1, 2, 3, ...`` in the order the faces were confirmed, so the sidebar can say
"Room A · face 2" and per-face state (blinks, Kalman filters, baseline) follows the
same person from frame to frame. Pure Python and numpy plus scipy's Hungarian solver;
tens of microseconds per frame, run inline wherever the frame's detections arrive.

**Motion model**: each track keeps its last matched box and a constant-velocity
estimate of the box centre, in pixels per second. At frame time ``ts`` the predicted
centre is ``c + v * (ts - t_matched)`` with the last matched size. The velocity is an
alpha-beta style blend: on a match, ``v_meas = (c_new - c_old) / dt`` and
``v <- v + velocity_gain * (v_meas - v)`` (the first re-match takes ``v_meas``
directly). Prediction is what keeps two faces that pass each other on their own ids:
near the crossing point their *last* boxes are equally close to both detections, but
their *predicted* boxes are not.

**Cost** of pairing a track's predicted box ``p`` with a detected box ``d``:
``cost = (1 - IoU(p, d)) + centre_weight * |c_d - c_p| / s_p`` with ``s_p`` the track's
face size ``sqrt(w * h)``. A pair is allowed only when the normalised centre distance
``|c_d - c_p| / s_p`` is at most ``max_centre_dist`` (default 1.0 face sizes); disallowed
pairs never match. Assignment minimises the total cost with
``scipy.optimize.linear_sum_assignment`` in two rounds: confirmed tracks first, then the
still-tentative ones on the detections left over, so a one-frame false positive can never
take a detection from an established face.

**Lifecycle**:

- A detection no track takes starts a *tentative* track. It needs ``min_hits``
  consecutive matched frames (default 2), in ``min_detections`` of which (default 2)
  the detector itself found it rather than the face being followed from its previous
  landmarks, before it is confirmed and given the next id;
  a tentative track that misses a single frame is dropped. So a one-frame false
  positive never gets an id, and ids are not used up by them. On the frames before
  confirmation the detection's id is ``None``: the caller skips it (the first
  ``min_hits - 1`` frames of a new face are not reported).
- A confirmed track that gets no detection is *missing*; it keeps its id for up to
  ``max_missed_secs`` (default 2 s) after its last match, its predicted box still
  competing for detections (its box keeps moving at the last velocity, so a face that
  vanishes mid-movement and reappears where it stopped may fall outside the gate and
  come back under a new id). Past that it ends, reported once in
  :attr:`TrackUpdate.ended`, and the face gets a new id if it comes back. Ids are never
  reused.

Timestamps are seconds and may be irregularly spaced; they must not go backwards.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

#: Seconds a confirmed track survives without a matching detection.
TRACK_MAX_MISSED_SECS = 2.0
#: Consecutive matched frames before a new track gets an id.
TRACK_MIN_HITS = 2
#: Detector runs that must find a new face before it gets an id (see TrackerParams).
TRACK_MIN_DETECTIONS = 2
#: Largest centre distance, in face sizes, between a predicted and a detected box.
TRACK_MAX_CENTRE_DIST = 1.0
#: Weight of the normalised centre distance against ``1 - IoU`` in the cost.
TRACK_CENTRE_WEIGHT = 1.0
#: Share of each new velocity measurement blended into the velocity estimate.
TRACK_VELOCITY_GAIN = 0.5

#: A face box ``(x, y, w, h)`` in pixels.
Box = tuple[float, float, float, float]

# Cost for disallowed pairs; larger than any allowed cost (at most 1 + weight * dist).
_FORBIDDEN = 1e9


class TrackerParams(BaseModel):
    """Settings for :class:`FaceTracker`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_missed_secs: float = Field(
        TRACK_MAX_MISSED_SECS,
        ge=0,
        description="Seconds a confirmed track keeps its id without a matching detection.",
    )
    min_hits: int = Field(
        TRACK_MIN_HITS,
        ge=1,
        description="Consecutive matched frames before a new track is confirmed and numbered.",
    )
    min_detections: int = Field(
        TRACK_MIN_DETECTIONS,
        ge=1,
        description="Frames in which the detector itself found a new face before it is "
        "confirmed (at most min_hits count). Between detector runs faces are followed "
        "from their landmarks, and a detector false positive (a patterned shirt) followed "
        "that way would otherwise be confirmed on the next frame; a real face is found "
        "again by the next run.",
    )
    max_centre_dist: float = Field(
        TRACK_MAX_CENTRE_DIST,
        gt=0,
        description="Largest predicted-to-detected centre distance, in face sizes "
        "(sqrt(w h) of the track's box), for a match.",
    )
    centre_weight: float = Field(
        TRACK_CENTRE_WEIGHT,
        ge=0,
        description="Weight of the normalised centre distance against 1 - IoU in the cost.",
    )
    velocity_gain: float = Field(
        TRACK_VELOCITY_GAIN,
        ge=0,
        le=1,
        description="Blend of each new centre-velocity measurement into the estimate; "
        "0 disables motion prediction.",
    )


@dataclass(frozen=True, slots=True)
class TrackUpdate:
    """What one frame did to the tracks.

    Attributes:
        ids: One entry per input box, in input order: the confirmed track id, or None
            for a box on a tentative track (not reported yet).
        missing: Ids of confirmed tracks alive but unmatched this frame; their per-face
            state should get a "no face" tick.
        ended: Ids of tracks that ended at this frame (unmatched for longer than
            ``max_missed_secs``); their per-face state can be dropped.
    """

    ids: tuple[int | None, ...]
    missing: tuple[int, ...]
    ended: tuple[int, ...]


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two ``(x, y, w, h)`` boxes.

    Args:
        a: First box.
        b: Second box.

    Returns:
        IoU in [0, 1]; 0 when either box is empty.
    """
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = min(ax + aw, bx + bw) - max(ax, bx)
    ih = min(ay + ah, by + bh) - max(ay, by)
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def _as_box(box: Sequence[float]) -> Box:
    x, y, w, h = (float(v) for v in box)
    return (x, y, w, h)


def _hungarian(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # scipy.optimize takes about 0.3 s to import: imported on first use (or ahead of it,
    # off the event loop, by analyzers.face.track_state.preload), not with this module,
    # which the server imports before it can answer.
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(cost)
    return rows, cols


class _Track:
    __slots__ = ("box", "detections", "hits", "id", "last_ts", "velocity")

    def __init__(self, box: Box, ts: float, detected: bool) -> None:
        self.box = box
        self.last_ts = ts
        self.velocity: tuple[float, float] | None = None
        self.hits = 1
        self.detections = int(detected)
        self.id: int | None = None

    def predicted(self, ts: float) -> Box:
        x, y, w, h = self.box
        if self.velocity is None:
            return self.box
        dt = ts - self.last_ts
        return (x + self.velocity[0] * dt, y + self.velocity[1] * dt, w, h)

    def matched(self, box: Box, ts: float, gain: float, detected: bool) -> None:
        dt = ts - self.last_ts
        if dt > 0 and gain > 0:
            vx = (box[0] + box[2] / 2 - self.box[0] - self.box[2] / 2) / dt
            vy = (box[1] + box[3] / 2 - self.box[1] - self.box[3] / 2) / dt
            if self.velocity is None:
                self.velocity = (vx, vy)
            else:
                ox, oy = self.velocity
                self.velocity = (ox + gain * (vx - ox), oy + gain * (vy - oy))
        self.box = box
        self.last_ts = ts
        self.hits += 1
        self.detections += detected


class FaceTracker:
    """Assigns stable ids to the faces of one participant feed; see the module docstring.

    Runs inline on the main process's event loop thread (under 0.1 ms per frame for a
    few faces); not thread-safe.

    Args:
        params: Matching and lifecycle settings.
    """

    def __init__(self, params: TrackerParams | None = None) -> None:
        """Start with no tracks; the first confirmed face gets id 1."""
        self.params = params or TrackerParams()
        self._tracks: list[_Track] = []
        self._next_id = 1
        self._last_ts: float | None = None

    @property
    def active_ids(self) -> tuple[int, ...]:
        """Ids of the confirmed tracks still alive (matched or missing), ascending."""
        return tuple(sorted(t.id for t in self._tracks if t.id is not None))

    def _cost(self, tracks: Sequence[_Track], boxes: Sequence[Box], ts: float) -> np.ndarray:
        p = self.params
        cost = np.full((len(tracks), len(boxes)), _FORBIDDEN)
        for i, track in enumerate(tracks):
            pred = track.predicted(ts)
            px, py, pw, ph = pred
            size = math.sqrt(pw * ph)
            if size <= 0:
                continue
            for j, box in enumerate(boxes):
                dx = box[0] + box[2] / 2 - px - pw / 2
                dy = box[1] + box[3] / 2 - py - ph / 2
                dist = math.hypot(dx, dy) / size
                if dist <= p.max_centre_dist:
                    cost[i, j] = 1.0 - iou(pred, box) + p.centre_weight * dist
        return cost

    def _assign(
        self, tracks: Sequence[_Track], boxes: Sequence[Box], free: list[int], ts: float
    ) -> list[tuple[_Track, int]]:
        if not tracks or not free:
            return []
        cost = self._cost(tracks, [boxes[j] for j in free], ts)
        rows, cols = _hungarian(cost)
        return [
            (tracks[r], free[c])
            for r, c in zip(rows.tolist(), cols.tolist(), strict=True)
            if cost[r, c] < _FORBIDDEN
        ]

    def update(
        self,
        ts: float,
        boxes: Sequence[Sequence[float]],
        detected: Sequence[bool] | None = None,
    ) -> TrackUpdate:
        """Match one frame's face boxes to the tracks.

        Args:
            ts: Frame time in seconds; must not go backwards.
            boxes: The frame's face boxes ``(x, y, w, h)`` in pixels; empty when no
                face was found.
            detected: Per box, whether the detector found it this frame (False: followed
                from the previous frame's landmarks). None: all were detected.

        Returns:
            The per-box ids and the missing and ended track ids.

        Raises:
            ValueError: If ``ts`` is earlier than the previous frame's.
        """
        if self._last_ts is not None and ts < self._last_ts:
            raise ValueError("timestamps must not go backwards")
        self._last_ts = ts
        p = self.params
        frame_boxes = [_as_box(box) for box in boxes]
        found = [True] * len(frame_boxes) if detected is None else list(detected)
        if len(found) != len(frame_boxes):
            raise ValueError("detected must have one entry per box")
        ended: list[int] = []
        alive: list[_Track] = []
        for track in self._tracks:
            if track.id is not None and ts - track.last_ts > p.max_missed_secs:
                ended.append(track.id)
            else:
                alive.append(track)
        confirmed = [t for t in alive if t.id is not None]
        tentative = [t for t in alive if t.id is None]

        free = list(range(len(frame_boxes)))
        matches = self._assign(confirmed, frame_boxes, free, ts)
        taken = {j for _, j in matches}
        free = [j for j in free if j not in taken]
        matches += self._assign(tentative, frame_boxes, free, ts)
        taken = {j for _, j in matches}

        ids: list[int | None] = [None] * len(frame_boxes)
        matched: set[int] = set()
        for track, j in matches:
            track.matched(frame_boxes[j], ts, p.velocity_gain, found[j])
            matched.add(id(track))
            if (
                track.id is None
                and track.hits >= p.min_hits
                and track.detections >= min(p.min_detections, p.min_hits)
            ):
                track.id = self._next_id
                self._next_id += 1
            ids[j] = track.id
        # A tentative track must be matched on consecutive frames.
        self._tracks = [t for t in alive if t.id is not None or id(t) in matched]
        for j, box in enumerate(frame_boxes):
            if j in taken:
                continue
            track = _Track(box, ts, found[j])
            if p.min_hits <= 1 and found[j]:
                track.id = self._next_id
                self._next_id += 1
                ids[j] = track.id
            self._tracks.append(track)
        missing = sorted(t.id for t in confirmed if id(t) not in matched and t.id is not None)
        return TrackUpdate(tuple(ids), tuple(missing), tuple(sorted(ended)))
