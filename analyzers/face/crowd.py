"""Crowded frames (a room camera, a group photo) and their cost: ``meetmood bench crowd``.

:func:`crowd_scene` paints a deterministic crowd of real faces in rows, like people
around a conference table, the back row smallest: the astronaut (scikit-image,
NASA, public domain) and Grace Hopper (matplotlib's sample data, US Navy, public
domain), cut to head and shoulders, each mirrored at random, tilted up to 8
degrees, relit and white-balanced, and feathered into an ellipse. ``lfw=True``
swaps half of them for LFW faces (``skimage.data.lfw_subset()``, 25 x 25 gray,
tinted): tight crops with no hair, ears or chin line, which BlazeFace and the
mesh often reject at any size. With ``far=True`` the scene is painted at three
times the size and shrunk with ``INTER_AREA`` (the blur of a distant camera), on
a brick wall, lit from one side, with sensor noise and JPEG compression.

Faces pasted on a picture are still easier than a real room: no occlusion, no
profile views, no motion blur. Treat the counts as a floor for what the pipeline
misses, not as its accuracy on real crowds.

:func:`bench_crowd` times the analyzer on such a frame (one torch thread, as in
the inference workers): a **detector frame** (tiled BlazeFace, then mesh, iris and
emotion for every face) and a **followed frame** (the faces read at the ROI of their
landmarks in the previous frame, no detector: the steady state between detector
runs, see ``detect_interval_secs``), and checks that the face tracker keeps every
face's id over a few frames of slow motion. Runs in the calling thread; no asyncio.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from analyzers.face.bench import astronaut, lfw_subset
from analyzers.face.tracking import FaceTracker
from analyzers.types import VideoSample

if TYPE_CHECKING:
    from analyzers.face.emotion import FaceEmotionAnalyzer, FaceEmotionParams

logger = logging.getLogger(__name__)

#: A room camera: 1280 x 720, 20 people.
ROOM_SIZE = (1280, 720)
ROOM_FACES = 20
#: Face sides, in pixels, of the back row and of the front row.
ROOM_FACE_PX = (30, 60)
#: Where the portraits' faces are, ``(x, y, w, h)`` in the originals (BlazeFace's boxes).
_PORTRAIT_FACES = {"astronaut": (177, 82, 96, 97), "grace_hopper": (171, 146, 195, 196)}
#: Skin tints for the gray LFW faces (RGB gains).
_TINTS = (
    (1.0, 0.82, 0.7),
    (0.95, 0.75, 0.6),
    (0.8, 0.6, 0.45),
    (0.62, 0.46, 0.36),
    (1.0, 0.9, 0.8),
)
#: Side, in pixels, the LFW faces are upscaled to before they are scaled to the scene.
_LFW_SOURCE_PX = 100
#: ``far=True``: painted at this many times the frame size, then shrunk.
_FAR_SCALE = 3
#: Frames of slow motion :func:`bench_crowd` tracks the faces over.
FOLLOW_FRAMES = 5


@dataclass(frozen=True, slots=True)
class CrowdScene:
    """A crowd frame and where its faces are.

    Attributes:
        image: H x W x 3 uint8 RGB.
        boxes: ``(x, y, w, h)`` of each painted face, back row first, left to right.
    """

    image: np.ndarray
    boxes: tuple[tuple[float, float, float, float], ...]


def grace_hopper() -> np.ndarray:
    """Grace Hopper's portrait from matplotlib's sample data: 600 x 512 RGB uint8."""
    import matplotlib.cbook as cbook  # filterpy's dependency, so always installed

    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise RuntimeError(f"cannot read {path}")
    rgb: np.ndarray = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return rgb


def _heads() -> list[tuple[np.ndarray, tuple[int, int, int, int]]]:
    """The face sources: ``(image, face box)``, the two portraits cut to head and shoulders."""
    heads = []
    for name, photo in (("astronaut", astronaut()), ("grace_hopper", grace_hopper())):
        fx, fy, fw, fh = _PORTRAIT_FACES[name]
        x0, x1 = max(0, round(fx - 0.7 * fw)), min(photo.shape[1], round(fx + 1.7 * fw))
        y0, y1 = max(0, round(fy - 0.6 * fh)), min(photo.shape[0], round(fy + 1.9 * fh))
        heads.append((np.ascontiguousarray(photo[y0:y1, x0:x1]), (fx - x0, fy - y0, fw, fh)))
    return heads


def _background(width: int, height: int, far: bool) -> np.ndarray:
    from skimage import data

    if far:
        brick = np.asarray(data.brick())  # type: ignore[no-untyped-call]
        wall = cv2.cvtColor(brick, cv2.COLOR_GRAY2RGB)
    else:
        wall = np.asarray(data.coffee())  # type: ignore[no-untyped-call]  # a table top
    image: np.ndarray = cv2.resize(wall, (width, height), interpolation=cv2.INTER_LINEAR)
    return image


def _rows(n: int, width: int, height: int) -> list[int]:
    # Rows of people as even as possible, about as many per row as the aspect ratio asks.
    rows = max(1, round(math.sqrt(n * height / width)))
    return [n // rows + (r < n % rows) for r in range(rows)]


def crowd_scene(
    n: int = ROOM_FACES,
    size: tuple[int, int] = ROOM_SIZE,
    face_px: tuple[int, int] = ROOM_FACE_PX,
    *,
    seed: int = 0,
    far: bool = False,
    lfw: bool = False,
    shift: tuple[float, float] = (0.0, 0.0),
) -> CrowdScene:
    """Paint ``n`` real faces in rows on a ``size = (width, height)`` frame (deterministic).

    Args:
        n: Faces.
        size: Frame ``(width, height)``.
        face_px: Face side of the back row and of the front row; each face varies by
            up to 10 % about its row's size, within these bounds.
        seed: Picks faces, tints, lighting and places.
        far: The harder look of a distant camera (see the module docstring).
        lfw: Make every other pair of faces a tight LFW crop (no hair, ears or chin
            line around it) instead of a portrait: the hardest kind of face here.
        shift: Moves every face by ``(dx, dy)`` pixels over the same background:
            frames of a slowly moving crowd for tracking.
    """
    if n < 1 or face_px[0] < 8 or face_px[1] < face_px[0]:
        raise ValueError("need at least one face and 8 <= face_px[0] <= face_px[1]")
    rng = np.random.default_rng(seed)
    width, height = size
    scale = _FAR_SCALE if far else 1
    canvas = _background(width * scale, height * scale, far).astype(np.float32)
    portraits = _heads()
    lfw_faces, _ = lfw_subset()
    rows = _rows(n, width, height)
    row_height = height / len(rows)
    boxes = []
    k = 0
    for r, count in enumerate(rows):
        # Back row (top) smallest, front row largest.
        mid = face_px[0] + (face_px[1] - face_px[0]) * (r / max(1, len(rows) - 1))
        step = width / count
        for i in range(count):
            side = float(np.clip(mid * rng.uniform(0.9, 1.1), face_px[0], face_px[1]))
            if lfw and k % 4 >= 2:
                patch = lfw_faces[int(rng.integers(0, len(lfw_faces)))]
                big = cv2.resize(patch, (_LFW_SOURCE_PX,) * 2, interpolation=cv2.INTER_CUBIC)
                tint = np.asarray(_TINTS[int(rng.integers(0, len(_TINTS)))], dtype=np.float32)
                rgb = cv2.cvtColor(big, cv2.COLOR_GRAY2RGB).astype(np.float32) * tint
                head = np.clip(rgb, 0, 255).astype(np.uint8)
                bx, by, bw, bh = 0, 0, _LFW_SOURCE_PX, _LFW_SOURCE_PX
            else:
                head, (bx, by, bw, bh) = portraits[k % 2]
                head = _vary(head, (bx + bw / 2, by + bh / 2), rng)
            k += 1
            gain, offset = rng.uniform(0.8, 1.2), rng.uniform(-20.0, 20.0)
            s = side * scale / bw
            head = cv2.resize(
                np.ascontiguousarray(head),
                (max(1, round(head.shape[1] * s)), max(1, round(head.shape[0] * s))),
                interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC,
            )
            left = (i + 0.5) * step - side / 2 + rng.uniform(-0.15, 0.15) * step + shift[0]
            top = (r + 0.5) * row_height - side / 2 + rng.uniform(-0.3, 0.3) * side + shift[1]
            relit = head.astype(np.float32) * gain + offset
            _paste(canvas, relit, left * scale - bx * s, top * scale - by * s)
            boxes.append((left, top, side, bh * s / scale))
    if far:
        canvas *= np.linspace(0.55, 1.15, canvas.shape[1], dtype=np.float32)[None, :, None]
    image: np.ndarray = np.clip(np.round(canvas), 0, 255).astype(np.uint8)
    if far:
        image = _far_camera(image, width, height, rng)
    return CrowdScene(image=image, boxes=tuple(boxes))


def _far_camera(image: np.ndarray, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    # Shrink (the blur of a distant camera), add sensor noise, compress as a stream would.
    small = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    noisy = np.clip(small + rng.normal(0.0, 4.0, small.shape), 0, 255).astype(np.uint8)
    ok, jpeg = cv2.imencode(".jpg", noisy[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 70])
    decoded = cv2.imdecode(jpeg, cv2.IMREAD_COLOR) if ok else None
    if decoded is None:  # pragma: no cover - OpenCV always encodes a uint8 RGB array
        raise RuntimeError("JPEG round trip failed")
    out: np.ndarray = np.ascontiguousarray(decoded[:, :, ::-1])
    return out


def _vary(head: np.ndarray, centre: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    # Another look of the same portrait: tilted up to 8 degrees about the face, other
    # white balance.
    angle = float(rng.uniform(-8.0, 8.0))
    matrix = cv2.getRotationMatrix2D(centre, angle, 1.0)
    rows, cols = head.shape[:2]
    turned = cv2.warpAffine(head, matrix, (cols, rows), borderMode=cv2.BORDER_REPLICATE)
    balance = rng.uniform(0.85, 1.1, size=3).astype(np.float32)
    out: np.ndarray = np.clip(turned.astype(np.float32) * balance, 0, 255).astype(np.uint8)
    return out


def _paste(canvas: np.ndarray, head: np.ndarray, left: float, top: float) -> None:
    # Blend `head` into `canvas` through an ellipse feathered over its outer 12 %.
    rows, cols = head.shape[:2]
    yy, xx = np.mgrid[0:rows, 0:cols]
    radius = np.hypot((xx + 0.5 - cols / 2) / (cols / 2), (yy + 0.5 - rows / 2) / (rows / 2))
    alpha = np.clip((1 - radius) / 0.12, 0, 1)[..., None]
    px, py = round(left), round(top)
    height, width = canvas.shape[:2]
    x0, y0, x1, y1 = max(0, px), max(0, py), min(width, px + cols), min(height, py + rows)
    if x1 <= x0 or y1 <= y0:
        return
    a = alpha[y0 - py : y1 - py, x0 - px : x1 - px]
    patch = head[y0 - py : y1 - py, x0 - px : x1 - px]
    canvas[y0:y1, x0:x1] = canvas[y0:y1, x0:x1] * (1 - a) + patch * a


def matched_faces(
    found: Sequence[tuple[int, int, int, int]], boxes: Sequence[tuple[float, float, float, float]]
) -> list[int | None]:
    """For each painted face, the index of the found box on it (or None).

    A found box is on a face when its centre lies within half the face's width and
    0.6 of its height of the face's centre and its width is 0.5-2x the face's (a
    landmark box spans the face outline; a painted box, the detector's square).
    Each found box matches one face at most.
    """
    used: set[int] = set()
    out: list[int | None] = []
    for x, y, w, h in boxes:
        cx, cy = x + w / 2, y + h / 2
        hit = None
        for j, (fx, fy, fw, fh) in enumerate(found):
            if j in used:
                continue
            if (
                abs(fx + fw / 2 - cx) < 0.5 * w
                and abs(fy + fh / 2 - cy) < 0.6 * h
                and 0.5 < fw / w < 2.0
            ):
                hit = j
                break
        if hit is not None:
            used.add(hit)
        out.append(hit)
    return out


def _median_ms(call: Any, seconds: float, repeats: int) -> tuple[float, int]:
    call()  # warm-up
    durations: list[float] = []
    begin = time.perf_counter()
    while len(durations) < max(1, repeats) or time.perf_counter() - begin < seconds:
        t0 = time.perf_counter()
        call()
        durations.append(time.perf_counter() - t0)
    return statistics.median(durations) * 1000.0, len(durations)


def bench_crowd(
    params: FaceEmotionParams,
    *,
    faces: int = ROOM_FACES,
    size: tuple[int, int] = ROOM_SIZE,
    face_px: tuple[int, int] = ROOM_FACE_PX,
    far: bool = False,
    lfw: bool = False,
    seconds: float = 3.0,
    repeats: int = 3,
) -> dict[str, Any]:
    """Faces found and followed in a crowd frame, and the cost of a frame.

    Loads the analyzer with ``params`` (one torch thread unless they say otherwise)
    and reads :func:`crowd_scene` frames: a detector frame, a followed frame, and
    :data:`FOLLOW_FRAMES` frames of the crowd drifting 2 px a frame (the detector on
    the first, then followed) through :class:`~analyzers.face.tracking.FaceTracker`.

    Returns:
        Plain numbers: ``found`` / ``false`` (found boxes on no painted face) for the
        detector frame, ``followed`` for the followed frame, the median ms of each
        (``detect_ms``, ``follow_ms``) and of the tiled detector alone
        (``detector_only_ms``), ``detector_windows`` and ``stable_ids`` (every
        painted face kept one track id over the tracked frames). The followed figures
        are None for a detector without landmarks (Haar).
    """
    import torch

    from analyzers.face.emotion import FaceEmotionAnalyzer

    torch_threads = torch.get_num_threads()
    try:
        analyzer = FaceEmotionAnalyzer.load(params)
        scene = crowd_scene(faces, size, face_px, far=far, lfw=lfw)
        sample = VideoSample("crowd", 0.0, scene.image)
        first = analyzer.analyze(sample)
        found = [f.box for f in first.faces]
        hits = matched_faces(found, scene.boxes)
        detect_ms, detect_calls = _median_ms(lambda: analyzer.analyze(sample), seconds, repeats)
        result: dict[str, Any] = {
            "device": str(analyzer.device),
            "runtime": analyzer.runtime,
            "torch_threads": torch.get_num_threads(),
            "detector": params.detector,
            "model": params.model,
            "frame_size": list(size),
            "faces_placed": faces,
            "face_px": list(face_px),
            "far": far,
            "lfw": lfw,
            "min_face_px": params.min_face_px,
            "max_faces": params.max_faces,
            "detector_windows": _windows(params, size),
            "found": sum(h is not None for h in hits),
            "false": len(found) - sum(h is not None for h in hits),
            "detect_ms": detect_ms,
            "detect_calls": detect_calls,
            "followed": None,
            "follow_ms": None,
            "follow_calls": None,
            "stable_ids": None,
            "detector_only_ms": None,
        }
        if first.faces and first.faces[0].next_roi is not None:
            rois = tuple(f.next_roi for f in first.faces if f.next_roi is not None)
            followed_sample = VideoSample("crowd", 0.04, scene.image, rois)
            again = analyzer.analyze(followed_sample)
            result["followed"] = sum(
                h is not None for h in matched_faces([f.box for f in again.faces], scene.boxes)
            )
            result["follow_ms"], result["follow_calls"] = _median_ms(
                lambda: analyzer.analyze(followed_sample), seconds, repeats
            )
            result["stable_ids"] = follow_crowd(analyzer, faces, size, face_px, far=far, lfw=lfw)
            result["detector_only_ms"] = _detector_ms(
                params, analyzer, scene.image, seconds, repeats
            )
    finally:
        torch.set_num_threads(torch_threads)
    logger.info("crowd bench done", extra={"device": result["device"]})
    return result


def follow_crowd(
    analyzer: FaceEmotionAnalyzer,
    faces: int = ROOM_FACES,
    size: tuple[int, int] = ROOM_SIZE,
    face_px: tuple[int, int] = ROOM_FACE_PX,
    *,
    far: bool = False,
    lfw: bool = False,
    frames: int = FOLLOW_FRAMES,
    step_px: float = 2.0,
    fps: float = 15.0,
) -> bool:
    """Whether every painted face keeps one track id over ``frames`` frames of slow motion.

    The crowd drifts ``step_px`` right and down per frame; the detector reads the
    first frame, the others are followed from the previous frame's landmarks (as
    the live path does between detector runs), and the boxes go through a
    :class:`~analyzers.face.tracking.FaceTracker` with the analyzer's tracker params.
    """
    tracker = FaceTracker(analyzer.params.tracker)
    ids_per_face: list[set[int | None]] = [set() for _ in range(faces)]
    hints: tuple[object, ...] | None = None
    for t in range(frames):
        shift = (t * step_px, t * step_px)
        scene = crowd_scene(faces, size, face_px, far=far, lfw=lfw, shift=shift)
        result = analyzer.analyze(VideoSample("crowd", t / fps, scene.image, hints))
        boxes = [f.box for f in result.faces]
        update = tracker.update(t / fps, boxes)
        hints = tuple(f.next_roi for f in result.faces if f.next_roi is not None) or None
        if t == 0:
            continue  # tracks are confirmed from the second frame (min_hits)
        for face, hit in enumerate(matched_faces(boxes, scene.boxes)):
            ids_per_face[face].add(None if hit is None else update.ids[hit])
    return all(len(ids) == 1 and None not in ids for ids in ids_per_face)


def _detector_ms(
    params: FaceEmotionParams,
    analyzer: FaceEmotionAnalyzer,
    image: np.ndarray,
    seconds: float,
    repeats: int,
) -> float:
    # The tiled BlazeFace pass alone, on a landmarker built like the analyzer's.
    from analyzers.face.mediapipe.landmarker import FaceLandmarker

    landmarker = FaceLandmarker(
        analyzer.device,
        max_faces=params.max_faces,
        min_face_px=params.min_face_px,
        runtime=analyzer.runtime,
        threads=params.torch_threads,
    )
    ms, _ = _median_ms(lambda: landmarker.detect([image]), seconds, repeats)
    return ms


def _windows(params: FaceEmotionParams, size: tuple[int, int]) -> int | None:
    # Detector windows (whole frame plus tiles) of a detector frame; Haar has none.
    if params.detector != "mediapipe":
        return None
    from analyzers.face.mediapipe.landmarker import DETECTOR_MODEL, DETECTORS, detection_windows

    fraction = DETECTORS[DETECTOR_MODEL].min_face_fraction
    return len(detection_windows(size[1], size[0], params.min_face_px, fraction))


def format_crowd_bench(result: dict[str, Any]) -> str:
    """The crowd bench result as a few readable lines."""
    width, height = result["frame_size"]
    lines = [
        f"crowd bench: detector {result['detector']}, model {result['model']}, "
        f"device {result['device']}, runtime {result['runtime']}, "
        f"threads {result['torch_threads']}",
        f"{width}x{height} frame, {result['faces_placed']} real faces of "
        f"{result['face_px'][0]}-{result['face_px'][1]} px"
        + (" (far camera: blurred, noisy, JPEG)" if result["far"] else "")
        + (", half of them tight LFW crops" if result["lfw"] else "")
        + f"; min_face_px {result['min_face_px']}, max_faces {result['max_faces']}",
        "",
        f"detector frame:  found {result['found']} / {result['faces_placed']}, "
        f"false {result['false']}, {result['detect_ms']:.0f} ms per frame"
        + (
            f" ({result['detector_windows']} detector windows)"
            if result["detector_windows"] is not None
            else ""
        ),
    ]
    if result["followed"] is not None:
        stable = "yes" if result["stable_ids"] else "no"
        lines.append(f"  of which the tiled detector alone: {result['detector_only_ms']:.0f} ms")
        lines.append(
            f"followed frame:  kept {result['followed']} / {result['found']}, "
            f"{result['follow_ms']:.0f} ms per frame; "
            f"ids stable over {FOLLOW_FRAMES} moving frames: {stable}"
        )
    return "\n".join(lines)
