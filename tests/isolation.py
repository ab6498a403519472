"""A clean, explicit environment for every test run, set before any model library is imported.

A developer's machine holds things that must not change what the tests see: the default
voice model that ``make run`` downloaded into the Hugging Face cache, DeepFace weights
in ``~/.deepface``, torch hub downloads, ``MEETMOOD_*`` settings, cloud endpoints and
keys. :func:`isolate_environment` drops all of them from ``os.environ`` and points every
model cache and XDG folder at empty folders under one temporary directory per run, so a
test that needs a model builds it (or ships it) and a test that expects "not cached"
sees an empty cache. Child processes (inference workers, ``meetmood serve``) inherit this
environment; :func:`server_env` builds theirs explicitly on top of it.

It must run before ``huggingface_hub`` is imported: the hub reads its cache folder and
offline switch from the environment once, at import.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

#: Variables whose names start with these are dropped: meetmood's own settings, the
#: Hugging Face / transformers cache and hub switches, Google Cloud and Gemini settings.
DROPPED_PREFIXES = ("MEETMOOD_", "HF_", "HUGGINGFACE_", "TRANSFORMERS_", "GOOGLE_", "GEMINI_")
#: ...and these by name: other model caches and per-user folders.
DROPPED_NAMES = (
    "TORCH_HOME",
    "DEEPFACE_HOME",
    "PYTORCH_TRANSFORMERS_CACHE",
    "PYTORCH_PRETRAINED_BERT_CACHE",
    "MPLCONFIGDIR",
    "XDG_CACHE_HOME",
    "XDG_DATA_HOME",
    "XDG_CONFIG_HOME",
    "XDG_STATE_HOME",
)
#: Kept although it has the prefix: scripts/in_netns.sh sets it to say the run is
#: already inside the private network namespace (it is no setting: no ``__``).
KEPT = frozenset({"MEETMOOD_IN_NETNS"})
#: Libraries that read their folders from the environment at import; imported earlier,
#: they would keep the developer's (torch and DeepFace read theirs at each use).
READ_AT_IMPORT = ("huggingface_hub", "transformers", "matplotlib")


def _dropped(name: str) -> bool:
    return name not in KEPT and (name.startswith(DROPPED_PREFIXES) or name in DROPPED_NAMES)


def isolate_environment() -> Path:
    """Drop the developer's settings and caches from ``os.environ``; use empty ones instead.

    Returns:
        The run's own folder (removed when the interpreter exits).
    """
    early = [name for name in READ_AT_IMPORT if name in sys.modules]
    if early:
        raise RuntimeError(f"imported before the test environment was isolated: {early}")
    run = Path(tempfile.mkdtemp(prefix="meetmood-tests-"))
    for name in [n for n in os.environ if _dropped(n)]:
        del os.environ[name]
    cache = run / "cache"
    os.environ.update(
        {
            "XDG_CACHE_HOME": str(cache),
            "XDG_DATA_HOME": str(run / "data"),  # the default database lives here
            "XDG_CONFIG_HOME": str(run / "config"),
            "XDG_STATE_HOME": str(run / "state"),
            "HF_HOME": str(cache / "huggingface"),
            "HF_HUB_CACHE": str(cache / "huggingface" / "hub"),
            # No download is ever attempted; a test of the reachability probe turns this
            # off for itself (huggingface_hub.constants.HF_HUB_OFFLINE).
            "HF_HUB_OFFLINE": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "TORCH_HOME": str(cache / "torch"),
            "DEEPFACE_HOME": str(run / "deepface"),
            "MPLCONFIGDIR": str(run / "matplotlib"),
        }
    )
    atexit.register(shutil.rmtree, run, ignore_errors=True)
    return run


def server_env(settings: Mapping[str, str]) -> dict[str, str]:
    """The environment for a ``meetmood`` child process: this run's, plus ``settings``.

    ``settings`` maps ``MEETMOOD_SECTION__KEY`` names to values; no other ``MEETMOOD_``
    variable reaches the child, even one a test set on ``os.environ``.
    """
    env = {k: v for k, v in os.environ.items() if k in KEPT or not k.startswith("MEETMOOD_")}
    unknown = [k for k in settings if not k.startswith("MEETMOOD_")]
    if unknown:
        raise ValueError(f"not meetmood settings: {unknown}")
    env.update(settings)
    return env
