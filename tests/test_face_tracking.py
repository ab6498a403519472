"""Face track ids: crossing faces, short and long disappearances, false positives."""

from __future__ import annotations

from collections.abc import Container

import numpy as np
import pytest

from analyzers.face.tracking import FaceTracker, TrackerParams, iou

pytestmark = pytest.mark.unit

FPS = 10.0
SIZE = 60.0


def box(cx: float, cy: float, size: float = SIZE) -> tuple[float, float, float, float]:
    return (cx - size / 2, cy - size / 2, size, size)


def crossing(
    secs: float = 3.0, dy: float = 0.0
) -> tuple[np.ndarray, list[tuple[float, float]], list[tuple[float, float]]]:
    """Face A moves right, face B left; they pass through each other at t = secs / 2."""
    ts = np.arange(0.0, secs, 1.0 / FPS)
    speed = 300.0 / secs
    a = [(20.0 + speed * t, 100.0) for t in ts]
    b = [(320.0 - speed * t, 100.0 + dy) for t in ts]
    return ts, a, b


def run_pair(
    tracker: FaceTracker,
    ts: np.ndarray,
    a: list[tuple[float, float]],
    b: list[tuple[float, float]],
    hidden_b: Container[int] = frozenset(),
) -> tuple[list[int | None], list[int | None]]:
    """Feed both faces each frame in a shuffled order; return each face's id per frame."""
    rng = np.random.default_rng(0)
    ids_a: list[int | None] = []
    ids_b: list[int | None] = []
    for i, t in enumerate(ts):
        faces = [("a", box(*a[i]))] + ([] if i in hidden_b else [("b", box(*b[i]))])
        order = rng.permutation(len(faces))
        faces = [faces[k] for k in order]
        update = tracker.update(float(t), [f[1] for f in faces])
        got = {name: track_id for (name, _), track_id in zip(faces, update.ids, strict=True)}
        ids_a.append(got["a"])
        ids_b.append(got.get("b"))
    return ids_a, ids_b


@pytest.mark.parametrize("dy", [0.0, 10.0])
def test_crossing_faces_keep_their_ids(dy: float) -> None:
    ts, a, b = crossing(dy=dy)
    ids_a, ids_b = run_pair(FaceTracker(), ts, a, b)
    # Both are confirmed on the second frame (min_hits = 2), then never change.
    assert ids_a[0] is None and ids_b[0] is None
    assert set(ids_a[1:]) == {ids_a[1]}
    assert set(ids_b[1:]) == {ids_b[1]}
    assert {ids_a[1], ids_b[1]} == {1, 2}


def test_crossing_with_occlusion_keeps_ids() -> None:
    # B is hidden behind A for 0.5 s around the crossing; its predicted box carries it.
    ts, a, b = crossing()
    hidden = {i for i, t in enumerate(ts) if 1.25 <= t < 1.75}
    tracker = FaceTracker()
    ids_a, ids_b = run_pair(tracker, ts, a, b, hidden_b=hidden)
    assert set(ids_a[1:]) == {ids_a[1]}
    seen_b = [track_id for i, track_id in enumerate(ids_b) if i not in hidden]
    assert set(seen_b[1:]) == {ids_b[1]}
    assert tracker.active_ids == (1, 2)


def test_without_motion_prediction_occluded_crossing_swaps_ids() -> None:
    # The same scene with prediction off: B reappears nearer A's last box, so the test
    # above is not passing by accident.
    ts, a, b = crossing()
    hidden = {i for i, t in enumerate(ts) if 1.25 <= t < 1.75}
    tracker = FaceTracker(TrackerParams(velocity_gain=0.0))
    ids_a, _ = run_pair(tracker, ts, a, b, hidden_b=hidden)
    assert len(set(ids_a[1:])) > 1


def test_short_disappearance_keeps_id_long_one_gets_new_id() -> None:
    params = TrackerParams(max_missed_secs=2.0)
    tracker = FaceTracker(params)
    face = box(200.0, 150.0)
    t = 0.0
    for _ in range(5):
        update = tracker.update(t, [face])
        t += 0.1
    assert update.ids == (1,)
    # Gone for 1.5 s (missing, still alive), then back: same id.
    for _ in range(15):
        update = tracker.update(t, [])
        assert update.missing == (1,)
        assert update.ended == ()
        t += 0.1
    assert tracker.update(t, [face]).ids == (1,)
    # Gone for 2.5 s: the track ends once, and the face comes back as face 2.
    last_seen = t
    ended: list[int] = []
    while t < last_seen + 2.5:
        t += 0.1
        ended += tracker.update(t, []).ended
    assert ended == [1]
    assert tracker.active_ids == ()
    assert tracker.update(t + 0.1, [face]).ids == (None,)  # tentative again
    assert tracker.update(t + 0.2, [face]).ids == (2,)


def test_single_frame_false_positive_gets_no_id() -> None:
    tracker = FaceTracker()
    real = box(100.0, 100.0)
    spurious = box(400.0, 300.0)
    ids = []
    for i in range(10):
        t = i / FPS
        boxes = [real, spurious] if i == 4 else [real]
        ids.append(tracker.update(t, boxes).ids)
    assert ids[4] == (1, None)
    assert all(frame_ids[0] in (None, 1) for frame_ids in ids)
    # The false positive used up no id: the next new face is face 2.
    tracker.update(1.0, [real, box(400.0, 300.0)])
    assert tracker.update(1.1, [real, box(402.0, 301.0)]).ids == (1, 2)


def test_min_hits_one_reports_at_once_and_irregular_timestamps() -> None:
    tracker = FaceTracker(TrackerParams(min_hits=1))
    assert tracker.update(0.0, [box(100.0, 100.0)]).ids == (1,)
    # Irregular spacing, a steady drift: still the same face.
    for t, cx in ((0.03, 104.0), (0.31, 140.0), (0.35, 145.0), (1.2, 250.0)):
        assert tracker.update(t, [box(cx, 100.0)]).ids == (1,)


def test_far_jump_is_a_new_face() -> None:
    tracker = FaceTracker()
    for i in range(3):
        tracker.update(i / FPS, [box(100.0, 100.0)])
    # More than max_centre_dist (1 face size) away from the prediction.
    update = tracker.update(0.3, [box(300.0, 100.0)])
    assert update.ids == (None,)
    assert update.missing == (1,)


def test_time_must_not_go_backwards() -> None:
    tracker = FaceTracker()
    tracker.update(1.0, [])
    with pytest.raises(ValueError, match="backwards"):
        tracker.update(0.5, [])


def test_iou() -> None:
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (20, 0, 10, 10)) == 0.0
    assert iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0


def test_a_face_only_followed_from_its_landmarks_is_not_confirmed() -> None:
    # A detector false positive, then followed from its own landmarks between detector
    # runs: matched on every frame, but never found by the detector again.
    tracker = FaceTracker()
    assert tracker.update(0.0, [box(100.0, 100.0)], [True]).ids == (None,)
    for i in range(1, 10):
        assert tracker.update(i / FPS, [box(100.0, 100.0)], [False]).ids == (None,)
    # The next detector run finds it again: now it is a face.
    assert tracker.update(10 / FPS, [box(100.0, 100.0)], [True]).ids == (1,)
    with pytest.raises(ValueError, match="one entry per box"):
        tracker.update(11 / FPS, [box(100.0, 100.0)], [])
