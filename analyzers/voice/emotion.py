"""Speech emotion analyzer: a Hugging Face audio classifier on the latest voiced seconds.

Default model ``superb/wav2vec2-base-superb-er`` (Apache-2.0, from the SUPERB
benchmark): wav2vec2-base fine-tuned on IEMOCAP's four classes ``neu/hap/ang/sad``,
16 kHz input. It is small enough for a CPU (about 95 M parameters) and its licence
allows any use. No speech-emotion model ships inside a wheel (PLATFORM.md section 5),
so the model comes from the Hugging Face hub cache or a local folder; with
``local_files_only=True`` loading never touches the network.

The model's own ``config.id2label`` goes through :mod:`analyzers.voice.labels`;
the result covers only the classes the model can express (four for the default).
torch and transformers are imported inside :meth:`VoiceEmotionAnalyzer.load`, so
the bot process can import this module for the registry and the params cheaply.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from analyzers.base import Analyzer, AnalyzerUnavailable
from analyzers.types import Emotion
from analyzers.voice.audio import SAMPLE_RATE, AudioChunk
from analyzers.voice.labels import map_probs

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

#: Default model: wav2vec2-base fine-tuned on IEMOCAP (neu/hap/ang/sad), Apache-2.0.
VOICE_EMOTION_MODEL = "superb/wav2vec2-base-superb-er"
#: Shortest audio classified; less than a second says little about emotion.
VOICE_MIN_SECS = 1.0
#: Longest audio classified; only the newest part of a longer chunk is used.
VOICE_MAX_SECS = 4.0
#: How long loading waits for the Hugging Face hub to answer before calling it offline.
HUB_PROBE_SECS = 3.0


def hub_reachable(timeout_secs: float = HUB_PROBE_SECS) -> bool:
    """Whether the Hugging Face endpoint accepts a TCP connection within ``timeout_secs``.

    Name resolution has no timeout of its own, so the probe runs on a daemon thread
    that is abandoned when it takes too long.
    """
    from urllib.parse import urlsplit

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    url = urlsplit(constants.ENDPOINT)
    host = url.hostname or "huggingface.co"
    port = url.port or (443 if url.scheme == "https" else 80)
    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout_secs).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, name="hf-hub-probe", daemon=True)
    thread.start()
    thread.join(timeout_secs)
    return bool(result and result[0])


class VoiceModelUnavailable(AnalyzerUnavailable):
    """The speech-emotion model could not be loaded (not cached while offline, bad path)."""


class VoiceEmotionParams(BaseModel):
    """Settings of the voice emotion analyzer (config section ``[analyzers.voice_emotion]``)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        VOICE_EMOTION_MODEL,
        description="Hugging Face model id or local folder of an audio-classification model "
        "(16 kHz). Default: superb/wav2vec2-base-superb-er (Apache-2.0, IEMOCAP neu/hap/ang/sad).",
    )
    device: Literal["auto", "cpu", "cuda", "mps"] = Field(
        "auto", description="Torch device; auto picks cuda, then mps, then cpu."
    )
    min_secs: float = Field(
        VOICE_MIN_SECS, gt=0, description="Shortest chunk classified, in seconds; shorter fails."
    )
    max_secs: float = Field(
        VOICE_MAX_SECS, gt=0, description="Only the newest max_secs of a chunk are classified."
    )
    local_files_only: bool = Field(
        False,
        description="Load only from a local folder or the hub cache; never touch the network.",
    )
    torch_threads: int = Field(
        1, ge=1, description="torch intra-op threads in each inference worker."
    )


@dataclass(frozen=True, slots=True)
class VoiceEmotionResult:
    """The speech-emotion model's output for one chunk of one participant.

    Attributes:
        participant_id: Whose voice.
        ts: Meeting-clock seconds of the first sample classified.
        probs: Distribution over the classes the model can express (sums to 1);
            classes it cannot express are absent, not zero.
        raw: The model's softmax per its own label, unmapped labels included.
        model: The model id or folder that produced it.
        inference_ms: Wall time of preprocessing plus the forward pass.
    """

    participant_id: str
    ts: float
    probs: dict[Emotion, float]
    raw: dict[str, float]
    model: str
    inference_ms: float


