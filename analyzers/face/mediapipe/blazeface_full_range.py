"""BlazeFace full range: MediaPipe's detector for small and distant faces, ported to PyTorch.

Architecture of ``face_detection_full_range_sparse.tflite`` (mediapipe 0.10.21),
a small feature pyramid on a 192 x 192 input, all ReLU, batch norms folded into
the convolutions:

- bottom-up: a 3 x 3 stride-2 stem to 96 x 96 x 32, then four stages at 96, 48,
  24, 12 and 6 pixels (32, 64, 128, 192, 384 channels), each entered by a
  :class:`DownBlock` (except the first) and made of :class:`ResidualBlock` s;
- top-down: the 6 x 6 map is projected (1 x 1 + ReLU), upsampled 2x
  (bilinear, half-pixel centres) and added to a projection of the 12 x 12 stage,
  refined by residual blocks, and so on up to 48 x 48 x 48;
- heads on the 48 x 48 map: a 1 x 1 convolution, a 3 x 3 stride-2 depthwise
  convolution and a TensorFlow ``DepthToSpace`` back to 48 x 48, giving one
  anchor per cell: 2304 anchors, each with a score logit and 16 regressions
  (``x, y, w, h`` of the box, ``x, y`` of the same six keypoints as the short-range
  model) in 192-pixel units relative to the anchor centre.

Every 3 x 3 convolution in the graph reads an explicitly zero-padded input
(``PAD`` by 1 on each side, then ``"VALID"``), which is torch's ``padding=1``
even at stride 2. About half of the 1 x 1 kernels are stored sparse in the
TFLite file (``DENSIFY``); the state dict holds them dense.

Post-processing is MediaPipe's ``face_detection_full_range`` graph: the same
decoding and weighted NMS as the short-range model (:mod:`.blazeface`) with
the anchors and scales below and ``min_score_thresh`` 0.6 in the graph (the
legacy Python solution passes its own ``min_detection_confidence``, 0.5 by default).

Input: ``(n, 3, 192, 192)`` float32 RGB in [-1, 1], the frame letterboxed to a
square with black borders. Runs wherever the model is moved to, in an inference
worker process.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812  (the conventional torch alias)
from torch import nn

#: Side of the square input tensor.
INPUT_SIZE = 192
#: Number of SSD anchors (48 x 48 x 1).
NUM_ANCHORS = 2304

# SsdAnchorsCalculator options of face_detection_full_range (FaceDetectionOptions there).
ANCHOR_STRIDES: tuple[int, ...] = (4,)
ANCHOR_INTERPOLATED_SCALE_ASPECT_RATIO = 0.0
#: Divisor for box and keypoint regressions.
BOX_SCALE = 192.0
#: ``min_score_thresh`` of MediaPipe's full-range graph.
MIN_SCORE = 0.6

#: ``(channels, bottleneck channels, residual blocks)`` of the bottom-up stages at
#: 96, 48, 24, 12 and 6 pixels.
STAGES: tuple[tuple[int, int, int], ...] = (
    (32, 8, 2),
    (64, 16, 2),
    (128, 32, 2),
    (192, 48, 2),
    (384, 96, 3),
)
#: Bottleneck channels of the :class:`DownBlock` entering stages 1-4.
DOWN_MID: tuple[int, ...] = (16, 32, 48, 96)
#: ``(channels, bottleneck channels, residual blocks)`` of the top-down stages at 12,
#: 24 and 48 pixels. Their input is the sum of an upsampled projection of the coarser
#: map and a projection of the bottom-up stage at the same size, both ``channels`` wide.
TOP_DOWN: tuple[tuple[int, int, int], ...] = (
    (96, 48, 2),
    (64, 32, 2),
    (48, 24, 1),
)


def _depthwise(channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(channels, channels, 3, stride=stride, padding=1, groups=channels)


class ResidualBlock(nn.Module):
    """Two depthwise-separable convolutions through a narrow middle, plus the input.

    ``relu(x + pw2(dw2(relu(pw1(dw1(x))))))`` with 3 x 3 depthwise ``dw`` and
    1 x 1 ``pw`` convolutions; ``pw1`` narrows to ``mid`` channels, ``pw2`` widens back.

    Args:
        channels: Input and output channels.
        mid: Channels in the middle.
    """

    def __init__(self, channels: int, mid: int) -> None:
        super().__init__()
        self.dw1 = _depthwise(channels)
        self.pw1 = nn.Conv2d(channels, mid, 1)
        self.dw2 = _depthwise(mid)
        self.pw2 = nn.Conv2d(mid, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to ``(n, channels, h, w)``."""
        h = F.relu(self.pw1(self.dw1(x)), inplace=True)
        # In place on fresh conv outputs: the same sums, fewer full-size temporaries.
        h = self.pw2(self.dw2(h))
        h += x
        return F.relu(h, inplace=True)


