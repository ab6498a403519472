"""Speed of the face path against DeepFace, for ``meetmood bench faces``; sample image sets.

:func:`bench_faces` times the analyzer's batched path
(:meth:`~analyzers.face.emotion.FaceEmotionAnalyzer.analyze_batch`: one detector
pass for all frames of a call, one landmark pass for all their faces, one emotion
batch for all faces) at several batch sizes, where a batch is the number of
640x480 frames given to one call. On the same frames it times
``DeepFace.analyze(actions=["emotion"], detector_backend="opencv")`` one frame per
call, as DeepFace is used. DeepFace's emotion weights cannot be downloaded
offline, so DeepFace runs its real code path with **random** weights of its own
network, saved under a temporary ``DEEPFACE_HOME``: its figure is a speed figure
only.

Accuracy is compared without DeepFace's weights: the same emotion model (ours)
reads the faces our detector finds and the faces DeepFace's ``extract_faces``
(OpenCV backend, aligned) cuts out. The astronaut in every frame is labelled
happy; the pasted LFW faces have no label, so for them only the agreement
between the two readings is reported.

Frames are real faces: scikit-image's astronaut (NASA, public domain) and LFW
faces from ``skimage.data.lfw_subset()`` upscaled and pasted, so scikit-image
(a test dependency) must be installed. Runs in the calling thread; no asyncio.
"""

from __future__ import annotations

import contextlib
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from analyzers.types import EMOTIONS, Emotion, VideoSample

if TYPE_CHECKING:
    from analyzers.face.emotion import FaceEmotionAnalyzer, FaceEmotionParams

logger = logging.getLogger(__name__)

#: Frames per call measured by default.
BATCH_SIZES = (1, 8, 32)
#: Bench frame size (width, height), a common webcam resolution.
FRAME_SIZE = (640, 480)
#: Where OpenCV's Haar cascade (and DeepFace's) finds the astronaut's face in the
#: 512x512 original (PLATFORM.md section 2).
ASTRONAUT_FACE = (176, 66, 97, 97)
#: The astronaut's expression: she smiles broadly.
ASTRONAUT_LABEL = Emotion.HAPPY
#: Boxes of the same face from two detectors overlap at least this much (IoU).
#: The Haar box is a square around the eyes and mouth, the landmark box spans the
#: whole face outline, so the bar is low.
MATCH_IOU = 0.3

# The head-and-shoulders part of the astronaut pasted into the left half of a frame.
_ASTRONAUT_REGION = (60, 0, 320, 320)  # x, y, w, h in the 512x512 original
# Side of a pasted LFW face (upscaled from 25x25) and its margin, in pixels.
_LFW_FACE_PX = (90, 130)


def _skimage_data() -> Any:
    try:
        from skimage import data
    except ImportError as e:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "the face bench and sample sets need scikit-image for their images: "
            "pip install -e '.[test]'"
        ) from e
    return data


def astronaut() -> np.ndarray:
    """scikit-image's astronaut: 512x512 RGB uint8 (NASA photograph, public domain)."""
    image: np.ndarray = np.asarray(_skimage_data().astronaut())
    return image


def lfw_subset() -> tuple[np.ndarray, np.ndarray]:
    """scikit-image's LFW subset as uint8: ``(faces, non_faces)``, each ``(100, 25, 25)``."""
    images = np.asarray(_skimage_data().lfw_subset())
    images = np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8)
    return images[:100], images[100:]


def lfw_tile(patch: np.ndarray, side: int) -> np.ndarray:
    """Upscale a 25x25 gray LFW patch to ``side`` pixels with a replicated quarter margin.

    The LFW crops are tight; detectors want some context around a face.

    Returns:
        ``(1.5 side, 1.5 side, 3)`` uint8 RGB.
    """
    big = cv2.resize(patch, (side, side), interpolation=cv2.INTER_CUBIC)
    pad = side // 4
    big = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    rgb: np.ndarray = cv2.cvtColor(big, cv2.COLOR_GRAY2RGB)
    return rgb


