"""Export the face networks from their shipped torch weights to the ONNX files we ship.

Usage::

    pip install -c constraints.txt -e '.[onnx-export]'   # onnx + onnxscript, build time only
    python scripts/export_onnx_models.py [--check]

Reads the shipped state dicts (``analyzers/face/mediapipe/weights/*.pt``,
``analyzers/face/weights/mini_xception_fer2013.pt``), builds each torch module, and
writes ``<name>.onnx`` next to its ``.pt`` with torch's ``torch.export``-based
exporter (``dynamo=True``; the TorchScript one is deprecated), batch dimension
dynamic, opset :data:`OPSET`. Nothing is downloaded. The run time only needs
onnxruntime; onnx and onnxscript are needed here only.

The MediaPipe networks are exported in an **export form** (:func:`export_form`) that
computes the same function with operators ONNX Runtime's CPU provider keeps in its
blocked NCHWc layout from end to end, which makes them 1.5-2x faster there
(measured, see README ``bench faces``); the torch modules are unchanged:

- ``PReLU(x)`` becomes ``x + (1 - alpha) * relu(-x)``, written as two depthwise 1x1
  convolutions (weights -1, then ``1 - alpha``) with a ReLU between them and the
  input added after: ORT fuses the ReLU and the add into the convolutions. Its
  ``PRelu`` kernel alone took half of the face mesh's time and forced a layout
  change around every activation.
- A block that widens its input (shortcut zero-padded in channels) splits its 1x1
  projection in two: ``cat(project_first_c(d) + shortcut, project_rest(d))``. A
  channel ``Pad`` would leave the blocked layout for the rest of the network.
- BlazeFace short range's blocks are widened to multiples of :data:`CHANNEL_BLOCK`
  channels (28 -> 32, 36 -> 40, 42 -> 48) with zero weights and biases: the extra
  channels stay exactly 0 through every block and nothing reads them. The blocked
  layout needs whole blocks of channels; 1.43 -> 1.10 ms per window measured.

The rewrites are exact up to float rounding (``x + (1 - a) * -x`` for ``a * x``);
the script checks every file against the torch module before writing it, and
``tests/test_onnx_runtime.py`` checks the shipped files against torch and against
the stored TFLite outputs.

Initialisers that are exactly representable in float16 (every weight of the
BlazeFace and Face Mesh models, which MediaPipe stores as float16) are stored as
float16 behind a ``Cast`` to float32; ONNX Runtime folds the casts when it loads the
file, so the network computes in float32 with the same values. The iris and
mini-Xception weights are float32 originals and stay float32.

``--check`` exports to memory and compares with the shipped files byte for byte
instead of writing them. Output files are deterministic for a given torch, onnx and
onnxscript version (see the weights' ``PROVENANCE.md``); their sha256 is printed.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812  (the conventional torch alias)
from torch import nn

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from analyzers.face.mediapipe import blazeface, blazeface_full_range, facemesh, iris  # noqa: E402
from analyzers.face.mediapipe.blocks import (  # noqa: E402
    BlazeBlock,
    BottleneckBlock,
    load_state_dict_file,
)
from analyzers.face.mediapipe.landmarker import (  # noqa: E402
    BLAZEFACE_FULL_RANGE_WEIGHTS,
    BLAZEFACE_WEIGHTS,
    FACE_MESH_WEIGHTS,
    IRIS_WEIGHTS,
    WEIGHTS_DIR,
)
from analyzers.face.mini_xception import MiniXception  # noqa: E402
from analyzers.face.runtime import onnx_path  # noqa: E402

#: ONNX opset of the exported graphs (onnxruntime 1.18, the oldest we accept, runs 20).
OPSET = 20
#: Largest allowed difference between an exported file and its torch module on the
#: check batch, relative to the largest torch output (measured: <= 1.1e-6).
CHECK_TOLERANCE = 1e-5
#: Batch size of the example input; the batch dimension is exported as dynamic.
EXAMPLE_BATCH = 2
#: ONNX Runtime's NCHWc block on AVX2 CPUs (AVX-512 uses 16: still correct there, with
#: some of the layout changes back).
CHANNEL_BLOCK = 8
FER_WEIGHTS = REPO_ROOT / "analyzers" / "face" / "weights" / "mini_xception_fer2013.pt"


@dataclass(frozen=True, slots=True)
class Network:
    """One network to export: how to build it, its weights, its input and output names."""

    build: Callable[[], nn.Module]
    weights: Path
    input_shape: tuple[int, int, int]
    outputs: tuple[str, ...]
    #: Input range of the example batch (the detectors read [-1, 1], the others [0, 1]).
    signed: bool


NETWORKS: dict[str, Network] = {
    "blazeface_short_range": Network(
        blazeface.BlazeFace,
        WEIGHTS_DIR / BLAZEFACE_WEIGHTS,
        (3, blazeface.INPUT_SIZE, blazeface.INPUT_SIZE),
        ("regressors", "logits"),
        signed=True,
    ),
    "blazeface_full_range": Network(
        blazeface_full_range.BlazeFaceFullRange,
        WEIGHTS_DIR / BLAZEFACE_FULL_RANGE_WEIGHTS,
        (3, blazeface_full_range.INPUT_SIZE, blazeface_full_range.INPUT_SIZE),
        ("regressors", "logits"),
        signed=True,
    ),
    "face_mesh": Network(
        facemesh.FaceMesh,
        WEIGHTS_DIR / FACE_MESH_WEIGHTS,
        (3, facemesh.INPUT_SIZE, facemesh.INPUT_SIZE),
        ("landmarks", "presence_logits"),
        signed=False,
    ),
    "iris_landmark": Network(
        iris.IrisLandmark,
        WEIGHTS_DIR / IRIS_WEIGHTS,
        (3, iris.INPUT_SIZE, iris.INPUT_SIZE),
        ("contours", "irises"),
        signed=False,
    ),
    "mini_xception_fer2013": Network(
        MiniXception, FER_WEIGHTS, (1, 64, 64), ("logits",), signed=True
    ),
}


class ConvPReLU(nn.Module):
    """``PReLU`` as ``x + (1 - alpha) * relu(-x)``: two depthwise 1x1 convolutions.

    For ``x >= 0`` the second term is 0; for ``x < 0`` it is ``x - (1 - alpha) x =
    alpha x``. ONNX Runtime fuses the ReLU into the first convolution and the add
    into the second.
    """

    def __init__(self, prelu: nn.PReLU) -> None:
        super().__init__()
        alpha = prelu.weight.detach().reshape(-1)
        channels = alpha.numel()
        self.negate = nn.Conv2d(channels, channels, 1, groups=channels, bias=False)
        self.scale = nn.Conv2d(channels, channels, 1, groups=channels, bias=False)
        with torch.no_grad():
            self.negate.weight.fill_(-1.0)
            self.scale.weight.copy_((1.0 - alpha).reshape(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``prelu(x)``."""
        out: torch.Tensor = x + self.scale(F.relu(self.negate(x)))
        return out