class VoiceEmotionAnalyzer(Analyzer[AudioChunk, VoiceEmotionResult]):
    """Classifies the emotion of a chunk of speech with a wav2vec2-style classifier.

    Built by :meth:`load` once per inference worker process and used only by that
    process's calling thread (the model and torch's thread setting are per process).
    Feed it voiced audio: it does not run a VAD itself.
    """

    name = "voice_emotion"
    params_type = VoiceEmotionParams

    def __init__(
        self,
        params: VoiceEmotionParams,
        feature_extractor: Any,
        model: Any,
        device: torch.device,
    ) -> None:
        """Wire up an already-loaded extractor and model; use :meth:`load` to build them."""
        self.params = params
        self._extractor = feature_extractor
        self._model = model
        self._device = device
        self.id2label: dict[int, str] = {int(k): str(v) for k, v in model.config.id2label.items()}

    @property
    def device(self) -> torch.device:
        """The torch device the model runs on."""
        return self._device

    @classmethod
    def load(cls, params: BaseModel) -> Self:
        """Load the feature extractor and the model. Blocking; once per process.

        Raises:
            TypeError: If ``params`` is not a :class:`VoiceEmotionParams`.
            ValueError: If the requested device is not available.
            VoiceModelUnavailable: If the model cannot be loaded (offline and not
                cached, missing folder, not an audio-classification model).
        """
        if not isinstance(params, VoiceEmotionParams):
            raise TypeError(f"expected VoiceEmotionParams, got {type(params).__name__}")
        start = time.perf_counter()
        import torch
        from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

        from analyzers.device import select_device

        torch.set_num_threads(params.torch_threads)
        device = select_device(params.device)

        def from_pretrained(local_only: bool) -> tuple[Any, Any]:
            extractor = AutoFeatureExtractor.from_pretrained(  # type: ignore[no-untyped-call]
                params.model, local_files_only=local_only
            )
            model = AutoModelForAudioClassification.from_pretrained(
                params.model, local_files_only=local_only
            )
            return extractor, model

        # The cache (or a local folder) first: no network for a model already there.
        # OSError: not found / offline (transformers raises OSError subclasses);
        # ValueError: malformed id or a config that is no audio classifier.
        try:
            extractor, model = from_pretrained(local_only=True)
        except (OSError, ValueError) as cached_error:
            where = "locally" if params.local_files_only else "locally or from the hub"
            message = (
                f"voice emotion model {params.model!r} could not be loaded {where}; "
                "download it while online (or point model at a local folder)"
            )
            # Offline, the hub client retries with backoff for half a minute per file;
            # a quick reachability check turns that into an immediate "unavailable".
            if params.local_files_only or not hub_reachable():
                raise VoiceModelUnavailable(message) from cached_error
            try:
                extractor, model = from_pretrained(local_only=False)
            except (OSError, ValueError) as e:
                raise VoiceModelUnavailable(message) from e
        sampling_rate = getattr(extractor, "sampling_rate", SAMPLE_RATE)
        if sampling_rate != SAMPLE_RATE:
            raise VoiceModelUnavailable(
                f"voice emotion model {params.model!r} expects {sampling_rate} Hz, not 16 kHz"
            )
        model = model.to(device).eval()
        analyzer = cls(params, extractor, model, device)
        if not map_probs({label: 1.0 for label in analyzer.id2label.values()}):
            logger.warning(
                "voice emotion model has no mapped labels", extra={"model": params.model}
            )
        logger.info(
            "voice emotion analyzer loaded",
            extra={
                "model": params.model,
                "device": str(device),
                "load_ms": (time.perf_counter() - start) * 1000.0,
            },
        )
        return analyzer

    def analyze(self, sample: AudioChunk) -> VoiceEmotionResult:
        """Classify the newest ``max_secs`` of ``sample``.

        Raises:
            ValueError: If the chunk is not 16 kHz or shorter than ``min_secs``.
        """
        import torch

        start = time.perf_counter()
        if sample.sample_rate != SAMPLE_RATE:
            raise ValueError("voice emotion needs 16 kHz audio")
        samples = np.asarray(sample.samples, dtype=np.float32).reshape(-1)
        secs = len(samples) / SAMPLE_RATE
        if secs < self.params.min_secs:
            raise ValueError(
                f"chunk of {secs:.2f} s is shorter than min_secs={self.params.min_secs} s"
            )
        keep = int(round(self.params.max_secs * SAMPLE_RATE))
        skipped = max(0, len(samples) - keep)
        samples = samples[skipped:]
        inputs = self._extractor(samples, sampling_rate=SAMPLE_RATE, return_tensors="pt")
        with torch.inference_mode():
            logits = self._model(**{k: v.to(self._device) for k, v in inputs.items()}).logits
            probs = torch.softmax(logits[0].float(), dim=-1).cpu().numpy().astype(np.float64)
        probs /= probs.sum()
        raw = {self.id2label[i]: float(p) for i, p in enumerate(probs)}
        return VoiceEmotionResult(
            participant_id=sample.participant_id,
            ts=sample.ts + skipped / SAMPLE_RATE,
            probs=map_probs(raw),
            raw=raw,
            model=self.params.model,
            inference_ms=(time.perf_counter() - start) * 1000.0,
        )
