"""Convert MediaPipe's face TFLite models into the torch state dicts we ship.

Usage::

    pip download --no-deps mediapipe==0.10.21 -d /tmp/mp     # Apache-2.0, 35.6 MB
    python scripts/convert_mediapipe_weights.py \\
        /tmp/mp/mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl \\
        [--out-dir analyzers/face/mediapipe/weights] \\
        [--golden tests/data/mediapipe_golden.npz --reference-python /tmp/tflref/bin/python \\
         [--mediapipe-python /tmp/mpref/bin/python]]

The source is either the wheel or a directory holding the four ``.tflite``
files (flat, or under ``mediapipe/modules/...`` as in the unpacked wheel): the
short- and full-range face detectors, the face mesh and the iris model. Each
file's sha256 is checked against the one recorded in
``analyzers/face/mediapipe/weights/PROVENANCE.md`` before anything is converted.

The flatbuffer is read by the small reader below (:class:`Table`, the handful
of TFLite schema fields it needs), so conversion needs nothing beyond the
project's own dependencies: no TFLite, TensorFlow, ``tflite`` or ``flatbuffers``.
Each parametrised layer of the torch modules is matched to the TFLite op that
produces a named tensor (``depthwise_conv2d_3``, ``p_re_lu_7`` ...), or for the
full-range detector, whose tensor names are fused strings, to the k-th conv op
in execution order; the tables are the ``*_layers()`` functions. Float16
weights behind ``DEQUANTIZE`` ops are widened to float32 (exactly, as the
TFLite runtime does); sparse constants behind ``DENSIFY`` ops are expanded
(:func:`densify`). Layouts: conv ``OHWI`` -> ``OIHW``; depthwise ``1HWC`` ->
``C1HW``; PReLU alpha ``[1, 1, C]`` -> ``(C,)``. Each op's stride and padding
(``SAME``/``VALID`` plus any explicit ``PAD`` op in front of it) is checked
against the module, and every parametrised TFLite op must be used exactly once.

``--golden`` also writes reference outputs for the offline equivalence test: the
astronaut image (``skimage.data.astronaut()``) and a synthetic meeting-room scene
(:func:`room_scene`) are preprocessed with the same functions
:class:`analyzers.face.mediapipe.landmarker.FaceLandmarker` uses (whole-frame
detection, no tiles), the uint8 network inputs are run through the reference
TFLite interpreter in the separate Python given by ``--reference-python`` (a
throwaway venv with ``ai-edge-litert`` or ``tflite-runtime``; never the project
venv), and inputs (as lossless PNGs) plus raw outputs are saved.
``--mediapipe-python`` (a venv with the full mediapipe 0.10.21) adds MediaPipe's
own end-to-end detection and mesh of the astronaut and its full-range detection
of the room scene. The script prints how far the torch port is from both.

Outputs are deterministic: state dicts in module key order saved into a
buffer (fixed archive name, torch's fixed zip timestamps), and the ``.npz``
written with fixed zip timestamps.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from analyzers.face.mediapipe import roi as geometry  # noqa: E402
from analyzers.face.mediapipe.blazeface import BlazeFace  # noqa: E402
from analyzers.face.mediapipe.blazeface_full_range import (  # noqa: E402
    STAGES,
    TOP_DOWN,
    BlazeFaceFullRange,
)
from analyzers.face.mediapipe.blocks import SameConv2d, same_pad  # noqa: E402
from analyzers.face.mediapipe.facemesh import FaceMesh  # noqa: E402
from analyzers.face.mediapipe.iris import IrisLandmark  # noqa: E402
from analyzers.face.mediapipe.landmarker import FaceLandmarker, eye_crops  # noqa: E402

WEIGHTS_DIR = REPO_ROOT / "analyzers" / "face" / "mediapipe" / "weights"
GOLDEN_DEFAULT = REPO_ROOT / "tests" / "data" / "mediapipe_golden.npz"


@dataclass(frozen=True)
class Source:
    """One TFLite model in the mediapipe 0.10.21 wheel and the .pt it becomes."""

    member: str
    sha256: str
    output: str


SOURCES: dict[str, Source] = {
    "blazeface": Source(
        "mediapipe/modules/face_detection/face_detection_short_range.tflite",
        "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
        "blazeface_short_range.pt",
    ),
    "facemesh": Source(
        "mediapipe/modules/face_landmark/face_landmark.tflite",
        "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
        "face_mesh.pt",
    ),
    "iris": Source(
        "mediapipe/modules/iris_landmark/iris_landmark.tflite",
        "d1744d2a09c25f501d39eba4faff47e53ecca8852c5ce19bce8eeac39357521f",
        "iris_landmark.pt",
    ),
    "blazeface_full_range": Source(
        "mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite",
        "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1",
        "blazeface_full_range.pt",
    ),
}

# --------------------------------------------------------------------------------------------
# A minimal flatbuffer reader for the parts of the TFLite schema used here.
# Field ids (tensorflow/lite/schema/schema.fbs):
#   Model: 1 operator_codes, 2 subgraphs, 4 buffers
#   OperatorCode: 0 deprecated_builtin_code (int8), 3 builtin_code (int32)
#   SubGraph: 0 tensors, 3 operators
#   Tensor: 0 shape, 1 type, 2 buffer, 3 name, 6 sparsity
#   SparsityParameters: 0 traversal_order, 1 block_map, 2 dim_metadata
#   DimensionMetadata: 0 format (0 DENSE, 1 SPARSE_CSR), 1 dense_size,
#     2/3 array_segments (union type, table), 4/5 array_indices (union type, table);
#     union types 1 Int32Vector, 2 Uint16Vector, 3 Uint8Vector, each a table whose field 0
#     is the values vector
#   Operator: 0 opcode_index, 1 inputs, 2 outputs, 4 builtin_options
#   Buffer: 0 data
#   Conv2DOptions: 0 padding, 1 stride_w, 2 stride_h
#   DepthwiseConv2DOptions: 0 padding, 1 stride_w, 2 stride_h, 3 depth_multiplier
# --------------------------------------------------------------------------------------------

OP_CONV_2D = 3
OP_DEPTHWISE_CONV_2D = 4
OP_DEQUANTIZE = 6
OP_PAD = 34
OP_PRELU = 54
OP_DENSIFY = 124
PADDING_NAMES = {0: "SAME", 1: "VALID"}
TENSOR_DTYPES: dict[int, str] = {0: "<f4", 1: "<f2", 2: "<i4"}  # FLOAT32, FLOAT16, INT32
SPARSE_INDEX_FORMATS = {1: "i", 2: "H", 3: "B"}


class Table:
    """A flatbuffer table: read-only access to scalar, vector and sub-table fields."""

    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf = buf
        self.pos = pos
        vtable = pos - struct.unpack_from("<i", buf, pos)[0]
        self._vt_size = struct.unpack_from("<H", buf, vtable)[0]
        self._vtable = vtable

    def _field(self, index: int) -> int:
        offset = 4 + 2 * index
        if offset >= self._vt_size:
            return 0
        rel: int = struct.unpack_from("<H", self.buf, self._vtable + offset)[0]
        return self.pos + rel if rel else 0

    def scalar(self, index: int, fmt: str, default: int = 0) -> int:
        """Return a scalar field, or ``default`` when absent."""
        at = self._field(index)
        return int(struct.unpack_from("<" + fmt, self.buf, at)[0]) if at else default

    def _indirect(self, at: int) -> int:
        return at + int(struct.unpack_from("<I", self.buf, at)[0])

    def table(self, index: int) -> Table | None:
        """Return a sub-table field."""
        at = self._field(index)
        return Table(self.buf, self._indirect(at)) if at else None

    def _vector(self, index: int) -> tuple[int, int]:
        at = self._field(index)
        if not at:
            return 0, 0
        start = self._indirect(at)
        return start + 4, int(struct.unpack_from("<I", self.buf, start)[0])

    def tables(self, index: int) -> Iterator[Table]:
        """Iterate over a vector of tables."""
        start, count = self._vector(index)
        for i in range(count):
            yield Table(self.buf, self._indirect(start + 4 * i))

    def ints(self, index: int) -> list[int]:
        """Return a vector of int32."""
        start, count = self._vector(index)
        return list(struct.unpack_from(f"<{count}i", self.buf, start))

    def raw(self, index: int) -> bytes:
        """Return a vector of bytes."""
        start, count = self._vector(index)
        return self.buf[start : start + count]

    def string(self, index: int) -> str:
        """Return a string field."""
        return self.raw(index).decode()

    def numbers(self, index: int, fmt: str) -> list[int]:
        """Return a vector of integers of struct format ``fmt`` (``"B"``, ``"H"``, ``"i"``)."""
        start, count = self._vector(index)
        return list(struct.unpack_from(f"<{count}{fmt}", self.buf, start))


@dataclass(frozen=True)
class TfliteLayer:
    """One parametrised op, keyed by the name of the tensor it produces."""

    op: int
    padding: str | None
    stride: int | None
    weights: tuple[np.ndarray, ...]  # conv: (kernel, bias); prelu: (alpha,)
    # (top, bottom, left, right) of an explicit PAD op feeding a convolution, else None.
    input_pad: tuple[int, int, int, int] | None = None


def densify(shape: list[int], values: np.ndarray, sparsity: Table) -> np.ndarray:
    """Expand a TFLite sparse constant (what the ``DENSIFY`` op does at run time).

    Only the layout the MediaPipe models use is supported: dimensions in their
    natural order, no blocks, all dense except the last, which is CSR (one
    segment per row of the flattened leading dimensions, then column indices).

    Raises:
        ValueError: For any other sparse layout, or inconsistent index arrays.
    """
    order = sparsity.ints(0)
    if order != list(range(len(shape))) or sparsity.ints(1):
        raise ValueError(f"unsupported sparse layout: traversal {order}, blocks")
    dims = list(sparsity.tables(2))
    formats = [d.scalar(0, "b") for d in dims]
    if formats != [0] * (len(shape) - 1) + [1]:
        raise ValueError(f"unsupported sparse dimension formats {formats}")
    if [d.scalar(1, "i") for d in dims[:-1]] != shape[:-1]:
        raise ValueError("dense dimension sizes do not match the tensor shape")
    last = dims[-1]

    def index_vector(type_field: int, table_field: int) -> np.ndarray:
        fmt = SPARSE_INDEX_FORMATS[last.scalar(type_field, "B")]
        table = last.table(table_field)
        assert table is not None
        return np.asarray(table.numbers(0, fmt), dtype=np.int64)

    segments = index_vector(2, 3)
    indices = index_vector(4, 5)
    rows = int(np.prod(shape[:-1]))
    if (
        len(segments) != rows + 1
        or segments[0] != 0
        or segments[-1] != len(indices)
        or len(indices) != len(values)
        or np.any(np.diff(segments) < 0)
        or (len(indices) and (indices.min() < 0 or indices.max() >= shape[-1]))
    ):
        raise ValueError("inconsistent sparse index arrays")
    dense = np.zeros((rows, shape[-1]), dtype=values.dtype)
    row_of = np.repeat(np.arange(rows), np.diff(segments))
    if np.unique(row_of * shape[-1] + indices).size != len(indices):
        raise ValueError("duplicate sparse indices")
    dense[row_of, indices] = values
    return dense.reshape(shape)


def read_tflite_layers(data: bytes, *, ordinal: bool = False) -> dict[str, TfliteLayer]:
    """Return every CONV_2D, DEPTHWISE_CONV_2D and PRELU op's constants.

    Keys are the names of the tensors the ops produce, or with ``ordinal`` ``"#k"``
    for the k-th such op in execution order (for graphs whose tensor names are
    long fused strings). Sparse constants (``DENSIFY``) are expanded; an explicit
    ``PAD`` op in front of a convolution is recorded in
    :attr:`TfliteLayer.input_pad`.
    """
    model = Table(data, int(struct.unpack_from("<I", data, 0)[0]))
    opcodes = [
        max(c.scalar(0, "b"), c.scalar(3, "i")) for c in model.tables(1)
    ]  # builtin_code supersedes deprecated_builtin_code above 127
    buffers = [b.raw(0) for b in model.tables(4)]
    (subgraph,) = list(model.tables(2))
    tensors = list(subgraph.tables(0))

    def constant(index: int) -> np.ndarray | None:
        t = tensors[index]
        blob = buffers[t.scalar(2, "I")]
        if not blob:
            return None
        dtype = TENSOR_DTYPES[t.scalar(1, "b")]
        flat = np.frombuffer(blob, dtype=dtype)
        sparsity = t.table(6)
        if sparsity is not None:
            return densify(t.ints(0), flat.copy(), sparsity)
        array: np.ndarray = flat.reshape(t.ints(0)).copy()
        return array

    name = [t.string(3) for t in tensors]
    values: dict[int, np.ndarray] = {}
    pads: dict[int, tuple[int, int, int, int]] = {}
    layers: dict[str, TfliteLayer] = {}
    for op in subgraph.tables(3):
        code = opcodes[op.scalar(0, "I")]
        inputs, outputs = op.ints(1), op.ints(2)
        if code in (OP_DEQUANTIZE, OP_DENSIFY):
            source = values.get(inputs[0])
            if source is None:
                source = constant(inputs[0])
            if source is not None:
                # float16 -> float32 is exact; this is all DEQUANTIZE does for fp16 weights.
                # DENSIFY's sparse input was expanded by constant() already.
                values[outputs[0]] = source if code == OP_DENSIFY else source.astype(np.float32)
            continue
        if code == OP_PAD:
            paddings = constant(inputs[1])
            if paddings is not None and paddings.shape == (4, 2):
                (n0, n1), (top, bottom), (left, right), (c0, c1) = paddings.tolist()
                if n0 == n1 == c0 == c1 == 0:
                    pads[outputs[0]] = (top, bottom, left, right)
            continue
        if code not in (OP_CONV_2D, OP_DEPTHWISE_CONV_2D, OP_PRELU):
            continue
        consts: list[np.ndarray] = []
        for i in inputs[1:]:
            array = values.get(i)
            if array is None:
                array = constant(i)
            if array is None:
                raise ValueError(f"op producing {name[outputs[0]]}: input {i} is not constant")
            consts.append(array.astype(np.float32))
        padding = stride = None
        if code != OP_PRELU:
            opts = op.table(4)
            assert opts is not None
            padding = PADDING_NAMES[opts.scalar(0, "b")]
            stride_w, stride_h = opts.scalar(1, "i"), opts.scalar(2, "i")
            if stride_w != stride_h:
                raise ValueError(f"{name[outputs[0]]}: non-square stride")
            stride = stride_h
            if code == OP_DEPTHWISE_CONV_2D and opts.scalar(3, "i", 1) != 1:
                raise ValueError(f"{name[outputs[0]]}: depth multiplier != 1")
        key = f"#{len(layers)}" if ordinal else name[outputs[0]]
        input_pad = pads.get(inputs[0]) if code != OP_PRELU else None
        layers[key] = TfliteLayer(code, padding, stride, tuple(consts), input_pad)
    return layers


# --------------------------------------------------------------------------------------------
# Layer maps: torch module path -> TFLite output tensor name.
# --------------------------------------------------------------------------------------------


def _suffix(i: int) -> str:
    # Keras names the first layer of a kind "conv2d", then "conv2d_1", "conv2d_2", ...
    return f"_{i}" if i else ""


def blazeface_layers() -> list[tuple[str, str]]:
    """BlazeFace: stem ``conv2d``; block i: ``depthwise_conv2d[_i]`` + ``conv2d_{i+1}``."""
    pairs = [("stem", "conv2d")]
    for i in range(16):
        pairs += [
            (f"blocks.{i}.depthwise", f"depthwise_conv2d{_suffix(i)}"),
            (f"blocks.{i}.pointwise", f"conv2d_{i + 1}"),
        ]
    pairs += [
        ("cls_stride8", "classificator_8"),
        ("reg_stride8", "regressor_8"),
        ("cls_stride16", "classificator_16"),
        ("reg_stride16", "regressor_16"),
    ]
    return pairs


def facemesh_layers() -> list[tuple[str, str]]:
    """Face Mesh: sequential names in the trunk and landmark head, a later run in the flag head."""
    pairs = [("stem", "conv2d_1"), ("stem_act", "p_re_lu_1")]

    def block(prefix: str, dw: int, conv: int, prelu: int) -> list[tuple[str, str]]:
        return [
            (f"{prefix}.depthwise", f"depthwise_conv2d_{dw}"),
            (f"{prefix}.pointwise", f"conv2d_{conv}"),
            (f"{prefix}.act", f"p_re_lu_{prelu}"),
        ]

    for i in range(14):
        pairs += block(f"trunk.{i}", i + 1, i + 2, i + 2)
    for i in range(3):
        pairs += block(f"mesh_blocks.{i}", 15 + i, 16 + i, 16 + i)
    pairs += [("mesh_proj", "conv2d_19"), ("mesh_proj_act", "p_re_lu_19")]
    pairs += block("mesh_block", 18, 20, 20)
    pairs += [("mesh_out", "conv2d_21")]
    pairs += block("flag_block_in", 23, 28, 26)
    pairs += [("flag_proj", "conv2d_29"), ("flag_proj_act", "p_re_lu_27")]
    pairs += block("flag_block", 24, 30, 28)
    pairs += [("flag_out", "conv2d_31")]
    return pairs


def iris_layers() -> list[tuple[str, str]]:
    """Iris: block j uses ``conv2d_{2j+1}``, ``depthwise_conv2d[_j]``, ``conv2d_{2j+2}``.

    Blocks 0-9 are the trunk and 10-17 the contour branch (Keras numbering runs
    on); the iris branch's 8 blocks were numbered after them (``conv2d_37`` on,
    ``depthwise_conv2d_18`` on).
    """
    pairs = [("stem", "conv2d"), ("stem_act", "p_re_lu")]

    def block(prefix: str, conv: int, dw: int) -> list[tuple[str, str]]:
        return [
            (f"{prefix}.reduce", f"conv2d_{conv}"),
            (f"{prefix}.reduce_act", f"p_re_lu_{conv}"),
            (f"{prefix}.depthwise", f"depthwise_conv2d{_suffix(dw)}"),
            (f"{prefix}.expand", f"conv2d_{conv + 1}"),
            (f"{prefix}.act", f"p_re_lu_{conv + 1}"),
        ]

    for j in range(10):
        pairs += block(f"trunk.{j}", 2 * j + 1, j)
    for k in range(8):
        pairs += block(f"contour_blocks.{k}", 21 + 2 * k, 10 + k)
        pairs += block(f"iris_blocks.{k}", 37 + 2 * k, 18 + k)
    pairs += [
        ("contour_out", "conv_eyes_contours_and_brows"),
        ("iris_out", "conv_iris"),
    ]
    return pairs


def full_range_layers() -> list[tuple[str, str]]:
    """BlazeFace full range, by op order (``"#k"``: the k-th conv op the graph runs).

    The graph's tensor names are fused strings of unrelated Keras layer names, so
    this map lists the module's convolutions in the order the TFLite graph runs
    them: each projection to the top-down path right after the stage it reads,
    before that stage's stride-2 block. Shapes, strides and padding are checked
    per layer when the weights are copied.
    """
    paths = ["stem"]

    def blocks(prefix: str, count: int) -> list[str]:
        return [
            f"{prefix}.{i}.{conv}" for i in range(count) for conv in ("dw1", "pw1", "dw2", "pw2")
        ]

    paths += blocks("stages.0", STAGES[0][2])
    for i in range(4):
        if i >= 1:
            paths.append(f"lateral.{i - 1}")
        paths += [f"down.{i}.{conv}" for conv in ("dw1", "pw1", "dw2", "pw2")]
        paths += blocks(f"stages.{i + 1}", STAGES[i + 1][2])
    for i, (_, _, count) in enumerate(TOP_DOWN):
        paths.append(f"top.{i}")
        paths += blocks(f"top_down.{i}", count)
    paths += ["cls.proj", "cls.depthwise", "reg.proj", "reg.depthwise"]
    return [(path, f"#{k}") for k, path in enumerate(paths)]


MODELS: dict[str, tuple[Callable[[], nn.Module], Callable[[], list[tuple[str, str]]]]] = {
    "blazeface": (BlazeFace, blazeface_layers),
    "facemesh": (FaceMesh, facemesh_layers),
    "iris": (IrisLandmark, iris_layers),
    "blazeface_full_range": (BlazeFaceFullRange, full_range_layers),
}
#: Models whose layer maps name ops by execution order rather than output tensor.
ORDINAL_MODELS = frozenset({"blazeface_full_range"})


def _check_geometry(path: str, module: nn.Conv2d, layer: TfliteLayer) -> None:
    stride = module.stride[0]
    if layer.stride != stride:
        raise ValueError(f"{path}: TFLite stride {layer.stride} != module stride {stride}")
    kernel = module.kernel_size[0]
    # Total (left, right, top, bottom) padding on both sides. SAME on an input divisible by
    # the stride pads same_pad() (nothing when kernel <= stride); an explicit PAD op in
    # front of the op adds to it. The module must pad exactly the same.
    graph = list(same_pad(kernel, stride)) if layer.padding == "SAME" else [0, 0, 0, 0]
    if layer.input_pad is not None:
        top, bottom, left, right = layer.input_pad
        graph = [a + b for a, b in zip(graph, (left, right, top, bottom), strict=True)]
    if isinstance(module, SameConv2d):
        ours = list(same_pad(kernel, stride))
    else:
        pad = module.padding
        if isinstance(pad, str) or pad[0] != pad[1]:
            raise ValueError(f"{path}: module padding {pad} is not a symmetric pixel count")
        ours = [pad[0]] * 4
    if graph != ours:
        raise ValueError(f"{path}: TFLite padding {graph} does not match the module's {ours}")


def tflite_to_state_dict(name: str, data: bytes) -> OrderedDict[str, torch.Tensor]:
    """Map one TFLite model's constants onto its torch module's state dict (strictly)."""
    build, layer_map = MODELS[name]
    model = build()
    modules = dict(model.named_modules())
    layers = read_tflite_layers(data, ordinal=name in ORDINAL_MODELS)
    arrays: dict[str, np.ndarray] = {}
    used: set[str] = set()
    for path, tensor_name in layer_map():
        layer = layers[tensor_name]
        if tensor_name in used:
            raise ValueError(f"{tensor_name} mapped twice")
        used.add(tensor_name)
        module = modules[path]
        if isinstance(module, nn.PReLU):
            if layer.op != OP_PRELU:
                raise ValueError(f"{path}: {tensor_name} is not a PRELU")
            arrays[f"{path}.weight"] = layer.weights[0].reshape(-1)
            continue
        if not isinstance(module, nn.Conv2d):
            raise TypeError(f"{path}: unexpected module {type(module).__name__}")
        _check_geometry(path, module, layer)
        kernel, bias = layer.weights
        if layer.op == OP_DEPTHWISE_CONV_2D:
            # TFLite depthwise (1, kh, kw, C) -> torch grouped (C, 1, kh, kw).
            if module.groups != module.in_channels:
                raise ValueError(f"{path}: {tensor_name} is depthwise, the module is not")
            weight = kernel.transpose(3, 0, 1, 2)
        else:
            # TFLite conv (O, kh, kw, I) -> torch (O, I, kh, kw).
            if module.groups != 1:
                raise ValueError(f"{path}: {tensor_name} is a full conv, the module is grouped")
            weight = kernel.transpose(0, 3, 1, 2)
        arrays[f"{path}.weight"] = weight
        arrays[f"{path}.bias"] = bias
    unused = sorted(set(layers) - used)
    if unused:
        raise ValueError(f"{name}: TFLite layers not mapped: {unused}")

    state: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, ref in model.state_dict().items():
        value = torch.from_numpy(np.ascontiguousarray(arrays.pop(key), dtype=np.float32)).clone()
        if value.shape != ref.shape:
            raise ValueError(f"{key}: converted shape {tuple(value.shape)} != {tuple(ref.shape)}")
        state[key] = value
    if arrays:
        raise ValueError(f"{name}: converted tensors without a module slot: {sorted(arrays)}")
    model.load_state_dict(state, strict=True)
    return state


def serialize(state: OrderedDict[str, torch.Tensor]) -> bytes:
    """Return ``torch.save`` bytes that do not depend on the output file name."""
    buffer = io.BytesIO()
    # Saving to a buffer fixes the archive's inner folder name ("archive"), which
    # torch.save would otherwise take from the destination file name.
    torch.save(state, buffer)
    return buffer.getvalue()


def read_sources(path: Path) -> dict[str, bytes]:
    """Return the four TFLite files from the wheel or a directory, sha256-checked."""
    out: dict[str, bytes] = {}
    for name, source in SOURCES.items():
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as wheel:
                data = wheel.read(source.member)
        else:
            candidates = [path / source.member, path / Path(source.member).name]
            found = next((c for c in candidates if c.is_file()), None)
            if found is None:
                raise FileNotFoundError(f"{Path(source.member).name} not found under {path}")
            data = found.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != source.sha256:
            raise ValueError(f"{source.member}: sha256 {digest} != expected {source.sha256}")
        out[name] = data
    return out


# --------------------------------------------------------------------------------------------
# Golden reference outputs.
# --------------------------------------------------------------------------------------------

#: Runs inside the reference venv: {model: tflite path} + inputs .npz -> outputs .npz.
_REFERENCE_RUNNER = r"""
import json, sys
import numpy as np
try:
    from ai_edge_litert.interpreter import Interpreter
