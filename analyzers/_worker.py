"""Code that runs inside inference worker processes (or threads).

``init`` is the pool initializer: it loads every enabled analyzer once into the
module-level ``_loaded``; ``run`` analyses one sample with one of them. Both are
plain functions so that a spawned process can import and call them.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

from analyzers import REGISTRY
from analyzers.base import Analyzer

_loaded: dict[str, Analyzer[Any, Any]] = {}
_lock = threading.Lock()


def init(specs: dict[str, dict[str, Any]], ignore_sigint: bool = True) -> None:
    """Load the analyzers named in ``specs`` (name -> params as a dict).

    Worker processes ignore SIGINT so that Ctrl-C reaches only the server, which
    then shuts the pool down in order.
    """
    if ignore_sigint and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    with _lock:
        for name, params in specs.items():
            if name in _loaded:
                continue
            cls = REGISTRY[name]
            _loaded[name] = cls.load(cls.params_type.model_validate(params))


def ping() -> int:
    """Prove the worker is up (its initializer has run); returns its pid."""
    return os.getpid()


def run(name: str, sample: Any) -> Any:
    """Analyse ``sample`` with the analyzer ``name`` loaded by :func:`init`."""
    return _loaded[name].analyze(sample)
