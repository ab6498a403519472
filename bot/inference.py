"""InferencePool: neural inference off the event loop.

A ``ProcessPoolExecutor`` with the *spawn* start method (aiortc already runs
threads, and forking a threaded process is unsafe), whose initializer loads
every enabled analyzer once. ``start()`` waits until each worker has loaded its
models, so a slow or failing load surfaces at start-up, never mid-meeting.
A crashed worker breaks the whole pool; the pool is then rebuilt once per
failure and the call that saw the crash fails (its participant goes stale for
one tick).
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from typing import Any, Literal

from analyzers import _worker

log = logging.getLogger(__name__)


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
    """

    def __init__(
        self,
        specs: dict[str, dict[str, Any]],
        workers: int = 1,
        mode: Literal["process", "thread"] = "process",
        executor: Executor | None = None,
    ) -> None:
        self.specs = specs
        self.workers = workers
        self.mode = mode
        self._executor = executor
        self._owns_executor = executor is None
        self._restart_lock = asyncio.Lock()
        #: Analyzer name -> why its model could not be loaded (filled by :meth:`start`).
        self.unavailable: dict[str, str] = {}

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
        """Start the workers and wait until every one has loaded its analyzers."""
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
        for name, reason in self.unavailable.items():
            # Said once, here; sessions then skip the analyzer instead of failing per call.
            log.warning("analyzer unavailable", extra={"analyzer": name, "reason": reason})
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
        return name in self.specs and name not in self.unavailable

    async def run(self, name: str, sample: Any, timeout_secs: float) -> Any:
        """Analyse one sample in a worker.

        Raises:
            TimeoutError: the call took longer than ``timeout_secs``.
            BrokenProcessPool: a worker died; the pool has been rebuilt for the next call.
        """
        if self._executor is None:
            raise RuntimeError("inference pool is not started")
        executor = self._executor
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(
                loop.run_in_executor(executor, _worker.run, name, sample), timeout_secs
            )
        except BrokenProcessPool:
            await self._restart(executor)
            raise

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
        executor, self._executor = self._executor, None
        if executor is not None and self._owns_executor:
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: executor.shutdown(wait=True, cancel_futures=True)
            )
