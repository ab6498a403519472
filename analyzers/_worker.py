"""Code that runs inside inference worker processes (or threads).

``init`` is the pool initializer: it loads every enabled analyzer once into the
module-level ``_loaded``; ``run`` analyses one sample with one of them. Both are
plain functions so that a spawned process can import and call them.

An analyzer whose model is not available here (:class:`AnalyzerUnavailable`, e.g.
a speech-emotion model that is not cached while offline) is left out and its
reason kept in ``_unavailable``; ``ping`` reports those reasons so that the
server can say so once, and every other analyzer keeps working.

A worker process ends when the server does, even when the server is killed outright
(``kill -9``, the OOM killer): the pool's queues keep a pipe end open in every worker,
so it would never notice on its own and would keep its models (hundreds of MB) in
memory for good. On Linux the kernel sends it SIGKILL (``PR_SET_PDEATHSIG``);
everywhere, a watchdog thread exits once the parent is gone. multiprocessing's
resource tracker, which holds a pipe from the server and each worker, then sees them
all gone and exits too.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from typing import Any

from analyzers import REGISTRY
from analyzers.base import Analyzer, AnalyzerUnavailable

_loaded: dict[str, Analyzer[Any, Any]] = {}
_unavailable: dict[str, str] = {}
# The params each name was loaded with: thread-mode pools share this module, so a pool
# with other params for the same analyzer (tests do this) reloads instead of reusing.
_params: dict[str, dict[str, Any]] = {}
_lock = threading.Lock()

#: How often the watchdog checks that the server is still there, in seconds.
PARENT_CHECK_SECS = 1.0
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def init(specs: dict[str, dict[str, Any]], ignore_sigint: bool = True) -> None:
    """Load the analyzers named in ``specs`` (name -> params as a dict).

    Worker processes ignore SIGINT so that Ctrl-C reaches only the server, which
    then shuts the pool down in order.
    """
    if ignore_sigint and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent()
    with _lock:
        for name, params in specs.items():
            if _params.get(name) == params:
                continue
            _loaded.pop(name, None)
            _unavailable.pop(name, None)
            cls = REGISTRY[name]
            try:
                _loaded[name] = cls.load(cls.params_type.model_validate(params))
            except AnalyzerUnavailable as e:
                _unavailable[name] = str(e)
            # Only after a load that finished (or was found unavailable): a failed load
            # raises and is retried by the next init.
            _params[name] = params


def _exit_with_parent() -> None:
    """In a worker process, arrange to end when the server (its parent) ends."""
    parent = multiprocessing.parent_process()
    if parent is None or parent.pid is None:
        return  # the server itself (thread mode, or a test calling init directly)
    if sys.platform == "linux":
        # Tied to the thread that started this process: the pool starts its workers
        # from the event loop thread, which lives as long as the server.
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    # The watchdog also covers a parent that died before prctl, and other systems.
    watchdog = threading.Thread(
        target=_watch_parent, args=(parent.pid,), name="parent-watchdog", daemon=True
    )
    watchdog.start()


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_CHECK_SECS)
    os._exit(1)  # the server is gone: nobody is left to take a result or to stop us


def ping() -> tuple[int, dict[str, str]]:
    """Prove the worker is up (its initializer has run).

    Returns:
        The worker's pid, and analyzer name -> reason for each analyzer that
        could not be loaded.
    """
    return os.getpid(), dict(_unavailable)


def run(name: str, sample: Any) -> Any:
    """Analyse ``sample`` with the analyzer ``name`` loaded by :func:`init`.

    Raises:
        AnalyzerUnavailable: The analyzer's model could not be loaded.
    """
    analyzer = _loaded.get(name)
    if analyzer is None:
        raise AnalyzerUnavailable(_unavailable.get(name, f"analyzer {name!r} is not loaded"))
    return analyzer.analyze(sample)


def run_batch(name: str, samples: list[Any]) -> list[Any]:
    """Analyse several samples in one call (one forward pass where the analyzer can).

    Raises:
        AnalyzerUnavailable: The analyzer's model could not be loaded.
    """
    analyzer = _loaded.get(name)
    if analyzer is None:
        raise AnalyzerUnavailable(_unavailable.get(name, f"analyzer {name!r} is not loaded"))
    return analyzer.analyze_batch(samples)