@dataclass(frozen=True, slots=True)
class BenchFrame:
    """A bench frame and the faces pasted into it.

    Attributes:
        image: 480 x 640 x 3 uint8 RGB.
        faces: ``(box, label)`` per pasted face: the astronaut's face box (scaled
            from :data:`ASTRONAUT_FACE`) with :data:`ASTRONAUT_LABEL`, and the
            pasted LFW faces (the face part, without margin) with ``None``.
    """

    image: np.ndarray
    faces: tuple[tuple[tuple[int, int, int, int], Emotion | None], ...]


def bench_frames(n: int, seed: int = 0) -> list[BenchFrame]:
    """``n`` 640x480 frames with one to three real faces each (deterministic).

    Frame ``i`` holds the astronaut at a random scale and place in its left half
    and ``i % 3`` LFW faces, 90-130 px, in its right half, on a plain background.
    """
    rng = np.random.default_rng(seed)
    source = astronaut()
    lfw_faces, _ = lfw_subset()
    rx, ry, rw, rh = _ASTRONAUT_REGION
    region = source[ry : ry + rh, rx : rx + rw]
    width, height = FRAME_SIZE
    half = width // 2
    frames = []
    for i in range(n):
        image = np.empty((height, width, 3), dtype=np.uint8)
        image[:] = rng.integers(90, 160, size=3).astype(np.uint8)
        side = int(rw * rng.uniform(0.6, 1.0))
        scale = side / rw
        x0 = int(rng.integers(0, half - side + 1))
        y0 = int(rng.integers(0, height - side + 1))
        image[y0 : y0 + side, x0 : x0 + side] = cv2.resize(
            region, (side, side), interpolation=cv2.INTER_AREA
        )
        fx, fy, fw, fh = ASTRONAUT_FACE
        faces: list[tuple[tuple[int, int, int, int], Emotion | None]] = [
            (
                (
                    x0 + round((fx - rx) * scale),
                    y0 + round((fy - ry) * scale),
                    round(fw * scale),
                    round(fh * scale),
                ),
                ASTRONAUT_LABEL,
            )
        ]
        for slot in range(i % 3):
            face_px = int(rng.integers(_LFW_FACE_PX[0], _LFW_FACE_PX[1] + 1))
            tile = lfw_tile(lfw_faces[int(rng.integers(0, len(lfw_faces)))], face_px)
            size = tile.shape[0]
            tx = half + int(rng.integers(0, half - size + 1))
            ty = slot * (height // 2) + int(rng.integers(0, height // 2 - size + 1))
            image[ty : ty + size, tx : tx + size] = tile
            pad = face_px // 4
            faces.append(((tx + pad, ty + pad, face_px, face_px), None))
        frames.append(BenchFrame(image=image, faces=tuple(faces)))
    return frames


# --- DeepFace --------------------------------------------------------------------------


@contextlib.contextmanager
def deepface_random_home() -> Iterator[Path]:
    """A temporary ``DEEPFACE_HOME`` holding random weights for DeepFace's emotion CNN.

    DeepFace then runs its real ``analyze`` code path offline (its loader finds the
    file and does not download). Inside the block DeepFace's process-wide model
    cache is a fresh one, and its console messages go to stderr; the environment,
    the cache and stdout are restored on exit.
    """
    import torch
    from deepface.models.demography.pytorch.Emotion import EmotionModel
    from deepface.modules import modeling

    from analyzers.face.emotion import deepface_weights_path

    previous_home = os.environ.get("DEEPFACE_HOME")
    missing = object()
    previous_cache = modeling.__dict__.get("cached_models", missing)
    with tempfile.TemporaryDirectory(prefix="meetmood-deepface-") as home:
        weights = deepface_weights_path(home)
        weights.parent.mkdir(parents=True)
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(0)
        torch.save(EmotionModel().state_dict(), weights)
        torch.random.set_rng_state(generator_state)
        os.environ["DEEPFACE_HOME"] = home
        modeling.cached_models = {task: {} for task in modeling.AVAILABLE_MODELS}
        try:
            with contextlib.redirect_stdout(sys.stderr):
                yield Path(home)
        finally:
            if previous_home is None:
                os.environ.pop("DEEPFACE_HOME", None)
            else:
                os.environ["DEEPFACE_HOME"] = previous_home
            if previous_cache is missing:
                del modeling.cached_models
            else:
                modeling.cached_models = previous_cache


def deepface_analyze(image: np.ndarray) -> int:
    """``DeepFace.analyze(actions=["emotion"], detector_backend="opencv")`` on one RGB frame.

    Call inside :func:`deepface_random_home` (or with real weights in place).

    Returns:
        The number of faces DeepFace analysed (0 when it found none).
    """
    from deepface import DeepFace

    try:
        results = DeepFace.analyze(
            np.ascontiguousarray(image[:, :, ::-1]),
            actions=["emotion"],
            detector_backend="opencv",
            silent=True,
        )
    except ValueError:  # DeepFace's "Face could not be detected"
        return 0
    return len(results)


def deepface_faces(image: np.ndarray) -> list[tuple[tuple[int, int, int, int], np.ndarray]]:
    """Faces ``DeepFace.extract_faces(detector_backend="opencv")`` cuts from one RGB frame.

    DeepFace's defaults otherwise (eye alignment on), as ``DeepFace.analyze`` crops.

    Returns:
        ``(box, crop)`` per face, largest first: the box in frame pixels and the
        aligned crop as H x W x 3 uint8 RGB.
    """
    from deepface import DeepFace

    try:
        found = DeepFace.extract_faces(
            np.ascontiguousarray(image[:, :, ::-1]),
            detector_backend="opencv",
            color_face="rgb",
            normalize_face=False,
        )
    except ValueError:  # no face
        return []
    faces = []
    for face in found:
        area = face["facial_area"]
        box = (int(area["x"]), int(area["y"]), int(area["w"]), int(area["h"]))
        crop = np.ascontiguousarray(np.asarray(face["face"], dtype=np.uint8))
        if crop.size:
            faces.append((box, crop))
    faces.sort(key=lambda f: f[0][2] * f[0][3], reverse=True)
    return faces


def classify_crop(analyzer: FaceEmotionAnalyzer, crop: np.ndarray) -> np.ndarray:
    """The analyzer's emotion model on an image that already is a framed face (no border added).

    Returns:
        Seven probabilities in ``EMOTIONS`` order.
    """
    return analyzer.classify_framed(crop)


# --- timing ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rate:
    """Throughput of one measured configuration."""

    batch_size: int
    calls: int
    frames: int
    faces: int
    seconds: float
    frames_per_sec: float
    faces_per_sec: float
    faces_per_frame: float
    ms_per_call_p50: float


def time_calls(
    call: Callable[[Sequence[np.ndarray]], int],
    frames: Sequence[np.ndarray],
    batch_size: int,
    *,
    seconds: float,
    repeats: int,
) -> Rate:
    """Time ``call`` on consecutive ``batch_size`` slices of ``frames`` (cycling).

    One untimed warm-up call first, then calls until at least ``repeats`` calls were
    made and ``seconds`` have passed. ``call`` returns the faces it found.
    """
    if batch_size < 1 or not frames:
        raise ValueError("batch_size must be at least 1 and frames not empty")

    def batch(k: int) -> list[np.ndarray]:
        start = k * batch_size
        return [frames[(start + j) % len(frames)] for j in range(batch_size)]

    call(batch(0))
    durations: list[float] = []
    faces = 0
    begin = time.perf_counter()
    while len(durations) < max(1, repeats) or time.perf_counter() - begin < seconds:
        chunk = batch(len(durations))
        t0 = time.perf_counter()
        faces += call(chunk)
        durations.append(time.perf_counter() - t0)
    total = sum(durations)
    n_frames = len(durations) * batch_size
    return Rate(
        batch_size=batch_size,
        calls=len(durations),
        frames=n_frames,
        faces=faces,
        seconds=total,
        frames_per_sec=n_frames / total,
        faces_per_sec=faces / total,
        faces_per_frame=faces / n_frames,
        ms_per_call_p50=statistics.median(durations) * 1000.0,
    )


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = min(ax + aw, bx + bw) - max(ax, bx)
    h = min(ay + ah, by + bh) - max(ay, by)
    inter = max(0, w) * max(0, h)
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def _match(
    box: tuple[int, int, int, int], candidates: Sequence[tuple[tuple[int, int, int, int], Any]]
) -> Any:
    """The payload of the candidate overlapping ``box`` most (IoU >= MATCH_IOU), else None."""
    best, best_iou = None, MATCH_IOU
    for other, payload in candidates:
        iou = _iou(box, other)
        if iou >= best_iou:
            best, best_iou = payload, iou
    return best


def compare_with_deepface_crops(
    analyzer: FaceEmotionAnalyzer, frames: Sequence[BenchFrame]
) -> dict[str, Any]:
    """Our pipeline's emotion readings against our model on DeepFace's crops.

    Call inside :func:`deepface_random_home` (``extract_faces`` needs no emotion weights,
    only DeepFace's import-time folder).

    Returns:
        For the labelled faces (the astronaut, happy): how many each path found and
        read correctly; for every face both paths found (matched by IoU): how often
        their top classes agree.
    """
    results = analyzer.analyze_batch([VideoSample("bench", 0.0, f.image) for f in frames])
    labelled = ours_found = ours_correct = theirs_found = theirs_correct = 0
    matched = agree = 0
    for frame, result in zip(frames, results, strict=True):
        ours = [(face.box, EMOTIONS[int(np.argmax(face.probs))]) for face in result.faces]
        theirs = [
            (box, EMOTIONS[int(np.argmax(classify_crop(analyzer, crop)))])
            for box, crop in deepface_faces(frame.image)
        ]
        for box, emotion in ours:
            other = _match(box, theirs)
            if other is not None:
                matched += 1
                agree += other == emotion
        for box, label in frame.faces:
            if label is None:
                continue
            labelled += 1
            mine = _match(box, ours)
            other = _match(box, theirs)
            ours_found += mine is not None
            ours_correct += mine == label
            theirs_found += other is not None
            theirs_correct += other == label
    return {
        "label": ASTRONAUT_LABEL.value,
        "labelled_faces": labelled,
        "pipeline_found": ours_found,
        "pipeline_correct": ours_correct,
        "deepface_crops_found": theirs_found,
        "deepface_crops_correct": theirs_correct,
        "matched_faces": matched,
        "agreement": agree / matched if matched else None,
    }


def bench_faces(
    params: FaceEmotionParams,
    *,
    batch_sizes: Sequence[int] = BATCH_SIZES,
    seconds: float = 5.0,
    repeats: int = 3,
    threads: int | None = None,
    with_deepface: bool = True,
) -> dict[str, Any]:
    """Faces per second of the analyzer's batched path, and of DeepFace, on the same frames.

    Args:
        params: The analyzer to load (detector, model, device, ...).
        batch_sizes: Frames per call to measure.
        seconds: Least measured time per configuration.
        repeats: Least calls per configuration.
        threads: torch (and ONNX Runtime) and OpenCV threads for both paths; None
            keeps ``params.torch_threads`` for torch and ONNX Runtime and OpenCV's default.
        with_deepface: Also time DeepFace and compare readings with its crops.

    Returns:
        Plain numbers: ``pipeline`` (one entry per batch size), ``deepface``,
        ``speedup`` (pipeline faces/s and frames/s over DeepFace's, per batch size) and
        ``accuracy`` (see :func:`compare_with_deepface_crops`).
    """
    import torch

    from analyzers.face.emotion import FaceEmotionAnalyzer

    if not batch_sizes or min(batch_sizes) < 1:
        raise ValueError("batch sizes must be whole numbers >= 1")
    torch_threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    if threads is not None:
        params = params.model_copy(update={"torch_threads": threads})
    try:
        analyzer = FaceEmotionAnalyzer.load(params)
        if threads is not None:
            cv2.setNumThreads(threads)
        frames = bench_frames(max(8, *batch_sizes))
        images = [f.image for f in frames]

        def pipeline(chunk: Sequence[np.ndarray]) -> int:
            results = analyzer.analyze_batch([VideoSample("bench", 0.0, i) for i in chunk])
            return sum(len(r.faces) for r in results)

        result: dict[str, Any] = {
            "device": str(analyzer.device),
            "runtime": analyzer.runtime,
            "torch_threads": torch.get_num_threads(),
            "opencv_threads": cv2.getNumThreads(),
            "detector": params.detector,
            "model": analyzer.params.model,
            "frame_size": list(FRAME_SIZE),
            "distinct_frames": len(frames),
            "faces_per_frame_placed": sum(len(f.faces) for f in frames) / len(frames),
            "pipeline": [
                asdict(time_calls(pipeline, images, b, seconds=seconds, repeats=repeats))
                for b in batch_sizes
            ],
            "followed": None,
            "deepface": None,
            "speedup": None,
            "accuracy": None,
        }
        if params.detector == "mediapipe":
            # The server's steady state: faces followed from the previous frame's
            # landmarks, the detector only every detect_interval_secs (not timed here).
            first = analyzer.analyze_batch([VideoSample("bench", 0.0, i) for i in images])
            hints = {
                id(image): tuple(f.next_roi for f in r.faces if f.next_roi is not None)
                for image, r in zip(images, first, strict=True)
            }

            def followed(chunk: Sequence[np.ndarray]) -> int:
                samples = [VideoSample("bench", 0.0, i, hints[id(i)]) for i in chunk]
                return sum(len(r.faces) for r in analyzer.analyze_batch(samples))

            result["followed"] = [
                asdict(time_calls(followed, images, b, seconds=seconds, repeats=repeats))
                for b in batch_sizes
            ]
        if with_deepface:
            with deepface_random_home():
                deepface = time_calls(
                    lambda chunk: sum(deepface_analyze(i) for i in chunk),
                    images,
                    1,
                    seconds=seconds,
                    repeats=repeats,
                )
                result["deepface"] = asdict(deepface) | {
                    "call": "DeepFace.analyze(actions=['emotion'], detector_backend='opencv')",
                    "weights": "random (speed only)",
                }
                result["speedup"] = {
                    f"{kind}{p['batch_size']}": {
                        "faces_per_sec": (
                            p["faces_per_sec"] / deepface.faces_per_sec
                            if deepface.faces_per_sec
                            else None
                        ),
                        "frames_per_sec": p["frames_per_sec"] / deepface.frames_per_sec,
                    }
                    for kind, rates in (("", result["pipeline"]), ("followed", result["followed"]))
                    for p in rates or ()
                }
                result["accuracy"] = compare_with_deepface_crops(analyzer, frames)
    finally:
        torch.set_num_threads(torch_threads)
        cv2.setNumThreads(cv2_threads)
    logger.info("face bench done", extra={"device": result["device"]})
    return result


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def _ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.1f}×" if theirs else "–"


