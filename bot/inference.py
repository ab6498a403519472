"""InferencePool: neural inference off the event loop.

A ``ProcessPoolExecutor`` with the *spawn* start method (aiortc already runs
threads, and forking a threaded process is unsafe), whose initializer loads
every enabled analyzer once. ``start()`` waits until each worker has loaded its
models, so a slow or failing load surfaces at start-up, never mid-meeting. A server
calls ``load()`` instead, in the background, so that it answers while the models load:
meanwhile each analyzer's :meth:`~InferencePool.status` is ``starting``, sessions wait
for it with :meth:`~InferencePool.wait_loaded`, and a load that fails marks the
analyzer unavailable (logged once) instead of raising.
A crashed worker breaks the whole pool; the pool is then rebuilt once per
failure and the call that saw the crash fails (its participant goes stale for
one tick). A hung worker (stopped, deadlocked) gives no such sign: when
``restart_after_timeouts`` calls time out one after another (each sent after the
previous one timed out) with no answer from the workers in between, the workers are
killed and the pool is rebuilt the same way. Workers end with the server, even when it
is killed (see :mod:`analyzers._worker`).

:meth:`InferencePool.run_batched` coalesces requests: while the workers are
busy, requests for the same analyzer from every participant wait together and
go to a worker as one batch (one forward pass per network for all their faces).
An idle pool sends a lone request at once, so batching never adds latency.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from multiprocessing.process import BaseProcess
from typing import Any, Literal, Protocol

from analyzers import _worker
from analyzers.base import AnalyzerUnavailable
from analyzers.types import FaceAnalysis, VideoSample
from analyzers.voice.audio import AudioChunk
from analyzers.voice.emotion import VoiceEmotionResult
from bot.types import AnalyzerStatus

log = logging.getLogger(__name__)

#: Calls that time out one after another, with no answer from the workers, before they
#: are restarted.
RESTART_AFTER_TIMEOUTS = 2


class Inference(Protocol):
    """What sessions and meetings need from inference.

    An :class:`InferencePool` or :class:`AnalyzerPools`; used from the event loop thread.
    """

    @property
    def specs(self) -> dict[str, dict[str, Any]]:
        """Enabled analyzer name -> its parameters."""
        ...

    @property
    def unavailable(self) -> dict[str, str]:
        """Analyzer name -> why its model could not be loaded."""
        ...

    def available(self, name: str) -> bool:
        """Whether analyzer ``name`` is enabled and its model loaded."""
        ...

    def status(self, name: str) -> AnalyzerStatus:
        """Whether analyzer ``name``'s model is loading, loaded, unavailable or not enabled."""
        ...

    async def wait_loaded(self, name: str) -> AnalyzerStatus:
        """Wait while analyzer ``name``'s model loads; then its status."""
        ...

    async def start(self) -> None:
        """Start the workers and load the models."""
        ...

    async def load(self) -> None:
        """Start the workers and load the models; a failed load marks them unavailable."""
        ...

    async def run(self, name: str, sample: Any, timeout_secs: float) -> Any:
        """Analyse one sample."""
        ...

    async def run_batched(
        self, name: str, sample: Any, timeout_secs: float, max_batch: int = 16
    ) -> Any:
        """Analyse one sample, batched with other callers' samples."""
        ...

    async def close(self) -> None:
        """Stop the workers."""
        ...


