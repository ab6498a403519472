"""``meetmood bench capacity``: a real server, senders in their own processes, figures.

A tiny run as users run it (two participants, a few seconds), and the search for the
largest N that meets the targets.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

import av
import pytest

from bot import bench_capacity
from bot.bench_capacity import CapacityFigures, CapacityOptions, encode_audio, encode_video
from tests.fixtures import run_cli


@pytest.mark.e2e
@pytest.mark.usefixtures("loopback_only")
def test_bench_capacity_tiny_run(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run_cli(
        capsys,
        "bench",
        "capacity",
        "--participants",
        "2",
        "--seconds",
        "4",
        "--warmup",
        "1",
        "--senders-per-process",
        "1",
        "--width",
        "320",
        "--height",
        "240",
        "--fps",
        "10",
        "--json",
        "--set",
        "inference.mode=thread",
        "--set",
        'analyzers.enabled=["face_emotion"]',
        "--set",
        "analyzers.face_emotion.device=cpu",
    )
    assert code == 0, err
    figures = json.loads(out)  # stdout is pure JSON
    assert figures["participants"] == figures["connected"] == 2
    assert figures["left_before_end"] == 0
    assert figures["send"] == "320x240@10 VP8 + Opus"
    # The server's own count of analyses (its load reports), and the host socket's timing.
    assert figures["face_fps_target"] == 15.0
    assert 0 < figures["face_fps_min"] <= figures["face_fps_mean"] <= 10.5
    assert figures["latency_samples"] > 0
    assert 0 < figures["latency_ms_p50"] <= figures["latency_ms_p95"] <= figures["latency_ms_p99"]
    assert figures["cpu_percent"] > 0 and figures["senders_cpu_percent"] > 0
    assert figures["rss_mb_peak"] >= figures["pss_mb_peak"] > 0
    assert figures["db_writes_per_sec"] > 0  # states stored
    assert figures["voice_model"] == "none"  # not enabled
    assert isinstance(figures["meets_targets"], bool) and isinstance(figures["misses"], list)


@pytest.mark.unit
def test_a_participant_who_left_before_the_end_is_a_miss() -> None:
    # The window's rates and latencies are those of who is still there: a run in which
    # peers dropped out must not pass for a run with all of them.
    load = {"face_fps_target": 15.0, "face_fps_min": 14.0, "face_fps_mean": 14.5}
    window = bench_capacity._Window(
        elapsed=10.0,
        cpu=5.0,
        senders_cpu=1.0,
        rss=2**30,
        pss=2**29,
        rows=30,
        loads=[load] * 10,
        latencies=[(float(t), 100.0) for t in range(30)],
        left=["disconnected", "disconnected", "failed"],
    )
    video, audio = encode_video(160, 120, 5.0, secs=1.0), encode_audio()
    figures = bench_capacity._figures(24, 24, CapacityOptions(), video, audio, window, "none")
    assert figures.left_before_end == 3
    assert figures.misses == ("left before the end: 3 of 24 (2 disconnected, 1 failed)",)
    assert not figures.meets_targets


@pytest.mark.unit
def test_the_replayed_clips_are_real_video_and_audio() -> None:
    clip = encode_video(160, 120, 5.0, secs=2.0)
    assert (clip.width, clip.height, clip.fps) == (160, 120, 5.0)
    codec = av.CodecContext.create("libvpx", "r")
    frames = [f for p in clip.packets for f in codec.decode(av.Packet(p))]
    assert len(frames) == 10
    # VP8 keyframes (the frame tag's inverse key-frame bit is 0): the first, then one every 2 s.
    keyframes = [i for i, p in enumerate(clip.packets) if p[0] & 1 == 0]
    assert keyframes == [0]
    assert (frames[0].width, frames[0].height) == (160, 120)
    audio = encode_audio()
    assert len(audio.speech) > 50 and len(audio.silence) < 20  # 20 ms packets; silence is tiny


@pytest.mark.unit
async def test_find_max_bisects_for_the_largest_n_that_meets_the_targets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tried: list[int] = []
    template = CapacityFigures(
        **{name: 0 for name in CapacityFigures.__dataclass_fields__}  # type: ignore[arg-type]
    )

    async def fake_run(n: int, options: CapacityOptions) -> CapacityFigures:
        await asyncio.sleep(0)
        tried.append(n)
        return replace(template, participants=n, meets_targets=n <= 13, misses=())

    monkeypatch.setattr(bench_capacity, "run_capacity", fake_run)
    best, runs = await bench_capacity.find_max(49, CapacityOptions(), lambda f: None)
    assert best == 13
    assert tried[0] == 49 and len(tried) <= 7
    assert [r.participants for r in runs] == tried
    tried.clear()
    assert (await bench_capacity.find_max(8, CapacityOptions(), lambda f: None))[0] == 8
    assert tried == [8]
