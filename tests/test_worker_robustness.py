"""Inference workers in real processes: a hung one is replaced, and none outlives the server.

- A worker stopped with SIGSTOP answers nothing: after ``restart_after_timeouts`` (2)
  timeouts one after another it is killed and a new one serves requests; callers that
  gave up leave the batcher's queue.
- ``kill -9`` of a real ``meetmood serve`` (process-mode inference) takes its workers
  and multiprocessing's resource tracker with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

import pytest

from analyzers.face.emotion import FaceEmotionParams
from analyzers.types import FaceAnalysis, VideoSample
from bot.inference import InferencePool
from tests.media import face_frame_rgb
from tests.served import serve


def process_state(pid: int) -> str | None:
    """The process's state letter from /proc (``Z``: exited, not yet reaped), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def running(pid: int) -> bool:
    return process_state(pid) not in (None, "Z")


def descendants(pid: int) -> dict[int, str]:
    """Every process below ``pid``: its id -> its command line."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found[int(entry.name)] = cmdline
    for child in list(found):
        found.update(descendants(child))
    return found


async def wait_until_gone(pids: list[int], secs: float) -> list[int]:
    """Wait up to ``secs`` for the processes to end; returns those still running."""
    for _ in range(int(secs / 0.05)):  # /proc has nothing to wait on: poll it
        if not any(running(p) for p in pids):
            break
        await asyncio.sleep(0.05)
    return [p for p in pids if running(p)]


@pytest.mark.model
async def test_a_stopped_worker_is_killed_and_replaced() -> None:
    params = FaceEmotionParams(device="cpu", detector="haar").model_dump()
    pool = InferencePool({"face_emotion": params}, workers=1, mode="process")
    await pool.start()
    sample = VideoSample("p1", 0.0, face_frame_rgb())
    (old,) = pool.worker_pids()
    try:
        first = await pool.run_batched("face_emotion", sample, timeout_secs=60)
        assert isinstance(first, FaceAnalysis) and first.faces

        os.kill(old, signal.SIGSTOP)
        # Eight participants' frames: one batch goes to the stopped worker, the rest wait
        # for it. All give up, and leave the queue; waiting together, they count once.
        calls = [pool.run_batched("face_emotion", sample, timeout_secs=0.3) for _ in range(8)]
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert all(isinstance(r, TimeoutError) for r in results), results
        assert pool.queued() == 0
        assert pool.worker_pids() == [old]
        # The next frame times out too: two in a row with no answer, the worker is hung.
        async with asyncio.timeout(90):  # this caller waits while the workers restart
            with pytest.raises(TimeoutError):
                await pool.run_batched("face_emotion", sample, timeout_secs=0.3)

        async with asyncio.timeout(90):
            again = await pool.run_batched("face_emotion", sample, timeout_secs=60)
        assert isinstance(again, FaceAnalysis) and again.faces
        (new,) = pool.worker_pids()
        assert new != old
        assert await wait_until_gone([old], 10) == []
        assert pool.queued() == 0
    finally:
        if running(old):
            os.kill(old, signal.SIGKILL)
        await pool.close()


@pytest.mark.e2e
@pytest.mark.usefixtures("loopback_only")
async def test_workers_and_resource_tracker_end_when_the_server_is_killed(
    tmp_path: Path,
) -> None:
    served = await serve(
        tmp_path / "kill.sqlite3",
        start_secs=90,
        **{
            "inference.mode": "process",
            "analyzers.enabled": ["face_emotion", "voice_emotion"],
            "analyzers.face_emotion.device": "cpu",
            "analyzers.face_emotion.detector": "haar",
            # No such model: its worker starts, finds it unavailable and stays up.
            "analyzers.voice_emotion.model": str(tmp_path / "no-model"),
            "analyzers.voice_emotion.local_files_only": True,
            "analyzers.voice_emotion.device": "cpu",
        },
    )
    proc = served.proc
    children: dict[int, str] = {}
    try:
        # serve() returns once each pool's worker has loaded (/healthz: models ready).
        children = descendants(proc.pid)
        workers = [p for p, cmd in children.items() if "spawn_main" in cmd]
        trackers = [p for p, cmd in children.items() if "resource_tracker" in cmd]
        assert len(workers) == 2 and len(trackers) == 1, children

        proc.kill()
        # Not proc.wait(): it also waits for the output pipe, which live workers hold.
        assert await wait_until_gone([proc.pid, *children], 10) == []
    finally:
        for pid in children:
            if running(pid):
                os.kill(pid, signal.SIGKILL)
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        assert served.reader is not None
        served.reader.cancel()
