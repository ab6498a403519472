"""Face Mesh: MediaPipe's 468-point face landmark network, ported to PyTorch.

Architecture of ``face_landmark.tflite`` (mediapipe 0.10.21): a 3 x 3 stride-2
stem and 14 :class:`~.blocks.BlazeBlock` s with PReLU down to 6 x 6 x 128, then
two heads that each start with a stride-2 block:

- landmarks: 3 more blocks, a 1 x 1 projection to 32 channels, one 32-channel
  block and a 3 x 3 ``"VALID"`` convolution to 1404 = 468 x 3 values;
- face flag: a 1 x 1 projection to 32 channels, one block and a 3 x 3
  convolution to one logit (MediaPipe applies a sigmoid and keeps the face when
  the result exceeds 0.5).

Input: ``(n, 3, 192, 192)`` float32 RGB in [0, 1], a rotated square crop around
the face (see :mod:`.roi`). Landmark ``x, y`` come out in crop pixels (0..192),
``z`` in the same units relative to the face centre. Runs wherever the model is
moved to, in an inference worker process.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import BlazeBlock, SameConv2d

#: Side of the square input crop.
INPUT_SIZE = 192
#: Landmarks the network outputs.
NUM_LANDMARKS = 468
#: ``(in, out, stride)`` of the shared trunk.
TRUNK: tuple[tuple[int, int, int], ...] = (
    (16, 16, 1),
    (16, 16, 1),
    (16, 32, 2),
    (32, 32, 1),
    (32, 32, 1),
    (32, 64, 2),
    (64, 64, 1),
    (64, 64, 1),
    (64, 128, 2),
    (128, 128, 1),
    (128, 128, 1),
    (128, 128, 2),
    (128, 128, 1),
    (128, 128, 1),
)


def _blocks(spec: tuple[tuple[int, int, int], ...]) -> nn.Sequential:
    return nn.Sequential(*(BlazeBlock(i, o, s, activation="prelu") for i, o, s in spec))


class FaceMesh(nn.Module):
    """Face Mesh landmark network (no attention, no iris).

    Runs on whatever device it is moved to, in the inference worker process
    that loaded it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stem = SameConv2d(3, 16, 3, stride=2)
        self.stem_act = nn.PReLU(16)
        self.trunk = _blocks(TRUNK)
        # Landmark head: 6x6 -> 3x3, then a 3x3 stride-3 VALID conv (as in the graph) to one
        # 1x1 "pixel" of 1404 values.
        self.mesh_blocks = _blocks(((128, 128, 2), (128, 128, 1), (128, 128, 1)))
        self.mesh_proj = nn.Conv2d(128, 32, 1)
        self.mesh_proj_act = nn.PReLU(32)
        self.mesh_block = BlazeBlock(32, 32, activation="prelu")
        self.mesh_out = nn.Conv2d(32, NUM_LANDMARKS * 3, 3, stride=3)
        # Face-flag head.
        self.flag_block_in = BlazeBlock(128, 128, 2, activation="prelu")
        self.flag_proj = nn.Conv2d(128, 32, 1)
        self.flag_proj_act = nn.PReLU(32)
        self.flag_block = BlazeBlock(32, 32, activation="prelu")
        self.flag_out = nn.Conv2d(32, 1, 3, stride=3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the network.

        Args:
            x: ``(n, 3, 192, 192)`` float32 in [0, 1].

        Returns:
            ``(landmarks, flag_logits)``: ``(n, 468, 3)`` raw ``x, y, z`` in crop pixels
            and ``(n,)`` face-presence logits.
        """
        x = self.trunk(self.stem_act(self.stem(x)))
        m = self.mesh_proj_act(self.mesh_proj(self.mesh_blocks(x)))
        m = self.mesh_out(self.mesh_block(m))
        f = self.flag_proj_act(self.flag_proj(self.flag_block_in(x)))
        f = self.flag_out(self.flag_block(f))
        n = x.shape[0]
        return m.reshape(n, NUM_LANDMARKS, 3), f.reshape(n)
