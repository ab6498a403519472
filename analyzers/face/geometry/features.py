"""Per-frame face geometry: eye and mouth aspect ratios and facial action unit proxies.

Everything is computed from one face's MediaPipe landmarks, an ``(N, 3)`` array with
``N >= 468`` (see :mod:`analyzers.face.geometry.landmarks`). Distances use all three
coordinates (MediaPipe's ``z`` is in roughly the same scale as ``x``), which keeps the
ratios steadier under head yaw than image-plane distances. Signed "up" measurements use
the image plane only, along the face's own up axis (perpendicular to the line through
the outer eye corners), so a rolled head does not read as a raised brow.

The AU values are **proxies**, not FACS intensities: scale-free geometric ratios
(divided by the inter-ocular distance, IOD = distance between the outer eye corners
33 and 263) that grow when the action unit is active. Their neutral values depend on
the person's face, so compare them with a per-person neutral baseline (subtract it)
before thresholding; they are not on OpenFace's 0-5 ``AUxx_r`` scale.
:class:`analyzers.face.baseline.NeutralBaseline` does both: it learns the neutral
values from a face's first seconds and maps the change to a 0-5 intensity.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from analyzers.face.geometry import landmarks as lm

#: A typical open-eye EAR for adults (Soukupova & Cech 2016 report about 0.25-0.35); only
#: used to scale the blink proxy. The blink detector adapts to each person instead.
TYPICAL_OPEN_EAR = 0.30


@dataclass(frozen=True, slots=True)
class FaceGeometry:
    """Geometry of one face in one frame; computed inline wherever landmarks arrive.

    Attributes:
        iod: Inter-ocular distance (outer eye corners) in landmark units (pixels).
        ear_right: Eye aspect ratio of the subject's right eye.
        ear_left: Eye aspect ratio of the subject's left eye.
        ear: Mean of the two EARs.
        mar: Mouth aspect ratio (inner lips).
        au01_inner_brow_raise_proxy: Inner brow height above the inner eye corner / IOD.
        au02_outer_brow_raise_proxy: Outer brow height above the outer eye corner / IOD.
        au04_brow_lower_proxy: Negative of (inner brow height + inner brow gap) / IOD.
        au06_cheek_raise_proxy: Negative lower-lid-to-cheek distance / IOD.
        au12_lip_corner_pull_proxy: Mouth corner lift above the inner-lip centre / IOD.
        au15_lip_corner_depress_proxy: Negative of the AU12 proxy's corner lift.
        au25_lips_part_proxy: Inner-lip gap (13-14) / IOD.
        au26_jaw_drop_proxy: Nose-tip-to-chin distance / IOD.
        au45_blink_proxy: ``1 - ear / TYPICAL_OPEN_EAR`` clipped to [0, 1].
    """

    iod: float
    ear_right: float
    ear_left: float
    ear: float
    mar: float
    au01_inner_brow_raise_proxy: float
    au02_outer_brow_raise_proxy: float
    au04_brow_lower_proxy: float
    au06_cheek_raise_proxy: float
    au12_lip_corner_pull_proxy: float
    au15_lip_corner_depress_proxy: float
    au25_lips_part_proxy: float
    au26_jaw_drop_proxy: float
    au45_blink_proxy: float

    def au_proxies(self) -> dict[str, float]:
        """The AU proxies by field name (``au12_lip_corner_pull_proxy`` -> value).

        Returns:
            A new dict; :func:`analyzers.face.geometry.au_rules.normalize_aus` maps the
            names to ``"AU12"`` form.
        """
        return {
            f.name: float(getattr(self, f.name))
            for f in fields(self)
            if f.name.startswith("au") and f.name.endswith("_proxy")
        }


def _dist(points: np.ndarray, a: int, b: int) -> float:
    return float(np.linalg.norm(points[a] - points[b]))


def eye_aspect_ratio(points: np.ndarray, eye: tuple[int, ...]) -> float:
    """Eye aspect ratio of one eye (Soukupova & Cech 2016).

    ``EAR = (|p2 - p6| + |p3 - p5|) / (2 |p1 - p4|)`` with ``p1..p6`` the six indices of
    ``eye`` (:data:`~analyzers.face.geometry.landmarks.RIGHT_EYE_EAR` order). About 0.3
    for an open eye, near 0 when closed.

    Args:
        points: ``(N, 3)`` landmarks.
        eye: Six landmark indices, corner, upper, upper, corner, lower, lower.

    Returns:
        The ratio; 0.0 when the eye width is degenerate.
    """
    p1, p2, p3, p4, p5, p6 = eye
    width = _dist(points, p1, p4)
    if width <= 0.0:
        return 0.0
    return (_dist(points, p2, p6) + _dist(points, p3, p5)) / (2.0 * width)


def mouth_aspect_ratio(points: np.ndarray) -> float:
    """Mouth aspect ratio over the inner lips.

    ``MAR = mean(|82 - 87|, |13 - 14|, |312 - 317|) / |61 - 291|``: mean inner-lip gap
    over mouth width. 0 with closed lips.

    Args:
        points: ``(N, 3)`` landmarks.

    Returns:
        The ratio; 0.0 when the mouth width is degenerate.
    """
    width = _dist(points, lm.MOUTH_RIGHT, lm.MOUTH_LEFT)
    if width <= 0.0:
        return 0.0
    gaps = [_dist(points, upper, lower) for upper, lower in lm.INNER_LIP_PAIRS]
    return float(np.mean(gaps)) / width


def _up_axis(points: np.ndarray) -> np.ndarray:
    """Unit vector in the image plane from the eyes towards the forehead.

    Perpendicular to the outer-eye-corner line; image ``y`` grows downwards, so for an
    upright face this is ``(0, -1)``.
    """
    eye_axis = points[lm.LEFT_EYE_OUTER, :2] - points[lm.RIGHT_EYE_OUTER, :2]
    norm = float(np.linalg.norm(eye_axis))
    if norm <= 0.0:
        return np.array([0.0, -1.0])
    ex, ey = eye_axis / norm
    return np.array([ey, -ex])


def _height(points: np.ndarray, up: np.ndarray, a: int, b: int) -> float:
    """Signed image-plane height of landmark ``a`` above landmark ``b`` along ``up``."""
    return float(np.dot(points[a, :2] - points[b, :2], up))


def face_geometry(points: np.ndarray) -> FaceGeometry:
    """Eye/mouth ratios and AU proxies for one face.

    Formulas (IOD = ``|33 - 263|``; ``h(a, b)`` = signed image-plane height of ``a``
    above ``b`` along the face's up axis; brows and eyes averaged over both sides):

    - ``au01 = mean(h(107, 133), h(336, 362)) / IOD``: inner brow over inner eye corner.
    - ``au02 = mean(h(70, 33), h(300, 263)) / IOD``: outer brow over outer eye corner.
    - ``au04 = -(mean(h(107, 133), h(336, 362)) + |107 - 336|) / IOD``: brows lowered
      and drawn together both make it larger (less negative).
    - ``au06 = -mean(|145 - 50|, |374 - 280|) / IOD``: the raised cheek closes the gap
      between the lower lid and the malar point.
    - ``au12 = mean(h(61, c), h(291, c)) / IOD`` with ``c`` the midpoint of 13 and 14:
      mouth corners lifted above the lip centre.
    - ``au15 = -au12``: the same corner height, read downwards; geometry alone cannot
      tell AU15 from a relaxed AU12, so the two are not independent.
    - ``au25 = |13 - 14| / IOD``: inner-lip gap.
    - ``au26 = |1 - 152| / IOD``: nose tip to chin; grows when the jaw drops.
    - ``au45 = clip(1 - EAR / 0.30, 0, 1)``: eye closure against a typical open EAR.

    Args:
        points: ``(N, 3)`` landmarks in pixels, ``N >= 468``.

    Returns:
        The frame's :class:`FaceGeometry`.

    Raises:
        ValueError: If ``points`` has the wrong shape or a zero inter-ocular distance.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[0] < lm.NUM_FACE_LANDMARKS or points.shape[1] != 3:
        raise ValueError(f"expected (N>=468, 3) landmarks, got {points.shape}")
    iod = _dist(points, lm.RIGHT_EYE_OUTER, lm.LEFT_EYE_OUTER)
    if iod <= 0.0:
        raise ValueError("degenerate landmarks: zero inter-ocular distance")
    up = _up_axis(points)

    ear_right = eye_aspect_ratio(points, lm.RIGHT_EYE_EAR)
    ear_left = eye_aspect_ratio(points, lm.LEFT_EYE_EAR)
    ear = (ear_right + ear_left) / 2.0

    inner_brow_height = (
        _height(points, up, lm.RIGHT_BROW_INNER, lm.RIGHT_EYE_INNER)
        + _height(points, up, lm.LEFT_BROW_INNER, lm.LEFT_EYE_INNER)
    ) / 2.0
    outer_brow_height = (
        _height(points, up, lm.RIGHT_BROW_OUTER, lm.RIGHT_EYE_OUTER)
        + _height(points, up, lm.LEFT_BROW_OUTER, lm.LEFT_EYE_OUTER)
    ) / 2.0
    brow_gap = _dist(points, lm.RIGHT_BROW_INNER, lm.LEFT_BROW_INNER)
    lid_to_cheek = (
        _dist(points, lm.RIGHT_EYE_LOWER_MID, lm.RIGHT_CHEEK)
        + _dist(points, lm.LEFT_EYE_LOWER_MID, lm.LEFT_CHEEK)
    ) / 2.0
    lip_centre = (points[lm.INNER_LIP_UPPER, :2] + points[lm.INNER_LIP_LOWER, :2]) / 2.0
    corner_lift = (
        float(np.dot(points[lm.MOUTH_RIGHT, :2] - lip_centre, up))
        + float(np.dot(points[lm.MOUTH_LEFT, :2] - lip_centre, up))
    ) / 2.0

    return FaceGeometry(
        iod=iod,
        ear_right=ear_right,
        ear_left=ear_left,
        ear=ear,
        mar=mouth_aspect_ratio(points),
        au01_inner_brow_raise_proxy=inner_brow_height / iod,
        au02_outer_brow_raise_proxy=outer_brow_height / iod,
        au04_brow_lower_proxy=-(inner_brow_height + brow_gap) / iod,
        au06_cheek_raise_proxy=-lid_to_cheek / iod,
        au12_lip_corner_pull_proxy=corner_lift / iod,
        au15_lip_corner_depress_proxy=-corner_lift / iod,
        au25_lips_part_proxy=_dist(points, lm.INNER_LIP_UPPER, lm.INNER_LIP_LOWER) / iod,
        au26_jaw_drop_proxy=_dist(points, lm.NOSE_TIP, lm.CHIN) / iod,
        au45_blink_proxy=float(np.clip(1.0 - ear / TYPICAL_OPEN_EAR, 0.0, 1.0)),
    )