except ImportError:
    try:
        from tflite_runtime.interpreter import Interpreter
    except ImportError:
        from tensorflow.lite import Interpreter
models = json.loads(sys.argv[1])
inputs = np.load(sys.argv[2])
out = {}
for name, path in models.items():
    interp = Interpreter(model_path=path, num_threads=1)
    interp.allocate_tensors()
    (inp,) = interp.get_input_details()
    x = inputs[name].astype(np.float32)
    x = x / 127.5 - 1.0 if name.startswith("blazeface") else x / 255.0
    results = []
    for item in x:
        interp.set_tensor(inp["index"], item[None].astype(np.float32))
        interp.invoke()
        results.append([interp.get_tensor(d["index"])[0] for d in interp.get_output_details()])
    for k in range(len(results[0])):
        out[f"{name}_out{k}"] = np.stack([r[k] for r in results])
np.savez(sys.argv[3], **out)
"""


#: Runs inside a venv with the full mediapipe 0.10.21: end-to-end results of its legacy
#: solutions on the astronaut and the room scene (.npz in -> .npz out), all in image pixels.
_MEDIAPIPE_RUNNER = r"""
import sys
import numpy as np
import mediapipe as mp
images = np.load(sys.argv[1])
image = images["image"]
h, w = image.shape[:2]
out = {}
with mp.solutions.face_detection.FaceDetection(model_selection=0) as fd:
    (det,) = fd.process(image).detections
    box = det.location_data.relative_bounding_box
    out["mediapipe_detection"] = np.array(
        [box.xmin * w, box.ymin * h, box.width * w, box.height * h, det.score[0]], np.float32)
    out["mediapipe_keypoints"] = np.array(
        [[p.x * w, p.y * h] for p in det.location_data.relative_keypoints], np.float32)
