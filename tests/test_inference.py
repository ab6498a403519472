"""The inference pool: analyzers whose model is missing are left out, once, with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from analyzers import _worker
from analyzers.base import AnalyzerUnavailable
from analyzers.voice.emotion import VoiceEmotionParams
from bot.inference import InferencePool

pytestmark = pytest.mark.unit


async def test_missing_voice_model_is_unavailable_not_fatal(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    params = VoiceEmotionParams(model=str(missing), local_files_only=True, device="cpu")
    pool = InferencePool({"voice_emotion": params.model_dump()}, workers=1, mode="thread")
    await pool.start()
    try:
        assert not pool.available("voice_emotion")
        assert "could not be loaded" in pool.unavailable["voice_emotion"]
        with pytest.raises(AnalyzerUnavailable):
            await pool.run("voice_emotion", object(), timeout_secs=5)
        assert not pool.available("face_emotion")  # not enabled at all
    finally:
        await pool.close()
    assert "voice_emotion" in _worker._unavailable