class InferencePool:
    """Runs analyzers in worker processes (or threads) for the event loop.

    Methods are called from the event loop thread; inference itself runs in the
    workers.

    Args:
        specs: analyzer name -> its parameters as a dict.
        workers: number of workers.
        mode: ``"process"`` (spawned processes) or ``"thread"``.
        executor: an executor to use instead (tests); its workers must have run
            ``_worker.init(specs)`` or share this process's ``_worker`` module.
        restart_after_timeouts: calls that time out one after another (each sent after
            the previous one timed out), with no answer from the workers in between,
            after which the workers are killed and restarted (``"process"`` mode; a
            thread cannot be killed).
    """

    def __init__(
        self,
        specs: dict[str, dict[str, Any]],
        workers: int = 1,
        mode: Literal["process", "thread"] = "process",
        executor: Executor | None = None,
        restart_after_timeouts: int = RESTART_AFTER_TIMEOUTS,
    ) -> None:
        self.specs = specs
        self.workers = workers
        self.mode = mode
        self.restart_after_timeouts = restart_after_timeouts
        self._executor = executor
        self._owns_executor = executor is None
        self._restart_lock = asyncio.Lock()
        # Calls that timed out one after another since the workers last answered, and
        # when the last of them timed out (loop time).
        self._timeouts = 0
        self._timed_out_at = -math.inf
        #: Analyzer name -> why its model could not be loaded (filled by :meth:`start`).
        self.unavailable: dict[str, str] = {}
        # True while start() or load() runs; _settled is set whenever neither does.
        self._starting = False
        self._settled = asyncio.Event()
        self._settled.set()
        self._batchers: dict[str, _Batcher] = {}
        #: Sizes of the batches sent by :meth:`run_batched` (for benchmarks).
        self.batch_sizes: list[int] = []

    def _new_executor(self) -> Executor:
        if self.mode == "process":
            return ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=get_context("spawn"),
                initializer=_worker.init,
                initargs=(self.specs,),
            )
        return ThreadPoolExecutor(
            max_workers=self.workers,
            thread_name_prefix="inference",
            initializer=_worker.init,
            initargs=(self.specs, False),
        )

    async def start(self) -> None:
        """Start the workers and wait until every one has loaded its analyzers.

        Raises:
            Exception: whatever a failed load raised (see :meth:`load` for a server).
        """
        self._begin()
        try:
            await self._start_workers()
        finally:
            self._settle()

    async def load(self) -> None:
        """:meth:`start` for a server that already answers: a failed load does not raise.

        Its analyzers are then unavailable, with the error as the reason, said once in the
        log; calls for them raise :class:`AnalyzerUnavailable` at once.
        """
        self._begin()
        try:
            await self._start_workers()
        except Exception as e:
            reason = f"its model failed to load ({type(e).__name__}: {e})"
            for name in self.specs:
                self.unavailable.setdefault(name, reason)
            log.error(
                "analyzer failed to load",
                exc_info=e,
                extra={"analyzers": sorted(self.specs), "error": type(e).__name__},
            )
            executor, self._executor = self._executor, None
            if executor is not None and self._owns_executor:
                executor.shutdown(wait=False, cancel_futures=True)
        finally:
            self._settle()

    def _begin(self) -> None:
        self._starting = True
        self._settled.clear()

    def _settle(self) -> None:
        self._starting = False
        self._settled.set()

    async def _start_workers(self) -> None:
        started = time.perf_counter()
        if self._executor is None:
            self._executor = self._new_executor()
        loop = asyncio.get_running_loop()
        if self._owns_executor:
            if self.mode == "thread":
                # Thread initializers run lazily per thread; load once up front instead,
                # so that a load error surfaces here.
                await loop.run_in_executor(self._executor, _worker.init, self.specs, False)
        # One ping per worker makes each process start and run its initializer.
        pings = [loop.run_in_executor(self._executor, _worker.ping) for _ in range(self.workers)]
        for _pid, unavailable in await asyncio.gather(*pings):
            self.unavailable.update(unavailable)
        self._timeouts = 0
        for name, reason in self.unavailable.items():
            # Said once, here; sessions then skip the analyzer instead of failing per call.
            log.warning("analyzer unavailable", extra={"analyzer": name, "reason": reason})
        if self._owns_executor and self.specs.keys() <= self.unavailable.keys():
            # No call can reach these workers any more (they raise AnalyzerUnavailable
            # first), so their memory goes back: a speech worker that imported torch and
            # transformers for a model it could not find holds about 290 MB.
            executor, self._executor = self._executor, None
            executor.shutdown(wait=False, cancel_futures=True)
        log.info(
            "inference pool ready",
            extra={
                "mode": self.mode,
                "workers": self.workers,
                "secs": round(time.perf_counter() - started, 2),
            },
        )

    def available(self, name: str) -> bool:
        """Whether analyzer ``name`` is enabled and its model loaded."""
        return self.status(name) == "ok"

    def status(self, name: str) -> AnalyzerStatus:
        """Whether analyzer ``name``'s model is loading, loaded, unavailable or not enabled.

        ``starting`` while :meth:`start` or :meth:`load` runs (also while the workers
        restart); a pool that was never started counts as loaded, as its calls decide.
        """
        if name not in self.specs:
            return "disabled"
        if name in self.unavailable:
            return "unavailable"
        return "starting" if self._starting else "ok"

    async def wait_loaded(self, name: str) -> AnalyzerStatus:
        """Wait while analyzer ``name``'s model loads; then its status."""
        while self.status(name) == "starting":
            await self._settled.wait()
        return self.status(name)

    def worker_pids(self) -> list[int]:
        """The worker processes' ids (none in thread mode, or before :meth:`start`)."""
        return [p.pid for p in _worker_processes(self._executor) if p.pid is not None]

    def queued(self) -> int:
        """Requests waiting for a batch to leave (callers that gave up are not kept)."""
        return sum(len(b) for b in self._batchers.values())

    async def run(self, name: str, sample: Any, timeout_secs: float) -> Any:
        """Analyse one sample in a worker.

        Raises:
            TimeoutError: the call took longer than ``timeout_secs``.
            BrokenProcessPool: a worker died; the pool has been rebuilt for the next call.
        """
        self._check_unavailable(name)
        if self._executor is None:
            raise RuntimeError("inference pool is not started")
        executor = self._executor
        loop = asyncio.get_running_loop()
        sent_at = loop.time()
        try:
            result = await asyncio.wait_for(
                loop.run_in_executor(executor, _worker.run, name, sample), timeout_secs
            )
        except TimeoutError:
            await self._timed_out(sent_at)
            raise
        except BrokenProcessPool:
            await self._restart(executor)
            raise
        except Exception:
            self._timeouts = 0  # the worker answered, with an error
            raise
        self._timeouts = 0
        return result

    async def run_batched(
        self, name: str, sample: Any, timeout_secs: float, max_batch: int = 16
    ) -> Any:
        """Analyse one sample, batched with other callers' samples for the same analyzer.

        Raises:
            TimeoutError: the result took longer than ``timeout_secs``.
            BrokenProcessPool: a worker died; the pool has been rebuilt for the next call.
        """
        batcher = self._batchers.get(name)
        if batcher is None:
            batcher = self._batchers[name] = _Batcher(self, name, max_batch)
        return await batcher.run(sample, timeout_secs)

    async def _run_batch(self, name: str, samples: list[Any]) -> list[Any]:
        self._check_unavailable(name)
        if self._executor is None:
            raise RuntimeError("inference pool is not started")
        executor = self._executor
        loop = asyncio.get_running_loop()
        try:
            result: list[Any] = await loop.run_in_executor(
                executor, _worker.run_batch, name, samples
            )
        except BrokenProcessPool:
            await self._restart(executor)
            raise
        except Exception:
            self._timeouts = 0  # the worker answered, with an error
            raise
        # The worker answered, even if every caller of the batch has given up meanwhile.
        self._timeouts = 0
        self.batch_sizes.append(len(samples))
        del self.batch_sizes[:-1000]
        return result

    def _check_unavailable(self, name: str) -> None:
        # Said once when found (start or load); a call only learns it from the exception.
        reason = self.unavailable.get(name)
        if reason is not None:
            raise AnalyzerUnavailable(reason)

    async def _timed_out(self, sent_at: float) -> None:
        """Count a call sent at ``sent_at`` (loop time) that timed out; replace hung workers.

        A slow worker still answers now and then, which resets the count; a hung one
        never does. Calls sent before the last counted timeout waited through the same
        silence and count once with it, so that many participants waiting together do
        not add up to a restart; nor do timeouts while the workers restart.
        """
        if sent_at < self._timed_out_at:
            return
        self._timeouts += 1
        self._timed_out_at = asyncio.get_running_loop().time()
        executor = self._executor
        if (
            self._timeouts < self.restart_after_timeouts
            or executor is None
            or not self._owns_executor
            or self.mode != "process"
            or self._restart_lock.locked()
        ):
            return
        log.error(
            "inference workers stopped answering; restarting them",
            extra={"timeouts": self._timeouts, "workers": self.worker_pids()},
        )
        self._timeouts = 0
        # SIGKILL also ends a stopped process; the executor then sees its workers die,
        # fails the calls they held with BrokenProcessPool, and _restart replaces it.
        for process in _worker_processes(executor):
            process.kill()
        await self._restart(executor)

    async def _restart(self, broken: Executor) -> None:
        async with self._restart_lock:
            if self._executor is not broken or not self._owns_executor:
                return  # another caller already rebuilt it
            log.error("inference worker died; restarting the pool")
            broken.shutdown(wait=False, cancel_futures=True)
            self._executor = None
            await self.start()

    async def close(self) -> None:
        """Stop the workers (pending calls are cancelled)."""
        for batcher in self._batchers.values():
            await batcher.close()
        executor, self._executor = self._executor, None
        if executor is not None and self._owns_executor:
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: executor.shutdown(wait=True, cancel_futures=True)
            )


