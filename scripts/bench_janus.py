"""Benchmark: what the bot in a Janus room costs per subscribed participant.

Starts Debian's Janus with the tests' configuration (tests/janus_server.py) and
publishers in *separate* processes, so that their encoding is not counted:

* ``--publishers`` aiortc peers, each sending a moving real face (640x480 VP8 at
  ``--fps``) and a voiced, syllable-paced tone (Opus);
* for the simulcast rows, ``--chromium-publishers`` pages of headless Chromium that
  publish its fake camera (a moving face, 640x480 at 30 fps) and microphone through
  janus.js (Debian's libjs-janus-gateway) with ``simulcast: true``.

For each configuration a fresh meeting is made in this process's
:class:`~bot.meeting.MeetingManager` (inference in threads, so that the face analysis
is counted here too), the bot joins the room, the stream warms up, and this process's
CPU time (``time.process_time``: every thread) is measured over ``--secs`` seconds of
wall time, with the pipeline's counters. Configurations take turns, ``--repeats``
times, and the median is reported (the machine may be shared).

Run it inside the loopback-only namespace:
``scripts/in_netns.sh .venv/bin/python scripts/bench_janus.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import fractions
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

# The test helpers (Janus's configuration, the publisher, the face) live in tests/.
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import av  # noqa: E402
import numpy as np  # noqa: E402
from aiortc.mediastreams import MediaStreamTrack  # noqa: E402

from bot.bots import BotRequest  # noqa: E402
from bot.cli import setup_logging  # noqa: E402
from bot.meeting import MeetingManager  # noqa: E402
from bot.settings import Settings, load_settings  # noqa: E402
from bot.sources.browser import restrict_host_addresses  # noqa: E402
from bot.sources.relay import RelayTrack  # noqa: E402
from bot.types import ParticipantStateEvent  # noqa: E402
from tests.janus_server import ROOM, JanusServer, Publisher, remove_ifb  # noqa: E402
from tests.media import face_frame_rgb, write_y4m  # noqa: E402

VIDEO_CLOCK = 90_000
PAGES = REPO / "tests" / "data" / "janus"
JAVASCRIPT = Path("/usr/share/javascript")


@dataclass(frozen=True, eq=False)
class Config:
    """One row: the settings it changes and who publishes."""

    name: str
    overrides: dict[str, Any]
    publishers: str  # "none", "aiortc" or "chromium"


NO_ANALYSIS: dict[str, Any] = {"analyzers.enabled": [], "voice.enabled": False}
LOWEST_LAYER: dict[str, Any] = {"bots.substream": 0, "bots.temporal": 0}
CONFIGS = (
    Config("idle: bot in the room, nobody publishing", {}, "none"),
    Config('audio + video (`media = "both"`)', {}, "aiortc"),
    Config("audio + video, face and voice analysis off (receive + decode)", NO_ANALYSIS, "aiortc"),
    Config('video only (`media = "video"`)', {"bots.media": "video"}, "aiortc"),
    Config('audio only (`media = "audio"`)', {"bots.media": "audio"}, "aiortc"),
    Config("`max_analysis_fps = 1`", {"bots.max_analysis_fps": 1.0}, "aiortc"),
    Config("simulcast, Janus's default layer", {}, "chromium"),
    Config("simulcast, `substream = 0`, `temporal = 0`", LOWEST_LAYER, "chromium"),
    Config("simulcast, default layer, analysis off", NO_ANALYSIS, "chromium"),
    Config(
        "simulcast, `substream = 0`, `temporal = 0`, analysis off",
        {**LOWEST_LAYER, **NO_ANALYSIS},
        "chromium",
    ),
)


# -- publishers (child processes) ---------------------------------------------------------


def moving_face(fps: float, secs: float = 2.0) -> list[np.ndarray]:
    """A loop of 640x480 yuv420p frames: a real face panning slowly, with sensor noise.

    A still image would make VP8's delta frames nearly empty and decoding unrealistically
    cheap; a camera always has motion and noise.
    """
    canvas = face_frame_rgb(720, 560).astype(np.int16)
    rng = np.random.default_rng(7)
    frames = []
    n = int(fps * secs)
    for i in range(n):
        dx = int(40 + 40 * np.sin(2 * np.pi * i / n))
        dy = int(40 + 20 * np.cos(2 * np.pi * i / n))
        crop = canvas[dy : dy + 480, dx : dx + 640] + rng.normal(0, 2.0, (480, 640, 3))
        rgb = np.clip(crop, 0, 255).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        frames.append(frame.to_ndarray())
    return frames


class LoopVideoTrack(MediaStreamTrack):
    """Plays the frames of :func:`moving_face` in a loop, in real time."""

    kind = "video"

    def __init__(self, frames: list[np.ndarray], fps: float, offset: int) -> None:
        super().__init__()
        self._frames, self._fps, self._count = frames, fps, offset
        self._first = offset
        self._start: float | None = None

    async def recv(self) -> av.VideoFrame:
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        n = self._count - self._first
        await asyncio.sleep(max(0.0, self._start + n / self._fps - loop.time()))
        frame = av.VideoFrame.from_ndarray(
            self._frames[self._count % len(self._frames)], format="yuv420p"
        )
        frame.pts = int(n * VIDEO_CLOCK / self._fps)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._count += 1
        return frame


class LoopAudioTrack(MediaStreamTrack):
    """A voiced tone (150 Hz and harmonics) in syllable-like bursts, looped, in real time."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        t = np.arange(3 * 48_000) / 48_000
        voice = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 6))
        envelope = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) * (t % 3 < 2.2)
        mono = (6000 * voice * envelope).astype(np.int16)
        self._pcm = np.repeat(mono, 2)  # LRLR
        self._count = 0
        self._start: float | None = None

    async def recv(self) -> av.AudioFrame:
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        await asyncio.sleep(max(0.0, self._start + self._count * 0.02 - loop.time()))
        n = 960
        begin = (self._count * n * 2) % len(self._pcm)
        chunk = self._pcm[begin : begin + n * 2]
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate = 48_000
        frame.pts = self._count * n
        frame.time_base = fractions.Fraction(1, 48_000)
        self._count += 1
        return frame


