"""Choosing the torch device an analyzer runs its model on.

Runs wherever ``Analyzer.load`` runs (an inference worker process, or the test
thread). Only torch is consulted; nothing here allocates memory on the device.
"""

from __future__ import annotations

import logging
from typing import Literal, TypeAlias

import torch

logger = logging.getLogger(__name__)

DevicePreference: TypeAlias = Literal["auto", "cpu", "cuda", "mps"]


def _cuda_available() -> bool:
    return bool(torch.cuda.is_available())


def _mps_available() -> bool:
    # torch.backends.mps exists on every build, but is_available() is False off Apple silicon.
    return bool(torch.backends.mps.is_available())


def select_device(preference: DevicePreference) -> torch.device:
    """Return the torch device for ``preference``.

    ``"auto"`` picks CUDA if available, else MPS if available, else the CPU. An
    explicit choice that this machine cannot honour is an error rather than a
    silent fallback, so a misconfigured GPU box does not quietly run on the CPU.

    Args:
        preference: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"``.

    Returns:
        The selected device.

    Raises:
        ValueError: If ``preference`` is unknown, or names a device that is not available.
    """
    if preference == "auto":
        if _cuda_available():
            device = torch.device("cuda")
        elif _mps_available():
            device = torch.device("mps")
        else:
            device = torch.device("cpu")
        logger.debug("device selected", extra={"device": device.type, "preference": preference})
        return device
    if preference == "cpu":
        return torch.device("cpu")
    if preference == "cuda":
        if not _cuda_available():
            raise ValueError(
                "device 'cuda' was requested but CUDA is not available "
                "(no GPU, or torch was built without CUDA); use 'auto' or 'cpu'"
            )
        return torch.device("cuda")
    if preference == "mps":
        if not _mps_available():
            raise ValueError(
                "device 'mps' was requested but Apple MPS is not available on this machine; "
                "use 'auto' or 'cpu'"
            )
        return torch.device("mps")
    raise ValueError(f"unknown device preference {preference!r}; expected auto, cpu, cuda or mps")