def _worker_processes(executor: Executor | None) -> list[BaseProcess]:
    # ProcessPoolExecutor keeps its processes here and has no public way to name them.
    processes = getattr(executor, "_processes", None) or {}
    return list(processes.values())


class _Batcher:
    """Coalesces concurrent requests for one analyzer into batch calls (event loop only).

    At most ``pool.workers`` batches are in flight; requests that arrive meanwhile
    wait and leave together as the next batch (at most ``max_batch`` samples).

    A caller that times out counts towards a hung worker (:meth:`InferencePool._timed_out`)
    only if the workers have held a batch for as long as it waited without answering: one
    still queued behind batches that do come back is waiting for a busy worker, not a hung
    one (at a join burst, say), and restarting the workers would only stop all analysis
    while the models load again.
    """

    def __init__(self, pool: InferencePool, name: str, max_batch: int) -> None:
        self._pool = pool
        self._name = name
        self._max_batch = max_batch
        # Waiting requests in arrival order: each caller's future -> its sample.
        self._pending: dict[asyncio.Future[Any], Any] = {}
        self._in_flight: dict[asyncio.Task[None], float] = {}  # batch -> sent at (loop time)

    def __len__(self) -> int:
        return len(self._pending)

    async def run(self, sample: Any, timeout_secs: float) -> Any:
        loop = asyncio.get_running_loop()
        sent_at = loop.time()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending[future] = sample
        self._dispatch()
        # A caller that gives up (timeout, cancellation) leaves the queue at once; if its
        # sample is already in a batch, that result is dropped.
        try:
            return await asyncio.wait_for(future, timeout_secs)
        except TimeoutError:
            if self._pending.pop(future, None) is None:
                await self._pool._timed_out(sent_at)  # its batch was with a worker
            else:
                oldest = min(self._in_flight.values(), default=math.inf)
                if loop.time() - oldest >= timeout_secs:
                    await self._pool._timed_out(sent_at)
            raise
        finally:
            self._pending.pop(future, None)

    def _dispatch(self) -> None:
        while self._pending and len(self._in_flight) < self._pool.workers:
            taken = list(itertools.islice(self._pending.items(), self._max_batch))
            for future, _ in taken:
                del self._pending[future]
            batch = [(s, f) for f, s in taken if not f.done()]
            if not batch:
                continue
            task = asyncio.create_task(self._call(batch), name=f"inference.{self._name}")
            self._in_flight[task] = asyncio.get_running_loop().time()
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.pop(task, None)
        self._dispatch()

    async def _call(self, batch: list[tuple[Any, asyncio.Future[Any]]]) -> None:
        try:
            results = await self._pool._run_batch(self._name, [s for s, _ in batch])
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as e:  # handed to every caller of the batch
            for _, future in batch:
                if not future.done():
                    future.set_exception(e)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def close(self) -> None:
        tasks = list(self._in_flight)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for future in self._pending:
            future.cancel()
        self._pending.clear()