def _activation(act: nn.Module) -> nn.Module:
    return ConvPReLU(act) if isinstance(act, nn.PReLU) else act


def _split_projection(conv: nn.Conv2d, first: int) -> tuple[nn.Conv2d, nn.Conv2d]:
    # A 1x1 convolution cut into its first `first` output channels and the rest.
    parts = []
    for sl in (slice(0, first), slice(first, conv.out_channels)):
        part = nn.Conv2d(conv.in_channels, sl.stop - sl.start, 1)
        with torch.no_grad():
            part.weight.copy_(conv.weight[sl])
            assert conv.bias is not None and part.bias is not None
            part.bias.copy_(conv.bias[sl])
        parts.append(part)
    return parts[0], parts[1]


class _Residual(nn.Module):
    """``act(h + shortcut(x))`` with the widening shortcut as a split projection.

    ``body`` computes everything up to the last 1x1 projection, ``project`` is that
    projection; ``stride`` 2 max-pools the shortcut.
    """

    def __init__(
        self, body: nn.Module, project: nn.Conv2d, in_channels: int, stride: int, act: nn.Module
    ) -> None:
        super().__init__()
        self.body = body
        self.stride = stride
        self.widens = project.out_channels > in_channels
        if self.widens:
            self.project_kept, self.project_new = _split_projection(project, in_channels)
        else:
            self.project = project
        self.act = _activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The block's output, as the torch module computes it."""
        d = self.body(x)
        shortcut = F.max_pool2d(x, 2) if self.stride == 2 else x
        if self.widens:
            h = torch.cat((self.project_kept(d) + shortcut, self.project_new(d)), dim=1)
        else:
            h = self.project(d) + shortcut
        out: torch.Tensor = self.act(h)
        return out


