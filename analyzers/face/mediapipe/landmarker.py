"""MediaPipe's face landmark pipeline on the torch ports: detector, mesh and iris, batched.

:class:`FaceLandmarker` reproduces what MediaPipe's ``face_landmark_front_cpu``
graph does on a single image (``static_image_mode``, no tracking between
frames), plus the ``iris_landmark_left_and_right`` refinement, and adds tiled
detection so that small faces (a meeting-room camera) are found too:

1. **Detect** (BlazeFace short range by default, or full range): every frame is
   letterboxed to a black-bordered square and resized to the detector's input
   (128 or 192 px). With ``min_face_px`` set (the default, 40), frames large
   enough also get overlapping square tiles (:func:`detection_windows`), sized
   so that a face of ``min_face_px`` covers the fraction of a tile the detector
   still finds. All windows of all frames go through the detector together (in
   chunks of :data:`CPU_DETECTOR_BATCH` on the CPU). Scores are sigmoids of
   clipped logits; boxes are decoded against the SSD anchors and mapped to frame
   pixels; tile detections that touch a tile edge inside the frame (a face cut
   by the tile) are dropped, and so are tile detections larger than their level
   answers for (:data:`TILE_MAX_FACE_RATIO`; the coarser pass sees those); all of
   a frame's detections are merged by weighted
   NMS (IoU 0.3) and cut by score to ``max_faces`` (:meth:`FaceLandmarker.detect`)
   or twice that (the mesh's candidates).
2. **Mesh** (Face Mesh): each face's ROI is the detection box centre, rotated
   so the eyes are level, 1.5 x the longer box side; all faces of all frames
   are cropped to 192 x 192 and go through the mesh in one batch. The
   face-presence logit is passed through a sigmoid and faces below
   ``min_presence`` are dropped. In a tiled frame, a face whose landmark box
   overlaps a larger one's by IoU > 0.5, or lies inside the ROI of a face at
   least 1.5 x larger (a tile that saw an ear or an eye as a face), is dropped too.
   The ``max_faces`` largest faces remain.
3. **Iris** (optional): each eye's ROI is 2.3 x the longer side of the box
   spanned by its corner landmarks (33/133 and 362/263), rotated along them,
   64 x 64; the subject's left eye is mirrored,
   because the model only knows one eye orientation. All eyes go through the
   model in one batch. The 71 eye-contour points replace the mesh's x, y at the
   matching indices (MediaPipe's ``UpdateFaceLandmarksCalculator`` table), and
   the two 5-point irises are appended, giving the 478-point layout of
   :mod:`analyzers.face.geometry.landmarks`: 468-472 the subject's right iris
   (centre, then the edge points image-right, up, image-left, down, as in
   MediaPipe's ``refine_landmarks=True`` mesh), 473-477 the left.

Coordinates are image pixels; ``z`` is in pixels too (scaled like ``x``), relative
depth with smaller values closer to the camera. With ``min_face_px=None`` (no
tiles) steps 1 and 2 match MediaPipe 0.10.21 to within 0.01 px (see
``weights/PROVENANCE.md``), for either detector (``FaceDetection(model_selection=0
or 1)``). Step 3 follows MediaPipe's iris graphs as published; they are not in
the wheel, so it was checked against the ``refine_landmarks=True`` mesh instead
(iris centres within ~0.3 px). Deliberate differences: the tiles and the
duplicate removal of steps 1-2, keeping the largest faces rather than the
best-scoring ones when there are more than ``max_faces``; the mesh's ``z`` is
kept where the eye contour replaces ``x, y`` (the iris model's depth has another
origin), iris ``z`` is shifted so the contour's mean depth matches the mesh's,
and the mirrored eye's iris edge points are reordered as described above. Eye crops use the same
corner-to-corner bilinear warp as the other crops. MediaPipe's own face mesh
only ever uses the short-range detector; the full-range one feeds the same ROI
rule here (both give the same six keypoints).

The networks run on torch (the default, on any device) or, on the CPU, on ONNX
Runtime with the ``.onnx`` graphs exported from the same weights
(``runtime="onnx"``; see :mod:`analyzers.face.runtime`): on the same crops the networks
agree with torch's to about 1e-4 px; end to end, where a ROI moved by 1e-5 px can flip the
rounding of a crop pixel, landmarks agree within 0.05 px (``tests/test_onnx_runtime.py``).

Runs in an inference worker process (or a test thread). No asyncio; nothing
from ``bot/`` or ``web/``. Not thread-safe: one caller per instance.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from analyzers.face.runtime import OnnxNet, Runtime, RuntimePreference, onnx_path, select_runtime

from . import blazeface, blazeface_full_range
from . import roi as geometry
from .blazeface import RawDetections, decode_detections, ssd_anchors, weighted_nms
from .blocks import load_state_dict_file
from .facemesh import INPUT_SIZE as MESH_SIZE
from .facemesh import NUM_LANDMARKS, FaceMesh
from .iris import INPUT_SIZE as IRIS_SIZE
from .iris import NUM_IRIS, IrisLandmark

#: Where the converted state dicts ship.
WEIGHTS_DIR = Path(__file__).with_name("weights")
BLAZEFACE_WEIGHTS = "blazeface_short_range.pt"
BLAZEFACE_FULL_RANGE_WEIGHTS = "blazeface_full_range.pt"
FACE_MESH_WEIGHTS = "face_mesh.pt"
IRIS_WEIGHTS = "iris_landmark.pt"

#: Faces whose mesh presence (sigmoid) is below this are dropped (MediaPipe: 0.5).
MIN_PRESENCE = 0.5
#: At most this many faces per frame (the largest; see FaceLandmarker.process). MediaPipe's
#: default is 1; a meeting tile rarely shows more than a few people, each costs a mesh crop.
MAX_FACES = 4
#: Landmarks with iris refinement.
NUM_LANDMARKS_WITH_IRIS = NUM_LANDMARKS + 2 * NUM_IRIS

DetectorModel = Literal["short_range", "full_range"]
#: The detector used unless another is asked for.
DETECTOR_MODEL: DetectorModel = "short_range"
#: Default smallest face side, in frame pixels, that detection is tiled for (the face
#: analyzer's ``min_face_px``); ``None`` turns tiling off.
MIN_FACE_PX = 40
#: Neighbouring tiles of one level overlap by at least this fraction of their side.
TILE_OVERLAP = 0.25
#: A tile level is used while its tile side is below the frame's longer side divided by this.
TILE_LEVEL_RATIO = 1.5
#: A tile detection whose box comes closer than this fraction of the tile side to a tile
#: edge inside the frame is dropped: the tile cut the face, a neighbour sees it whole.
TILE_EDGE_MARGIN = 0.02
#: A tile level only answers for faces up to this many times the smallest face the next
#: coarser pass (the next level, or the whole frame) finds: larger ones are that pass's
#: to find. A tile that sees a large "face" the coarser pass did not is mostly seeing
#: clothing or background (a spacesuit's arm scored 0.52-0.58 where real faces score 0.9).
TILE_MAX_FACE_RATIO = 1.5
#: On the CPU the detector runs its windows in chunks of this many: larger batches fall
#: out of the cache (10 short-range windows, torch 1 thread, best of 20: 28 ms in chunks
#: of 4, 33 ms in one batch, 53 ms one by one). Other devices run all windows in one batch.
#: ONNX Runtime (1 thread) costs about the same per window from 1 to 8 and more at 32
#: (CPU ms: 1.06 at 1, 1.14 at 8, 1.44 at 32), and the mesh and iris graphs likewise
#: past the chunks below, so both runtimes use the same chunks.
CPU_DETECTOR_BATCH = 4
#: Face Mesh crops per forward pass on the CPU: from about 8 faces on, activations no
#: longer fit in cache and a face costs more in a bigger batch (3.8 ms at 8, 6.5 at 32).
CPU_MESH_BATCH = 8
#: Eye crops per iris forward pass on the CPU, for the same reason.
CPU_IRIS_BATCH = 16
#: :meth:`FaceLandmarker.process` runs the mesh on up to this many detections per face it
#: may return, so that junk detections and duplicates do not crowd out real faces.
MESH_CANDIDATES = 2
#: In a tiled frame, faces whose landmark boxes overlap a larger face's by more than
#: this IoU are duplicates (MediaPipe's tracking uses 0.5 for the same purpose).
DUPLICATE_IOU = 0.5
#: ... and a face whose landmark-box centre lies in the mesh ROI (1.5 x the box) of a
#: face at least this much larger is part of it.
CONTAINED_RATIO = 1.5


@dataclass(frozen=True, slots=True)
class DetectorSpec:
    """One BlazeFace variant and how MediaPipe's graph decodes it.

    Attributes:
        build: Makes the torch module.
        weights: State-dict file name in the weights folder.
        input_size: Side of the square input in pixels.
        anchor_strides: ``SsdAnchorsCalculator`` strides.
        interpolated_scale_aspect_ratio: ``SsdAnchorsCalculator`` option (0: one anchor
            per layer and cell).
        min_score: The graph's ``min_score_thresh``.
        min_face_fraction: Smallest face side, as a fraction of a detector window, that
            the detector still finds: 20 px of the short-range model's 128. On synthetic
            room scenes (frontal, profile and blurred faces) it found 46, 58, 75 and 92 %
            of the faces 16, 20, 25 and 32 px wide at its input; sharp frontal faces all
            from 20 px. Tiles are sized from it. The full-range model uses the same
            fraction: its tiles then found 122 of 141 faces of 40-120 px, with 0.125
            (320-px tiles) 111.
    """

    build: Callable[[], nn.Module]
    weights: str
    input_size: int
    anchor_strides: tuple[int, ...]
    interpolated_scale_aspect_ratio: float
    min_score: float
    min_face_fraction: float


DETECTORS: dict[DetectorModel, DetectorSpec] = {
    "short_range": DetectorSpec(
        build=blazeface.BlazeFace,
        weights=BLAZEFACE_WEIGHTS,
        input_size=blazeface.INPUT_SIZE,
        anchor_strides=blazeface.ANCHOR_STRIDES,
        interpolated_scale_aspect_ratio=blazeface.ANCHOR_INTERPOLATED_SCALE_ASPECT_RATIO,
        min_score=blazeface.MIN_SCORE,
        min_face_fraction=20 / 128,
    ),
    "full_range": DetectorSpec(
        build=blazeface_full_range.BlazeFaceFullRange,
        weights=BLAZEFACE_FULL_RANGE_WEIGHTS,
        input_size=blazeface_full_range.INPUT_SIZE,
        anchor_strides=blazeface_full_range.ANCHOR_STRIDES,
        interpolated_scale_aspect_ratio=blazeface_full_range.ANCHOR_INTERPOLATED_SCALE_ASPECT_RATIO,
        min_score=blazeface_full_range.MIN_SCORE,
        min_face_fraction=20 / 128,
    ),
}

#: Eye-corner landmarks, image-left corner first, for an unmirrored frame. MediaPipe's
#: iris graph calls the first pair the "left eye" (it is on the image's left).
RIGHT_EYE_CORNERS = (33, 133)
LEFT_EYE_CORNERS = (362, 263)

#: Iris-point order that undoes the left-right swap of edge points 1 and 3 in a mirrored crop.
MIRRORED_IRIS_ORDER = (0, 3, 2, 1, 4)

#: Face-mesh indices of the iris model's 71 contour points for the subject's right eye
#: (MediaPipe ``update_face_landmarks_calculator.cc``, "left eye" there): lower lid,
#: upper lid, then four halos and the brow.
RIGHT_EYE_CONTOUR: tuple[int, ...] = (
    *(33, 7, 163, 144, 145, 153, 154, 155, 133),
    *(246, 161, 160, 159, 158, 157, 173),
    *(130, 25, 110, 24, 23, 22, 26, 112, 243),
    *(247, 30, 29, 27, 28, 56, 190),
    *(226, 31, 228, 229, 230, 231, 232, 233, 244),
    *(113, 225, 224, 223, 222, 221, 189),
    *(35, 124, 46, 53, 52, 65),
    *(143, 111, 117, 118, 119, 120, 121, 128, 245),
    *(156, 70, 63, 105, 66, 107, 55, 193),
)
#: The same for the subject's left eye (the mirror-image mesh indices).
LEFT_EYE_CONTOUR: tuple[int, ...] = (
    *(263, 249, 390, 373, 374, 380, 381, 382, 362),
    *(466, 388, 387, 386, 385, 384, 398),
    *(359, 255, 339, 254, 253, 252, 256, 341, 463),
    *(467, 260, 259, 257, 258, 286, 414),
    *(446, 261, 448, 449, 450, 451, 452, 453, 464),
    *(342, 445, 444, 443, 442, 441, 413),
    *(265, 353, 276, 283, 282, 295),
    *(372, 340, 346, 347, 348, 349, 350, 357, 465),
    *(383, 300, 293, 334, 296, 336, 285, 417),
)


@dataclass(frozen=True, slots=True)
class Detection:
    """One face found by the detector.

    Attributes:
        box: ``(x, y, w, h)`` integer pixels, the detector's box clipped to the image.
        score: Detector confidence in [0, 1].
        keypoints: ``(6, 2)`` float32 pixels: subject's right eye, left eye, nose tip,
            mouth centre, right ear tragion, left ear tragion.
        roi: The rotated square the face mesh reads for this face.
    """

    box: tuple[int, int, int, int]
    score: float
    keypoints: np.ndarray
    roi: geometry.Roi


@dataclass(frozen=True, slots=True)
class FaceLandmarks:
    """Landmarks of one face.

    Attributes:
        box: ``(x, y, w, h)`` integer pixels, the tight box around the landmarks,
            clipped to the image.
        score: Detector confidence in [0, 1]; None for a face followed from a hint
            (no detector ran).
        presence: Face Mesh face-presence probability in [0, 1].
        landmarks: ``(478, 3)`` float32 ``x, y, z`` pixels with iris refinement, or
            ``(468, 3)`` without (index layout: :mod:`analyzers.face.geometry.landmarks`).
        keypoints: ``(6, 2)`` float32 detector keypoints in pixels (see :class:`Detection`);
            for a face followed from a previous frame's ROI, the eye corners and nose
            tip of its landmarks in the detector's keypoint order (ears: the face sides).
        next_roi: Where to read this face in the next frame without the detector
            (MediaPipe's landmarks-to-ROI: the landmarks' box, rotated by the eye line,
            1.5x): pass it back to :meth:`FaceLandmarker.process` as a hint.
    """

    box: tuple[int, int, int, int]
    score: float | None
    presence: float
    landmarks: np.ndarray
    keypoints: np.ndarray
    next_roi: geometry.Roi | None = None


def roi_from_landmarks(landmarks: np.ndarray) -> geometry.Roi:
    """The Face Mesh ROI that follows a face from its landmarks in the previous frame.

    MediaPipe's ``face_landmark_landmarks_to_roi`` graph: the axis-aligned box of the
    landmarks, rotated so the line from landmark 33 to 263 (outer eye corners) is
    level, square on its long side and scaled by 1.5, as for a detection.
    """
    points = np.asarray(landmarks, dtype=np.float64)[:NUM_LANDMARKS, :2]
    lo, hi = points.min(axis=0), points.max(axis=0)
    return geometry.face_roi(np.concatenate([lo, hi]), points[[33, 263]])


def _landmark_keypoints(landmarks: np.ndarray) -> np.ndarray:
    # Detector keypoint order: right eye, left eye, nose tip, mouth centre, right and
    # left ear tragion (approximated by the face sides 234/454).
    pts = np.asarray(landmarks, dtype=np.float32)[:, :2]
    mouth = (pts[13] + pts[14]) / 2
    eyes = ((pts[33] + pts[133]) / 2, (pts[362] + pts[263]) / 2)
    return np.stack([eyes[0], eyes[1], pts[1], mouth, pts[234], pts[454]]).astype(np.float32)


def to_input_array(crops: np.ndarray, *, signed: bool) -> np.ndarray:
    """Turn uint8 NHWC crops into the float32 NCHW array an ONNX graph expects.

    The same float32 arithmetic as :func:`to_input_tensor`, so both runtimes read
    bit-identical inputs.

    Args:
        crops: ``(n, h, w, 3)`` uint8 RGB.
        signed: ``True`` for [-1, 1] (the detector), ``False`` for [0, 1] (mesh, iris).
    """
    x = np.ascontiguousarray(crops.transpose(0, 3, 1, 2), dtype=np.float32)
    if signed:
        x /= 127.5
        x -= 1.0
    else:
        x /= 255.0
    return x


def to_input_tensor(crops: np.ndarray, device: torch.device, *, signed: bool) -> torch.Tensor:
    """Turn uint8 NHWC crops into the float NCHW tensor a network expects.

    The uint8 batch is copied to the device first (4x fewer bytes than float). The
    result is an NCHW view of NHWC memory, i.e. ``torch.channels_last``, which the
    CPU models are converted to.

    Args:
        crops: ``(n, h, w, 3)`` uint8 RGB.
        device: Where the network runs.
        signed: ``True`` for [-1, 1] (the detector), ``False`` for [0, 1] (mesh, iris).
    """
    x = torch.from_numpy(np.ascontiguousarray(crops)).to(device).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1.0 if signed else x / 255.0


def eye_crops(
    image: np.ndarray, mesh: np.ndarray
) -> tuple[np.ndarray, tuple[geometry.Roi, geometry.Roi]]:
    """Cut both eyes out of ``image`` for the iris model, as MediaPipe does.

    Args:
        image: H x W x 3 uint8 RGB.
        mesh: ``(468, 3)`` face-mesh landmarks in image pixels (before iris refinement).

    Returns:
        ``(crops, rois)``: ``(2, 64, 64, 3)`` uint8, the subject's right eye first and
        the left eye mirrored left-right, and the two ROIs.
    """
    right = geometry.eye_roi(mesh[RIGHT_EYE_CORNERS[0], :2], mesh[RIGHT_EYE_CORNERS[1], :2])
    left = geometry.eye_roi(mesh[LEFT_EYE_CORNERS[0], :2], mesh[LEFT_EYE_CORNERS[1], :2])
    crops = np.stack(
        [
            geometry.crop(image, right, IRIS_SIZE, "replicate"),
            # The model was trained on the image-left eye only; mirror the other one.
            geometry.crop(image, left, IRIS_SIZE, "replicate")[:, ::-1],
        ]
    )
    return crops, (right, left)


def refine_with_iris(
    mesh: np.ndarray,
    contours: np.ndarray,
    irises: np.ndarray,
    rois: tuple[geometry.Roi, geometry.Roi],
) -> np.ndarray:
    """Merge the iris model's outputs into the mesh: 468 points in, 478 out.

    Args:
        mesh: ``(468, 3)`` landmarks in image pixels.
        contours: ``(2, 71, 3)`` raw contour outputs (crop pixels) for the crops of
            :func:`eye_crops`, right eye first, left eye as seen mirrored.
        irises: ``(2, 5, 3)`` raw iris outputs, same order.
        rois: The eye ROIs from :func:`eye_crops`.

    Returns:
        ``(478, 3)`` float32 image pixels.
    """
    out = np.empty((NUM_LANDMARKS_WITH_IRIS, 3), dtype=np.float32)
    out[:NUM_LANDMARKS] = mesh
    for eye, (indices, mirrored) in enumerate(
        ((RIGHT_EYE_CONTOUR, False), (LEFT_EYE_CONTOUR, True))
    ):
        contour = contours[eye].astype(np.float32, copy=True)
        iris = irises[eye].astype(np.float32, copy=True)
        if mirrored:
            # Undo the input mirror (TensorsToLandmarksCalculator flip_horizontally).
            contour[:, 0] = IRIS_SIZE - contour[:, 0]
            iris[:, 0] = IRIS_SIZE - iris[:, 0]
            # Iris edge points 1 and 3 sit right and left of the centre; un-mirroring swaps
            # their image sides. Swap them back so both irises follow MediaPipe's
            # refine_landmarks=True order: image right, up, image left, down.
            iris = iris[list(MIRRORED_IRIS_ORDER)]
        contour_px = geometry.project(contour, rois[eye], IRIS_SIZE)
        iris_px = geometry.project(iris, rois[eye], IRIS_SIZE)
        index = np.asarray(indices)
        # The eye model's depth origin is its crop centre, the mesh's the face centre:
        # shift iris z so the contour's mean depth matches the mesh's at the same points.
        iris_px[:, 2] += mesh[index, 2].mean() - contour_px[:, 2].mean()
        out[index, :2] = contour_px[:, :2]
        start = NUM_LANDMARKS + eye * NUM_IRIS
        out[start : start + NUM_IRIS] = iris_px
    return out


def _pixel_box(
    xmin: float, ymin: float, xmax: float, ymax: float, height: int, width: int
) -> tuple[int, int, int, int]:
    # Outward-rounded and clipped to the image, as (x, y, w, h).
    x0 = min(max(math.floor(xmin), 0), width)
    y0 = min(max(math.floor(ymin), 0), height)
    x1 = min(max(math.ceil(xmax), x0), width)
    y1 = min(max(math.ceil(ymax), y0), height)
    return x0, y0, x1 - x0, y1 - y0


def _landmark_box(points: np.ndarray, height: int, width: int) -> tuple[int, int, int, int]:
    # The tight pixel box around the 468 mesh points (iris points excluded).
    face = points[:NUM_LANDMARKS]
    return _pixel_box(
        float(face[:, 0].min()),
        float(face[:, 1].min()),
        float(face[:, 0].max()),
        float(face[:, 1].max()),
        height,
        width,
    )


def _check_images(images: Sequence[np.ndarray]) -> list[np.ndarray]:
    checked = []
    for image in images:
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError("images must be H x W x 3 uint8 RGB arrays")
        if image.shape[0] == 0 or image.shape[1] == 0:
            raise ValueError("images must not be empty")
        # OpenCV needs positive strides (a flipped view is not enough).
        checked.append(np.ascontiguousarray(image))
    return checked


def _tile_starts(length: int, tile: float, overlap: float) -> list[float]:
    # Evenly spaced starts covering [0, length) with neighbours overlapping >= overlap; a
    # tile longer than the frame is centred on it (its overhang is black, like the letterbox).
    if tile >= length:
        return [(length - tile) / 2]
    count = math.ceil((length - overlap) / (tile - overlap))
    step = (length - tile) / (count - 1)
    return [i * step for i in range(count)]


def tile_sizes(height: int, width: int, min_face_px: float, min_face_fraction: float) -> list[int]:
    """Side of the tiles of each level of :func:`detection_windows`, smallest first.

    The first level's side is ``min_face_px / min_face_fraction`` (a face of
    ``min_face_px`` is just large enough for the detector there); each further
    level doubles it. Levels stop once the side reaches the frame's longer side
    divided by :data:`TILE_LEVEL_RATIO`; the whole frame covers larger faces.

    Args:
        height: Frame height in pixels.
        width: Frame width in pixels.
        min_face_px: Smallest face side to find, in frame pixels.
        min_face_fraction: See :class:`DetectorSpec`.
    """
    sizes = []
    side = math.ceil(min_face_px / min_face_fraction)
    while side * TILE_LEVEL_RATIO < max(height, width):
        sizes.append(side)
        side *= 2
    return sizes


def detection_windows(
    height: int, width: int, min_face_px: float | None, min_face_fraction: float
) -> list[geometry.Roi]:
    """The square regions of a frame the detector reads, the whole frame first.

    The first window is the whole frame letterboxed (MediaPipe's only one). With
    ``min_face_px`` set, each level of :func:`tile_sizes` adds a grid of square
    tiles of that side, overlapping by at least :data:`TILE_OVERLAP` of it, that
    covers the frame; a face up to that overlap lies whole in some tile. A frame
    whose longer side is under :data:`TILE_LEVEL_RATIO` x the first tile side
    (384 px for 40-px faces and the short-range model) gets no tiles: its whole
    frame finds faces from about ``min_face_fraction`` x its longer side.

    Args:
        height: Frame height in pixels.
        width: Frame width in pixels.
        min_face_px: Smallest face side to find, in frame pixels, or ``None`` for the
            whole frame only.
        min_face_fraction: See :class:`DetectorSpec`.
    """
    windows = [geometry.letterbox_roi(height, width)]
    if min_face_px is None:
        return windows
    for side in tile_sizes(height, width, min_face_px, min_face_fraction):
        overlap = side * TILE_OVERLAP
        for y in _tile_starts(height, side, overlap):
            for x in _tile_starts(width, side, overlap):
                windows.append(geometry.Roi(x + side / 2, y + side / 2, float(side), 0.0))
    return windows


def _inside_tile(boxes: np.ndarray, window: geometry.Roi, height: int, width: int) -> np.ndarray:
    # True for (xmin, ymin, xmax, ymax) pixel boxes clear of every tile edge that lies
    # inside the frame; edges on or beyond the frame border do not cut faces.
    half = window.size / 2
    x0, y0 = window.center_x - half, window.center_y - half
    x1, y1 = window.center_x + half, window.center_y + half
    margin = TILE_EDGE_MARGIN * window.size
    keep = np.ones(len(boxes), dtype=bool)
    # Half a pixel of slack: the last tile's far edge is the frame's, up to rounding.
    if x0 > 0.5:
        keep &= boxes[:, 0] >= x0 + margin
    if y0 > 0.5:
        keep &= boxes[:, 1] >= y0 + margin
    if x1 < width - 0.5:
        keep &= boxes[:, 2] <= x1 - margin
    if y1 < height - 0.5:
        keep &= boxes[:, 3] <= y1 - margin
    return keep


def _within_level(
    boxes: np.ndarray, window: geometry.Roi, height: int, width: int, spec: DetectorSpec
) -> np.ndarray:
    # True for (xmin, ymin, xmax, ymax) boxes no larger than this tile level answers for
    # (TILE_MAX_FACE_RATIO x the smallest face of the next coarser pass).
    longer = max(height, width)
    coarser = 2 * window.size
    if coarser * TILE_LEVEL_RATIO >= longer:
        coarser = longer  # the next coarser pass is the whole frame
    limit = TILE_MAX_FACE_RATIO * spec.min_face_fraction * coarser
    sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    keep: np.ndarray = sides <= limit
    return keep


def _box_iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    iw = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    ih = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _is_part_of(face: tuple[int, int, int, int], larger: tuple[int, int, int, int]) -> bool:
    # A duplicate of `larger`, or a piece of it (an ear, an eye) seen as a face by a tile.
    if _box_iou(face, larger) > DUPLICATE_IOU:
        return True
    side, larger_side = max(face[2], face[3]), max(larger[2], larger[3])
    if larger_side < CONTAINED_RATIO * side:
        return False
    dx = face[0] + face[2] / 2 - (larger[0] + larger[2] / 2)
    dy = face[1] + face[3] / 2 - (larger[1] + larger[3] / 2)
    reach = geometry.FACE_ROI_SCALE * larger_side / 2
    return abs(dx) < reach and abs(dy) < reach


class LandmarkNet:
    """One network of the landmarker on its runtime: a torch module, or its ONNX graph.

    Built by :class:`FaceLandmarker`; runs where it does. With ``runtime="torch"`` the
    state dict is loaded into ``build()`` on ``device`` (``channels_last`` on the CPU,
    where oneDNN runs these depthwise-heavy nets 1.1-2x faster in NHWC; the inputs are
    NHWC already, see :func:`to_input_tensor`). With ``"onnx"`` the ``.onnx`` file next
    to the weights runs on ONNX Runtime's CPU provider with ``threads`` intra-op threads.

    Args:
        build: Makes the torch module.
        weights: The ``.pt`` state dict (the ``.onnx`` graph has the same stem).
        device: torch device (the CPU for ``"onnx"``).
        runtime: ``"torch"`` or ``"onnx"``.
        threads: ONNX Runtime intra-op threads (torch's are set by the caller).
    """

    def __init__(
        self,
        build: Callable[[], nn.Module],
        weights: Path,
        device: torch.device,
        runtime: Runtime,
        threads: int,
    ) -> None:
        self.runtime = runtime
        self.device = device
        self.module: nn.Module | None = None
        self.onnx: OnnxNet | None = None
        if runtime == "onnx":
            self.onnx = OnnxNet(onnx_path(weights), threads)
            return
        module = build()
        load_state_dict_file(module, weights, device)
        if device.type == "cpu":
            module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.module = module

    def __call__(self, crops: np.ndarray, *, signed: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """The network's two raw outputs for uint8 NHWC ``crops``, as tensors on ``device``.

        Args:
            crops: ``(n, s, s, 3)`` uint8 RGB.
            signed: Input range: [-1, 1] (detectors) or [0, 1] (mesh, iris).
        """
        if self.onnx is not None:
            first, second = self.onnx.run(to_input_array(crops, signed=signed))
            return torch.from_numpy(first), torch.from_numpy(second)
        assert self.module is not None
        with torch.inference_mode():
            a, b = self.module(to_input_tensor(crops, self.device, signed=signed))
        return a, b


class FaceLandmarker:
    """Face detection, 468/478-point landmarks and irises for batches of RGB frames.

    Loads the shipped networks (one detector, mesh, iris) once, as torch modules in
    ``eval()`` on ``device`` (every forward pass under ``torch.inference_mode()``) or,
    with ``runtime="onnx"``, as their ONNX graphs on ONNX Runtime's CPU provider (see
    :class:`LandmarkNet`). Frames of any size can be mixed in one call.
    Each stage runs once per call for the whole batch: one detector pass for all
    windows of all frames (in chunks of :data:`CPU_DETECTOR_BATCH` on the CPU),
    one mesh pass for all candidate faces, one iris pass for all eyes.

    Runs in an inference worker process, one caller at a time. The caller owns
    torch's thread settings (``torch.set_num_threads``); ONNX Runtime's are ``threads``.

    Args:
        device: ``"cpu"``, ``"cuda"``, ``"mps"`` or a ``torch.device``.
        runtime: ``"torch"`` (the default: the port as converted), ``"onnx"`` (ONNX
            Runtime, CPU only; 1.4-4.5x less CPU per network input there) or ``"auto"``
            (``"onnx"`` on the CPU, else torch; see
            :func:`analyzers.face.runtime.select_runtime`).
        threads: ONNX Runtime intra-op threads; ``None`` takes torch's current
            setting (``torch.get_num_threads()``), so both runtimes use the same.
        detector_model: ``"short_range"`` (BlazeFace short range, 128 px input) or
            ``"full_range"`` (192 px, MediaPipe's detector for distant faces).
        min_face_px: Smallest face side, in frame pixels, to tile detection for (see
            :func:`detection_windows`); ``None`` reads the whole frame only, as
            MediaPipe does. Tiles cost one detector window each: a 640 x 480 frame
            has 10 windows at the default 40 px, 640 x 360 has 7.
        min_score: Detector score threshold; ``None`` takes the MediaPipe graph's
            (short range 0.5, full range 0.6).
        min_presence: Face Mesh presence threshold (MediaPipe: 0.5).
        max_faces: At most this many faces per frame: :meth:`detect` keeps the
            best-scoring detections, :meth:`process` the largest confirmed faces.
        with_iris: Run the iris model and return 478 landmarks instead of 468.
        weights_dir: Folder holding the ``.pt`` files (the shipped ones by default).
    """

    def __init__(
        self,
        device: torch.device | str = "cpu",
        *,
        detector_model: DetectorModel = DETECTOR_MODEL,
        min_face_px: float | None = MIN_FACE_PX,
        min_score: float | None = None,
        min_presence: float = MIN_PRESENCE,
        max_faces: int = MAX_FACES,
        with_iris: bool = True,
        weights_dir: Path | str = WEIGHTS_DIR,
        runtime: RuntimePreference = "torch",
        threads: int | None = None,
    ) -> None:
        if max_faces < 1:
            raise ValueError("max_faces must be at least 1")
        if detector_model not in DETECTORS:
            raise ValueError(f"unknown detector_model {detector_model!r}")
        if min_face_px is not None and min_face_px <= 0:
            raise ValueError("min_face_px must be positive (or None for no tiles)")
        self.device = torch.device(device)
        self.runtime = select_runtime(runtime, self.device.type)
        self.detector_model = detector_model
        self.detector_spec = spec = DETECTORS[detector_model]
        self.min_face_px = min_face_px
        self.min_score = spec.min_score if min_score is None else min_score
        self.min_presence = min_presence
        self.max_faces = max_faces
        self.weights_dir = weights = Path(weights_dir)
        threads = torch.get_num_threads() if threads is None else threads
        if threads < 1:
            raise ValueError("threads must be at least 1")

        def net(build: Callable[[], nn.Module], file: str) -> LandmarkNet:
            return LandmarkNet(build, weights / file, self.device, self.runtime, threads)

        self.detector = net(spec.build, spec.weights)
        self.mesh = net(FaceMesh, FACE_MESH_WEIGHTS)
        self.iris: LandmarkNet | None = net(IrisLandmark, IRIS_WEIGHTS) if with_iris else None
        anchors = ssd_anchors(
            spec.input_size,
            spec.anchor_strides,
            interpolated_scale_aspect_ratio=spec.interpolated_scale_aspect_ratio,
        )
        self._anchors = torch.from_numpy(anchors).to(self.device)

    def windows(self, height: int, width: int) -> list[geometry.Roi]:
        """The detector windows of a ``height`` x ``width`` frame (:func:`detection_windows`)."""
        return detection_windows(
            height, width, self.min_face_px, self.detector_spec.min_face_fraction
        )

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        """Find faces with the detector only (no landmarks).

        Detections of all windows (:meth:`windows`) are merged, but without the
        mesh a tile may still report part of a larger face or a face-like texture;
        :meth:`process` removes those.

        Args:
            images: H x W x 3 uint8 RGB frames, any sizes.

        Returns:
            Per frame, at most ``max_faces`` detections in descending score order.

        Raises:
            ValueError: If a frame is not H x W x 3 uint8.
        """
        frames = _check_images(images)
        windows = [self.windows(*f.shape[:2]) for f in frames]
        return self._detect(frames, windows, self.max_faces)

    def process(
        self,
        images: Sequence[np.ndarray],
        hints: Sequence[Sequence[geometry.Roi] | None] | None = None,
    ) -> list[list[FaceLandmarks]]:
        """Detect faces (or follow them) and compute their landmarks.

        Args:
            images: H x W x 3 uint8 RGB frames, any sizes.
            hints: Per frame, ``None`` to run the detector, or the ROIs to read the faces
                at (the previous frame's :attr:`FaceLandmarks.next_roi`): the detector
                is skipped for that frame, as MediaPipe does in video mode, and a face
                whose mesh presence falls below ``min_presence`` is lost (run the
                detector again to find it or new faces).

        The mesh reads up to :data:`MESH_CANDIDATES` x ``max_faces`` detections per
        frame, by detector score; of the faces it confirms, the ``max_faces`` largest
        are kept (MediaPipe keeps the best-scoring ones; in a room the largest faces
        are the nearest people).

        Returns:
            Per frame, at most ``max_faces`` faces whose mesh presence reaches
            ``min_presence``, largest box first (ties: top, then left, first).

        Raises:
            ValueError: If a frame is not H x W x 3 uint8.
        """
        frames = _check_images(images)
        frame_hints = list(hints) if hints is not None else [None] * len(frames)
        if len(frame_hints) != len(frames):
            raise ValueError("hints must have one entry per image")
        windows = [self.windows(*f.shape[:2]) for f in frames]
        to_detect = [i for i, h in enumerate(frame_hints) if h is None]
        detected = self._detect(
            [frames[i] for i in to_detect],
            [windows[i] for i in to_detect],
            MESH_CANDIDATES * self.max_faces,
        )
        detections: list[list[Detection]] = [[] for _ in frames]
        for i, dets in zip(to_detect, detected, strict=True):
            detections[i] = dets
        for i, rois in enumerate(frame_hints):
            for roi in rois or ():
                # A followed face: no detector score; its keypoints come from its landmarks.
                detections[i].append(Detection((0, 0, 0, 0), float("nan"), np.zeros((6, 2)), roi))
        jobs = [(i, det) for i, dets in enumerate(detections) for det in dets]
        results: list[list[FaceLandmarks]] = [[] for _ in frames]
        if not jobs:
            return results

        crops = np.stack([geometry.crop(frames[i], d.roi, MESH_SIZE, "replicate") for i, d in jobs])
        raw, logits = self.run_mesh(crops)
        presence = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
        kept = [k for k in range(len(jobs)) if presence[k] >= self.min_presence]
        meshes = [geometry.project(raw[k], jobs[k][1].roi, MESH_SIZE) for k in kept]
        boxes = [
            _landmark_box(mesh, *frames[jobs[k][0]].shape[:2])
            for k, mesh in zip(kept, meshes, strict=True)
        ]
        # Largest first (then by presence), at most max_faces per frame; in a tiled frame
        # drop faces that duplicate or are part of a kept one (several windows saw them).
        unique: list[int] = []
        per_frame = [0] * len(frames)
        for j in sorted(
            range(len(kept)), key=lambda m: (-boxes[m][2] * boxes[m][3], -presence[kept[m]], m)
        ):
            frame = jobs[kept[j]][0]
            if per_frame[frame] >= self.max_faces or (
                len(windows[frame]) > 1
                and any(
                    jobs[kept[m]][0] == frame and _is_part_of(boxes[j], boxes[m]) for m in unique
                )
            ):
                continue
            unique.append(j)
            per_frame[frame] += 1
        unique.sort()
        kept = [kept[j] for j in unique]
        meshes = [meshes[j] for j in unique]

        if self.iris is not None and kept:
            eyes = [
                eye_crops(frames[jobs[k][0]], mesh) for k, mesh in zip(kept, meshes, strict=True)
            ]
            contours, irises = self.run_iris(np.concatenate([c for c, _ in eyes]))
            meshes = [
                refine_with_iris(mesh, contours[2 * j : 2 * j + 2], irises[2 * j : 2 * j + 2], rois)
                for j, (mesh, (_, rois)) in enumerate(zip(meshes, eyes, strict=True))
            ]

        for k, landmarks in zip(kept, meshes, strict=True):
            i, det = jobs[k]
            followed = math.isnan(det.score)
            results[i].append(
                FaceLandmarks(
                    box=_landmark_box(landmarks, *frames[i].shape[:2]),
                    score=None if followed else det.score,
                    presence=float(presence[k]),
                    landmarks=landmarks,
                    keypoints=_landmark_keypoints(landmarks) if followed else det.keypoints,
                    next_roi=roi_from_landmarks(landmarks),
                )
            )
        for faces in results:
            faces.sort(key=lambda f: (-f.box[2] * f.box[3], f.box[1], f.box[0]))
        return results

    def _detect(
        self, frames: list[np.ndarray], windows: list[list[geometry.Roi]], limit: int
    ) -> list[list[Detection]]:
        if not frames:
            return []
        size = self.detector_spec.input_size
        crops = np.stack(
            [
                geometry.crop(frame, window, size, "zero")
                for frame, frame_windows in zip(frames, windows, strict=True)
                for window in frame_windows
            ]
        )
        # Large CPU batches fall out of the cache (see CPU_DETECTOR_BATCH).
        chunk = CPU_DETECTOR_BATCH if self.device.type == "cpu" else len(crops)
        decoded: list[RawDetections] = []
        with torch.inference_mode():
            for start in range(0, len(crops), chunk):
                regressors, logits = self.detector(crops[start : start + chunk], signed=True)
                # Decoding stays on the device; only candidates come back to the host.
                decoded += decode_detections(
                    regressors, logits, self._anchors, self.min_score, float(size)
                )
        out: list[list[Detection]] = []
        at = 0
        for frame, frame_windows in zip(frames, windows, strict=True):
            height, width = frame.shape[:2]
            boxes, keypoints, scores = [], [], []
            for w, window in enumerate(frame_windows):
                raw = decoded[at + w]
                # Normalised window coordinates -> frame pixels (DetectionProjectionCalculator).
                scale = window.size
                origin = np.array(
                    [window.center_x - scale / 2, window.center_y - scale / 2], dtype=np.float64
                )
                box = raw.boxes.astype(np.float64) * scale + np.tile(origin, 2)
                keep = (
                    _inside_tile(box, window, height, width)
                    & _within_level(box, window, height, width, self.detector_spec)
                    if w
                    else slice(None)
                )
                boxes.append(box[keep])
                keypoints.append((raw.keypoints.astype(np.float64) * scale + origin)[keep])
                scores.append(raw.scores[keep])
            at += len(frame_windows)
            merged = weighted_nms(
                RawDetections(
                    boxes=np.concatenate(boxes),
                    keypoints=np.concatenate(keypoints),
                    scores=np.concatenate(scores),
                )
            )
            dets = []
            for k in range(min(len(merged.scores), limit)):
                box = merged.boxes[k].astype(np.float64)
                points = merged.keypoints[k].astype(np.float64)
                dets.append(
                    Detection(
                        box=_pixel_box(box[0], box[1], box[2], box[3], height, width),
                        score=float(merged.scores[k]),
                        keypoints=points.astype(np.float32),
                        roi=geometry.face_roi(box, points),
                    )
                )
            out.append(dets)
        return out

    def run_detector(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run the detector on prepared inputs, in one batch; return its raw outputs.

        A stage of :meth:`detect`, public for checking the port against TFLite.

        Args:
            crops: ``(n, s, s, 3)`` uint8 detector windows (see :func:`detection_windows`),
                s = 128 (short range) or 192 (full range).

        Returns:
            ``(regressors, logits)``: ``(n, a, 16)`` and ``(n, a)`` float32, a = 896
            (short range) or 2304 (full range).
        """
        regressors, logits = self.detector(crops, signed=True)
        return regressors.float().cpu().numpy(), logits.float().cpu().numpy()

    def run_mesh(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run Face Mesh on prepared crops; return its raw outputs.

        A stage of :meth:`process`, public for checking the port against TFLite.

        Args:
            crops: ``(n, 192, 192, 3)`` uint8 face crops (see :class:`Detection` ``.roi``).

        Returns:
            ``(landmarks, logits)``: ``(n, 468, 3)`` in crop pixels and ``(n,)`` presence
            logits, float32.
        """
        landmarks, logits = self._run_chunked(self.mesh, crops, CPU_MESH_BATCH)
        return landmarks, logits

    def run_iris(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run the iris model on prepared eye crops; return its raw outputs.

        A stage of :meth:`process`, public for checking the port against TFLite.

        Args:
            crops: ``(n, 64, 64, 3)`` uint8 eye crops, left eyes mirrored (see
                :func:`eye_crops`).

        Returns:
            ``(contours, irises)``: ``(n, 71, 3)`` and ``(n, 5, 3)`` in crop pixels, float32.

        Raises:
            RuntimeError: If the landmarker was built with ``with_iris=False``.
        """
        if self.iris is None:
            raise RuntimeError("this FaceLandmarker was built without the iris model")
        contours, irises = self._run_chunked(self.iris, crops, CPU_IRIS_BATCH)
        return contours, irises

    def _run_chunked(
        self, net: LandmarkNet, crops: np.ndarray, cpu_chunk: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Run a two-output network over uint8 crops, in cache-sized chunks on the CPU."""
        chunk = cpu_chunk if self.device.type == "cpu" else max(1, len(crops))
        firsts, seconds = [], []
        for start in range(0, len(crops), chunk):
            a, b = net(crops[start : start + chunk], signed=False)
            firsts.append(a.float().cpu().numpy())
            seconds.append(b.float().cpu().numpy())
        return np.concatenate(firsts), np.concatenate(seconds)
