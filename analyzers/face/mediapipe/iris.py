"""Iris landmarks: MediaPipe's eye-contour and iris network, ported to PyTorch.

Architecture of ``iris_landmark.tflite`` (mediapipe 0.10.21): a 3 x 3 stride-2
stem to 32 x 32 x 64, a trunk of 10 :class:`~.blocks.BottleneckBlock` s down to
8 x 8 x 128, and two identical branches of 8 blocks down to 2 x 2 x 128, each
closed by a 2 x 2 ``"VALID"`` convolution:

- eye contours and brows: 71 points x 3 = 213 values;
- iris: 5 points x 3 = 15 values (centre first, then 4 points on the iris edge).

The model is trained on one eye orientation only: MediaPipe's
``iris_landmark_cpu`` graph mirrors the crop of the eye it calls "right"
(face-mesh landmarks 362/263, the subject's left eye, on the image's right in
an unmirrored frame) before inference and mirrors the x outputs back. See
:mod:`.landmarker`.

Input: ``(n, 3, 64, 64)`` float32 RGB in [0, 1]. Outputs are in crop pixels
(0..64), ``z`` in the same units. Runs wherever the model is moved to, in an
inference worker process.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import BottleneckBlock, SameConv2d

#: Side of the square input crop.
INPUT_SIZE = 64
#: Eye-contour and brow points per eye.
NUM_CONTOUR = 71
#: Iris points per eye (centre + 4).
NUM_IRIS = 5
#: ``(in, mid, out, stride)`` of the shared trunk.
TRUNK: tuple[tuple[int, int, int, int], ...] = (
    *((64, 32, 64, 1),) * 4,
    (64, 64, 128, 2),
    *((128, 64, 128, 1),) * 4,
    (128, 64, 128, 2),
)
#: ``(in, mid, out, stride)`` of each output branch.
BRANCH: tuple[tuple[int, int, int, int], ...] = (
    (128, 64, 128, 1),
    (128, 64, 128, 1),
    (128, 64, 128, 2),
    (128, 64, 128, 1),
    (128, 64, 128, 1),
    (128, 64, 128, 2),
    (128, 64, 128, 1),
    (128, 64, 128, 1),
)


def _blocks(spec: tuple[tuple[int, int, int, int], ...]) -> nn.Sequential:
    return nn.Sequential(*(BottleneckBlock(i, m, o, s) for i, m, o, s in spec))


class IrisLandmark(nn.Module):
    """Iris and eye-contour landmark network.

    Runs on whatever device it is moved to, in the inference worker process
    that loaded it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stem = SameConv2d(3, 64, 3, stride=2)
        self.stem_act = nn.PReLU(64)
        self.trunk = _blocks(TRUNK)
        self.contour_blocks = _blocks(BRANCH)
        self.contour_out = nn.Conv2d(128, NUM_CONTOUR * 3, 2)
        self.iris_blocks = _blocks(BRANCH)
        self.iris_out = nn.Conv2d(128, NUM_IRIS * 3, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the network.

        Args:
            x: ``(n, 3, 64, 64)`` float32 in [0, 1].

        Returns:
            ``(contours, iris)``: ``(n, 71, 3)`` and ``(n, 5, 3)`` raw ``x, y, z`` in crop
            pixels.
        """
        x = self.trunk(self.stem_act(self.stem(x)))
        n = x.shape[0]
        contours = self.contour_out(self.contour_blocks(x)).reshape(n, NUM_CONTOUR, 3)
        iris = self.iris_out(self.iris_blocks(x)).reshape(n, NUM_IRIS, 3)
        return contours, iris
