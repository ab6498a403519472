"""MediaPipe Face Mesh landmark indices used by the geometry code.

Topology: 468 face landmarks, plus 10 iris landmarks (468-477) when the mesh runs
with ``refine_landmarks=True``. "Right"/"left" are the *subject's* sides, as in
MediaPipe's own naming: for an unmirrored camera image the subject's right eye is on
the image's left. Coordinates are ``(x, y)`` in pixels and ``z`` relative depth in
roughly the same scale as ``x`` (smaller = closer to the camera).

The indices are the widely published ones (MediaPipe ``face_mesh_connections.py``,
``FACEMESH_LEFT_EYE`` / ``FACEMESH_RIGHT_EYE`` / ``FACEMESH_LIPS`` /
``FACEMESH_*_EYEBROW`` / ``FACEMESH_*_IRIS``, and the six-point EAR sets of
Soukupova & Cech 2016 as commonly mapped onto the mesh).
"""

from __future__ import annotations

#: Landmarks in the face mesh without iris refinement.
NUM_FACE_LANDMARKS = 468
#: Landmarks with iris refinement (468 face + 2 x 5 iris).
NUM_LANDMARKS_WITH_IRIS = 478

# --- eyes, six-point EAR order p1..p6: outer/inner corner, two upper lid, two lower lid.
# EAR = (|p2 - p6| + |p3 - p5|) / (2 |p1 - p4|).
#: Subject's right eye: 33 outer corner, 160/158 upper lid, 133 inner corner, 153/144 lower lid.
RIGHT_EYE_EAR = (33, 160, 158, 133, 153, 144)
#: Subject's left eye: 362 inner corner, 385/387 upper lid, 263 outer corner, 373/380 lower lid.
LEFT_EYE_EAR = (362, 385, 387, 263, 373, 380)

#: Outer eye corners (lateral canthi); their distance is the scale for every proxy.
RIGHT_EYE_OUTER = 33
LEFT_EYE_OUTER = 263
#: Inner eye corners (medial canthi).
RIGHT_EYE_INNER = 133
LEFT_EYE_INNER = 362
#: Upper and lower lid mid-points.
RIGHT_EYE_UPPER_MID = 159
RIGHT_EYE_LOWER_MID = 145
LEFT_EYE_UPPER_MID = 386
LEFT_EYE_LOWER_MID = 374

# --- brows, listed from the outer end to the inner end.
#: Subject's right brow, outer (70) to inner (107).
RIGHT_BROW = (70, 63, 105, 66, 107)
#: Subject's left brow, outer (300) to inner (336).
LEFT_BROW = (300, 293, 334, 296, 336)
RIGHT_BROW_INNER = 107
RIGHT_BROW_OUTER = 70
LEFT_BROW_INNER = 336
LEFT_BROW_OUTER = 300

# --- mouth.
#: Mouth corners (cheilion): subject's right 61, left 291.
MOUTH_RIGHT = 61
MOUTH_LEFT = 291
#: Inner lip mid-points: 13 upper, 14 lower.
INNER_LIP_UPPER = 13
INNER_LIP_LOWER = 14
#: Vertically paired inner-lip points (upper, lower), right to left, for the mouth aspect ratio.
INNER_LIP_PAIRS = ((82, 87), (13, 14), (312, 317))

# --- cheeks, nose, chin.
#: Malar (cheek) points below the eyes: subject's right 50, left 280.
RIGHT_CHEEK = 50
LEFT_CHEEK = 280
#: Nose tip (pronasale).
NOSE_TIP = 1
#: Chin (menton / gnathion on the mesh contour).
CHIN = 152

# --- iris (only with refine_landmarks=True).
#: Subject's right iris centre and its four contour points.
RIGHT_IRIS_CENTER = 468
RIGHT_IRIS = (469, 470, 471, 472)
#: Subject's left iris centre and its four contour points.
LEFT_IRIS_CENTER = 473
LEFT_IRIS = (474, 475, 476, 477)