async def until_stdin_closes() -> None:
    """The parent closes our stdin to make us leave."""
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


async def aiortc_publishers(url: str, count: int, fps: float) -> None:
    restrict_host_addresses(["127.0.0.1"])  # aioice leaves loopback out by itself
    frames = moving_face(fps)
    publishers = [
        Publisher(url, f"Face {i + 1}", [LoopVideoTrack(frames, fps, 7 * i), LoopAudioTrack()])
        for i in range(count)
    ]
    try:
        for publisher in publishers:
            await publisher.publish()
        print("ready", flush=True)
        await until_stdin_closes()
    finally:
        for publisher in publishers:
            await publisher.leave()


async def chromium_publishers(url: str, count: int) -> None:
    from aiohttp import web
    from playwright.async_api import async_playwright

    from bot.bench_sidebar import CHROMIUM_ARGS, find_chromium
    from tests.fixtures import FAKE_MEDIA_ARGS

    pages = web.Application()
    pages.router.add_static("/javascript", JAVASCRIPT)
    pages.router.add_static("/page", PAGES)
    runner = web.AppRunner(pages)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    with tempfile.TemporaryDirectory() as tmp:
        y4m = write_y4m(Path(tmp) / "face.y4m", frames=60)
        args = [
            *CHROMIUM_ARGS,
            *FAKE_MEDIA_ARGS,
            f"--use-file-for-fake-video-capture={y4m}",
        ]
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=find_chromium(), headless=True, args=args
            )
            try:
                for i in range(count):
                    # A context each: Chromium does not throttle one page for another's sake.
                    page = await (await browser.new_context()).new_page()
                    query = urlencode({"server": url, "room": ROOM, "display": f"Browser {i + 1}"})
                    await page.goto(f"http://127.0.0.1:{port}/page/publisher.html?{query}")
                    await page.wait_for_function(
                        "window.state === 'publishing' || window.state.startsWith('error')",
                        timeout=30_000,
                    )
                    state = await page.evaluate("window.state")
                    if state != "publishing":
                        raise SystemExit(f"chromium publisher: {state}")
                print("ready", flush=True)
                await until_stdin_closes()
            finally:
                await browser.close()
    await runner.cleanup()