def _blaze_block(block: BlazeBlock) -> _Residual:
    return _Residual(
        block.depthwise, block.pointwise, block.depthwise.in_channels, block.stride, block.act
    )


def _bottleneck_block(block: BottleneckBlock) -> _Residual:
    body = nn.Sequential(block.reduce, _activation(block.reduce_act), block.depthwise)
    return _Residual(body, block.expand, block.reduce.in_channels, block.stride, block.act)


def widened_block(block: BlazeBlock, in_width: int) -> BlazeBlock:
    """``block`` reading ``in_width`` channels and writing a multiple of :data:`CHANNEL_BLOCK`.

    The input's channels past the block's own are zero; the new weights and biases
    are zero, so the extra output channels are zero too (ReLU keeps them so) and the
    real ones are computed from the real inputs only, as before.
    """
    c_in, c_out = block.depthwise.in_channels, block.pointwise.out_channels
    if in_width < c_in or not isinstance(block.act, nn.ReLU):
        raise ValueError("only ReLU blocks can be widened, never narrowed")
    width = max(-(-c_out // CHANNEL_BLOCK) * CHANNEL_BLOCK, in_width)
    wide = BlazeBlock(in_width, width, block.stride, "relu").eval()
    state = {k: torch.zeros_like(v) for k, v in wide.state_dict().items()}
    old = block.state_dict()
    state["depthwise.weight"][:c_in] = old["depthwise.weight"]
    state["depthwise.bias"][:c_in] = old["depthwise.bias"]
    state["pointwise.weight"][:c_out, :c_in] = old["pointwise.weight"]
    state["pointwise.bias"][:c_out] = old["pointwise.bias"]
    wide.load_state_dict(state, strict=True)
    return wide


def _widen_blazeface(model: blazeface.BlazeFace) -> None:
    # In place. The heads read blocks 10 and 15 (88 and 96 channels): already whole
    # blocks, so the widened channels never reach them.
    width = int(model.stem.out_channels)
    for i, block in enumerate(model.blocks):
        assert isinstance(block, BlazeBlock)
        model.blocks[i] = wide = widened_block(block, width)
        width = wide.pointwise.out_channels
        if i in (blazeface.STRIDE8_BLOCKS - 1, len(model.blocks) - 1):
            assert width == block.pointwise.out_channels, "a head would read the extra channels"


def export_form(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (NCHW, eval) that computes the same with ORT-friendly operators.

    Widens BlazeFace short range's blocks to whole :data:`CHANNEL_BLOCK` s, replaces
    every :class:`BlazeBlock` and :class:`BottleneckBlock` by a :class:`_Residual`
    and every other ``PReLU`` by :class:`ConvPReLU` (see the module docstring).
    Models without them (the full-range detector, mini-Xception) come back as plain
    copies.
    """
    out: nn.Module = copy.deepcopy(model).eval()
    out.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
    if isinstance(out, blazeface.BlazeFace):
        _widen_blazeface(out)

    def rewrite(parent: nn.Module) -> None:
        for name, child in parent.named_children():
            if isinstance(child, BlazeBlock):
                setattr(parent, name, _blaze_block(child))
            elif isinstance(child, BottleneckBlock):
                setattr(parent, name, _bottleneck_block(child))
            elif isinstance(child, nn.PReLU):
                setattr(parent, name, ConvPReLU(child))
            else:
                rewrite(child)

    rewrite(out)
    return out.eval()


def load_network(net: Network) -> nn.Module:
    """The torch module with its shipped weights, on the CPU, in eval mode."""
    model = net.build()
    load_state_dict_file(model, net.weights, torch.device("cpu"))
    return model


def example_input(net: Network, batch: int, seed: int = 0) -> torch.Tensor:
    """A random input batch in the network's range."""
    x = torch.rand((batch, *net.input_shape), generator=torch.Generator().manual_seed(seed))
    return x * 2.0 - 1.0 if net.signed else x


def export_bytes(net: Network) -> bytes:
    """The ONNX file of ``net``: exported, float16-compacted, checked against torch."""
    import onnx

    model = load_network(net)
    form = export_form(model)
    batch = torch.export.Dim("batch", min=1)
    with warnings.catch_warnings():
        # The exporter warns about torchvision ops it cannot register (not installed).
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            form,
            (example_input(net, EXAMPLE_BATCH),),
            dynamo=True,
            input_names=["input"],
            output_names=list(net.outputs),
            dynamic_shapes=({0: batch},),
            opset_version=OPSET,
            optimize=True,
            verbose=False,
        )
    assert program is not None
    proto = program.model_proto
    proto.producer_name = "meetmood scripts/export_onnx_models.py"
    proto.producer_version = ""
    strip_metadata(proto)
    compact_float16(proto)
    onnx.checker.check_model(proto, full_check=True)
    data: bytes = proto.SerializeToString(deterministic=True)
    check_against_torch(data, model, net)
    return data


def strip_metadata(proto: object) -> None:
    """Drop the exporter's per-node notes (source paths, stack traces, FX names).

    They hold this checkout's absolute paths, so files written elsewhere would differ;
    the graph, names and shapes are all kept.
    """
    graph = proto.graph  # type: ignore[attr-defined]
    del proto.metadata_props[:]  # type: ignore[attr-defined]
    del graph.metadata_props[:]
    for items in (graph.node, graph.initializer, graph.input, graph.output, graph.value_info):
        for item in items:
            del item.metadata_props[:]
            item.doc_string = ""


def compact_float16(proto: object) -> None:
    """Store float32 initialisers that are exact in float16 as float16 behind a ``Cast``."""
    import onnx
    from onnx import numpy_helper

    graph = proto.graph  # type: ignore[attr-defined]
    casts = []
    for init in graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT:
            continue
        value = numpy_helper.to_array(init)
        half = value.astype(np.float16)
        if value.size < 16 or not np.array_equal(half.astype(np.float32), value):
            continue
        name = init.name
        init.CopyFrom(numpy_helper.from_array(half, f"{name}__f16"))
        casts.append(
            onnx.helper.make_node(
                "Cast", [f"{name}__f16"], [name], to=onnx.TensorProto.FLOAT, name=f"{name}__cast"
            )
        )
    nodes = [*casts, *graph.node]
    del graph.node[:]
    graph.node.extend(nodes)


def check_against_torch(data: bytes, model: nn.Module, net: Network) -> None:
    """Fail unless ONNX Runtime on ``data`` agrees with ``model`` at batch 1 and 5."""
    import onnxruntime as ort

    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    for batch in (1, 5):
        x = example_input(net, batch, seed=batch)
        with torch.inference_mode():
            expected = model(x)
        expected_list = [expected] if isinstance(expected, torch.Tensor) else list(expected)
        got = session.run(None, {"input": x.numpy()})
        for name, want, have in zip(net.outputs, expected_list, got, strict=True):
            want_np = want.numpy()
            assert have.shape == want_np.shape, (name, have.shape, want_np.shape)
            scale = float(np.abs(want_np).max())
            error = float(np.abs(have - want_np).max())
            if error > CHECK_TOLERANCE * scale:
                raise AssertionError(f"{name}: ONNX differs from torch by {error} (max {scale})")


def main(argv: list[str] | None = None) -> int:
    """Export every network (or compare with the shipped files with ``--check``)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("names", nargs="*", choices=[[], *NETWORKS], help="default: all")
    parser.add_argument(
        "--check", action="store_true", help="compare with the shipped files, write nothing"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    differ = []
    for name in args.names or NETWORKS:
        net = NETWORKS[name]
        data = export_bytes(net)
        path = onnx_path(net.weights)
        digest = hashlib.sha256(data).hexdigest()
        if args.check:
            same = path.is_file() and path.read_bytes() == data
            differ += [] if same else [path.name]
            print(f"{path.name}: {'same' if same else 'DIFFERS'} ({len(data):,} bytes {digest})")
        else:
            path.write_bytes(data)
            print(f"{path.relative_to(REPO_ROOT)}: {len(data):,} bytes, sha256 {digest}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
