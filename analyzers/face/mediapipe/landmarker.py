"""MediaPipe's face landmark pipeline on the torch ports: detector, mesh and iris, batched.

:class:`FaceLandmarker` reproduces what MediaPipe's ``face_landmark_front_cpu``
graph does on a single image (``static_image_mode``, no tracking between
frames), plus the ``iris_landmark_left_and_right`` refinement:

1. **Detect** (BlazeFace short range): every frame is letterboxed to a black-
   bordered square and resized to 128 x 128; all frames go through the
   detector in one batch. Scores are sigmoids of clipped logits, boxes are
   decoded against the 896 SSD anchors, merged by weighted NMS (IoU 0.3) and
   cut to ``max_faces`` by score.
2. **Mesh** (Face Mesh): each face's ROI is the detection box centre, rotated
   so the eyes are level, 1.5 x the longer box side; all faces of all frames
   are cropped to 192 x 192 and go through the mesh in one batch. The
   face-presence logit is passed through a sigmoid and faces below
   ``min_presence`` are dropped.
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
depth with smaller values closer to the camera. Steps 1 and 2 match MediaPipe
0.10.21 to within 0.01 px (see ``weights/PROVENANCE.md``). Step 3 follows
MediaPipe's iris graphs as published; they are not in the wheel, so it was
checked against the ``refine_landmarks=True`` mesh instead (iris centres within
~0.3 px). Deliberate differences: the mesh's ``z`` is kept where the eye contour
replaces ``x, y`` (the iris model's depth has another origin), iris ``z`` is
shifted so the contour's mean depth matches the mesh's, and the mirrored eye's
iris edge points are reordered as described above. Eye crops use the same
corner-to-corner bilinear warp as the other crops.

Runs in an inference worker process (or a test thread). No asyncio; nothing
from ``bot/`` or ``web/``. Not thread-safe: one caller per instance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import roi as geometry
from .blazeface import INPUT_SIZE as DETECTOR_SIZE
from .blazeface import MIN_SCORE, BlazeFace, decode_detections, ssd_anchors, weighted_nms
from .blocks import load_state_dict_file
from .facemesh import INPUT_SIZE as MESH_SIZE
from .facemesh import NUM_LANDMARKS, FaceMesh
from .iris import INPUT_SIZE as IRIS_SIZE
from .iris import NUM_IRIS, IrisLandmark

#: Where the converted state dicts ship.
WEIGHTS_DIR = Path(__file__).with_name("weights")
BLAZEFACE_WEIGHTS = "blazeface_short_range.pt"
FACE_MESH_WEIGHTS = "face_mesh.pt"
IRIS_WEIGHTS = "iris_landmark.pt"

#: Faces whose mesh presence (sigmoid) is below this are dropped (MediaPipe: 0.5).
MIN_PRESENCE = 0.5
#: At most this many faces per frame, the best-scoring ones. MediaPipe's default is 1;
#: a meeting tile rarely shows more than a few people, and each costs one mesh crop.
MAX_FACES = 4
#: Landmarks with iris refinement.
NUM_LANDMARKS_WITH_IRIS = NUM_LANDMARKS + 2 * NUM_IRIS

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
        score: Detector confidence in [0, 1].
        presence: Face Mesh face-presence probability in [0, 1].
        landmarks: ``(478, 3)`` float32 ``x, y, z`` pixels with iris refinement, or
            ``(468, 3)`` without (index layout: :mod:`analyzers.face.geometry.landmarks`).
        keypoints: ``(6, 2)`` float32 detector keypoints in pixels (see :class:`Detection`).
    """

    box: tuple[int, int, int, int]
    score: float
    presence: float
    landmarks: np.ndarray
    keypoints: np.ndarray


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


