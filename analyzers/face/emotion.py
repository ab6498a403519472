"""Face analyzer: faces and landmarks, then a FER2013 emotion classifier on each face.

Two detectors are available:

- ``mediapipe`` (default): MediaPipe's BlazeFace short-range detector, Face Mesh
  and iris networks ported to torch (:mod:`analyzers.face.mediapipe`, weights
  shipped, Apache-2.0). Each face gets 478 landmarks, from which the worker
  measures the per-frame geometry (EAR, AU proxies, head pose, gaze:
  :func:`analyzers.face.track_state.measure_face`); tracking, blinks, smoothing
  and baselines are stateful and run in the bot process.
- ``haar``: OpenCV's Haar cascade, the cheap fallback: boxes only, no landmarks.

Two classifiers are available:

- ``mini_xception`` (default): fer's mini-Xception ported to torch, weights
  shipped in ``weights/mini_xception_fer2013.pt`` (MIT, see ``weights/PROVENANCE.md``).
  Faces are framed as FER2013's are, eye-aligned (:mod:`analyzers.face.framing`).
- ``deepface``: DeepFace's own emotion CNN and weight loading, so online users
  get DeepFace's automatic download into ``$DEEPFACE_HOME/.deepface/weights``.
  Faces are framed as ``DeepFace.analyze`` frames them: the level Haar box.

Both run every face of a frame as one batch on the selected torch device, or, with
``runtime`` ``auto`` (the default) on the CPU or ``onnx``, the MediaPipe networks and
the mini-Xception run their shipped ONNX graphs on ONNX Runtime instead
(:mod:`analyzers.face.runtime`): on one CPU thread a face then costs about 45 % less
CPU time (README, ``bench faces``). DeepFace's CNN always runs on torch.
torch (and deepface) are imported inside :meth:`FaceEmotionAnalyzer.load`, so the
bot process can import this module for :data:`analyzers.REGISTRY` and the params
without paying torch's multi-second import.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Self

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator
from typing_extensions import TypeIs

from analyzers.base import Analyzer
from analyzers.face.detector import FaceDetector, HaarFaceDetector
from analyzers.face.framing import (
    DEEPFACE_FRAMING,
    FER2013_FRAMING,
    Eyes,
    Framing,
    eyes_from_box,
    eyes_from_landmarks,
    fit_square,
    frame_face,
)
from analyzers.face.runtime import OnnxNet, Runtime, RuntimePreference, onnx_path, select_runtime
from analyzers.face.track_state import FaceMeasurement, FaceTrackParams, measure_face
from analyzers.face.tracking import TrackerParams
from analyzers.types import EMOTIONS, FaceAnalysis, FaceEmotion, VideoSample

if TYPE_CHECKING:
    import torch
    from torch import nn

    from analyzers.face.mediapipe.landmarker import FaceLandmarker

logger = logging.getLogger(__name__)

#: Default sampling rate of camera frames for this analyzer. Blinks (~100-400 ms) are
#: observable from 10 frames a second on (see analyzers.face.geometry.blinks); the
#: frames actually taken follow the camera's own rate (15-30 fps), so aiming at 15 keeps
#: the sampled rate at 10 or more for the usual camera rates.
FACE_FPS = 15.0
#: Default most faces read per frame: a meeting-room camera at a conference table. Each
#: face read costs its mesh, iris and emotion passes (about 12 ms on one CPU core); a
#: webcam with one person pays for one.
MAX_FACES = 24
#: Highest ``max_faces`` accepted (a crowd or group photo; ``eval detect`` counts up to it).
MAX_FACES_LIMIT = 64
#: Default smallest face side, in pixels of the analysed frame: 30-px faces (the far end
#: of a room camera's table at 1280 x 720) are then found reliably, since the detector
#: tiles are sized for 24 px (see analyzers.face.mediapipe.landmarker.detection_windows).
MIN_FACE_PX = 24
#: Default seconds between face detector runs while faces are followed by their landmarks.
DETECT_INTERVAL_SECS = 1.0
#: Default analysis rate while no face is in view.
IDLE_FPS = 2.0
#: The converted fer weights that ship with the project.
MINI_XCEPTION_WEIGHTS = Path(__file__).resolve().parent / "weights" / "mini_xception_fer2013.pt"
#: Value of :attr:`FaceAnalysis.model` for each classifier.
MODEL_IDS: dict[str, str] = {
    "mini_xception": "mini_xception_fer2013",
    "deepface": "deepface_emotion",
}
#: DeepFace's torch emotion weights, looked up in ``$DEEPFACE_HOME/.deepface/weights``.
DEEPFACE_EMOTION_WEIGHTS = "facial_expression_model_weights.pth"

#: The mini-Xception's input side: fer's training resized FER2013's 48 px faces to 64.
FER_INPUT_SIZE = 64
#: DeepFace's emotion CNN reads 48x48 gray.
DEEPFACE_INPUT_SIZE = 48

#: Turns ``(n, size, size)`` uint8 gray framed faces into the model's ``(n, S, S)`` float32 input.
PrepareFn = Callable[[np.ndarray], np.ndarray]


class FaceEmotionParams(BaseModel):
    """Settings of the face emotion analyzer (config section ``[analyzers.face_emotion]``)."""

    model_config = ConfigDict(extra="forbid")

    fps: float = Field(
        FACE_FPS, gt=0, le=30, description="Camera frames per second sampled for analysis."
    )
    model: Literal["mini_xception", "deepface"] = Field(
        "mini_xception",
        description="Emotion classifier: shipped fer mini-Xception, or DeepFace's emotion CNN.",
    )
    detector: Literal["mediapipe", "haar"] = Field(
        "mediapipe",
        description="Face detector: MediaPipe BlazeFace + Face Mesh + iris (landmarks), "
        "or OpenCV's Haar cascade (boxes only: no blinks, pose, gaze or AUs).",
    )
    device: Literal["auto", "cpu", "cuda", "mps"] = Field(
        "auto", description="Torch device; auto picks cuda, then mps, then cpu."
    )
    runtime: RuntimePreference = Field(
        "auto",
        description="Where the MediaPipe networks and the mini-Xception run: onnx (their "
        "shipped ONNX graphs on ONNX Runtime, CPU only; about half the CPU per face), torch "
        "(any device), or auto (onnx on the cpu, torch on cuda and mps). DeepFace's model "
        "always runs on torch.",
    )
    min_face_px: int = Field(
        MIN_FACE_PX,
        ge=16,
        description="Smallest face side, in pixels of the analysed frame, to find and analyse "
        "(mediapipe: its detector tiles are sized for it; smaller costs more detector windows).",
    )
    max_faces: int = Field(
        MAX_FACES,
        ge=1,
        le=MAX_FACES_LIMIT,
        description="Faces analysed per frame, largest first (each costs its landmark and "
        "emotion passes).",
    )
    torch_threads: int = Field(
        1,
        ge=1,
        description="Intra-op threads of torch and of ONNX Runtime in each inference worker.",
    )
    deepface_home: str | None = Field(
        None,
        description="DEEPFACE_HOME for the deepface model (weights in .deepface/weights); "
        "None or empty keeps DeepFace's default.",
    )

    detect_interval_secs: float = Field(
        DETECT_INTERVAL_SECS,
        ge=0,
        description="mediapipe: between detector runs, faces are followed from their "
        "landmarks in the previous frame; new faces appear within this many seconds "
        "(0 = run the detector on every frame).",
    )
    idle_fps: float = Field(
        IDLE_FPS,
        gt=0,
        le=30,
        description="Frames per second analysed while no face is in view (a face that "
        "appears is found within 1/idle_fps seconds).",
    )
    tracker: TrackerParams = Field(
        default_factory=TrackerParams, description="Face tracking across frames."
    )
    tracking: FaceTrackParams = Field(
        default_factory=FaceTrackParams,
        description="Per-face blinks, smoothing, baseline and window (bot process).",
    )

    @field_validator("deepface_home")
    @classmethod
    def _empty_is_default(cls, v: str | None) -> str | None:
        # TOML has no null: config/default.toml writes "" for "DeepFace's default".
        return v or None


@dataclass(frozen=True, slots=True)
class _Classifier:
    """A loaded emotion model and how faces are cut and scaled for it."""

    model_id: str
    #: The torch network (runtime torch), else None.
    module: nn.Module | None
    #: The ONNX graph (runtime onnx), else None.
    onnx: OnnxNet | None
    #: Where the model's training faces have their eyes (see analyzers.face.framing).
    framing: Framing
    #: An already framed gray crop (``eval faces --crops``) to a ``framing.size`` square.
    fit_crop: Callable[[np.ndarray], np.ndarray]
    prepare: PrepareFn
    # DeepFace's network ends in a softmax; the mini-Xception port returns logits.
    outputs_probs: bool


def fer_input(frames: np.ndarray) -> np.ndarray:
    """mini-Xception input from FER2013-framed 48x48 gray faces, as fer preprocesses.

    Bilinear resize to 64x64 (how fer's training data was made from FER2013), then
    ``(x / 255 - 0.5) * 2``.

    Returns:
        ``(n, 64, 64)`` float32 in [-1, 1].
    """
    batch = np.empty((len(frames), FER_INPUT_SIZE, FER_INPUT_SIZE), dtype=np.float32)
    for i, frame in enumerate(frames):
        batch[i] = cv2.resize(frame, (FER_INPUT_SIZE, FER_INPUT_SIZE))
    batch /= 255.0
    batch -= 0.5
    batch *= 2.0
    return batch


def letterbox(img: np.ndarray, size: int) -> np.ndarray:
    """DeepFace's ``resize_image``: the longer side scaled to ``size``, the rest black, centred."""
    factor = min(size / img.shape[0], size / img.shape[1])
    resized = cv2.resize(img, (int(img.shape[1] * factor), int(img.shape[0] * factor)))
    dy = size - resized.shape[0]
    dx = size - resized.shape[1]
    pad = ((dy // 2, dy - dy // 2), (dx // 2, dx - dx // 2)) + ((0, 0),) * (img.ndim - 2)
    out = np.pad(resized, pad)
    if out.shape[:2] != (size, size):
        out = cv2.resize(out, (size, size))
    return out


def deepface_input(frames: np.ndarray) -> np.ndarray:
    """DeepFace emotion input from its 224x224 framed gray faces: resize to 48x48, scale to [0, 1].

    Returns:
        ``(n, 48, 48)`` float32 in [0, 1].
    """
    batch = np.empty((len(frames), DEEPFACE_INPUT_SIZE, DEEPFACE_INPUT_SIZE), dtype=np.float32)
    for i, frame in enumerate(frames):
        batch[i] = cv2.resize(frame, (DEEPFACE_INPUT_SIZE, DEEPFACE_INPUT_SIZE))
    batch /= 255.0
    return batch


def deepface_weights_path(deepface_home: str | None) -> Path:
    """Where DeepFace keeps (or downloads) its torch emotion weights.

    Mirrors ``deepface.commons.folder_utils.get_deepface_home``: the argument,
    else ``$DEEPFACE_HOME``, else the user's home directory.
    """
    home = deepface_home or os.environ.get("DEEPFACE_HOME") or os.path.expanduser("~")
    return Path(home) / ".deepface" / "weights" / DEEPFACE_EMOTION_WEIGHTS


def _load_mini_xception(device: torch.device, runtime: Runtime, threads: int) -> _Classifier:
    module = onnx = None
    if runtime == "onnx":
        onnx = OnnxNet(onnx_path(MINI_XCEPTION_WEIGHTS), threads)
    else:
        from analyzers.face.mini_xception import load_mini_xception

        module = load_mini_xception(MINI_XCEPTION_WEIGHTS, device)
    return _Classifier(
        model_id=MODEL_IDS["mini_xception"],
        module=module,
        onnx=onnx,
        framing=FER2013_FRAMING,
        fit_crop=lambda gray: fit_square(gray, FER2013_FRAMING.size),
        prepare=fer_input,
        outputs_probs=False,
    )


def _load_deepface(device: torch.device, deepface_home: str | None) -> _Classifier:
    if deepface_home is not None:
        # DeepFace reads DEEPFACE_HOME from the environment whenever it resolves a
        # path; it has no parameter for it. Inference workers are single-purpose
        # processes, so setting it process-wide is what the config asks for.
        os.environ["DEEPFACE_HOME"] = deepface_home
    weights = deepface_weights_path(deepface_home)
    # Imported here: deepface pulls gdown and requests, and the mini_xception
    # path must not depend on it.
    from deepface.commons import folder_utils
    from deepface.models.demography.pytorch import Emotion

    try:
        # What DeepFace's own import does; the download needs the folder to exist.
        folder_utils.initialize_folder()
        # DeepFace's loader: returns at once when the file exists, else downloads it.
        module = Emotion.load_model()
    # OSError: offline download; ValueError: DeepFace's wrapper around download and
    # torch.load failures; RuntimeError: a state dict that does not fit the network.
    except (OSError, ValueError, RuntimeError) as e:
        if not weights.is_file():
            raise RuntimeError(
                f"DeepFace emotion weights {DEEPFACE_EMOTION_WEIGHTS} are missing: looked for "
                f"{weights} and the download failed (offline?). Copy the file there or set "
                "deepface_home to a folder whose .deepface/weights holds it."
            ) from e
        raise RuntimeError(
            f"could not load DeepFace emotion weights from {weights} (corrupt or partial "
            "download? delete it to download again)"
        ) from e
    return _Classifier(
        model_id=MODEL_IDS["deepface"],
        module=module.to(device).eval(),
        onnx=None,
        framing=DEEPFACE_FRAMING,
        fit_crop=lambda gray: letterbox(gray, DEEPFACE_FRAMING.size),
        prepare=deepface_input,
        outputs_probs=True,
    )


@dataclass(frozen=True, slots=True)
class _FoundFace:
    box: tuple[int, int, int, int]
    score: float | None
    landmarks: np.ndarray | None
    next_roi: object | None = None

    @property
    def eyes(self) -> Eyes:
        """Eye centres from the landmarks, else where a Haar box has them on average."""
        if self.landmarks is not None:
            eyes = eyes_from_landmarks(self.landmarks)
            # A mesh squeezed at the frame border can put both eyes on one point.
            if eyes.distance >= 1.0:
                return eyes
        return eyes_from_box(self.box)


def _is_box_detector(detector: FaceDetector | FaceLandmarker) -> TypeIs[FaceDetector]:
    # FaceLandmarker is imported lazily (it pulls torch), so test by its method.
    return not hasattr(detector, "process")


class FaceEmotionAnalyzer(Analyzer[VideoSample, FaceAnalysis]):
    """Detects faces in a frame and scores the seven FER2013 emotions of each.

    Built by :meth:`load` once per inference worker process and used only by
    that process's calling thread: the detector, the model and the torch
    thread setting are per process.
    """

    name = "face_emotion"
    params_type = FaceEmotionParams

    def __init__(
        self,
        params: FaceEmotionParams,
        detector: FaceDetector | FaceLandmarker,
        classifier: _Classifier,
        device: torch.device,
        runtime: Runtime = "torch",
    ) -> None:
        """Wire up already-loaded parts; use :meth:`load` to build them from params.

        ``detector`` is a box detector (:class:`FaceDetector`) or a
        :class:`~analyzers.face.mediapipe.landmarker.FaceLandmarker`, which also
        gives landmarks.
        """
        self.params = params
        self._detector = detector
        self._classifier = classifier
        self._device = device
        self._runtime = runtime

    @property
    def model(self) -> nn.Module | OnnxNet:
        """The emotion network (for hooks and tests).

        The torch module in eval mode on :attr:`device`, or the ONNX graph when the
        mini-Xception runs on ONNX Runtime.
        """
        net = self._classifier.onnx or self._classifier.module
        assert net is not None
        return net

    @property
    def device(self) -> torch.device:
        """The torch device the torch networks run on (the CPU for ONNX Runtime)."""
        return self._device

    @property
    def runtime(self) -> Runtime:
        """Where the MediaPipe networks and the mini-Xception run (see FaceEmotionParams)."""
        return self._runtime

    @classmethod
    def load(cls, params: BaseModel) -> Self:
        """Build the detector and load the emotion model. Blocking; once per process.

        Raises:
            TypeError: If ``params`` is not a :class:`FaceEmotionParams`.
            ValueError: If the requested device is not available, or runtime ``onnx``
                is asked for on another device than the CPU.
            RuntimeError: If the model's weights are missing or cannot be loaded.
        """
        if not isinstance(params, FaceEmotionParams):
            raise TypeError(f"expected FaceEmotionParams, got {type(params).__name__}")
        start = time.perf_counter()
        import torch

        from analyzers.device import select_device

        torch.set_num_threads(params.torch_threads)
        device = select_device(params.device)
        runtime = select_runtime(params.runtime, device.type)
        detector: FaceDetector | FaceLandmarker
        if params.detector == "mediapipe":
            from analyzers.face.mediapipe.landmarker import FaceLandmarker

            detector = FaceLandmarker(
                device,
                max_faces=params.max_faces,
                min_face_px=params.min_face_px,
                runtime=runtime,
                threads=params.torch_threads,
            )
        else:
            detector = HaarFaceDetector(min_face_px=params.min_face_px)
        if params.model == "mini_xception":
            classifier = _load_mini_xception(device, runtime, params.torch_threads)
        else:
            classifier = _load_deepface(device, params.deepface_home)
        logger.info(
            "face emotion analyzer loaded",
            extra={
                "model": classifier.model_id,
                "device": str(device),
                "runtime": runtime,
                "load_ms": (time.perf_counter() - start) * 1000.0,
            },
        )
        return cls(params, detector, classifier, device, runtime)

    def analyze(self, sample: VideoSample) -> FaceAnalysis:
        """Find up to ``max_faces`` faces and classify them in one batch.

        Returns:
            The faces largest first; ``faces == ()`` when none was found.

        Raises:
            ValueError: If the image is not H x W x 3 uint8.
        """
        return self.analyze_batch([sample])[0]

    def analyze_batch(self, samples: Sequence[VideoSample]) -> list[FaceAnalysis]:
        """Analyse several frames (from any participants) with one pass per network.

        The landmark detector runs once for all frames, the face mesh and iris once
        for all their faces, and the emotion model once for all faces of all
        frames. Each result's ``inference_ms`` is the time of the whole call.

        Raises:
            ValueError: If an image is not H x W x 3 uint8.
        """
        start = time.perf_counter()
        images = [sample.image for sample in samples]
        for image in images:
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise ValueError("VideoSample.image must be an H x W x 3 uint8 RGB array")
        grays = [cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) for image in images]
        found = self._find_faces(images, grays, [sample.face_rois for sample in samples])
        # One emotion batch over every face of every frame.
        framing = self._classifier.framing
        frames = [
            frame_face(gray, face.eyes, framing)
            for gray, faces in zip(grays, found, strict=True)
            for face in faces
        ]
        all_probs = (
            self._forward(self._classifier.prepare(np.stack(frames)))
            if frames
            else np.empty((0, 7))
        )
        elapsed_ms = (time.perf_counter() - start) * 1000.0
        results = []
        offset = 0
        for sample, image, faces in zip(samples, images, found, strict=True):
            height, width = image.shape[:2]
            probs = all_probs[offset : offset + len(faces)]
            offset += len(faces)
            results.append(
                FaceAnalysis(
                    participant_id=sample.participant_id,
                    ts=sample.ts,
                    image_size=(width, height),
                    faces=tuple(
                        FaceEmotion(
                            box=face.box,
                            probs=tuple(float(p) for p in row),
                            detector_score=face.score,
                            measurement=self._measure(face.landmarks, (width, height), row),
                            next_roi=face.next_roi,
                        )
                        for face, row in zip(faces, probs, strict=True)
                    ),
                    model=self._classifier.model_id,
                    inference_ms=elapsed_ms,
                    has_landmarks=not _is_box_detector(self._detector),
                )
            )
        return results

    def _find_faces(
        self,
        images: list[np.ndarray],
        grays: list[np.ndarray],
        hints: list[tuple[object, ...] | None],
    ) -> list[list[_FoundFace]]:
        """Up to ``max_faces`` faces per frame, largest first (hints: landmarker only)."""
        detector = self._detector
        if _is_box_detector(detector):
            return [
                [
                    _FoundFace(face.box, face.score, None)
                    for face in detector.detect(image, gray)[: self.params.max_faces]
                ]
                for image, gray in zip(images, grays, strict=True)
            ]
        out = []
        for faces in detector.process(images, hints):  # type: ignore[arg-type]
            kept = [
                _FoundFace(f.box, f.score, f.landmarks, f.next_roi)
                for f in faces
                if min(f.box[2], f.box[3]) >= self.params.min_face_px
            ]
            kept.sort(key=lambda f: f.box[2] * f.box[3], reverse=True)
            out.append(kept[: self.params.max_faces])
        return out

    def classify_faces(self, gray: np.ndarray, faces: Sequence[Eyes]) -> np.ndarray:
        """Emotion probabilities of faces given by their eyes: ``(n, 7)`` rows summing to 1.

        Each face is framed as the model's training faces were
        (:func:`analyzers.face.framing.frame_face`).
        """
        framing = self._classifier.framing
        frames = np.stack([frame_face(gray, eyes, framing) for eyes in faces])
        return self._forward(self._classifier.prepare(frames))

    def classify_framed(self, crop: np.ndarray) -> np.ndarray:
        """Emotion probabilities of an image that already is a framed face (RGB or gray).

        No border is added: the crop is only resized to the model's frame (and
        letterboxed for DeepFace, as DeepFace does).

        Returns:
            Seven probabilities in ``EMOTIONS`` order.
        """
        gray = crop if crop.ndim == 2 else cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
        frame = self._classifier.fit_crop(gray)
        probs: np.ndarray = self._forward(self._classifier.prepare(frame[None]))[0]
        return probs

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        """Run the emotion model on ``(n, S, S)`` crops: ``(n, 7)`` rows summing to 1."""
        probs: np.ndarray
        if self._classifier.onnx is not None:
            # Only the mini-Xception runs here, and it returns logits.
            (logits,) = self._classifier.onnx.run(batch[:, None])
            shifted = logits.astype(np.float64)
            shifted -= shifted.max(axis=1, keepdims=True)
            probs = np.exp(shifted)
        else:
            probs = self._torch_forward(batch)
        if probs.shape != (len(batch), len(EMOTIONS)):
            raise RuntimeError("emotion model returned an unexpected output shape")
        # float32 softmax sums to 1 only within ~1e-7; consumers rely on exactly 1.
        probs /= probs.sum(axis=1, keepdims=True)
        return probs

    def _torch_forward(self, batch: np.ndarray) -> np.ndarray:
        import torch

        assert self._classifier.module is not None
        with torch.inference_mode():
            x = torch.from_numpy(batch).unsqueeze(1).to(self._device)
            out = self._classifier.module(x)
            if not self._classifier.outputs_probs:
                out = torch.softmax(out, dim=1)
            probs: np.ndarray = out.cpu().numpy().astype(np.float64)
        return probs

    @staticmethod
    def _measure(
        points: np.ndarray | None, image_size: tuple[int, int], probs: np.ndarray
    ) -> FaceMeasurement | None:
        if points is None:
            return None
        emotions = {e.value: float(p) for e, p in zip(EMOTIONS, probs, strict=True)}
        try:
            return measure_face(points, image_size, emotions)
        except ValueError:
            # Degenerate landmarks (e.g. a face squeezed at the border): no geometry this
            # frame; the tracker then reads the face as not measured.
            return None