def format_face_bench(result: dict[str, Any]) -> str:
    """The bench result as a readable table."""
    lines = [
        f"face bench: detector {result['detector']}, model {result['model']}, "
        f"device {result['device']}, runtime {result['runtime']}, "
        f"torch threads {result['torch_threads']}, OpenCV threads {result['opencv_threads']}",
        f"{result['distinct_frames']} distinct {result['frame_size'][0]}x"
        f"{result['frame_size'][1]} frames, {result['faces_per_frame_placed']:.2f} real faces "
        "per frame (astronaut + LFW)",
        "",
    ]
    deepface = result.get("deepface")
    path = (
        "detect + landmarks + emotion"
        if result["detector"] == "mediapipe"
        else f"detect ({result['detector']}) + emotion"
    )
    rows = [(path, p) for p in result["pipeline"]]
    rows += [("landmarks + emotion (faces followed)", p) for p in result.get("followed") or ()]
    if deepface:
        rows.append(("DeepFace.analyze(emotion, opencv)", deepface))
    columns = f"{'path':<36} {'batch':>5} {'frames/s':>9} {'faces/s':>8} {'faces/frame':>11} "
    columns += f"{'ms/call p50':>11}"
    if deepface:
        columns += f" {'faces/s ×DF':>11} {'frames/s ×DF':>12}"
    lines.append(columns)
    for name, rate in rows:
        line = (
            f"{name:<36} {rate['batch_size']:>5} {rate['frames_per_sec']:>9.1f} "
            f"{rate['faces_per_sec']:>8.1f} {rate['faces_per_frame']:>11.2f} "
            f"{rate['ms_per_call_p50']:>11.1f}"
        )
        if deepface:
            faces_ratio = _ratio(rate["faces_per_sec"], deepface["faces_per_sec"])
            frames_ratio = _ratio(rate["frames_per_sec"], deepface["frames_per_sec"])
            line += f" {faces_ratio:>11} {frames_ratio:>12}"
        lines.append(line)
    if deepface:
        lines.append("DeepFace's emotion weights are random here (no download): speed only.")
    if result.get("followed"):
        lines.append(
            "faces followed: the server's steady state, where the detector runs only every "
            "detect_interval_secs and faces are read at the ROI of their last landmarks."
        )
    accuracy = result.get("accuracy")
    if accuracy:
        n = accuracy["labelled_faces"]
        agreement = accuracy["agreement"]
        lines += [
            "",
            "same emotion model, our faces vs DeepFace's crops (extract_faces, opencv, aligned):",
            f"  labelled faces ({accuracy['label']}, the astronaut): {n}",
            f"  ours:            found {accuracy['pipeline_found']}, "
            f"read {accuracy['label']} {accuracy['pipeline_correct']}",
            f"  DeepFace crops:  found {accuracy['deepface_crops_found']}, "
            f"read {accuracy['label']} {accuracy['deepface_crops_correct']}",
            f"  faces both found: {accuracy['matched_faces']}, same top class: "
            f"{_fmt(None if agreement is None else agreement * 100, '.1f')} %",
        ]
    return "\n".join(lines)