class FaceLandmarker:
    """Face detection, 468/478-point landmarks and irises for batches of RGB frames.

    Loads the three shipped state dicts once and keeps the models in ``eval()``
    on ``device``; every forward pass runs under ``torch.inference_mode()``.
    Frames of any size can be mixed in one call. Each stage runs once per call
    for the whole batch: one detector pass for all frames, one mesh pass for
    all faces, one iris pass for all eyes.

    Runs in an inference worker process, one caller at a time. The caller owns
    torch's thread settings (``torch.set_num_threads``).

    Args:
        device: ``"cpu"``, ``"cuda"``, ``"mps"`` or a ``torch.device``.
        min_score: Detector score threshold (MediaPipe: 0.5).
        min_presence: Face Mesh presence threshold (MediaPipe: 0.5).
        max_faces: At most this many faces per frame, by detector score.
        with_iris: Run the iris model and return 478 landmarks instead of 468.
        weights_dir: Folder holding the ``.pt`` files (the shipped ones by default).
    """

    def __init__(
        self,
        device: torch.device | str = "cpu",
        *,
        min_score: float = MIN_SCORE,
        min_presence: float = MIN_PRESENCE,
        max_faces: int = MAX_FACES,
        with_iris: bool = True,
        weights_dir: Path | str = WEIGHTS_DIR,
    ) -> None:
        if max_faces < 1:
            raise ValueError("max_faces must be at least 1")
        self.device = torch.device(device)
        self.min_score = min_score
        self.min_presence = min_presence
        self.max_faces = max_faces
        self.weights_dir = weights = Path(weights_dir)
        self.detector = BlazeFace()
        load_state_dict_file(self.detector, weights / BLAZEFACE_WEIGHTS, self.device)
        self.mesh = FaceMesh()
        load_state_dict_file(self.mesh, weights / FACE_MESH_WEIGHTS, self.device)
        self.iris: IrisLandmark | None = None
        if with_iris:
            self.iris = IrisLandmark()
            load_state_dict_file(self.iris, weights / IRIS_WEIGHTS, self.device)
        if self.device.type == "cpu":
            # oneDNN runs these depthwise-heavy nets 1.1-2x faster in NHWC on the CPU; the
            # inputs are NHWC already (see to_input_tensor). GPUs keep torch's default layout.
            for model in (self.detector, self.mesh, self.iris):
                if model is not None:
                    model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self._anchors = torch.from_numpy(ssd_anchors()).to(self.device)

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        """Find faces with the detector only (no landmarks).

        Args:
            images: H x W x 3 uint8 RGB frames, any sizes.

        Returns:
            Per frame, at most ``max_faces`` detections in descending score order.

        Raises:
            ValueError: If a frame is not H x W x 3 uint8.
        """
        return self._detect(_check_images(images))

    def process(self, images: Sequence[np.ndarray]) -> list[list[FaceLandmarks]]:
        """Detect faces and compute their landmarks.

        Args:
            images: H x W x 3 uint8 RGB frames, any sizes.

        Returns:
            Per frame, the faces whose mesh presence reaches ``min_presence``, largest
            box first (ties: top, then left, first).

        Raises:
            ValueError: If a frame is not H x W x 3 uint8.
        """
        frames = _check_images(images)
        detections = self._detect(frames)
        jobs = [(i, det) for i, dets in enumerate(detections) for det in dets]
        results: list[list[FaceLandmarks]] = [[] for _ in frames]
        if not jobs:
            return results

        crops = np.stack([geometry.crop(frames[i], d.roi, MESH_SIZE, "replicate") for i, d in jobs])
        raw, logits = self.run_mesh(crops)
        presence = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
        kept = [k for k in range(len(jobs)) if presence[k] >= self.min_presence]
        meshes = [geometry.project(raw[k], jobs[k][1].roi, MESH_SIZE) for k in kept]

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
            height, width = frames[i].shape[:2]
            face = landmarks[:NUM_LANDMARKS]
            box = _pixel_box(
                float(face[:, 0].min()),
                float(face[:, 1].min()),
                float(face[:, 0].max()),
                float(face[:, 1].max()),
                height,
                width,
            )
            results[i].append(
                FaceLandmarks(
                    box=box,
                    score=det.score,
                    presence=float(presence[k]),
                    landmarks=landmarks,
                    keypoints=det.keypoints,
                )
            )
        for faces in results:
            faces.sort(key=lambda f: (-f.box[2] * f.box[3], f.box[1], f.box[0]))
        return results

    def _detect(self, frames: list[np.ndarray]) -> list[list[Detection]]:
        if not frames:
            return []
        letterboxes = [geometry.letterbox_roi(*f.shape[:2]) for f in frames]
        crops = np.stack(
            [
                geometry.crop(f, lb, DETECTOR_SIZE, "zero")
                for f, lb in zip(frames, letterboxes, strict=True)
            ]
        )
        with torch.inference_mode():
            # Decoding stays on the device; only candidates come back to the host.
            regressors, logits = self.detector(to_input_tensor(crops, self.device, signed=True))
            decoded = decode_detections(regressors, logits, self._anchors, self.min_score)
        out: list[list[Detection]] = []
        for frame, letterbox, raw in zip(frames, letterboxes, decoded, strict=True):
            merged = weighted_nms(raw)
            height, width = frame.shape[:2]
            # Normalised detector coordinates -> pixels (DetectionProjectionCalculator).
            scale = letterbox.size
            origin = np.array(
                [letterbox.center_x - scale / 2, letterbox.center_y - scale / 2], dtype=np.float64
            )
            dets = []
            for k in range(min(len(merged.scores), self.max_faces)):
                box = merged.boxes[k].astype(np.float64) * scale + np.tile(origin, 2)
                keypoints = merged.keypoints[k].astype(np.float64) * scale + origin
                dets.append(
                    Detection(
                        box=_pixel_box(box[0], box[1], box[2], box[3], height, width),
                        score=float(merged.scores[k]),
                        keypoints=keypoints.astype(np.float32),
                        roi=geometry.face_roi(box, keypoints),
                    )
                )
            out.append(dets)
        return out

    def run_detector(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run BlazeFace on prepared inputs; return its raw outputs.

        A stage of :meth:`detect`, public for checking the port against TFLite.

        Args:
            crops: ``(n, 128, 128, 3)`` uint8 letterboxed frames (see :mod:`.roi`).

        Returns:
            ``(regressors, logits)``: ``(n, 896, 16)`` and ``(n, 896)`` float32.
        """
        with torch.inference_mode():
            regressors, logits = self.detector(to_input_tensor(crops, self.device, signed=True))
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
        with torch.inference_mode():
            landmarks, logits = self.mesh(to_input_tensor(crops, self.device, signed=False))
        return landmarks.float().cpu().numpy(), logits.float().cpu().numpy()

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
        with torch.inference_mode():
            contours, irises = self.iris(to_input_tensor(crops, self.device, signed=False))
        return contours.float().cpu().numpy(), irises.float().cpu().numpy()