class Publishers:
    """A child process running publishers until closed."""

    def __init__(self, kind: str, args: list[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, kind, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            self.close()
            raise SystemExit(f"{kind} did not start (exit {self.proc.returncode})")

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- the measurement ------------------------------------------------------------------------


@dataclass
class Figures:
    """One measurement: per participant, over the window."""

    participants: int
    cpu_pct: float  # of one core, for the whole process
    video_fps: float
    analysed_fps: float
    face_states_per_sec: float
    audio_fps: float
    sizes: collections.Counter[tuple[int, int]] = field(default_factory=collections.Counter)

    @property
    def cpu_per_participant(self) -> float:
        return self.cpu_pct / max(1, self.participants)


#: Decoded frames the relays handed to the sessions: video by size, and "audio".
FRAMES: collections.Counter[tuple[int, int] | str] = collections.Counter()


def count_frames() -> None:
    """Count every decoded frame the relays hand on (analysed or drained alike)."""
    recv = RelayTrack.recv

    async def counted(self: RelayTrack) -> Any:
        frame = await recv(self)
        if isinstance(frame, av.VideoFrame):
            FRAMES[(frame.width, frame.height)] += 1
        else:
            FRAMES["audio"] += 1
        return frame

    RelayTrack.recv = counted  # type: ignore[method-assign]


def settings_for(base: dict[str, Any], config: Config) -> Settings:
    return load_settings(environ={}, overrides={**base, **config.overrides})


async def measure(
    manager: MeetingManager,
    base: dict[str, Any],
    config: Config,
    janus_url: str,
    expected: int,
    warmup: float,
    secs: float,
) -> Figures:
    # One manager (models loaded once); each configuration is read from its settings
    # when the meeting is made and the bot invited.
    manager.settings = settings_for(base, config)
    record, _ = await manager.create_meeting(f"bench: {config.name}")
    meeting = await manager.live(record.id)
    states: collections.Counter[str] = collections.Counter()
    counting = False

    async def count_states() -> None:
        async with meeting.subscribe() as sub:
            while True:
                event = await sub.queue.get()
                if counting and isinstance(event, ParticipantStateEvent):
                    if event.state.face_visible:
                        states[event.state.participant_id] += 1

    counter = asyncio.create_task(count_states())
    try:
        await manager.bots.invite(record.id, BotRequest(kind="janus", url=janus_url, room=ROOM))
        deadline = time.monotonic() + 30
        while len(meeting.participants) < expected:
            if time.monotonic() > deadline:
                raise SystemExit(f"{config.name}: {len(meeting.participants)} of {expected} joined")
            await asyncio.sleep(0.1)
        await asyncio.sleep(warmup)
        before = manager.stats()
        FRAMES.clear()
        counting = True
        cpu0, t0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(secs)
        cpu1, t1 = time.process_time(), time.perf_counter()
        counting = False
        after = manager.stats()
        wall = t1 - t0
        n = max(1, len(after))

        analysed = sum(
            after[p].frames_analyzed - before[p].frames_analyzed for p in after if p in before
        )
        return Figures(
            participants=len(after),
            cpu_pct=100 * (cpu1 - cpu0) / wall,
            video_fps=sum(v for k, v in FRAMES.items() if k != "audio") / wall / n,
            analysed_fps=analysed / wall / n,
            face_states_per_sec=sum(states.values()) / wall / n,
            audio_fps=FRAMES["audio"] / wall / n,
            sizes=collections.Counter({k: v for k, v in FRAMES.items() if isinstance(k, tuple)}),
        )
    finally:
        counter.cancel()
        await asyncio.gather(counter, return_exceptions=True)
        await manager.close_meeting(record.id)


def median(values: list[float]) -> str:
    return f"{statistics.median(values):.1f}"


def spread(values: list[float]) -> str:
    return f"{min(values):.1f}–{max(values):.1f}" if len(values) > 1 else ""


def table(results: dict[Config, list[Figures]], counts: dict[str, int]) -> str:
    lines = [
        "| configuration | publishers | CPU % of one core per participant (median; range) "
        "| video fps decoded | video size | analysed fps | face states/s "
        "| audio frames/s decoded |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for config, runs in results.items():
        if not runs:
            continue
        per = [r.cpu_per_participant for r in runs]
        if config.publishers == "none":
            who = "0"
            cpu = f"{median([r.cpu_pct for r in runs])} (whole process)"
        else:
            who = f"{counts[config.publishers]} {config.publishers}"
            cpu = f"**{median(per)}** ({spread(per)})"
        sizes = collections.Counter[tuple[int, int]]()
        for r in runs:
            sizes.update(r.sizes)
        size = "×".join(map(str, sizes.most_common(1)[0][0])) if sizes else "–"
        lines.append(
            f"| {config.name} | {who} | {cpu} | {median([r.video_fps for r in runs])} | {size} "
            f"| {median([r.analysed_fps for r in runs])} "
            f"| {median([r.face_states_per_sec for r in runs])} "
            f"| {median([r.audio_fps for r in runs])} |"
        )
    return "\n".join(lines)


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs ({model}), load average {load}"


async def bench(args: argparse.Namespace) -> None:
    if [name for _, name in socket.if_nameindex() if name != "jlo0"] != ["lo"]:
        raise SystemExit("run inside the loopback namespace: scripts/in_netns.sh ...")
    tmp = Path(tempfile.mkdtemp(prefix="bench-janus-"))
    base: dict[str, Any] = {
        "storage.database": str(tmp / "bench.sqlite3"),
        "server.port": 0,
        "webrtc.ice_addresses": ["127.0.0.1"],
        "webrtc.drop_mdns_candidates": True,
        "inference.mode": "thread",
        "analyzers.face_emotion.device": "cpu",
        "analyzers.voice_emotion.device": "cpu",
        "analyzers.voice_emotion.local_files_only": True,
    }
    janus = JanusServer(tmp / "janus")
    janus.start()
    count_frames()
    manager = MeetingManager(settings_for(base, Config("", {}, "none")))
    await manager.start()
    print(f"machine: {machine()}", file=sys.stderr)
    counts = {"none": 0, "aiortc": args.publishers, "chromium": args.chromium_publishers}
    wanted = [c for c in CONFIGS if counts[c.publishers] or c.publishers == "none"]
    if args.only:
        wanted = [c for c in wanted if any(word in c.name for word in args.only)]
    results: dict[Config, list[Figures]] = {c: [] for c in wanted}
    try:
        for kind in ("none", "aiortc", "chromium"):
            group = [c for c in wanted if c.publishers == kind]
            if not group:
                continue
            publishers = None
            if kind == "aiortc":
                publishers = Publishers(
                    "aiortc-publishers", [janus.url, str(args.publishers), str(args.fps)]
                )
            elif kind == "chromium":
                publishers = Publishers(
                    "chromium-publishers", [janus.url, str(args.chromium_publishers)]
                )
            try:
                for repeat in range(args.repeats):
                    for config in group:  # configurations take turns: load drifts evenly
                        figures = await measure(
                            manager, base, config, janus.url, counts[kind], args.warmup, args.secs
                        )
                        results[config].append(figures)
                        print(
                            f"{config.name} #{repeat + 1}: {figures.cpu_pct:.1f} % "
                            f"({figures.participants} participants), video "
                            f"{figures.video_fps:.1f} fps {dict(figures.sizes)}, analysed "
                            f"{figures.analysed_fps:.1f} fps",
                            file=sys.stderr,
                            flush=True,
                        )
            finally:
                if publishers is not None:
                    publishers.close()
    finally:
        await manager.close()
        janus.stop()
        remove_ifb()
    print(f"\nmachine: {machine()}")
    print(
        f"{args.repeats} runs per row, {args.secs:.0f} s each after {args.warmup:.0f} s warm-up; "
        f"aiortc publishers: 640x480 VP8 at {args.fps:g} fps + Opus\n"
    )
    print(table(results, counts))


def main() -> None:
    # The publishers' child processes: ``aiortc-publishers URL COUNT FPS`` and
    # ``chromium-publishers URL COUNT``.
    if sys.argv[1:2] == ["aiortc-publishers"]:
        url, count, fps = sys.argv[2:5]
        asyncio.run(aiortc_publishers(url, int(count), float(fps)))
        return
    if sys.argv[1:2] == ["chromium-publishers"]:
        url, count = sys.argv[2:4]
        asyncio.run(chromium_publishers(url, int(count)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--publishers", type=int, default=3, help="aiortc publishers")
    parser.add_argument("--fps", type=float, default=15.0, help="their frame rate")
    parser.add_argument(
        "--chromium-publishers", type=int, default=2, help="simulcasting Chromium pages (0: none)"
    )
    parser.add_argument("--secs", type=float, default=8.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument("--repeats", type=int, default=3, help="runs per configuration")
    parser.add_argument("--only", nargs="*", help="configurations whose name has these words")
    parser.add_argument("--log", default="WARNING", help="log level (meetmood's logs)")
    args = parser.parse_args()
    setup_logging(args.log)
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
