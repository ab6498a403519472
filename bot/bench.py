"""Benchmarks: ``meetmood bench pipeline``.

Runs the real pipeline in this process: a MeetingManager with the configured
inference pool, and one aiortc peer per simulated participant that sends a real
face image as VP8 over loopback (ICE is pinned to 127.0.0.1). Reports, per
participant, the analysis rate and the latency from a frame's arrival at the
server to its state being published, plus the time inside the analyzer.
"""

from __future__ import annotations

import asyncio
import fractions
import json
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from bot.meeting import MeetingManager
from bot.settings import Settings
from bot.store import Store

VIDEO_CLOCK = 90_000


def bench_face_image() -> np.ndarray:
    """A real face for the benchmark: scikit-image's astronaut on a 640x480 canvas."""
    try:
        from skimage import data
    except ImportError as e:  # pragma: no cover - depends on the install
        raise SystemExit(
            "meetmood bench needs scikit-image for its face image: pip install -e '.[test]'"
        ) from e
    canvas = np.full((480, 640, 3), 128, np.uint8)
    canvas[:, 64:576] = np.asarray(data.astronaut())[:480]  # type: ignore[no-untyped-call]
    return canvas


class ImageTrack(MediaStreamTrack):
    """Sends one image at a fixed frame rate with correct timestamps."""

    kind = "video"

    def __init__(self, image: np.ndarray, fps: float) -> None:
        super().__init__()
        self._image, self._fps, self._count = image, fps, 0
        self._start: float | None = None

    async def recv(self) -> av.VideoFrame:
        """The next frame, at its time (the clock starts with the first request)."""
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        await asyncio.sleep(max(0.0, self._start + self._count / self._fps - loop.time()))
        frame = av.VideoFrame.from_ndarray(self._image, format="rgb24")
        frame.pts = int(self._count * VIDEO_CLOCK / self._fps)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._count += 1
        return frame


@dataclass(frozen=True, slots=True)
class PipelineFigures:
    """What one benchmark run measured, per participant unless noted."""

    participants: int
    seconds: float
    send_fps: float
    target_analysis_fps: float
    frames_received_per_sec: float
    analysed_per_sec: float
    latency_ms_p50: float
    latency_ms_p95: float
    inference_ms_p50: float
    inference_ms_p95: float
    failures: int
    inference_mode: str


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (inclusive method); NaN without values."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def bench_pipeline(
    settings: Settings, participants: int = 1, seconds: float = 20.0, send_fps: float = 15.0
) -> PipelineFigures:
    """Run the pipeline with ``participants`` loopback peers for ``seconds``."""
    # Loopback peers that all join at once from one address: the join limits would refuse
    # what a real meeting's browsers, each on their own address and pace, never hit.
    limits = settings.limits
    settings = settings.model_copy(
        update={
            "webrtc": settings.webrtc.model_copy(update={"ice_addresses": ["127.0.0.1"]}),
            "limits": limits.model_copy(
                update={
                    "allow_private_candidates": True,
                    "max_participants_per_meeting": max(
                        participants, limits.max_participants_per_meeting
                    ),
                    "max_unconnected_peers": max(participants, limits.max_unconnected_peers),
                    "max_unconnected_peers_per_address": max(
                        participants, limits.max_unconnected_peers_per_address
                    ),
                }
            ),
        }
    )
    manager = MeetingManager(settings, store=Store(Path(":memory:")))
    await manager.start()
    await manager.models_loaded()  # the pipeline is measured, not the models' loading
    peers: list[RTCPeerConnection] = []
    image = bench_face_image()
    try:
        meeting, _ = await manager.create_meeting("bench")
        for i in range(participants):
            pc = RTCPeerConnection()
            pc.addTrack(ImageTrack(image, send_fps))
            await pc.setLocalDescription(await pc.createOffer())
            assert pc.localDescription is not None
            _, answer = await manager.join_browser(
                meeting.id, f"bench {i}", pc.localDescription.sdp, "offer"
            )
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
            peers.append(pc)
        await asyncio.sleep(3.0)  # warm-up: ICE, DTLS, first keyframes
        before = manager.stats()
        started = time.monotonic()
        await asyncio.sleep(seconds)
        elapsed = time.monotonic() - started
        after = manager.stats()
    finally:
        for pc in peers:
            await pc.close()
        await manager.close()
    received, analysed, failures = [], [], 0
    latencies: list[float] = []
    inference: list[float] = []
    for pid, s in after.items():
        b = before.get(pid)
        received.append((s.frames_received - (b.frames_received if b else 0)) / elapsed)
        n = s.frames_analyzed - (b.frames_analyzed if b else 0)
        analysed.append(n / elapsed)
        failures += s.analysis_failures
        latencies.extend(s.latencies_ms[-n:] if n else [])
        inference.extend(s.inference_ms[-n:] if n else [])
    return PipelineFigures(
        participants=participants,
        seconds=round(elapsed, 1),
        send_fps=send_fps,
        target_analysis_fps=settings.analyzers.face_emotion.fps,
        frames_received_per_sec=round(statistics.fmean(received), 2) if received else 0.0,
        analysed_per_sec=round(statistics.fmean(analysed), 2) if analysed else 0.0,
        latency_ms_p50=round(percentile(latencies, 50), 1),
        latency_ms_p95=round(percentile(latencies, 95), 1),
        inference_ms_p50=round(percentile(inference, 50), 1),
        inference_ms_p95=round(percentile(inference, 95), 1),
        failures=failures,
        inference_mode=settings.inference.mode,
    )


def format_figures(figures: Any, as_json: bool) -> str:
    """Render a benchmark's figures (a dataclass) as JSON or as aligned text."""
    data: dict[str, Any] = asdict(figures)
    if as_json:
        return json.dumps(data)
    width = max(len(k) for k in data)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in data.items())
