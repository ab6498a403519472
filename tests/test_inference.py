"""The inference pool: analyzers whose model is missing are left out, once, with a reason.

Pools run in worker threads and in spawned worker processes (the default, as users run
it); the tests that load analyzers run in both. A worker process that dies (SIGKILL) is
replaced and the pool serves again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Literal

import pytest

from analyzers import _worker
from analyzers.base import AnalyzerUnavailable
from analyzers.face.emotion import FaceEmotionParams
from analyzers.types import VideoSample
from analyzers.voice.emotion import VoiceEmotionParams
from bot.inference import InferencePool
from tests.media import face_frame_rgb

MODES = ["thread", "process"]
Mode = Literal["thread", "process"]


@pytest.mark.model
@pytest.mark.parametrize("mode", MODES)
async def test_missing_voice_model_is_unavailable_not_fatal(tmp_path: Path, mode: Mode) -> None:
    missing = tmp_path / "no-such-model"
    params = VoiceEmotionParams(model=str(missing), local_files_only=True, device="cpu")
    pool = InferencePool({"voice_emotion": params.model_dump()}, workers=1, mode=mode)
    await pool.start()
    try:
        assert not pool.available("voice_emotion")
        assert "could not be loaded" in pool.unavailable["voice_emotion"]
        with pytest.raises(AnalyzerUnavailable):
            await pool.run("voice_emotion", object(), timeout_secs=5)
        assert not pool.available("face_emotion")  # not enabled at all
        assert pool.worker_pids() == []  # no worker is kept for a model that is not there
    finally:
        await pool.close()
    # Threads load into this process's worker module; worker processes into their own.
    assert ("voice_emotion" in _worker._unavailable) == (mode == "thread")


@pytest.mark.unit
async def test_concurrent_requests_leave_as_one_batch() -> None:
    pool = InferencePool({}, workers=1, mode="thread")
    await pool.start()
    calls: list[list[int]] = []

    async def fake_batch(name: str, samples: list[int]) -> list[int]:
        calls.append(list(samples))
        await asyncio.sleep(0.05)  # the worker is busy meanwhile
        return [s * 10 for s in samples]

    pool._run_batch = fake_batch  # type: ignore[method-assign]
    try:
        first = asyncio.create_task(pool.run_batched("face_emotion", 1, timeout_secs=5))
        await asyncio.sleep(0)  # the first request goes at once: an idle pool never waits
        rest = [pool.run_batched("face_emotion", i, timeout_secs=5) for i in (2, 3, 4)]
        assert await asyncio.gather(first, *rest) == [10, 20, 30, 40]
        assert calls == [[1], [2, 3, 4]]
        # A caller that gives up does not take the others down.
        slow = asyncio.create_task(pool.run_batched("face_emotion", 5, timeout_secs=0.01))
        other = asyncio.create_task(pool.run_batched("face_emotion", 6, timeout_secs=5))
        with pytest.raises(TimeoutError):
            await slow
        assert await other == 60
    finally:
        await pool.close()


@pytest.mark.model
@pytest.mark.parametrize("mode", MODES)
async def test_each_analyzer_has_its_own_pool(tmp_path: Path, mode: Mode) -> None:
    from bot.inference import AnalyzerPools

    voice = VoiceEmotionParams(model=str(tmp_path / "none"), local_files_only=True, device="cpu")
    face = FaceEmotionParams(device="cpu", detector="haar")
    pools = AnalyzerPools(
        {"face_emotion": face.model_dump(), "voice_emotion": voice.model_dump()}, mode=mode
    )
    await pools.start()
    try:
        assert set(pools.pools) == {"face_emotion", "voice_emotion"}
        assert pools.pools["face_emotion"].specs.keys() == {"face_emotion"}
        assert pools.available("face_emotion") and not pools.available("voice_emotion")
        assert set(pools.unavailable) == {"voice_emotion"}
        sample = VideoSample("p1", 0.0, face_frame_rgb())
        analysis = await pools.run_batched("face_emotion", sample, timeout_secs=30)
        assert analysis.faces
        with pytest.raises(AnalyzerUnavailable):
            await pools.run("voice_emotion", object(), timeout_secs=5)
        with pytest.raises(AnalyzerUnavailable, match="not enabled"):
            await pools.run("other", object(), timeout_secs=5)
    finally:
        await pools.close()


@pytest.mark.model
async def test_a_killed_worker_process_is_replaced_and_serves_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    face = FaceEmotionParams(device="cpu", detector="haar")
    pool = InferencePool({"face_emotion": face.model_dump()}, workers=1, mode="process")
    sample = VideoSample("p1", 0.0, face_frame_rgb())
    await pool.start()
    try:
        assert (await pool.run_batched("face_emotion", sample, timeout_secs=30)).faces
        (pid,) = pool.worker_pids()
        os.kill(pid, signal.SIGKILL)  # as the OOM killer would
        # The call that meets the dead worker fails (its participant skips one frame)...
        with caplog.at_level(logging.ERROR, logger="bot.inference"):
            with pytest.raises(BrokenProcessPool):
                await pool.run_batched("face_emotion", sample, timeout_secs=30)
        assert "inference worker died; restarting the pool" in caplog.messages
        # ...and the pool has been rebuilt: a new worker, its model loaded, serves the next.
        (new_pid,) = pool.worker_pids()
        assert new_pid != pid
        analysis = await pool.run_batched("face_emotion", sample, timeout_secs=30)
        assert len(analysis.faces) == 1
        assert pool.available("face_emotion")
    finally:
        await pool.close()
