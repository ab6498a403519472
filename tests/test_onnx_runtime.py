"""The face networks on ONNX Runtime: the shipped graphs, their export form, their agreement.

Every MediaPipe network and the mini-Xception ship as ``.onnx`` graphs exported from
the torch modules by ``scripts/export_onnx_models.py`` (which rewrites PReLU and the
channel-padded shortcuts into an equivalent form, :func:`export_form`). Checked here:

- the rewrites compute what the torch modules compute (random weights, no model
  loaded: unit tests), and the shipped files are the ones PROVENANCE.md records;
- each graph, fed the exact inputs of the torch port's golden file, reproduces the
  stored TFLite / Keras outputs with the port's own tolerance, and agrees with torch;
- end to end on real faces (the astronaut, two faces, the room scene), the ONNX
  landmarker and analyzer find the same faces as torch's, with the same detector
  scores, landmarks within a small fraction of a pixel and the same emotions.

The golden data and the room scene are the ones ``tests/test_mediapipe_port.py``
and ``tests/test_mini_xception.py`` use.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from analyzers.face.emotion import (
    MINI_XCEPTION_WEIGHTS,
    FaceEmotionAnalyzer,
    FaceEmotionParams,
    fer_input,
)
from analyzers.face.mediapipe.blazeface import BlazeFace
from analyzers.face.mediapipe.blazeface_full_range import BlazeFaceFullRange
from analyzers.face.mediapipe.blocks import BlazeBlock, BottleneckBlock
from analyzers.face.mediapipe.facemesh import FaceMesh
from analyzers.face.mediapipe.iris import IrisLandmark
from analyzers.face.mediapipe.landmarker import (
    FaceLandmarker,
    FaceLandmarks,
    to_input_array,
    to_input_tensor,
)
from analyzers.face.mini_xception import MiniXception
from analyzers.face.runtime import OnnxNet, onnx_path, select_runtime
from analyzers.types import VideoSample
from tests.fixtures import RoomScene, load_script

REPO_ROOT = Path(__file__).resolve().parents[1]
MEDIAPIPE_WEIGHTS = REPO_ROOT / "analyzers" / "face" / "mediapipe" / "weights"
FER_GOLDEN = REPO_ROOT / "tests" / "data" / "mini_xception_golden.npz"
ONNX_FILES = (
    MEDIAPIPE_WEIGHTS / "blazeface_short_range.onnx",
    MEDIAPIPE_WEIGHTS / "blazeface_full_range.onnx",
    MEDIAPIPE_WEIGHTS / "face_mesh.onnx",
    MEDIAPIPE_WEIGHTS / "iris_landmark.onnx",
    onnx_path(MINI_XCEPTION_WEIGHTS),
)

# The port's tolerance against TFLite (tests/test_mediapipe_port.py): 1e-4 of the largest
# reference value. ONNX Runtime vs TFLite measured <= 2.2e-6 of it on these inputs.
GOLDEN_TOLERANCE = 1e-4
# ONNX Runtime vs torch on the same inputs, relative to the largest output: measured
# <= 1.7e-6 (mesh landmarks 4.6e-5 crop px); float rounding only, never a wrong weight.
RUNTIME_TOLERANCE = 1e-5
# End to end, a ROI that moves by 1e-5 px flips the rounding of a few crop pixels, and
# the next network reads that: landmarks then differ by up to 0.04 px (measured on the
# room scene, full range; 0.011 px short range), emotion probabilities by 5e-4.
LANDMARK_TOLERANCE_PX = 0.1
PROBS_TOLERANCE = 5e-3


# As in the inference workers: torch on one thread (see tests/fixtures.py).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def exporter() -> ModuleType:
    return load_script("export_onnx_models")


def _randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    # Random weights (PReLU slopes included, some negative), so no rewrite passes by luck.
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.3)
    return model.eval()


# ------------------------------------------------------------------- choosing the runtime


@pytest.mark.unit
@pytest.mark.parametrize(
    ("preference", "device", "expected"),
    [
        ("auto", "cpu", "onnx"),
        ("auto", "cuda", "torch"),
        ("auto", "mps", "torch"),
        ("onnx", "cpu", "onnx"),
        ("torch", "cpu", "torch"),
        ("torch", "cuda", "torch"),
    ],
)
def test_runtime_choice(preference: str, device: str, expected: str) -> None:
    assert select_runtime(preference, device) == expected  # type: ignore[arg-type]


@pytest.mark.unit
@pytest.mark.parametrize("device", ["cuda", "mps"])
def test_onnx_on_a_gpu_is_an_error_not_a_silent_cpu_run(device: str) -> None:
    with pytest.raises(ValueError, match="CPU only"):
        select_runtime("onnx", device)


@pytest.mark.unit
def test_the_analyzer_defaults_to_auto() -> None:
    assert FaceEmotionParams().runtime == "auto"
    assert FaceEmotionParams(runtime="torch").runtime == "torch"
    with pytest.raises(ValueError):
        FaceEmotionParams(runtime="tflite")  # type: ignore[arg-type]


@pytest.mark.unit
def test_both_runtimes_read_bit_identical_inputs() -> None:
    crops = np.random.default_rng(0).integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    for signed in (True, False):
        ours = to_input_array(crops, signed=signed)
        torch_input = to_input_tensor(crops, torch.device("cpu"), signed=signed).numpy()
        assert ours.flags.c_contiguous and ours.dtype == np.float32
        np.testing.assert_array_equal(ours, torch_input)


# ----------------------------------------------------------------- export form and files


@pytest.mark.unit
@pytest.mark.parametrize(
    "block",
    [
        BlazeBlock(16, 16, 1, "prelu"),
        BlazeBlock(16, 32, 2, "prelu"),
        BlazeBlock(24, 28, 1, "relu"),
        BlazeBlock(88, 96, 2, "relu"),
        BottleneckBlock(64, 32, 64, 1),
        BottleneckBlock(64, 64, 128, 2),
    ],
    ids=["blaze", "blaze-widen-stride2", "blaze-relu-widen", "blaze-relu-stride2", "neck", "neck2"],
)
def test_export_form_of_a_block_computes_the_same(exporter: ModuleType, block: nn.Module) -> None:
    model = _randomize(block)
    channels = model.depthwise.in_channels if isinstance(model, BlazeBlock) else 64
    x = torch.randn(2, channels, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = model(x.clone())
        got = exporter.export_form(model)(x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("build", "shape"),
    [
        (BlazeFace, (3, 128, 128)),
        (BlazeFaceFullRange, (3, 192, 192)),
        (FaceMesh, (3, 192, 192)),
        (IrisLandmark, (3, 64, 64)),
        (MiniXception, (1, 64, 64)),
    ],
    ids=["short", "full", "mesh", "iris", "fer"],
)
def test_export_form_of_each_network_computes_the_same(
    exporter: ModuleType, build: type[nn.Module], shape: tuple[int, ...]
) -> None:
    torch.manual_seed(0)
    model = build().eval()  # torch's own initialisation: random, but values stay sane
    form = exporter.export_form(model)
    assert not any(isinstance(m, nn.PReLU | BlazeBlock | BottleneckBlock) for m in form.modules())
    x = torch.rand((2, *shape), generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        expected = model(x)
        got = form(x)
    for want, have in zip(
        expected if isinstance(expected, tuple) else (expected,),
        got if isinstance(got, tuple) else (got,),
        strict=True,
    ):
        scale = float(want.abs().max())
        torch.testing.assert_close(have, want, rtol=0, atol=RUNTIME_TOLERANCE * scale)


@pytest.mark.unit
@pytest.mark.parametrize("path", ONNX_FILES, ids=lambda p: p.name)
def test_shipped_onnx_files_match_provenance(path: Path) -> None:
    provenance = (path.parent / "PROVENANCE.md").read_text()
    row = re.search(rf"`{re.escape(path.name)}` \| ([\d,]+) \| `([0-9a-f]{{64}})`", provenance)
    assert row is not None, path.name
    data = path.read_bytes()
    assert int(row.group(1).replace(",", "")) == len(data)
    assert row.group(2) == hashlib.sha256(data).hexdigest()


@pytest.mark.unit
def test_exporter_covers_every_shipped_network(exporter: ModuleType) -> None:
    assert {onnx_path(net.weights) for net in exporter.NETWORKS.values()} == set(ONNX_FILES)
    for net in exporter.NETWORKS.values():
        assert net.weights.is_file()


# --------------------------------------------------------------- the graphs on real data


@pytest.fixture(scope="module")
def onnx_landmarker() -> FaceLandmarker:
    return FaceLandmarker("cpu", runtime="onnx")


@pytest.fixture(scope="module")
def torch_landmarker() -> FaceLandmarker:
    return FaceLandmarker("cpu", runtime="torch")


@pytest.fixture(scope="module")
def onnx_full_range() -> FaceLandmarker:
    return FaceLandmarker("cpu", detector_model="full_range", runtime="onnx", with_iris=False)


@pytest.fixture(scope="module")
def torch_full_range() -> FaceLandmarker:
    return FaceLandmarker("cpu", detector_model="full_range", runtime="torch", with_iris=False)


@pytest.mark.model
def test_sessions_use_one_thread_and_every_optimisation() -> None:
    import onnxruntime as ort

    net = OnnxNet(ONNX_FILES[0], threads=1)
    options = net._session.get_session_options()
    assert options.intra_op_num_threads == 1
    assert options.inter_op_num_threads == 1
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert net._session.get_providers() == ["CPUExecutionProvider"]
    assert FaceLandmarker("cpu", runtime="onnx", threads=2).mesh.onnx.threads == 2  # type: ignore[union-attr]


@pytest.mark.model
@pytest.mark.parametrize(
    ("net", "outputs"),
    [
        ("blazeface", ("blazeface_regressors", "blazeface_logits")),
        ("facemesh", ("facemesh_landmarks", "facemesh_flag")),
        ("iris", ("iris_contours", "iris_iris")),
        (
            "blazeface_full_range",
            ("blazeface_full_range_regressors", "blazeface_full_range_logits"),
        ),
    ],
)
def test_onnx_graphs_reproduce_tflite_and_agree_with_torch(
    onnx_landmarker: FaceLandmarker,
    torch_landmarker: FaceLandmarker,
    onnx_full_range: FaceLandmarker,
    torch_full_range: FaceLandmarker,
    mediapipe_golden: dict[str, np.ndarray],
    net: str,
    outputs: tuple[str, str],
) -> None:
    runs = {}
    for runtime, lm, full in (
        ("onnx", onnx_landmarker, onnx_full_range),
        ("torch", torch_landmarker, torch_full_range),
    ):
        runs[runtime] = {
            "blazeface": lm.run_detector,
            "facemesh": lm.run_mesh,
            "iris": lm.run_iris,
            "blazeface_full_range": full.run_detector,
        }[net]
    inputs = mediapipe_golden[f"input_{net}"]
    ours = list(runs["onnx"](inputs))
    theirs = list(runs["torch"](inputs))
    # A dynamic batch: the same inputs one by one give the same outputs.
    singles = [runs["onnx"](inputs[i : i + 1]) for i in range(len(inputs))]
    for k, (value, reference) in enumerate(zip(ours, theirs, strict=True)):
        scale = float(np.abs(reference).max())
        one_by_one = np.concatenate([s[k] for s in singles])
        np.testing.assert_allclose(one_by_one, value, rtol=0, atol=RUNTIME_TOLERANCE * scale)
        np.testing.assert_allclose(value, reference, rtol=0, atol=RUNTIME_TOLERANCE * scale)
        if net == "blazeface_full_range" and k == 0:
            # The golden file keeps the regressors of a subset of the 2304 anchors.
            ours[0] = value[:, mediapipe_golden["blazeface_full_range_anchors"]]
    for key, value in zip(outputs, ours, strict=True):
        ref = mediapipe_golden[key]
        assert value.shape == ref.shape, key
        scale = float(np.abs(ref).max())
        np.testing.assert_allclose(value, ref, rtol=0, atol=GOLDEN_TOLERANCE * scale, err_msg=key)


@pytest.mark.model
def test_onnx_mini_xception_reproduces_keras_and_agrees_with_torch() -> None:
    # Keras' own outputs on real faces framed as the analyzer frames them
    # (tests/test_mini_xception.py checks the torch port against the same file).
    from analyzers.face.mini_xception import load_mini_xception

    with np.load(FER_GOLDEN) as golden:
        frames, keras_logits = golden["frames"], golden["keras_logits"]
    x = fer_input(frames)[:, None]
    (logits,) = OnnxNet(onnx_path(MINI_XCEPTION_WEIGHTS)).run(x)
    np.testing.assert_allclose(logits, keras_logits, rtol=0, atol=1e-4)
    model = load_mini_xception(MINI_XCEPTION_WEIGHTS, torch.device("cpu"))
    with torch.inference_mode():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(logits, expected, rtol=0, atol=1e-5)


@pytest.mark.model
def test_onnx_matches_mediapipe_end_to_end(
    mediapipe_golden: dict[str, np.ndarray], astronaut: np.ndarray, room_scene: RoomScene
) -> None:
    # The same bars as the torch port's (tests/test_mediapipe_port.py): MediaPipe 0.10.21.
    plain = FaceLandmarker("cpu", min_face_px=None, with_iris=False, runtime="onnx")
    (det,) = plain.detect([astronaut])[0]
    np.testing.assert_allclose(det.keypoints, mediapipe_golden["mediapipe_keypoints"], atol=0.01)
    assert det.score == pytest.approx(float(mediapipe_golden["mediapipe_detection"][4]), abs=1e-4)
    (face,) = plain.process([astronaut])[0]
    np.testing.assert_allclose(face.landmarks, mediapipe_golden["mediapipe_mesh"], atol=0.05)
    full = FaceLandmarker(
        "cpu",
        detector_model="full_range",
        min_face_px=None,
        min_score=0.5,
        with_iris=False,
        runtime="onnx",
    )
    dets = full.detect([room_scene[0]])[0]
    np.testing.assert_allclose(
        np.stack([d.keypoints for d in dets]),
        mediapipe_golden["mediapipe_full_range_room_keypoints"],
        atol=0.01,
    )
    reference = mediapipe_golden["mediapipe_full_range_room_detections"]
    np.testing.assert_allclose([d.score for d in dets], reference[:, 4], atol=1e-4)


def _assert_same_faces(ours: list[FaceLandmarks], theirs: list[FaceLandmarks]) -> None:
    assert len(ours) == len(theirs) > 0
    for a, b in zip(ours, theirs, strict=True):
        assert np.abs(np.subtract(a.box, b.box)).max() <= 1, (a.box, b.box)
        assert a.score is not None and b.score is not None
        assert a.score == pytest.approx(b.score, abs=1e-5)
        assert a.presence == pytest.approx(b.presence, abs=1e-5)
        np.testing.assert_allclose(a.keypoints, b.keypoints, rtol=0, atol=1e-3)
        assert a.landmarks.shape == b.landmarks.shape == (478, 3)
        np.testing.assert_allclose(a.landmarks, b.landmarks, rtol=0, atol=LANDMARK_TOLERANCE_PX)


@pytest.mark.model
@pytest.mark.parametrize("detector_model", ["short_range", "full_range"])
def test_onnx_landmarks_agree_with_torch_on_real_faces(
    detector_model: str, astronaut: np.ndarray, two_faces: np.ndarray, room_scene: RoomScene
) -> None:
    # Tiled detection (the default min_face_px) on the astronaut, two faces side by side,
    # and the room scene's three faces of 44-96 px; all frames in one batch.
    images = [astronaut, two_faces, room_scene[0]]
    found = {
        runtime: FaceLandmarker(
            "cpu",
            detector_model=detector_model,
            runtime=runtime,  # type: ignore[arg-type]
        ).process(images)
        for runtime in ("onnx", "torch")
    }
    assert [len(f) for f in found["onnx"]] == [1, 2, 3]
    for ours, theirs in zip(found["onnx"], found["torch"], strict=True):
        _assert_same_faces(ours, theirs)


@pytest.mark.model
def test_followed_faces_agree_too(
    onnx_landmarker: FaceLandmarker, torch_landmarker: FaceLandmarker, two_faces: np.ndarray
) -> None:
    # Video mode: the mesh reads last frame's ROIs, no detector (score None).
    rois = [f.next_roi for f in torch_landmarker.process([two_faces])[0]]
    (ours,) = onnx_landmarker.process([two_faces], hints=[rois])
    (theirs,) = torch_landmarker.process([two_faces], hints=[rois])
    assert len(ours) == len(theirs) == 2
    for a, b in zip(ours, theirs, strict=True):
        assert a.score is None and b.score is None
        assert a.presence == pytest.approx(b.presence, abs=1e-5)
        np.testing.assert_allclose(a.landmarks, b.landmarks, rtol=0, atol=LANDMARK_TOLERANCE_PX)


@pytest.mark.model
def test_blank_frames_have_no_faces_on_onnx(onnx_landmarker: FaceLandmarker) -> None:
    blank = np.zeros((480, 640, 3), dtype=np.uint8)
    noise = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    assert onnx_landmarker.process([blank, noise]) == [[], []]


@pytest.mark.model
def test_analyzer_on_onnx_reads_what_torch_reads(
    face_analyzer: FaceEmotionAnalyzer, astronaut: np.ndarray, two_faces: np.ndarray
) -> None:
    # face_analyzer is the default (runtime auto on the CPU: ONNX Runtime).
    torch_analyzer = FaceEmotionAnalyzer.load(FaceEmotionParams(device="cpu", runtime="torch"))
    assert (face_analyzer.runtime, torch_analyzer.runtime) == ("onnx", "torch")
    assert isinstance(face_analyzer.model, OnnxNet)
    assert isinstance(torch_analyzer.model, nn.Module)
    samples = [VideoSample("a", 0.0, astronaut), VideoSample("b", 0.0, two_faces)]
    ours = face_analyzer.analyze_batch(samples)
    theirs = torch_analyzer.analyze_batch(samples)
    for a, b in zip(ours, theirs, strict=True):
        assert a.model == b.model == "mini_xception_fer2013"
        assert len(a.faces) == len(b.faces) > 0
        for fa, fb in zip(a.faces, b.faces, strict=True):
            assert np.abs(np.subtract(fa.box, fb.box)).max() <= 1
            assert fa.detector_score == pytest.approx(fb.detector_score, abs=1e-5)
            np.testing.assert_allclose(fa.probs, fb.probs, rtol=0, atol=PROBS_TOLERANCE)
            assert sum(fa.probs) == pytest.approx(1.0, abs=1e-12)
            assert np.argmax(fa.probs) == np.argmax(fb.probs)
            assert fa.measurement is not None and fb.measurement is not None
    # The same crops through classify_framed: only the network differs.
    crop = cv2.resize(astronaut[60:320, 150:310], (48, 48))
    np.testing.assert_allclose(
        face_analyzer.classify_framed(crop),
        torch_analyzer.classify_framed(crop),
        rtol=0,
        atol=1e-5,
    )


@pytest.mark.unit
def test_onnx_runtime_on_a_gpu_device_is_refused_before_loading(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As if CUDA were there: the explicit onnx runtime is refused before any model loads
    # (unit: the model-load guard would fail this test otherwise).
    import analyzers.device as device_module

    monkeypatch.setattr(device_module, "_cuda_available", lambda: True)
    with pytest.raises(ValueError, match="CPU only"):
        FaceEmotionAnalyzer.load(FaceEmotionParams(device="cuda", runtime="onnx"))
    with pytest.raises(ValueError, match="CPU only"):
        FaceLandmarker("cuda", runtime="onnx")