for refine, key in ((False, "mediapipe_mesh"), (True, "mediapipe_mesh_refined")):
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=refine) as fm:
        (face,) = fm.process(image).multi_face_landmarks
        out[key] = np.array([[p.x * w, p.y * h, p.z * w] for p in face.landmark], np.float32)
room = images["room"]
h, w = room.shape[:2]
with mp.solutions.face_detection.FaceDetection(
    model_selection=1, min_detection_confidence=0.5
) as fd:
    dets = fd.process(room).detections
    boxes = [d.location_data.relative_bounding_box for d in dets]
    out["mediapipe_full_range_room_detections"] = np.array(
        [[b.xmin * w, b.ymin * h, b.width * w, b.height * h, d.score[0]]
         for b, d in zip(boxes, dets)], np.float32)
    out["mediapipe_full_range_room_keypoints"] = np.array(
        [[[p.x * w, p.y * h] for p in d.location_data.relative_keypoints] for d in dets],
        np.float32)
np.savez(sys.argv[2], **out)
"""


def run_mediapipe(python: str, image: np.ndarray, room: np.ndarray) -> dict[str, np.ndarray]:
    """Run MediaPipe's own face detection and face mesh in another Python.

    The short-range detector and the mesh read ``image`` (the astronaut), the
    full-range detector ``room`` (the room scene).
    """
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(os.path.join(tmp, "in.npz"), image=image, room=room)
        out_path = os.path.join(tmp, "out.npz")
        subprocess.run(
            [python, "-c", _MEDIAPIPE_RUNNER, os.path.join(tmp, "in.npz"), out_path], check=True
        )
        with np.load(out_path) as loaded:
            return {k: loaded[k] for k in loaded.files}


def astronaut() -> np.ndarray:
    """The golden test image: ``skimage.data.astronaut()``, 512 x 512 RGB."""
    from skimage import data as skdata

    image: np.ndarray = np.ascontiguousarray(skdata.astronaut())  # type: ignore[no-untyped-call]
    return image


#: ``(x, y, w, h)`` of the face BlazeFace short range finds in each source image.
SOURCE_FACES: dict[str, tuple[int, int, int, int]] = {
    "astronaut": (177, 82, 96, 97),
    "grace_hopper": (171, 146, 195, 196),
}
#: The room scene's people: source, mirrored, face width and the face box's left and top
#: in the 640 x 480 frame.
ROOM_PEOPLE: tuple[tuple[str, bool, int, int, int], ...] = (
    ("grace_hopper", False, 96, 60, 140),
    ("astronaut", False, 64, 300, 110),
    ("astronaut", True, 44, 520, 190),
)
ROOM_SIZE = (640, 480)


def face_source(name: str) -> np.ndarray:
    """A photo with one large face: ``astronaut`` (scikit-image) or ``grace_hopper``.

    Grace Hopper's portrait ships with matplotlib (``sample_data/grace_hopper.jpg``,
    a US Navy photo in the public domain); both load offline.
    """
    if name == "astronaut":
        return astronaut()
    import matplotlib.cbook as cbook
    from PIL import Image

    with Image.open(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))) as photo:
        return np.ascontiguousarray(np.asarray(photo.convert("RGB")))


def room_scene() -> tuple[np.ndarray, list[tuple[float, float, float, float]]]:
    """A 640 x 480 meeting-room frame with three people, and their face boxes.

    Heads (face plus hair and shoulders) are cut from :func:`face_source` photos,
    scaled so that their faces are 96, 64 and 44 px wide, and blended with a
    feathered ellipse onto scikit-image's ``coffee`` (a table top) at
    :data:`ROOM_PEOPLE`. Deterministic: the same pixels on every run.

    Returns:
        ``(image, boxes)``: H x W x 3 uint8 RGB and each face's ``(x, y, w, h)`` in
        frame pixels, in :data:`ROOM_PEOPLE` order.
    """
    from skimage import data as skdata

    width, height = ROOM_SIZE
    coffee = np.asarray(skdata.coffee())  # type: ignore[no-untyped-call]
    frame = cv2.resize(coffee, (720, 480), interpolation=cv2.INTER_AREA)[:, 40:680]
    canvas = frame.astype(np.float32)
    boxes = []
    for name, mirrored, face_width, left, top in ROOM_PEOPLE:
        photo = face_source(name)
        fx, fy, fw, fh = SOURCE_FACES[name]
        x0, x1 = max(0, round(fx - 0.7 * fw)), min(photo.shape[1], round(fx + 1.7 * fw))
        y0, y1 = max(0, round(fy - 0.6 * fh)), min(photo.shape[0], round(fy + 1.9 * fh))
        head = photo[y0:y1, x0:x1]
        face_x = fx - x0
        if mirrored:
            head = head[:, ::-1]
            face_x = (x1 - x0) - face_x - fw
        scale = face_width / fw
        size = (round(head.shape[1] * scale), round(head.shape[0] * scale))
        head = cv2.resize(np.ascontiguousarray(head), size, interpolation=cv2.INTER_AREA)
        rows, cols = head.shape[:2]
        yy, xx = np.mgrid[0:rows, 0:cols]
        radius = np.hypot((xx + 0.5 - cols / 2) / (cols / 2), (yy + 0.5 - rows / 2) / (rows / 2))
        alpha = np.clip((1 - radius) / 0.12, 0, 1)[..., None]
        px, py = round(left - face_x * scale), round(top - (fy - y0) * scale)
        cx0, cy0 = max(0, px), max(0, py)
        cx1, cy1 = min(width, px + cols), min(height, py + rows)
        a = alpha[cy0 - py : cy1 - py, cx0 - px : cx1 - px]
        patch = head[cy0 - py : cy1 - py, cx0 - px : cx1 - px].astype(np.float32)
        canvas[cy0:cy1, cx0:cx1] = canvas[cy0:cy1, cx0:cx1] * (1 - a) + patch * a
        boxes.append((float(left), float(top), float(face_width), fh * scale))
    return np.clip(np.round(canvas), 0, 255).astype(np.uint8), boxes


def golden_inputs(landmarker: FaceLandmarker) -> dict[str, np.ndarray]:
    """Preprocess the golden images exactly as the pipeline does; return uint8 NHWC net inputs.

    The astronaut feeds the short-range detector, mesh and iris; the room scene's
    whole-frame window feeds the full-range detector. ``landmarker`` must not tile
    (``min_face_px=None``), so its detection is MediaPipe's.
    """
    image = astronaut()
    height, width = image.shape[:2]
    detector_in = geometry.crop(image, geometry.letterbox_roi(height, width), 128, "zero")
    (detections,) = landmarker.detect([image])
    if len(detections) != 1:
        raise RuntimeError(f"expected one face in the astronaut, found {len(detections)}")
    roi = detections[0].roi
    mesh_in = geometry.crop(image, roi, 192, "replicate")
    raw, _ = landmarker.run_mesh(mesh_in[None])
    eyes_in, _ = eye_crops(image, geometry.project(raw[0], roi, 192))
    room, _ = room_scene()
    full_range_in = geometry.crop(room, geometry.letterbox_roi(*room.shape[:2]), 192, "zero")
    return {
        "blazeface": detector_in[None],
        "facemesh": mesh_in[None],
        "iris": eyes_in,
        "blazeface_full_range": full_range_in[None],
    }


def run_reference(
    python: str, tflite: dict[str, bytes], inputs: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Run the TFLite interpreter of another Python on ``inputs``; return its outputs."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name, data in tflite.items():
            paths[name] = os.path.join(tmp, f"{name}.tflite")
            Path(paths[name]).write_bytes(data)
        np.savez(os.path.join(tmp, "in.npz"), **inputs)  # type: ignore[arg-type]  # stub quirk
        out_path = os.path.join(tmp, "out.npz")
        subprocess.run(
            [
                python,
                "-c",
                _REFERENCE_RUNNER,
                json.dumps(paths),
                os.path.join(tmp, "in.npz"),
                out_path,
            ],
            check=True,
        )
        with np.load(out_path) as loaded:
            return {k: loaded[k] for k in loaded.files}


#: The golden file keeps the full-range regressors of every 8th anchor and of the anchors
#: near faces (logit above -3), not all 2304 x 16 (136 KB); all logits are kept.
FULL_RANGE_GOLDEN_STRIDE = 8
FULL_RANGE_GOLDEN_MIN_LOGIT = -3.0


def full_range_golden_anchors(logits: np.ndarray) -> np.ndarray:
    """Indices of the anchors whose full-range regressors the golden file keeps."""
    near_face = (logits > FULL_RANGE_GOLDEN_MIN_LOGIT).any(axis=0)
    sampled = np.arange(logits.shape[1]) % FULL_RANGE_GOLDEN_STRIDE == 0
    return np.flatnonzero(near_face | sampled).astype(np.int32)


def reference_to_golden(raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Name and reshape interpreter outputs like the torch modules return them."""
    full_range_logits = raw["blazeface_full_range_out1"].reshape(-1, 2304).astype(np.float32)
    anchors = full_range_golden_anchors(full_range_logits)
    return {
        # TFLite output order: regressors (n, 896, 16), classificators (n, 896, 1).
        "blazeface_regressors": raw["blazeface_out0"].astype(np.float32),
        "blazeface_logits": raw["blazeface_out1"].reshape(-1, 896).astype(np.float32),
        # conv2d_21 (n, 1, 1, 1404), conv2d_31 (n, 1, 1, 1).
        "facemesh_landmarks": raw["facemesh_out0"].reshape(-1, 468, 3).astype(np.float32),
        "facemesh_flag": raw["facemesh_out1"].reshape(-1).astype(np.float32),
        # output_eyes_contours_and_brows (n, 213), output_iris (n, 15).
        "iris_contours": raw["iris_out0"].reshape(-1, 71, 3).astype(np.float32),
        "iris_iris": raw["iris_out1"].reshape(-1, 5, 3).astype(np.float32),
        # Identity (n, 2304, 16) at the kept anchors, Identity_1 (n, 2304, 1).
        "blazeface_full_range_anchors": anchors,
        "blazeface_full_range_regressors": raw["blazeface_full_range_out0"][:, anchors].astype(
            np.float32
        ),
        "blazeface_full_range_logits": full_range_logits,
    }


