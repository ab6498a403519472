"""Where the face networks run: torch, or ONNX Runtime on the CPU.

Every face network (BlazeFace short and full range, Face Mesh, iris, mini-Xception)
ships twice: as a torch state dict (``.pt``) and as an ONNX graph exported from the
torch module by ``scripts/export_onnx_models.py`` (``.onnx`` next to it, provenance
in the weights' ``PROVENANCE.md``). The ONNX graphs run on ONNX Runtime's CPU
provider, where these small depthwise-heavy nets take 1.4-9x less CPU time per input
than on torch with one thread (README, ``bench faces``); on CUDA or MPS torch runs them.

:func:`select_runtime` turns the configured preference into the runtime to use;
:class:`OnnxNet` is one loaded graph. Nothing here imports torch. Runs wherever
the analyzer is loaded (an inference worker process, or the test thread).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, TypeAlias

import numpy as np

#: The runtimes a face network can run on.
Runtime: TypeAlias = Literal["onnx", "torch"]
#: What the config asks for: ``auto`` is ONNX Runtime on the CPU, torch on a GPU.
RuntimePreference: TypeAlias = Literal["auto", "onnx", "torch"]
#: ONNX Runtime's graph optimisation level name (all: includes its NCHWc layout pass).
GRAPH_OPTIMIZATION = "ORT_ENABLE_ALL"


def select_runtime(preference: RuntimePreference, device_type: str) -> Runtime:
    """The runtime for ``preference`` on a torch device of type ``device_type``.

    ``auto`` picks ONNX Runtime on the CPU and torch on ``cuda`` or ``mps`` (the ONNX
    path runs on ONNX Runtime's CPU provider only). An explicit ``onnx`` with another
    device is an error rather than a silent move to the CPU.

    Raises:
        ValueError: If ``preference`` is ``onnx`` and the device is not the CPU, or
            ``preference`` is unknown.
    """
    if preference == "auto":
        return "onnx" if device_type == "cpu" else "torch"
    if preference == "onnx":
        if device_type != "cpu":
            raise ValueError(
                f"runtime 'onnx' runs on the CPU only, but device {device_type!r} was "
                "selected; use runtime 'auto' or 'torch', or device 'cpu'"
            )
        return "onnx"
    if preference == "torch":
        return "torch"
    raise ValueError(f"unknown runtime {preference!r}; expected auto, onnx or torch")


def onnx_path(weights: Path) -> Path:
    """The shipped ONNX graph of the network whose torch weights are ``weights``."""
    return weights.with_suffix(".onnx")


class OnnxNet:
    """One ONNX graph on ONNX Runtime's CPU provider, fed float32 NCHW batches.

    Sessions use ``threads`` intra-op threads (the face analyzer passes its
    ``torch_threads``, 1 by default: the inference workers are one process per
    core), no inter-op parallelism and every graph optimisation. The batch size
    may change from call to call. Not thread-safe in the sense that one caller
    per instance is assumed (ONNX Runtime itself would allow more).

    Args:
        path: The ``.onnx`` file.
        threads: Intra-op threads.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
    """

    def __init__(self, path: Path, threads: int = 1) -> None:
        import onnxruntime as ort

        if not path.is_file():
            raise FileNotFoundError(f"ONNX model {path} is missing (run without runtime 'onnx'?)")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, GRAPH_OPTIMIZATION)
        # With threads > 1, pool threads sleep between ops instead of spinning: the
        # CPU is shared with the other worker and the bot.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = path
        self.threads = threads
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        """The graph's outputs for the ``(n, c, h, w)`` batch ``x`` (made float32)."""
        outputs: list[np.ndarray] = self._session.run(
            None, {self._input: np.ascontiguousarray(x, dtype=np.float32)}
        )
        return outputs
