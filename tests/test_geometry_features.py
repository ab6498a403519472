"""EAR, MAR and AU proxies on synthetic MediaPipe landmark sets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analyzers.face.geometry import landmarks as lm
from analyzers.face.geometry.features import (
    FaceGeometry,
    eye_aspect_ratio,
    face_geometry,
)

pytestmark = pytest.mark.unit


def make_face(
    *,
    lid: float = 9.0,
    corner_lift: float = 0.0,
    lip_gap: float = 4.0,
    brow_y: float = 80.0,
    chin_y: float = 260.0,
) -> np.ndarray:
    """A frontal face: eyes 60 px wide at y=100, IOD 160 px, mouth at y=200."""
    p = np.zeros((lm.NUM_FACE_LANDMARKS, 3))

    def put(i: int, x: float, y: float) -> None:
        p[i] = (x, y, 0.0)

    for cx, (c1, u1, u2, c2, d2, d1), upper, lower in (
        (100.0, lm.RIGHT_EYE_EAR, lm.RIGHT_EYE_UPPER_MID, lm.RIGHT_EYE_LOWER_MID),
        (200.0, lm.LEFT_EYE_EAR, lm.LEFT_EYE_UPPER_MID, lm.LEFT_EYE_LOWER_MID),
    ):
        put(c1, cx - 30, 100)
        put(c2, cx + 30, 100)
        put(u1, cx - 15, 100 - lid)
        put(u2, cx + 15, 100 - lid)
        put(d1, cx - 15, 100 + lid)
        put(d2, cx + 15, 100 + lid)
        put(upper, cx, 100 - lid)
        put(lower, cx, 100 + lid)
    put(lm.RIGHT_BROW_OUTER, 75, brow_y)
    put(lm.RIGHT_BROW_INNER, 125, brow_y)
    put(lm.LEFT_BROW_INNER, 175, brow_y)
    put(lm.LEFT_BROW_OUTER, 225, brow_y)
    put(lm.RIGHT_CHEEK, 100, 130)
    put(lm.LEFT_CHEEK, 200, 130)
    put(lm.NOSE_TIP, 150, 150)
    put(lm.CHIN, 150, chin_y)
    put(lm.MOUTH_RIGHT, 120 - corner_lift, 200 - corner_lift)
    put(lm.MOUTH_LEFT, 180 + corner_lift, 200 - corner_lift)
    for (upper, lower), x in zip(lm.INNER_LIP_PAIRS, (140, 150, 160), strict=True):
        put(upper, x, 200 - lip_gap / 2)
        put(lower, x, 200 + lip_gap / 2)
    return p


def test_ear_open_vs_closed() -> None:
    open_eye = face_geometry(make_face(lid=9.0))
    closed = face_geometry(make_face(lid=1.5))
    assert open_eye.ear == pytest.approx(0.30)
    assert open_eye.ear_left == pytest.approx(open_eye.ear_right)
    assert closed.ear == pytest.approx(0.05)
    assert closed.au45_blink_proxy > 0.8 > open_eye.au45_blink_proxy
    assert open_eye.au45_blink_proxy == pytest.approx(0.0)


def test_ear_formula_single_eye() -> None:
    assert eye_aspect_ratio(make_face(lid=6.0), lm.RIGHT_EYE_EAR) == pytest.approx(0.2)


def test_smile_vs_neutral_vs_frown() -> None:
    neutral = face_geometry(make_face())
    smile = face_geometry(make_face(corner_lift=8.0))
    frown = face_geometry(make_face(corner_lift=-8.0))
    assert neutral.au12_lip_corner_pull_proxy == pytest.approx(0.0)
    assert smile.au12_lip_corner_pull_proxy == pytest.approx(8.0 / 160.0)
    assert smile.au15_lip_corner_depress_proxy < neutral.au15_lip_corner_depress_proxy
    assert frown.au15_lip_corner_depress_proxy > neutral.au15_lip_corner_depress_proxy
    assert frown.au12_lip_corner_pull_proxy < 0.0


def test_mouth_open_and_jaw_drop() -> None:
    closed = face_geometry(make_face(lip_gap=0.0))
    open_mouth = face_geometry(make_face(lip_gap=30.0, chin_y=290.0))
    assert closed.mar == pytest.approx(0.0)
    assert closed.au25_lips_part_proxy == pytest.approx(0.0)
    assert open_mouth.mar == pytest.approx(30.0 / 60.0)
    assert open_mouth.au25_lips_part_proxy == pytest.approx(30.0 / 160.0)
    assert open_mouth.au26_jaw_drop_proxy > closed.au26_jaw_drop_proxy


def test_brows_raise_and_lower() -> None:
    neutral = face_geometry(make_face(brow_y=80.0))
    raised = face_geometry(make_face(brow_y=65.0))
    lowered = face_geometry(make_face(brow_y=92.0))
    assert neutral.au01_inner_brow_raise_proxy == pytest.approx(20.0 / 160.0)
    assert raised.au01_inner_brow_raise_proxy > neutral.au01_inner_brow_raise_proxy
    assert raised.au02_outer_brow_raise_proxy > neutral.au02_outer_brow_raise_proxy
    assert lowered.au04_brow_lower_proxy > neutral.au04_brow_lower_proxy
    assert lowered.au01_inner_brow_raise_proxy < neutral.au01_inner_brow_raise_proxy


def test_scale_and_roll_invariance() -> None:
    face = make_face(corner_lift=6.0, brow_y=70.0)
    base = face_geometry(face)
    angle = math.radians(25.0)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    moved = face.copy()
    moved[:, :2] = (face[:, :2] - 150.0) @ rot.T * 2.5 + 400.0
    moved[:, 2] = face[:, 2] * 2.5
    other = face_geometry(moved)
    assert other.iod == pytest.approx(base.iod * 2.5)
    for name, value in base.au_proxies().items():
        assert getattr(other, name) == pytest.approx(value, abs=1e-9), name
    assert other.ear == pytest.approx(base.ear)


def test_au_proxies_names_and_frozen() -> None:
    geom = face_geometry(make_face())
    names = set(geom.au_proxies())
    assert names == {
        "au01_inner_brow_raise_proxy",
        "au02_outer_brow_raise_proxy",
        "au04_brow_lower_proxy",
        "au06_cheek_raise_proxy",
        "au12_lip_corner_pull_proxy",
        "au15_lip_corner_depress_proxy",
        "au25_lips_part_proxy",
        "au26_jaw_drop_proxy",
        "au45_blink_proxy",
    }
    assert isinstance(geom, FaceGeometry)
    with pytest.raises(AttributeError):
        geom.ear = 1.0  # type: ignore[misc]


def test_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="landmarks"):
        face_geometry(np.zeros((68, 3)))
    with pytest.raises(ValueError, match="inter-ocular"):
        face_geometry(np.zeros((468, 3)))
