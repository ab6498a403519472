"""Tests for the face emotion analyzer, its detector, the device choice and the registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from pydantic import BaseModel, ValidationError

import analyzers
from analyzers.device import select_device
from analyzers.face.detector import DetectedFace, HaarFaceDetector, sort_largest_first
from analyzers.face.emotion import (
    DEEPFACE_EMOTION_WEIGHTS,
    MAX_FACES_LIMIT,
    FaceEmotionAnalyzer,
    FaceEmotionParams,
    deepface_weights_path,
)
from analyzers.face.runtime import OnnxNet
from analyzers.types import EMOTIONS, Emotion, FaceAnalysis, VideoSample
from analyzers.voice.emotion import VoiceEmotionAnalyzer

# Where the Haar cascade finds the astronaut's face (PLATFORM.md: 176, 66, 97, 97).
ASTRONAUT_BOX = (176, 66, 97, 97)
# Where the default MediaPipe detector puts it: the box around the 468 landmarks, forehead
# to chin, so taller than Haar's (measured: 178, 70, 94, 106).
LANDMARK_ASTRONAUT_BOX = (178, 70, 94, 106)
BOX_TOLERANCE_PX = 8


def _sample(image: np.ndarray, pid: str = "alice", ts: float = 1.5) -> VideoSample:
    return VideoSample(participant_id=pid, ts=ts, image=image)


def _assert_near_astronaut(
    box: tuple[int, int, int, int],
    dx: int = 0,
    expected: tuple[int, int, int, int] = ASTRONAUT_BOX,
) -> None:
    x, y, w, h = box
    ex, ey, ew, eh = expected
    assert abs(x - (ex + dx)) <= BOX_TOLERANCE_PX
    assert abs(y - ey) <= BOX_TOLERANCE_PX
    assert abs(w - ew) <= BOX_TOLERANCE_PX
    assert abs(h - eh) <= BOX_TOLERANCE_PX


def _dominant(probs: tuple[float, ...]) -> Emotion:
    return EMOTIONS[int(np.argmax(probs))]


class _ForwardCalls:
    """Records the input shape of every forward call of a torch module or an ONNX graph."""

    def __init__(self, module: torch.nn.Module | OnnxNet) -> None:
        self.shapes: list[tuple[int, ...]] = []
        self._net: OnnxNet | None = None
        if isinstance(module, OnnxNet):
            # An ONNX Runtime session has no hooks: wrap this instance's run instead.
            self._net, run = module, module.run

            def recording_run(x: np.ndarray) -> list[np.ndarray]:
                self.shapes.append(tuple(x.shape))
                return run(x)

            module.run = recording_run  # type: ignore[method-assign]
        else:
            self._handle = module.register_forward_hook(self._hook)

    def _hook(self, _module: torch.nn.Module, inputs: tuple[Any, ...], _out: Any) -> None:
        self.shapes.append(tuple(inputs[0].shape))

    def remove(self) -> None:
        if self._net is not None:
            del self._net.run  # back to the class's method
        else:
            self._handle.remove()


# astronaut, two_faces (the astronaut beside a 3/4-size copy) and offline: tests/fixtures.py.


@pytest.fixture
def analyzer(face_analyzer: FaceEmotionAnalyzer) -> FaceEmotionAnalyzer:
    return face_analyzer  # the default analyzer, loaded once per session


@pytest.fixture(scope="module")
def analyzer_two_faces() -> FaceEmotionAnalyzer:
    return FaceEmotionAnalyzer.load(FaceEmotionParams(device="cpu", max_faces=2))


@pytest.fixture
def no_download(monkeypatch: pytest.MonkeyPatch, offline: list[object]) -> list[str]:
    """Make DeepFace's download fail the way it does offline; no socket may connect.

    Returns the list of download attempts (urls) DeepFace made.
    """
    from deepface.commons import weight_utils

    attempts: list[str] = []

    def unreachable(url: str) -> None:
        attempts.append(url)
        raise OSError("[Errno 101] Network is unreachable")

    def no_gdown(url: str, *args: object, **kwargs: object) -> None:
        raise AssertionError(f"gdown.download must not be reached: {url}")

    monkeypatch.setattr(weight_utils, "ensure_source_is_reachable", unreachable)
    monkeypatch.setattr(weight_utils.gdown, "download", no_gdown)
    return attempts


@pytest.fixture
def deepface_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty DEEPFACE_HOME; the environment is restored after the test.

    DEEPFACE_HOME is first pointed at a decoy, so a test only passes if the
    analyzer uses ``deepface_home`` from its params rather than the environment.
    """
    monkeypatch.setenv("DEEPFACE_HOME", str(tmp_path / "decoy"))
    home = tmp_path / "home"
    home.mkdir()
    return home


