"""Building blocks shared by the MediaPipe network ports.

All three TFLite graphs are NHWC Keras exports built from the same pieces:
TensorFlow ``"SAME"`` convolutions, depthwise 3 x 3 convolutions, 1 x 1
projections, residual adds whose shortcut is max-pooled and zero-padded in
channels when the block downsamples or widens, and ReLU or per-channel PReLU.
The torch modules here are NCHW and reproduce the same arithmetic.

Every layer that the TFLite graph pads with ``"SAME"`` at stride 2 gets an
explicit asymmetric pad: TensorFlow puts the odd extra row and column at the
bottom/right, which torch's symmetric ``padding=`` cannot express. All inputs
in these networks have even sizes wherever a stride-2 layer applies, so the pad
depends only on kernel and stride (see :func:`same_pad`).

Runs wherever the enclosing model runs (an inference worker process).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F  # noqa: N812  (the conventional torch alias)
from torch import nn

Activation = Literal["relu", "prelu"]


def same_pad(kernel: int, stride: int) -> tuple[int, int, int, int]:
    """Return TensorFlow ``"SAME"`` padding as a ``F.pad`` tuple (left, right, top, bottom).

    Valid when the input side is a multiple of ``stride`` (true for every layer
    of these networks): the total pad is then ``kernel - stride`` (or 0), and
    TensorFlow puts the smaller half first.

    Args:
        kernel: Square kernel side.
        stride: Stride on both axes.
    """
    total = max(kernel - stride, 0)
    before = total // 2
    after = total - before
    return before, after, before, after


def _activation(kind: Activation, channels: int) -> nn.Module:
    # TFLite's PRELU alpha is per channel ([1, 1, C]); nn.PReLU keeps it as (C,).
    return nn.ReLU() if kind == "relu" else nn.PReLU(channels)


class SameConv2d(nn.Conv2d):
    """A ``Conv2d`` with TensorFlow ``"SAME"`` padding applied explicitly.

    Symmetric pads are left to the convolution itself (cheaper than a separate
    ``F.pad``); asymmetric ones are applied before it.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
    ) -> None:
        left, right, top, bottom = same_pad(kernel_size, stride)
        symmetric = left == right and top == bottom
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=left if symmetric else 0,
            groups=groups,
        )
        self._pre_pad: tuple[int, int, int, int] | None = (
            None if symmetric else (left, right, top, bottom)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pad like TensorFlow, then convolve."""
        if self._pre_pad is not None:
            x = F.pad(x, self._pre_pad)
        return super().forward(x)


def _residual(h: torch.Tensor, x: torch.Tensor, stride: int, act: nn.Module) -> torch.Tensor:
    """``act(shortcut(x) + h)``: the shortcut max-pooled at stride 2, zero-padded in channels.

    Adds into ``h`` (a fresh convolution output) instead of building the padded
    shortcut: the padded channels add zero, so the sum is the same bit for bit,
    and it saves two full-size temporaries per block (about 30 % of BlazeFace's
    CPU time in batches of 4, where fresh tensors cost page faults).
    """
    if stride == 2:
        x = F.max_pool2d(x, 2)
    h[:, : x.shape[1]] += x
    if isinstance(act, nn.ReLU):
        return F.relu(h, inplace=True)
    out: torch.Tensor = act(h)
    return out


class BlazeBlock(nn.Module):
    """BlazeFace/Face Mesh residual block.

    ``act(shortcut(x) + pointwise(depthwise(x)))`` where ``depthwise`` is a
    3 x 3 depthwise convolution (stride 1 or 2, ``"SAME"``), ``pointwise`` a
    1 x 1 convolution to ``out_channels``, and the shortcut is the identity,
    2 x 2 max-pooled when the block downsamples, and zero-padded at the end of
    the channel axis when it widens (the TFLite ``channel_padding`` PAD op).

    Args:
        in_channels: Input channels.
        out_channels: Output channels (>= ``in_channels``).
        stride: 1, or 2 to halve the resolution.
        activation: ``"relu"`` (BlazeFace) or ``"prelu"`` (Face Mesh).
    """

    def __init__(
        self, in_channels: int, out_channels: int, stride: int = 1, activation: Activation = "relu"
    ) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError("a BlazeBlock cannot narrow its input")
        self.stride = stride
        self.channel_pad = out_channels - in_channels
        self.depthwise = SameConv2d(in_channels, in_channels, 3, stride, groups=in_channels)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1)
        self.act = _activation(activation, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to ``(n, in_channels, h, w)``."""
        return _residual(self.pointwise(self.depthwise(x)), x, self.stride, self.act)


class BottleneckBlock(nn.Module):
    """Iris-landmark residual block with a narrow middle.

    ``prelu(shortcut(x) + expand(depthwise(prelu(reduce(x)))))`` where
    ``reduce`` is a 1 x 1 convolution (or a 2 x 2 stride-2 ``"VALID"`` one when
    the block downsamples) to ``mid_channels``, ``depthwise`` a 3 x 3 depthwise
    convolution and ``expand`` a 1 x 1 convolution to ``out_channels``. The
    shortcut is max-pooled when downsampling and zero-padded in channels when
    widening, as in :class:`BlazeBlock`.

    Args:
        in_channels: Input channels.
        mid_channels: Channels inside the block.
        out_channels: Output channels (>= ``in_channels``).
        stride: 1, or 2 to halve the resolution.
    """

    def __init__(
        self, in_channels: int, mid_channels: int, out_channels: int, stride: int = 1
    ) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError("a BottleneckBlock cannot narrow its input")
        self.stride = stride
        self.channel_pad = out_channels - in_channels
        # stride 2: kernel 2, stride 2, VALID, i.e. non-overlapping 2 x 2 patches.
        self.reduce = nn.Conv2d(in_channels, mid_channels, stride, stride=stride)
        self.reduce_act = nn.PReLU(mid_channels)
        self.depthwise = SameConv2d(mid_channels, mid_channels, 3, groups=mid_channels)
        self.expand = nn.Conv2d(mid_channels, out_channels, 1)
        self.act = nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to ``(n, in_channels, h, w)``."""
        h = self.expand(self.depthwise(self.reduce_act(self.reduce(x))))
        return _residual(h, x, self.stride, self.act)


def load_state_dict_file(model: nn.Module, path: str | Path, device: torch.device) -> None:
    """Load a shipped state dict into ``model`` strictly and move it to ``device``.

    ``weights_only=True`` keeps ``torch.load`` from unpickling anything but tensors.

    Args:
        model: The freshly built module.
        path: The ``.pt`` file.
        device: Where the model will run.
    """
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    model.to(device)
    model.eval()
