"""A room camera with 20 people: every face found, followed and kept on its own slot."""

from __future__ import annotations

import numpy as np
import pytest

from analyzers.face.crowd import ROOM_FACES, ROOM_SIZE, crowd_scene, matched_faces
from analyzers.face.emotion import MAX_FACES_LIMIT, FaceEmotionAnalyzer
from analyzers.face.tracking import FaceTracker
from analyzers.types import FaceAnalysis, VideoSample
from bot.cli import CROWD_MAX_FACES, build_parser
from bot.session.faces import FaceReader

#: Frames of the crowd drifting 2 px right and down per frame, at 15 fps.
FRAMES = 4
STEP_PX = 2.0
FPS = 15.0


@pytest.fixture(scope="module")
def followed(
    one_torch_thread: None, face_analyzer: FaceEmotionAnalyzer
) -> list[tuple[FaceAnalysis, tuple[tuple[float, float, float, float], ...]]]:
    """The default analyzer on a moving 1280 x 720 crowd: detector twice, then followed."""
    out = []
    for t in range(FRAMES):
        scene = crowd_scene(shift=(t * STEP_PX, t * STEP_PX))
        # As live: the detector runs until the new faces are confirmed (the tracker wants
        # two detector finds), then they are followed from their landmarks.
        hints = None if t < 2 else tuple(f.next_roi for f in out[-1][0].faces if f.next_roi)
        analysis = face_analyzer.analyze(VideoSample("room", t / FPS, scene.image, hints))
        out.append((analysis, scene.boxes))
    return out


@pytest.mark.model
def test_room_camera_faces_are_all_found_and_followed(
    followed: list[tuple[FaceAnalysis, tuple[tuple[float, float, float, float], ...]]],
) -> None:
    assert crowd_scene().image.shape == (ROOM_SIZE[1], ROOM_SIZE[0], 3)
    tracker = FaceTracker()
    ids: list[list[int | None]] = []
    for t, (analysis, boxes) in enumerate(followed):
        found = [f.box for f in analysis.faces]
        hits = matched_faces(found, boxes)
        # Every painted face, 30-60 px, and nothing else: on the detector frames and on
        # every frame followed from the previous one's landmarks.
        assert None not in hits and len(found) == ROOM_FACES, t
        assert all(f.measurement is not None for f in analysis.faces)
        update = tracker.update(analysis.ts, found)
        ids.append([update.ids[h] for h in hits if h is not None])
    # Confirmed from the second frame on (min_hits 2); then each face keeps its id.
    assert len(set(ids[1])) == ROOM_FACES and None not in ids[1]
    assert all(frame_ids == ids[1] for frame_ids in ids[2:])


@pytest.mark.model
def test_room_camera_faces_each_get_a_slot(
    followed: list[tuple[FaceAnalysis, tuple[tuple[float, float, float, float], ...]]],
) -> None:
    # The live path: slot 1 is the participant's card, slots 2-20 become sub-participants.
    reader = FaceReader("room")
    slots = []
    for analysis, _ in followed:
        observations = reader.read(analysis)
        slots.append({o.slot: o.emotion is not None for o in observations})
    assert sorted(slots[-1]) == list(range(1, ROOM_FACES + 1))
    assert all(slots[-1].values())


@pytest.mark.unit
def test_eval_detect_counts_up_to_the_analyzer_maximum() -> None:
    assert CROWD_MAX_FACES == MAX_FACES_LIMIT
    args = build_parser().parse_args(["eval", "detect", "DIR", "--labels", "counts.csv"])
    assert args.max_faces == MAX_FACES_LIMIT


@pytest.mark.unit
def test_bench_crowd_flags() -> None:
    parser = build_parser()
    args = parser.parse_args(["bench", "crowd"])
    assert (args.faces, args.size, args.face_px, args.far) == (20, (1280, 720), (30, 60), False)
    args = parser.parse_args(
        ["bench", "crowd", "--faces", "29", "--size", "995x960", "--face-px", "30,50", "--far"]
    )
    assert (args.faces, args.size, args.face_px, args.far) == (29, (995, 960), (30, 50), True)
    for bad in (["--size", "1280"], ["--size", "10x10"], ["--face-px", "50,30"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["bench", "crowd", *bad])


@pytest.mark.unit
def test_crowd_scene_is_deterministic_and_rows_grow_to_the_front() -> None:
    a, b = crowd_scene(29, (995, 960), (30, 50)), crowd_scene(29, (995, 960), (30, 50))
    assert np.array_equal(a.image, b.image) and a.boxes == b.boxes
    assert len(a.boxes) == 29 and all(30 <= w <= 50 for _, _, w, _ in a.boxes)
    tops = [y for _, y, _, _ in a.boxes]
    assert a.boxes[tops.index(min(tops))][2] < a.boxes[tops.index(max(tops))][2]
    assert matched_faces([], a.boxes) == [None] * 29


@pytest.mark.model
def test_fine_tiles_do_not_add_a_false_face_to_a_webcam_frame(
    one_torch_thread: None, face_analyzer: FaceEmotionAnalyzer
) -> None:
    # The fine tiles that find 30-px faces once also "found" a 200-px face on the
    # astronaut's spacesuit (score 0.55, where her face scores 0.9+), which then took a
    # slot of its own. A tile level only answers for faces its coarser pass cannot see.
    from tests.media import face_frame_rgb

    canvas = face_frame_rgb(720, 560)
    for dx in range(0, 41, 4):
        frame = np.ascontiguousarray(canvas[40:520, dx : dx + 640])
        result = face_analyzer.analyze(VideoSample(participant_id="p", ts=0.0, image=frame))
        assert len(result.faces) == 1, dx