def _save_random_deepface_weights(home: Path) -> None:
    from deepface.models.demography.pytorch.Emotion import EmotionModel

    torch.manual_seed(0)
    weights = deepface_weights_path(str(home))
    weights.parent.mkdir(parents=True)
    torch.save(EmotionModel().state_dict(), weights)


# --- params and registry ----------------------------------------------------------------


@pytest.mark.unit
def test_registry_lists_face_and_voice_emotion() -> None:
    assert analyzers.REGISTRY == {
        "face_emotion": FaceEmotionAnalyzer,
        "voice_emotion": VoiceEmotionAnalyzer,
    }
    assert FaceEmotionAnalyzer.params_type is FaceEmotionParams


@pytest.mark.unit
def test_params_defaults_and_descriptions() -> None:
    params = FaceEmotionParams()
    assert params.fps == 15.0  # blinks are observable from 10 frames a second
    assert params.model == "mini_xception"
    assert params.detector == "mediapipe"
    assert params.max_faces == 24  # a room camera at a conference table
    assert params.min_face_px == 24  # its far end: faces of 30 px and up
    assert params.deepface_home is None
    for name, field in FaceEmotionParams.model_fields.items():
        assert field.description, name


@pytest.mark.unit
@pytest.mark.parametrize(
    "bad",
    [
        {"fps": 0},
        {"fps": 31},
        {"model": "vgg"},
        {"detector": "mtcnn"},
        {"device": "tpu"},
        {"min_face_px": 15},
        {"max_faces": 0},
        {"max_faces": 65},
        {"torch_threads": 0},
        {"unknown": 1},
    ],
)
def test_params_reject_bad_values(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        FaceEmotionParams.model_validate(bad)


@pytest.mark.unit
def test_max_faces_takes_a_crowd() -> None:
    assert FaceEmotionParams(max_faces=MAX_FACES_LIMIT).max_faces == 64
    with pytest.raises(ValidationError, match="less than or equal to 64"):
        FaceEmotionParams(max_faces=MAX_FACES_LIMIT + 1)


@pytest.mark.unit
def test_load_rejects_other_params() -> None:
    with pytest.raises(TypeError, match="FaceEmotionParams"):
        FaceEmotionAnalyzer.load(_OtherParams())


class _OtherParams(BaseModel):
    """A pydantic model that is not FaceEmotionParams."""


# --- device ---------------------------------------------------------------------------


@pytest.mark.unit
def test_select_device_auto_prefers_cuda_then_mps_then_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert select_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert select_device("auto") == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert select_device("auto") == torch.device("cuda")
    assert select_device("cpu") == torch.device("cpu")


@pytest.mark.unit
@pytest.mark.parametrize("preference", ["cuda", "mps"])
def test_select_device_unavailable_is_an_error(
    preference: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ValueError, match=f"'{preference}' was requested"):
        select_device(preference)  # type: ignore[arg-type]


@pytest.mark.unit
def test_select_device_unknown_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown device"):
        select_device("tpu")  # type: ignore[arg-type]


# --- detector -------------------------------------------------------------------------


@pytest.mark.model
def test_haar_finds_the_astronaut(astronaut: np.ndarray) -> None:
    gray = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    faces = HaarFaceDetector().detect(astronaut, gray)
    assert len(faces) == 1
    _assert_near_astronaut(faces[0].box)
    assert faces[0].score is None


@pytest.mark.model
def test_haar_min_face_px_drops_small_faces(astronaut: np.ndarray) -> None:
    gray = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    assert HaarFaceDetector(min_face_px=120).detect(astronaut, gray) == []


@pytest.mark.unit
def test_sort_largest_first() -> None:
    faces = [
        DetectedFace((0, 0, 10, 10)),
        DetectedFace((50, 5, 30, 30)),
        DetectedFace((5, 0, 10, 10)),
    ]
    assert [f.box for f in sort_largest_first(faces)] == [
        (50, 5, 30, 30),
        (0, 0, 10, 10),
        (5, 0, 10, 10),
    ]


# --- mini_xception analyzer -----------------------------------------------------------


@pytest.mark.model
def test_astronaut_is_happy(analyzer: FaceEmotionAnalyzer, astronaut: np.ndarray) -> None:
    result = analyzer.analyze(_sample(astronaut))
    assert isinstance(result, FaceAnalysis)
    assert (result.participant_id, result.ts) == ("alice", 1.5)
    assert result.image_size == (512, 512)
    assert result.model == "mini_xception_fer2013"
    assert result.inference_ms > 0
    assert len(result.faces) == 1
    face = result.faces[0]
    _assert_near_astronaut(face.box, expected=LANDMARK_ASTRONAUT_BOX)
    assert face.detector_score is not None and face.detector_score > 0.5  # BlazeFace's
    assert face.measurement is not None and result.has_landmarks
    assert len(face.probs) == len(EMOTIONS)
    # The whole path (landmarks, framing, preprocessing, port) reads what the original Keras
    # model reads on her framed face (tests/data/mini_xception_golden.npz, first row): happy
    # 0.977. Landmarks found at another size move the frame a little, so 0.01, not 1e-5.
    golden = Path(__file__).parent / "data" / "mini_xception_golden.npz"
    with np.load(golden) as reference:
        assert str(reference["names"][0]) == "astronaut"
        keras_probs = reference["keras_probs"][0]
    np.testing.assert_allclose(face.probs, keras_probs, rtol=0, atol=0.01)
    assert _dominant(face.probs) is Emotion.HAPPY


@pytest.mark.model
@pytest.mark.parametrize("kind", ["uniform", "noise", "black"])
def test_no_face_means_no_faces(analyzer: FaceEmotionAnalyzer, kind: str) -> None:
    shape = (480, 640, 3)
    if kind == "uniform":
        image = np.full(shape, 128, dtype=np.uint8)
    elif kind == "noise":
        image = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    else:
        image = np.zeros(shape, dtype=np.uint8)
    calls = _ForwardCalls(analyzer.model)
    try:
        result = analyzer.analyze(_sample(image))
    finally:
        calls.remove()
    assert result.faces == ()
    assert result.image_size == (640, 480)
    assert calls.shapes == []


@pytest.mark.model
def test_two_faces_run_as_one_batch_largest_first(
    analyzer_two_faces: FaceEmotionAnalyzer, two_faces: np.ndarray
) -> None:
    calls = _ForwardCalls(analyzer_two_faces.model)
    try:
        result = analyzer_two_faces.analyze(_sample(two_faces))
    finally:
        calls.remove()
    assert calls.shapes == [(2, 1, 64, 64)]
    assert len(result.faces) == 2
    big, small = result.faces
    _assert_near_astronaut(big.box, expected=LANDMARK_ASTRONAUT_BOX)
    assert big.box[2] > small.box[2]
    assert small.box[0] >= 512  # the right-hand copy
    for face in result.faces:
        assert face.probs[EMOTIONS.index(Emotion.HAPPY)] > 0.9


@pytest.mark.model
def test_max_faces_keeps_the_largest(two_faces: np.ndarray) -> None:
    # The smaller copy scores higher with the detector; max_faces still keeps the larger.
    analyzer = FaceEmotionAnalyzer.load(FaceEmotionParams(device="cpu", max_faces=1))
    result = analyzer.analyze(_sample(two_faces))
    assert len(result.faces) == 1
    _assert_near_astronaut(result.faces[0].box, expected=LANDMARK_ASTRONAUT_BOX)


@pytest.mark.model  # the analyzer's fixture loads its weights
@pytest.mark.parametrize(
    "image",
    [np.zeros((48, 64), np.uint8), np.zeros((48, 64, 4), np.uint8), np.zeros((48, 64, 3))],
    ids=["gray", "rgba", "float"],
)
def test_rejects_non_rgb_uint8(analyzer: FaceEmotionAnalyzer, image: np.ndarray) -> None:
    with pytest.raises(ValueError, match="uint8 RGB"):
        analyzer.analyze(_sample(image))


# --- deepface analyzer ----------------------------------------------------------------


@pytest.mark.model
def test_deepface_model_with_random_weights(
    deepface_home: Path, no_download: list[str], astronaut: np.ndarray
) -> None:
    _save_random_deepface_weights(deepface_home)
    params = FaceEmotionParams(model="deepface", device="cpu", deepface_home=str(deepface_home))
    analyzer = FaceEmotionAnalyzer.load(params)
    calls = _ForwardCalls(analyzer.model)
    try:
        result = analyzer.analyze(_sample(astronaut))
    finally:
        calls.remove()
    assert no_download == []
    assert calls.shapes == [(1, 1, 48, 48)]
    assert result.model == "deepface_emotion"
    assert len(result.faces) == 1
    _assert_near_astronaut(result.faces[0].box, expected=LANDMARK_ASTRONAUT_BOX)
    # What these (random) weights say is checked against DeepFace.analyze below.
    assert len(result.faces[0].probs) == 7


@pytest.mark.model
def test_deepface_preprocessing_matches_deepface_analyze(
    deepface_home: Path,
    no_download: list[str],
    astronaut: np.ndarray,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _save_random_deepface_weights(deepface_home)
    params = FaceEmotionParams(model="deepface", device="cpu", deepface_home=str(deepface_home))
    result = FaceEmotionAnalyzer.load(params).analyze(_sample(astronaut))
    x, y, w, h = result.faces[0].box

    from deepface import DeepFace
    from deepface.modules import modeling

    # DeepFace caches built models process-wide; give it an empty cache for this test only.
    empty_cache: dict[str, dict[str, Any]] = {task: {} for task in modeling.AVAILABLE_MODELS}
    monkeypatch.setattr(modeling, "cached_models", empty_cache, raising=False)
    crop_bgr = np.ascontiguousarray(astronaut[y : y + h, x : x + w, ::-1])
    reference = DeepFace.analyze(
        crop_bgr,
        actions=["emotion"],
        detector_backend="skip",
        enforce_detection=False,
        align=False,
        silent=True,
    )
    expected = [float(reference[0]["emotion"][e.value]) / 100.0 for e in EMOTIONS]
    np.testing.assert_allclose(result.faces[0].probs, expected, atol=1e-5)


@pytest.mark.model
def test_deepface_missing_weights_is_a_clear_error(
    deepface_home: Path, no_download: list[str]
) -> None:
    params = FaceEmotionParams(model="deepface", device="cpu", deepface_home=str(deepface_home))
    with pytest.raises(RuntimeError, match=DEEPFACE_EMOTION_WEIGHTS) as info:
        FaceEmotionAnalyzer.load(params)
    expected_path = deepface_home / ".deepface" / "weights" / DEEPFACE_EMOTION_WEIGHTS
    assert str(expected_path) in str(info.value)
    # DeepFace's downloader was asked (online users get the file), and it failed offline.
    assert no_download and all(DEEPFACE_EMOTION_WEIGHTS in url for url in no_download)
    assert not expected_path.exists()


@pytest.mark.model
def test_deepface_download_oserror_is_a_clear_error(
    deepface_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deepface.commons import weight_utils

    def offline(file_name: str, source_url: object, compress_type: object = None) -> str:
        raise OSError("[Errno 101] Network is unreachable")

    monkeypatch.setattr(weight_utils, "download_weights_if_necessary", offline)
    params = FaceEmotionParams(model="deepface", device="cpu", deepface_home=str(deepface_home))
    with pytest.raises(RuntimeError, match=f"{DEEPFACE_EMOTION_WEIGHTS} are missing"):
        FaceEmotionAnalyzer.load(params)


@pytest.mark.model
@pytest.mark.parametrize("content", ["garbage", "wrong_network"])
def test_deepface_unloadable_weights_is_a_clear_error(
    deepface_home: Path, no_download: list[str], content: str
) -> None:
    weights = deepface_weights_path(str(deepface_home))
    weights.parent.mkdir(parents=True)
    if content == "garbage":
        weights.write_bytes(b"not a torch file")
    else:
        torch.save({"fc.weight": torch.zeros(2, 2)}, weights)
    params = FaceEmotionParams(model="deepface", device="cpu", deepface_home=str(deepface_home))
    with pytest.raises(RuntimeError, match="could not load DeepFace emotion weights"):
        FaceEmotionAnalyzer.load(params)
    assert no_download == []
