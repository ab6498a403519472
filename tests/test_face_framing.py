"""Face framing: the crop each emotion model gets, against hand-computed geometry."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from analyzers.face.emotion import FaceEmotionAnalyzer, FaceEmotionParams, fer_input
from analyzers.face.framing import (
    DEEPFACE_FRAMING,
    FER2013_FRAMING,
    HAAR_EYES,
    Eyes,
    eyes_from_box,
    eyes_from_landmarks,
    fit_square,
    frame_face,
    frame_transform,
)
from analyzers.face.geometry.landmarks import (
    LEFT_EYE_INNER,
    LEFT_EYE_OUTER,
    RIGHT_EYE_INNER,
    RIGHT_EYE_OUTER,
)

pytestmark = pytest.mark.unit


def _blob_centre(frame: np.ndarray, threshold: int = 128) -> tuple[float, float]:
    """Intensity-weighted centre of the bright pixels of a frame."""
    ys, xs = np.nonzero(frame > threshold)
    weights = frame[ys, xs].astype(float)
    return float(np.average(xs, weights=weights)), float(np.average(ys, weights=weights))


def _two_dots(
    size: tuple[int, int], left: tuple[float, float], right: tuple[float, float], radius: int
) -> np.ndarray:
    image = np.zeros((size[1], size[0]), dtype=np.uint8)
    for x, y in (left, right):
        cv2.circle(image, (round(x), round(y)), radius, 255, -1)
    return image


def test_fer2013_reference_geometry() -> None:
    # The numbers the framing reproduces: FER2013's eye centres in its 48 px frame.
    assert FER2013_FRAMING.size == 48
    assert FER2013_FRAMING.left_eye == (15.5, 18.2)
    assert FER2013_FRAMING.right_eye == (32.5, 18.2)
    # DeepFace's frame is the calibrated Haar box, letterboxed to 224.
    assert DEEPFACE_FRAMING.size == 224
    assert DEEPFACE_FRAMING.left_eye == pytest.approx((0.316 * 224, 0.390 * 224))


def test_transform_maps_the_eyes_onto_the_reference_points() -> None:
    # A face rolled by 30 degrees with 60 px between the eyes, centred at (300, 200).
    angle = math.radians(30)
    half = 30.0
    dx, dy = half * math.cos(angle), half * math.sin(angle)
    eyes = Eyes((300 - dx, 200 - dy), (300 + dx, 200 + dy))
    m = frame_transform(eyes, FER2013_FRAMING)
    for (x, y), expected in (
        (eyes.left, FER2013_FRAMING.left_eye),
        (eyes.right, FER2013_FRAMING.right_eye),
    ):
        assert m @ np.array([x, y, 1.0]) == pytest.approx(expected, abs=1e-9)
    # Hand-computed: scale 17 / 60, rotation -30 degrees.
    scale = 17.0 / 60.0
    assert math.hypot(m[0, 0], m[1, 0]) == pytest.approx(scale)
    assert math.degrees(math.atan2(m[1, 0], m[0, 0])) == pytest.approx(-30.0)


@pytest.mark.parametrize(
    ("inter_ocular", "roll_deg"),
    [(17.0, 0.0), (40.0, 12.0), (120.0, -25.0), (300.0, 8.0)],
)
def test_synthetic_face_lands_with_its_eyes_where_fer2013_has_them(
    inter_ocular: float, roll_deg: float
) -> None:
    # Two bright dots as "eyes": after framing, each sits at FER2013's eye centre
    # (within a pixel; the dots are drawn on the integer grid). Covers the plain warp
    # (scale >= 0.5) and the area-averaged path for large faces.
    angle = math.radians(roll_deg)
    cx, cy = 640.0, 360.0
    dx, dy = inter_ocular / 2 * math.cos(angle), inter_ocular / 2 * math.sin(angle)
    left, right = (cx - dx, cy - dy), (cx + dx, cy + dy)
    radius = max(2, round(inter_ocular / 8))
    image = _two_dots((1280, 720), left, right, radius)
    frame = frame_face(image, Eyes(left, right), FER2013_FRAMING)
    assert frame.shape == (48, 48)
    assert frame.dtype == np.uint8
    found_left = _blob_centre(frame[:, :24], threshold=40)
    found_right = _blob_centre(frame[:, 24:], threshold=40)
    assert found_left == pytest.approx(FER2013_FRAMING.left_eye, abs=1.0)
    assert (found_right[0] + 24, found_right[1]) == pytest.approx(
        FER2013_FRAMING.right_eye, abs=1.0
    )


def test_large_face_is_averaged_not_aliased() -> None:
    # A fine checkerboard (2 px squares) around eyes 300 px apart: shrunk 17x, it must
    # come out as flat grey (area average), not as the moire a skipping warp gives.
    board = (np.indices((720, 1280)).sum(axis=0) // 2 % 2 * 255).astype(np.uint8)
    frame = frame_face(board, Eyes((490.0, 360.0), (790.0, 360.0)), FER2013_FRAMING)
    assert abs(float(frame.mean()) - 127.5) < 4
    assert float(frame.std()) < 6


def test_face_at_the_border_repeats_the_edge() -> None:
    image = np.full((100, 100), 200, dtype=np.uint8)
    frame = frame_face(image, Eyes((2.0, 5.0), (30.0, 5.0)), FER2013_FRAMING)
    assert frame.shape == (48, 48)
    assert int(frame.min()) == 200  # no black fill around a face cut by the frame edge


def test_eyes_from_landmarks_takes_the_corner_midpoints_left_to_right() -> None:
    points = np.zeros((478, 3))
    points[RIGHT_EYE_OUTER, :2] = (100, 200)  # the subject's right eye: image left
    points[RIGHT_EYE_INNER, :2] = (140, 204)
    points[LEFT_EYE_INNER, :2] = (180, 204)
    points[LEFT_EYE_OUTER, :2] = (220, 208)
    eyes = eyes_from_landmarks(points)
    assert eyes.left == pytest.approx((120, 202))
    assert eyes.right == pytest.approx((200, 206))
    assert eyes.distance == pytest.approx(math.hypot(80, 4))
    mirrored = points.copy()
    mirrored[:, 0] = 400 - mirrored[:, 0]
    flipped = eyes_from_landmarks(mirrored)
    assert flipped.left[0] < flipped.right[0]


def test_eyes_from_a_haar_box_use_the_calibration() -> None:
    eyes = eyes_from_box((100, 50, 200, 200))
    assert eyes.left == pytest.approx((100 + 0.316 * 200, 50 + 0.390 * 200))
    assert eyes.right == pytest.approx((100 + 0.664 * 200, 50 + 0.390 * 200))
    # FER2013's frame and a Haar box frame a face almost alike (see framing's docstring).
    fer_iod = (FER2013_FRAMING.right_eye[0] - FER2013_FRAMING.left_eye[0]) / 48
    haar_iod = HAAR_EYES.right_eye[0] - HAAR_EYES.left_eye[0]
    assert fer_iod == pytest.approx(haar_iod, rel=0.03)


def test_an_already_framed_48px_crop_reaches_the_model_without_a_border() -> None:
    rng = np.random.default_rng(0)
    crop = rng.integers(0, 256, (48, 48), dtype=np.uint8)
    assert fit_square(crop, 48) is crop
    expected = (cv2.resize(crop, (64, 64)).astype(np.float32) / 255.0 - 0.5) * 2.0
    np.testing.assert_allclose(fer_input(crop[None])[0], expected, atol=1e-6)
    big = fit_square(rng.integers(0, 256, (150, 120), dtype=np.uint8), 48)
    assert big.shape == (48, 48)


@pytest.mark.model
def test_classify_framed_equals_the_model_on_the_plain_resized_crop() -> None:
    import torch

    # The torch module is called directly below (the ONNX graph's agreement with it is
    # tests/test_onnx_runtime.py's).
    analyzer = FaceEmotionAnalyzer.load(
        FaceEmotionParams(device="cpu", detector="haar", runtime="torch")
    )
    rng = np.random.default_rng(1)
    crop = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    with torch.inference_mode():
        logits = analyzer.model(torch.from_numpy(fer_input(gray[None])).unsqueeze(1))
    expected = torch.softmax(logits, dim=1)[0].numpy()
    np.testing.assert_allclose(analyzer.classify_framed(crop), expected, atol=1e-5)