def write_golden(path: Path, golden: dict[str, np.ndarray]) -> bytes:
    """Write the golden ``.npz``: network inputs as PNG bytes, outputs as float32 arrays.

    Inputs are stored as lossless PNGs (``input_<net>_<i>``, uint8 byte arrays), which
    halves them against deflated raw arrays and keeps the file under 200 KB. Zip
    timestamps are fixed (``np.savez`` uses the clock), so reruns give the same bytes.
    """
    arrays: dict[str, np.ndarray] = {}
    for key, value in golden.items():
        if key.startswith("input_"):
            for i, image in enumerate(value):
                # cv2 treats the array as BGR; it round-trips unchanged either way.
                ok, png = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 9])
                assert ok
                arrays[f"{key}_{i}"] = png.reshape(-1)
        else:
            arrays[key] = value
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


def compare(
    landmarker: FaceLandmarker, golden: dict[str, np.ndarray]
) -> dict[str, tuple[float, float]]:
    """Return ``{output: (max abs diff, max abs diff / max abs reference)}`` torch vs TFLite."""
    ours = dict(
        zip(
            ("blazeface_regressors", "blazeface_logits"),
            landmarker.run_detector(golden["input_blazeface"]),
            strict=True,
        )
    )
    ours.update(
        zip(
            ("facemesh_landmarks", "facemesh_flag"),
            landmarker.run_mesh(golden["input_facemesh"]),
            strict=True,
        )
    )
    ours.update(
        zip(("iris_contours", "iris_iris"), landmarker.run_iris(golden["input_iris"]), strict=True)
    )
    full_range = FaceLandmarker(
        "cpu", detector_model="full_range", min_face_px=None, weights_dir=landmarker.weights_dir
    )
    regressors, logits = full_range.run_detector(golden["input_blazeface_full_range"])
    ours["blazeface_full_range_regressors"] = regressors[:, golden["blazeface_full_range_anchors"]]
    ours["blazeface_full_range_logits"] = logits
    stats = {}
    for key, value in ours.items():
        ref = golden[key]
        diff = float(np.abs(value - ref).max())
        stats[key] = (diff, diff / float(np.abs(ref).max()))
    return stats