# --- sample sets -----------------------------------------------------------------------


def _write(path: Path, rgb: np.ndarray) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {path}")


def write_sample_sets(folder: Path) -> dict[str, Path]:
    """Write the evaluation sets that can be made offline from scikit-image's data.

    - ``detect/`` + ``detect/counts.csv``: the 100 LFW faces (expected 1) and 100 LFW
      non-faces (expected 0) of ``lfw_subset``, each upscaled to 100 px with a 25 px
      replicated margin, and 12 bench scenes with 1-3 faces.
    - ``faces/`` + ``faces/labels.csv``: whole photos of the astronaut (happy): the
      original, half size, mirrored, and on a 640x480 canvas.
    - ``crops/`` + ``crops/labels.csv``: tight crops of her face (happy): colour,
      mirrored, and 48x48 gray as in FER2013.

    No public emotion-labelled set is available offline, so ``faces`` and ``crops``
    hold one person's one expression: a smoke test, not an accuracy figure.

    Returns:
        The three folders by name.
    """
    folders = {name: folder / name for name in ("detect", "faces", "crops")}
    for path in folders.values():
        path.mkdir(parents=True, exist_ok=True)

    faces, non_faces = lfw_subset()
    rows = []
    for kind, patches, count in (("face", faces, 1), ("nonface", non_faces, 0)):
        for i, patch in enumerate(patches):
            name = f"lfw_{kind}_{i:03d}.png"
            _write(folders["detect"] / name, lfw_tile(patch, 100))
            rows.append(f"{name},{count}")
    for i, frame in enumerate(bench_frames(12, seed=1)):
        name = f"scene_{i:02d}.png"
        _write(folders["detect"] / name, frame.image)
        rows.append(f"{name},{len(frame.faces)}")
    (folders["detect"] / "counts.csv").write_text("filename,faces\n" + "\n".join(rows) + "\n")

    photo = astronaut()
    canvas = np.full((FRAME_SIZE[1], FRAME_SIZE[0], 3), 128, dtype=np.uint8)
    canvas[:, 64:576] = photo[:480]
    photos = {
        "astronaut.png": photo,
        "astronaut_half.png": cv2.resize(photo, (256, 256), interpolation=cv2.INTER_AREA),
        "astronaut_mirrored.png": np.ascontiguousarray(photo[:, ::-1]),
        "astronaut_640x480.png": canvas,
    }
    x, y, w, h = ASTRONAUT_FACE
    face = photo[y : y + h, x : x + w]
    gray = cv2.cvtColor(face, cv2.COLOR_RGB2GRAY)
    gray48 = cv2.resize(gray, (48, 48), interpolation=cv2.INTER_AREA)
    crops = {
        "astronaut_face.png": face,
        "astronaut_face_mirrored.png": np.ascontiguousarray(face[:, ::-1]),
        "astronaut_face_48_gray.png": cv2.cvtColor(gray48, cv2.COLOR_GRAY2RGB),
    }
    for name, images in (("faces", photos), ("crops", crops)):
        for filename, image in images.items():
            _write(folders[name] / filename, image)
        lines = [f"{filename},{ASTRONAUT_LABEL.value}" for filename in images]
        (folders[name] / "labels.csv").write_text("filename,label\n" + "\n".join(lines) + "\n")
    return folders