class AnalyzerPools:
    """One :class:`InferencePool` per analyzer, so that a slow model never queues behind another.

    A speech-emotion call of several hundred ms on a CPU would otherwise hold up
    every participant's face analysis. Each pool has ``workers`` workers that load
    only their own analyzer. Used from the event loop thread.

    Args:
        specs: analyzer name -> its parameters as a dict.
        workers: workers per analyzer.
        mode: ``"process"`` or ``"thread"`` (see :class:`InferencePool`).
        restart_after_timeouts: see :class:`InferencePool`.
    """

    def __init__(
        self,
        specs: dict[str, dict[str, Any]],
        workers: int = 1,
        mode: Literal["process", "thread"] = "process",
        restart_after_timeouts: int = RESTART_AFTER_TIMEOUTS,
    ) -> None:
        self._specs = dict(specs)
        self.pools = {
            name: InferencePool(
                {name: spec},
                workers=workers,
                mode=mode,
                restart_after_timeouts=restart_after_timeouts,
            )
            for name, spec in specs.items()
        }

    @property
    def specs(self) -> dict[str, dict[str, Any]]:
        """Enabled analyzer name -> its parameters."""
        return self._specs

    @property
    def unavailable(self) -> dict[str, str]:
        """Analyzer name -> why its model could not be loaded."""
        return {k: v for pool in self.pools.values() for k, v in pool.unavailable.items()}

    def available(self, name: str) -> bool:
        """Whether analyzer ``name`` is enabled and its model loaded."""
        pool = self.pools.get(name)
        return pool is not None and pool.available(name)

    def status(self, name: str) -> AnalyzerStatus:
        """Whether analyzer ``name``'s model is loading, loaded, unavailable or not enabled."""
        pool = self.pools.get(name)
        return "disabled" if pool is None else pool.status(name)

    async def wait_loaded(self, name: str) -> AnalyzerStatus:
        """Wait while analyzer ``name``'s model loads; then its status."""
        pool = self.pools.get(name)
        return "disabled" if pool is None else await pool.wait_loaded(name)

    def _pool(self, name: str) -> InferencePool:
        pool = self.pools.get(name)
        if pool is None:
            raise AnalyzerUnavailable(f"analyzer {name!r} is not enabled")
        return pool

    async def start(self) -> None:
        """Start every pool; each waits until its workers have loaded their analyzer."""
        await asyncio.gather(*(pool.start() for pool in self.pools.values()))

    async def load(self) -> None:
        """Start every pool with :meth:`InferencePool.load` (a failed load does not raise)."""
        await asyncio.gather(*(pool.load() for pool in self.pools.values()))

    async def run(self, name: str, sample: Any, timeout_secs: float) -> Any:
        """Analyse one sample in analyzer ``name``'s pool (see :meth:`InferencePool.run`)."""
        return await self._pool(name).run(name, sample, timeout_secs)

    async def run_batched(
        self, name: str, sample: Any, timeout_secs: float, max_batch: int = 16
    ) -> Any:
        """Analyse one sample, batched within analyzer ``name``'s pool."""
        return await self._pool(name).run_batched(name, sample, timeout_secs, max_batch)

    async def close(self) -> None:
        """Stop every pool."""
        await asyncio.gather(*(pool.close() for pool in self.pools.values()))


