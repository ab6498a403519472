"""Analyzers: models that turn media samples into per-frame observations.

Each analyzer implements :class:`analyzers.base.Analyzer` and is listed in
:data:`REGISTRY` under its ``name``, which is also its config section
(``[analyzers.<name>]``). The registry is an explicit dict, never filled by
import side effects. Importing it does not import torch: the analyzers load
their models (and torch) in :meth:`~analyzers.base.Analyzer.load`, in the
inference worker processes.
"""

from __future__ import annotations

from typing import Any

from analyzers.base import Analyzer
from analyzers.face.emotion import FaceEmotionAnalyzer
from analyzers.voice.emotion import VoiceEmotionAnalyzer

#: Every analyzer by ``name``; config's ``[analyzers] enabled`` picks from these.
REGISTRY: dict[str, type[Analyzer[Any, Any]]] = {
    c.name: c for c in (FaceEmotionAnalyzer, VoiceEmotionAnalyzer)
}

__all__ = ["REGISTRY", "Analyzer", "FaceEmotionAnalyzer", "VoiceEmotionAnalyzer"]