def compare_pipeline(landmarker: FaceLandmarker, golden: dict[str, np.ndarray]) -> dict[str, float]:
    """Return max abs pixel differences between our pipeline and MediaPipe's, end to end."""
    image = astronaut()
    (det,) = landmarker.detect([image])[0]
    (face,) = landmarker.process([image])[0]
    (face468,) = FaceLandmarker(
        "cpu", min_face_px=None, with_iris=False, weights_dir=landmarker.weights_dir
    ).process([image])[0]
    refined = golden["mediapipe_mesh_refined"]
    full_range = FaceLandmarker(
        "cpu",
        detector_model="full_range",
        min_face_px=None,
        min_score=0.5,  # the legacy solution's min_detection_confidence default
        weights_dir=landmarker.weights_dir,
    )
    room_dets = full_range.detect([room_scene()[0]])[0]
    reference = golden["mediapipe_full_range_room_keypoints"]
    if len(room_dets) != len(reference):
        raise RuntimeError(f"full range: {len(room_dets)} faces, MediaPipe {len(reference)}")
    return {
        "full-range detection keypoints (room scene)": float(
            np.abs(np.stack([d.keypoints for d in room_dets]) - reference).max()
        ),
        "detection keypoints": float(np.abs(det.keypoints - golden["mediapipe_keypoints"]).max()),
        "mesh x, y, z (468)": float(np.abs(face468.landmarks - golden["mediapipe_mesh"]).max()),
        "iris centres vs refine_landmarks mesh (x, y)": float(
            np.abs(face.landmarks[[468, 473], :2] - refined[[468, 473], :2]).max()
        ),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the conversion; return the process exit status."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("source", type=Path, help="mediapipe-0.10.21 wheel or a folder of .tflite")
    parser.add_argument("--out-dir", type=Path, default=WEIGHTS_DIR)
    parser.add_argument("--golden", type=Path, help=f"write golden outputs (e.g. {GOLDEN_DEFAULT})")
    parser.add_argument(
        "--reference-python", help="Python with a TFLite interpreter (for --golden)"
    )
    parser.add_argument(
        "--mediapipe-python",
        help="Python with mediapipe 0.10.21 (optional, for --golden): also store MediaPipe's "
        "own end-to-end detection and mesh of the astronaut",
    )
    args = parser.parse_args(argv)
    if args.golden and not args.reference_python:
        parser.error("--golden needs --reference-python")

    tflite = read_sources(args.source)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, data in tflite.items():
        payload = serialize(tflite_to_state_dict(name, data))
        out = args.out_dir / SOURCES[name].output
        out.write_bytes(payload)
        print(f"{hashlib.sha256(payload).hexdigest()}  {out}  ({len(payload):,} bytes)")

    if args.golden:
        torch.set_num_threads(1)
        landmarker = FaceLandmarker("cpu", min_face_px=None, weights_dir=args.out_dir)
        inputs = golden_inputs(landmarker)
        golden = reference_to_golden(run_reference(args.reference_python, tflite, inputs))
        golden.update({f"input_{k}": v for k, v in inputs.items()})
        if args.mediapipe_python:
            golden.update(run_mediapipe(args.mediapipe_python, astronaut(), room_scene()[0]))
        payload = write_golden(args.golden, golden)
        print(f"{hashlib.sha256(payload).hexdigest()}  {args.golden}  ({len(payload):,} bytes)")
        for key, (diff, rel) in compare(landmarker, golden).items():
            print(f"torch vs TFLite {key}: max abs diff {diff:.3g} ({rel:.3g} of max |ref|)")
        if args.mediapipe_python:
            for key, diff in compare_pipeline(landmarker, golden).items():
                print(f"pipeline vs MediaPipe {key}: max abs diff {diff:.3g} px")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