class AnalyzerClient:
    """Typed access to one analyzer (:attr:`name`) of an inference pool.

    Used from the event loop thread; the analysis runs in the pool's workers.

    Args:
        pool: The inference pool.
        timeout_secs: Longest wait for one call.
    """

    name: str

    def __init__(self, pool: Inference, timeout_secs: float) -> None:
        self.pool = pool
        self.timeout_secs = timeout_secs

    @property
    def status(self) -> AnalyzerStatus:
        """Whether the model runs (``ok``), still loads, failed to load, or is not enabled."""
        return self.pool.status(self.name)

    async def wait_loaded(self) -> AnalyzerStatus:
        """Wait while the model loads (the server has just started); then its status."""
        return await self.pool.wait_loaded(self.name)


class FaceClient(AnalyzerClient):
    """The face analyzer (``face_emotion``), batched with other participants' frames."""

    name = "face_emotion"

    async def analyse(self, sample: VideoSample) -> FaceAnalysis:
        """Faces, landmarks and expressions of one frame."""
        result = await self.pool.run_batched(self.name, sample, self.timeout_secs)
        if not isinstance(result, FaceAnalysis):
            raise TypeError(f"face analyzer returned {type(result).__name__}")
        return result


class VoiceEmotionClient(AnalyzerClient):
    """The speech-emotion analyzer (``voice_emotion``)."""

    name = "voice_emotion"

    async def classify(self, chunk: AudioChunk) -> VoiceEmotionResult:
        """The model's scores for one voiced piece of 1-4 s."""
        result = await self.pool.run(self.name, chunk, self.timeout_secs)
        if not isinstance(result, VoiceEmotionResult):
            raise TypeError(f"voice emotion analyzer returned {type(result).__name__}")
        return result