class DownBlock(nn.Module):
    """The entry of a bottom-up stage: like :class:`ResidualBlock`, stride 2, no shortcut.

    ``relu(pw2(dw2(relu(pw1(dw1(x))))))`` where ``dw1`` has stride 2.

    Args:
        in_channels: Input channels.
        mid: Channels in the middle.
        out_channels: Output channels.
    """

    def __init__(self, in_channels: int, mid: int, out_channels: int) -> None:
        super().__init__()
        self.dw1 = _depthwise(in_channels, stride=2)
        self.pw1 = nn.Conv2d(in_channels, mid, 1)
        self.dw2 = _depthwise(mid)
        self.pw2 = nn.Conv2d(mid, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to ``(n, in_channels, h, w)``; ``h`` and ``w`` halve."""
        h = F.relu(self.pw1(self.dw1(x)), inplace=True)
        return F.relu(self.pw2(self.dw2(h)), inplace=True)


class Head(nn.Module):
    """A prediction head: 1 x 1 conv, 3 x 3 stride-2 depthwise conv, ``DepthToSpace(2)``.

    Args:
        in_channels: Channels of the 48 x 48 feature map.
        values: Values per anchor (1 score logit or 16 regressions).
    """

    def __init__(self, in_channels: int, values: int) -> None:
        super().__init__()
        self.values = values
        self.proj = nn.Conv2d(in_channels, 4 * values, 1)
        self.depthwise = _depthwise(4 * values, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(n, c, 2h, 2w)`` features to ``(n, 2h * 2w, values)``, row-major anchors."""
        y = self.depthwise(self.proj(x))
        n, _, h, w = y.shape
        # TensorFlow's DepthToSpace (NHWC, "DCR"): output pixel (2i + dy, 2j + dx) takes
        # input channels [(2 dy + dx) * values, ... + values) of pixel (i, j). torch's
        # pixel_shuffle orders channels the other way round, so rearrange by hand.
        y = y.reshape(n, 2, 2, self.values, h, w).permute(0, 4, 1, 5, 2, 3)
        out: torch.Tensor = y.reshape(n, 4 * h * w, self.values)
        return out


class BlazeFaceFullRange(nn.Module):
    """BlazeFace full-range detector network.

    Runs on whatever device it is moved to, in the inference worker process
    that loaded it; one caller at a time.
    """

    def __init__(self) -> None:
        super().__init__()
        first = STAGES[0][0]
        self.stem = nn.Conv2d(3, first, 3, stride=2, padding=1)
        self.down = nn.ModuleList(
            DownBlock(STAGES[i][0], mid, STAGES[i + 1][0]) for i, mid in enumerate(DOWN_MID)
        )
        self.stages = nn.ModuleList(
            nn.Sequential(*(ResidualBlock(c, mid) for _ in range(n))) for c, mid, n in STAGES
        )
        # Projections of bottom-up stages 1-3 (48, 24, 12 px) to the top-down widths.
        self.lateral = nn.ModuleList(
            nn.Conv2d(STAGES[3 - i][0], TOP_DOWN[i][0], 1) for i in reversed(range(3))
        )
        # Projections of the coarser map before each 2x upsampling: 384 -> 96, 96 -> 64, 64 -> 48.
        widths = [STAGES[-1][0], *(c for c, _, _ in TOP_DOWN)]
        self.top = nn.ModuleList(nn.Conv2d(widths[i], widths[i + 1], 1) for i in range(3))
        self.top_down = nn.ModuleList(
            nn.Sequential(*(ResidualBlock(c, mid) for _ in range(n))) for c, mid, n in TOP_DOWN
        )
        self.cls = Head(TOP_DOWN[-1][0], 1)
        self.reg = Head(TOP_DOWN[-1][0], 16)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the detector.

        Args:
            x: ``(n, 3, 192, 192)`` float32 in [-1, 1].

        Returns:
            ``(regressors, logits)``: ``(n, 2304, 16)`` raw box/keypoint regressions and
            ``(n, 2304)`` raw score logits, in MediaPipe's anchor order.
        """
        x = self.stages[0](F.relu(self.stem(x), inplace=True))
        laterals = []
        # self.lateral is ordered like the graph computes it: 48 px first.
        for i, down in enumerate(self.down):
            if i >= 1:
                laterals.append(F.relu(self.lateral[i - 1](x), inplace=True))
            x = self.stages[i + 1](down(x))
        for top, lateral, blocks in zip(self.top, reversed(laterals), self.top_down, strict=True):
            size = (2 * x.shape[2], 2 * x.shape[3])
            # Half-pixel centres (align_corners=False), as the graph's RESIZE_BILINEAR.
            up = F.interpolate(
                F.relu(top(x), inplace=True), size=size, mode="bilinear", align_corners=False
            )
            up += lateral
            x = blocks(up)
        n = x.shape[0]
        return self.reg(x), self.cls(x).reshape(n, -1)
