"""BlazeFace short range: MediaPipe's face detector, ported to PyTorch.

Architecture of ``face_detection_short_range.tflite`` (mediapipe 0.10.21): a
5 x 5 stride-2 stem, 16 :class:`~.blocks.BlazeBlock` s with ReLU, and two SSD
heads, one on the 16 x 16 map (stride 8, 2 anchors per cell) and one on the
8 x 8 map (stride 16, 6 anchors per cell): 512 + 384 = 896 anchors. Each anchor
regresses 16 numbers, ``x, y, w, h`` of the box and ``x, y`` of six keypoints
(subject's right eye, left eye, nose tip, mouth centre, right ear tragion, left
ear tragion), in 128-pixel units relative to the anchor centre.

Post-processing follows MediaPipe's ``face_detection.pbtxt`` graph:
``SsdAnchorsCalculator`` (:func:`ssd_anchors`), ``TensorsToDetectionsCalculator``
with ``reverse_output_order``, sigmoid scores clipped at +-100 and
``min_score_thresh`` 0.5 (:func:`decode_detections`), then
``NonMaxSuppressionCalculator`` with the ``WEIGHTED`` algorithm and IoU 0.3
(:func:`weighted_nms`).

Input: ``(n, 3, 128, 128)`` float32 RGB in [-1, 1] (the frame letterboxed to a
square with black borders; see :mod:`.roi`). Runs wherever the model is moved
to, in an inference worker process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .blocks import BlazeBlock, SameConv2d

#: Side of the square input tensor.
INPUT_SIZE = 128
#: Number of SSD anchors (16 x 16 x 2 + 8 x 8 x 6).
NUM_ANCHORS = 896
#: Keypoints per detection.
NUM_KEYPOINTS = 6
#: ``(in, out, stride)`` of the 16 residual blocks; the stride-8 heads read block 11's output.
BLOCKS: tuple[tuple[int, int, int], ...] = (
    (24, 24, 1),
    (24, 28, 1),
    (28, 32, 2),
    (32, 36, 1),
    (36, 42, 1),
    (42, 48, 2),
    (48, 56, 1),
    (56, 64, 1),
    (64, 72, 1),
    (72, 80, 1),
    (80, 88, 1),
    (88, 96, 2),
    (96, 96, 1),
    (96, 96, 1),
    (96, 96, 1),
    (96, 96, 1),
)
#: Blocks before the stride-8 heads branch off.
STRIDE8_BLOCKS = 11

# SsdAnchorsCalculator options of face_detection_short_range (FaceDetectionOptions there).
ANCHOR_STRIDES: tuple[int, ...] = (8, 16, 16, 16)
ANCHOR_OFFSET = 0.5
ANCHOR_NUM_ASPECT_RATIOS = 1
ANCHOR_INTERPOLATED_SCALE_ASPECT_RATIO = 1.0

# TensorsToDetectionsCalculator options.
#: Divisor for box and keypoint regressions (x_scale = y_scale = w_scale = h_scale).
BOX_SCALE = 128.0
#: Raw logits are clipped to +-this before the sigmoid.
SCORE_CLIPPING_THRESH = 100.0
#: MediaPipe's default ``min_score_thresh`` for the short-range model.
MIN_SCORE = 0.5

# NonMaxSuppressionCalculator options.
#: Boxes overlapping the best remaining one by more than this IoU are merged into it.
NMS_IOU = 0.3


class BlazeFace(nn.Module):
    """BlazeFace short-range detector network.

    Runs on whatever device it is moved to, in the inference worker process
    that loaded it. Not thread-safe in the sense torch modules are not: one
    caller at a time.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stem = SameConv2d(3, 24, 5, stride=2)
        self.stem_act = nn.ReLU()
        self.blocks = nn.ModuleList(BlazeBlock(i, o, s, activation="relu") for i, o, s in BLOCKS)
        # Heads are named after their stride, as in the TFLite graph ("classificator_8" etc.).
        self.cls_stride8 = nn.Conv2d(88, 2, 1)
        self.reg_stride8 = nn.Conv2d(88, 2 * 16, 1)
        self.cls_stride16 = nn.Conv2d(96, 6, 1)
        self.reg_stride16 = nn.Conv2d(96, 6 * 16, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the detector.

        Args:
            x: ``(n, 3, 128, 128)`` float32 in [-1, 1].

        Returns:
            ``(regressors, logits)``: ``(n, 896, 16)`` raw box/keypoint regressions and
            ``(n, 896)`` raw score logits, in MediaPipe's anchor order.
        """
        x = self.stem_act(self.stem(x))
        for block in self.blocks[:STRIDE8_BLOCKS]:
            x = block(x)
        x8 = x
        for block in self.blocks[STRIDE8_BLOCKS:]:
            x = block(x)
        n = x.shape[0]
        # NCHW -> NHWC before flattening, so anchors come out row-major (y, x, anchor)
        # exactly like the TFLite RESHAPE of its NHWC tensors.
        logits = torch.cat(
            (
                self.cls_stride8(x8).permute(0, 2, 3, 1).reshape(n, -1),
                self.cls_stride16(x).permute(0, 2, 3, 1).reshape(n, -1),
            ),
            dim=1,
        )
        regressors = torch.cat(
            (
                self.reg_stride8(x8).permute(0, 2, 3, 1).reshape(n, -1, 16),
                self.reg_stride16(x).permute(0, 2, 3, 1).reshape(n, -1, 16),
            ),
            dim=1,
        )
        return regressors, logits


def ssd_anchors(
    input_size: int = INPUT_SIZE,
    strides: tuple[int, ...] = ANCHOR_STRIDES,
    num_aspect_ratios: int = ANCHOR_NUM_ASPECT_RATIOS,
    interpolated_scale_aspect_ratio: float = ANCHOR_INTERPOLATED_SCALE_ASPECT_RATIO,
    offset: float = ANCHOR_OFFSET,
) -> np.ndarray:
    """Generate anchor centres like MediaPipe's ``SsdAnchorsCalculator``.

    Only the ``fixed_anchor_size: true`` case the face detector uses is
    implemented: every anchor is 1 x 1, so the scales (``min_scale`` 0.1484375,
    ``max_scale`` 0.75 in the graph) do not matter and only centres are
    returned. Consecutive layers with the same stride share one feature map and
    put their anchors into each cell together: with one aspect ratio plus the
    interpolated one, the short-range model's stride-8 layer gives 2 anchors per
    16 x 16 cell and its three stride-16 layers 6 per 8 x 8 cell.

    Args:
        input_size: Square input side in pixels.
        strides: Stride of each anchor layer.
        num_aspect_ratios: Aspect ratios per layer (``aspect_ratios: 1.0`` -> 1).
        interpolated_scale_aspect_ratio: Adds one more anchor per layer when > 0.
        offset: Anchor centre offset inside a cell, in cells.

    Returns:
        ``(num_anchors, 2)`` float32 ``(x_center, y_center)`` in [0, 1], row-major
        over cells with the anchors of a cell adjacent.
    """
    per_layer = num_aspect_ratios + (1 if interpolated_scale_aspect_ratio > 0 else 0)
    centers: list[tuple[float, float]] = []
    layer = 0
    while layer < len(strides):
        last = layer
        while last < len(strides) and strides[last] == strides[layer]:
            last += 1
        per_cell = per_layer * (last - layer)
        side = math.ceil(input_size / strides[layer])
        for y in range(side):
            for x in range(side):
                centers.extend([((x + offset) / side, (y + offset) / side)] * per_cell)
        layer = last
    return np.asarray(centers, dtype=np.float32)


@dataclass(frozen=True, slots=True)
class RawDetections:
    """Decoded detections of one image, in the detector's normalised input space.

    Attributes:
        boxes: ``(k, 4)`` float32 ``(xmin, ymin, xmax, ymax)`` in [0, 1] of the 128 x 128 input.
        keypoints: ``(k, 6, 2)`` float32 ``(x, y)`` in the same space.
        scores: ``(k,)`` float32 sigmoid scores, descending after :func:`weighted_nms`.
    """

    boxes: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray


def decode_detections(
    regressors: torch.Tensor,
    logits: torch.Tensor,
    anchors: torch.Tensor,
    min_score: float = MIN_SCORE,
    box_scale: float = BOX_SCALE,
) -> list[RawDetections]:
    """Turn raw network outputs into scored boxes, as ``TensorsToDetectionsCalculator``.

    The arithmetic runs on the outputs' device; the decoded arrays (n x anchors
    x 17 floats) then come to the host in one copy and are filtered there. The
    full-range model (:mod:`.blazeface_full_range`) uses the same decoding with
    its own anchors and ``box_scale``.

    Args:
        regressors: ``(n, a, 16)`` from :class:`BlazeFace` (a = 896) or the full-range net.
        logits: ``(n, a)`` from the same network.
        anchors: ``(a, 2)`` anchor centres (see :func:`ssd_anchors`) on the same device.
        min_score: Keep anchors whose sigmoid score is at least this.
        box_scale: Divisor of the regressions: the network's input side in pixels.

    Returns:
        One :class:`RawDetections` per image, unsorted and not yet suppressed.
    """
    scores = torch.sigmoid(logits.clamp(-SCORE_CLIPPING_THRESH, SCORE_CLIPPING_THRESH))
    # reverse_output_order: the regression is x, y, w, h (not y, x, h, w); anchors are 1 x 1.
    offsets = regressors / box_scale
    centers = offsets[..., 0:2] + anchors
    half = offsets[..., 2:4] * 0.5
    boxes = torch.cat((centers - half, centers + half), dim=-1)
    keypoints = offsets[..., 4:].reshape(*offsets.shape[:-1], NUM_KEYPOINTS, 2) + anchors[:, None]
    # MediaPipe drops boxes with negative or NaN size (b/171391719); NaN fails both tests.
    keep = ((scores >= min_score) & (half[..., 0] >= 0) & (half[..., 1] >= 0)).cpu().numpy()
    boxes_np = boxes.float().cpu().numpy()
    keypoints_np = keypoints.float().cpu().numpy()
    scores_np = scores.float().cpu().numpy()
    return [
        RawDetections(boxes=boxes_np[i, k], keypoints=keypoints_np[i, k], scores=scores_np[i, k])
        for i, k in enumerate(keep)
    ]


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    # MediaPipe's OverlapSimilarity(INTERSECTION_OVER_UNION): 0 when disjoint or degenerate.
    ix0 = np.maximum(box[0], boxes[:, 0])
    iy0 = np.maximum(box[1], boxes[:, 1])
    ix1 = np.minimum(box[2], boxes[:, 2])
    iy1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(ix1 - ix0, 0.0, None) * np.clip(iy1 - iy0, 0.0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def weighted_nms(dets: RawDetections, iou_threshold: float = NMS_IOU) -> RawDetections:
    """MediaPipe's ``WEIGHTED`` non-maximum suppression.

    Repeatedly takes the best remaining detection, gathers every remaining one
    whose IoU with it exceeds ``iou_threshold`` (itself included), and replaces
    its box corners and keypoints by the score-weighted mean of that group. The
    score stays the best one's. Output is in descending score order.

    Args:
        dets: Candidates of one image.
        iou_threshold: Suppression threshold (strictly greater suppresses).

    Returns:
        The merged detections.
    """
    order = np.argsort(-dets.scores, kind="stable")
    boxes_out: list[np.ndarray] = []
    kps_out: list[np.ndarray] = []
    scores_out: list[float] = []
    while order.size:
        best = order[0]
        overlap = _iou(dets.boxes[best], dets.boxes[order]) > iou_threshold
        if not overlap.any():
            # Only a zero-area best box overlaps nothing, not even itself: MediaPipe keeps
            # it unchanged and stops, since nothing was removed in this round.
            boxes_out.append(dets.boxes[best])
            kps_out.append(dets.keypoints[best])
            scores_out.append(float(dets.scores[best]))
            break
        group = order[overlap]
        weights = dets.scores[group].astype(np.float64)
        total = weights.sum()
        boxes_out.append((dets.boxes[group] * weights[:, None]).sum(0) / total)
        kps_out.append((dets.keypoints[group] * weights[:, None, None]).sum(0) / total)
        scores_out.append(float(dets.scores[best]))
        order = order[~overlap]
    if not scores_out:
        return dets
    return RawDetections(
        boxes=np.asarray(boxes_out, dtype=np.float32),
        keypoints=np.asarray(kps_out, dtype=np.float32),
        scores=np.asarray(scores_out, dtype=np.float32),
    )
