"""Time each face network alone on torch and on ONNX Runtime: milliseconds per input.

Usage::

    python scripts/bench_face_nets.py [--batch-sizes 1,8,32] [--threads 1] [--seconds 2]

For every network of the face path (BlazeFace short and full range, Face Mesh, iris,
mini-Xception) and every batch size, one forward pass over a random batch is timed
again and again for at least ``--seconds`` (and 5 times); the median divided by the
batch size is printed. Times are the calling thread's CPU time
(``time.thread_time``): with one intra-op thread both runtimes compute on the calling
thread, and CPU time hardly moves when other processes share the cores, where wall
time would count their turns too. torch runs the modules as the analyzer does on the CPU (the
MediaPipe nets in ``channels_last``, ``inference_mode``); ONNX Runtime runs the
shipped ``.onnx`` files through :class:`analyzers.face.runtime.OnnxNet`. Both use
``--threads`` intra-op threads. Inputs to the iris model are eye crops: a face costs
two of them.

``--split`` instead times the whole analyzer (``FaceEmotionAnalyzer.analyze_batch``,
default params but ``runtime`` and ``torch_threads`` from the flags) on the 640 x 480
frames of ``meetmood bench faces`` (8 frames per call), with the detector on every frame
and with faces followed from the previous frame's landmarks, and splits each call's time
into detector, mesh, iris, emotion network and the rest (crops, framing, geometry).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from analyzers.face.emotion import MINI_XCEPTION_WEIGHTS  # noqa: E402
from analyzers.face.mediapipe.blocks import load_state_dict_file  # noqa: E402
from analyzers.face.mediapipe.facemesh import FaceMesh  # noqa: E402
from analyzers.face.mediapipe.iris import IrisLandmark  # noqa: E402
from analyzers.face.mediapipe.landmarker import (  # noqa: E402
    DETECTORS,
    FACE_MESH_WEIGHTS,
    IRIS_WEIGHTS,
    WEIGHTS_DIR,
)
from analyzers.face.mini_xception import load_mini_xception  # noqa: E402
from analyzers.face.runtime import OnnxNet, onnx_path  # noqa: E402


def _networks() -> dict[str, tuple[torch.nn.Module, Path, tuple[int, int, int], bool]]:
    cpu = torch.device("cpu")
    nets: dict[str, tuple[torch.nn.Module, Path, tuple[int, int, int], bool]] = {}
    for name, spec in DETECTORS.items():
        model = spec.build()
        load_state_dict_file(model, WEIGHTS_DIR / spec.weights, cpu)
        size = spec.input_size
        nets[f"detector {name}"] = (model, WEIGHTS_DIR / spec.weights, (3, size, size), True)
    mesh = FaceMesh()
    load_state_dict_file(mesh, WEIGHTS_DIR / FACE_MESH_WEIGHTS, cpu)
    nets["face mesh"] = (mesh, WEIGHTS_DIR / FACE_MESH_WEIGHTS, (3, 192, 192), True)
    eyes = IrisLandmark()
    load_state_dict_file(eyes, WEIGHTS_DIR / IRIS_WEIGHTS, cpu)
    nets["iris (per eye)"] = (eyes, WEIGHTS_DIR / IRIS_WEIGHTS, (3, 64, 64), True)
    emotion = load_mini_xception(MINI_XCEPTION_WEIGHTS, cpu)
    # The analyzer runs the mini-Xception in torch's default layout.
    nets["mini-Xception"] = (emotion, MINI_XCEPTION_WEIGHTS, (1, 64, 64), False)
    return nets


def _torch_forward(model: torch.nn.Module, x: torch.Tensor) -> None:
    with torch.inference_mode():
        model(x)


def median_ms(call: Callable[[], object], seconds: float, repeats: int = 5) -> float:
    """Median CPU time of ``call`` in ms, over at least ``seconds`` and ``repeats`` calls."""
    call()  # warm-up: first-call allocations and ORT's per-shape planning
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start < seconds:
        t = time.thread_time()
        call()
        times.append(time.thread_time() - t)
    return statistics.median(times) * 1000.0


class _Timed:
    """Stands in for a network (a callable) and adds up the CPU seconds spent in it."""

    def __init__(self, net: Callable[..., Any]) -> None:
        self.net = net
        self.seconds = 0.0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        start = time.thread_time()
        try:
            return self.net(*args, **kwargs)
        finally:
            self.seconds += time.thread_time() - start


def split(runtime: str, threads: int, seconds: float) -> None:
    """Print the analyzer's cost per face, split by stage, detecting and following."""
    from analyzers.face.bench import bench_frames
    from analyzers.face.emotion import FaceEmotionAnalyzer, FaceEmotionParams
    from analyzers.types import VideoSample

    params = FaceEmotionParams(device="cpu", runtime=runtime, torch_threads=threads)
    analyzer = FaceEmotionAnalyzer.load(params)
    landmarker: Any = analyzer._detector
    stages = {
        "detector": _Timed(landmarker.detector),
        "mesh": _Timed(landmarker.mesh),
        "iris": _Timed(landmarker.iris),
        "emotion": _Timed(analyzer._forward),
    }
    landmarker.detector, landmarker.mesh, landmarker.iris = (
        stages["detector"],
        stages["mesh"],
        stages["iris"],
    )
    analyzer._forward = stages["emotion"]  # type: ignore[method-assign]
    images = [f.image for f in bench_frames(8)]
    first = analyzer.analyze_batch([VideoSample("bench", 0.0, i) for i in images])
    hints = [tuple(f.next_roi for f in r.faces) for r in first]
    print(
        f"CPU ms per face; runtime {analyzer.runtime}, {threads} thread(s), "
        f"{len(images)} frames per call"
    )
    for mode, samples in (
        ("detect", [VideoSample("bench", 0.0, i) for i in images]),
        ("follow", [VideoSample("bench", 0.0, i, h) for i, h in zip(images, hints, strict=True)]),
    ):
        analyzer.analyze_batch(samples)  # warm-up
        for stage in stages.values():
            stage.seconds = 0.0
        faces = calls = 0
        total = 0.0
        start = time.perf_counter()
        while calls < 3 or time.perf_counter() - start < seconds:
            t = time.thread_time()
            faces += sum(len(r.faces) for r in analyzer.analyze_batch(samples))
            total += time.thread_time() - t
            calls += 1
        per_face = {name: 1000.0 * st.seconds / faces for name, st in stages.items()}
        rest = 1000.0 * total / faces - sum(per_face.values())
        parts = ", ".join(f"{name} {ms:.2f}" for name, ms in per_face.items())
        print(
            f"{mode}: {1000.0 * total / faces:.2f} ms per face ({faces / calls / len(images):.2f}"
            f" faces per frame): {parts}, rest {rest:.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    """Print one line per network and batch size: torch and ORT ms per input."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--batch-sizes", default="1,8,32")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument(
        "--split", choices=("onnx", "torch"), help="time the analyzer's stages on this runtime"
    )
    args = parser.parse_args(argv)
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    torch.set_num_threads(args.threads)
    if args.split:
        split(args.split, args.threads, args.seconds)
        return 0
    rng = np.random.default_rng(0)
    print(f"CPU ms per input, median; torch {torch.__version__}, {args.threads} thread(s)")
    print(f"{'network':24s} {'batch':>5s} {'torch':>8s} {'onnx':>8s} {'torch/onnx':>10s}")
    for name, (model, weights, shape, channels_last) in _networks().items():
        if channels_last:
            model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        ort_net = OnnxNet(onnx_path(weights), threads=args.threads)
        for n in sizes:
            x = rng.random((n, *shape), dtype=np.float32)
            xt = torch.from_numpy(x)
            if channels_last:
                xt = xt.contiguous(memory_format=torch.channels_last)

            t_ms = median_ms(partial(_torch_forward, model, xt), args.seconds) / n
            o_ms = median_ms(partial(ort_net.run, x), args.seconds) / n
            print(f"{name:24s} {n:5d} {t_ms:8.2f} {o_ms:8.2f} {t_ms / o_ms:9.1f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
