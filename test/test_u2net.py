"""U²-Netp in torch against the authors' ONNX export run by onnxruntime, on a real frame."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from amp_ros.errors import CheckpointError
from amp_ros.network import two_stream_network
from amp_ros.u2net import U2Net, load_onnx_weights
from amp_ros.u2net_weights import weights_path

DEMO = Path(__file__).resolve().parent.parent / "data" / "demo"
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


@pytest.fixture(scope="module")
def onnx_path() -> Path:
    return weights_path("u2netp")  # `make test` fetches it first (make weights)


@pytest.fixture(scope="module")
def u2netp(onnx_path: Path) -> U2Net:
    model = U2Net("u2netp")
    load_onnx_weights(model, onnx_path)
    return model.eval()


def demo_input() -> np.ndarray:
    """The first demo frame as the ONNX model takes it: 1×3×320×320, ImageNet-normalised."""
    path = sorted(DEMO.glob("JPEGImages/480p/*/00000.jpg"))[0]
    rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    x = cv2.resize(rgb, (320, 320), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
    return ((x - MEAN) / STD).transpose(2, 0, 1)[None].copy()


def test_torch_u2netp_equals_onnxruntime_on_a_real_frame(u2netp: U2Net, onnx_path: Path) -> None:
    _check_against_onnxruntime(u2netp, onnx_path)


def test_torch_u2net_equals_onnxruntime_on_a_real_frame() -> None:
    """The full U²-Net (176 MB): checked where `make weights-u2net` fetched it."""
    try:
        path = weights_path("u2net")
    except CheckpointError as err:
        pytest.skip(f"full U²-Net weights not fetched (make weights-u2net): {err}")
    model = U2Net("u2net")
    load_onnx_weights(model, path)
    _check_against_onnxruntime(model.eval(), path)


def _check_against_onnxruntime(model: U2Net, onnx_path: Path) -> None:
    import onnxruntime

    x = demo_input()
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    expected = session.run(None, {session.get_inputs()[0].name: x})
    with torch.no_grad():
        got = model(torch.from_numpy(x))
    assert len(got) == len(expected) == 7
    for ours, theirs in zip(got, expected):
        assert ours.shape == theirs.shape == (1, 1, 320, 320)
        np.testing.assert_allclose(ours.numpy(), theirs, atol=1e-4, rtol=0)
    # The weights are the real ones: the walker the clip is annotated with is the salient object.
    truth = cv2.imread(str(sorted(DEMO.glob("Annotations/480p/*/00000.png"))[0]), cv2.IMREAD_GRAYSCALE)
    inside = cv2.resize(truth, (320, 320), interpolation=cv2.INTER_NEAREST) > 0
    fused = expected[0][0, 0]
    assert fused[inside].mean() > 0.3 > 0.03 > fused[~inside].mean()


def test_features_give_the_decoder_maps_and_a_saliency_logit(u2netp: U2Net) -> None:
    x = torch.from_numpy(demo_input())
    with torch.no_grad():
        maps, saliency = u2netp.features(x)
        fused = u2netp(x)[0]
    shapes = [tuple(m.shape) for m in maps]
    assert shapes == [(1, 64, 160, 160), (1, 64, 80, 80), (1, 64, 40, 40), (1, 64, 20, 20)]
    assert saliency.shape == (1, 1, 160, 160)
    # Without stage 1d the logit still marks the same salient pixels as the full network.
    ours = torch.sigmoid(saliency)[0, 0] > 0.5
    full = torch.nn.functional.avg_pool2d(fused, 2)[0, 0] > 0.5
    iou = (ours & full).sum() / (ours | full).sum()
    assert iou > 0.8


def test_weights_of_another_variant_are_refused(onnx_path: Path) -> None:
    with pytest.raises(ValueError, match="convolution"):
        load_onnx_weights(U2Net("u2net"), onnx_path)


def test_missing_weights_say_how_to_get_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMP_ROS_WEIGHTS", str(tmp_path))
    with pytest.raises(CheckpointError, match=r"python -m amp_ros\.u2net_weights u2netp"):
        weights_path("u2netp")
    (tmp_path / "u2netp.onnx").write_bytes(b"not the file")
    with pytest.raises(CheckpointError, match="SHA-256"):
        weights_path("u2netp")


def test_two_stream_network_with_a_u2netp_appearance_stream() -> None:
    network = two_stream_network(width=0.25, appearance="u2netp", group_blocks=(2, 2, 2)).eval()
    with torch.no_grad():
        levels = network(torch.randn(1, 3, 96, 128), torch.randn(1, 3, 96, 128))
    assert [tuple(f.shape) for f in levels] == [(1, 64, 24, 32), (1, 128, 12, 16), (1, 128, 12, 16)]
    norms = torch.linalg.vector_norm(levels[0], dim=1)
    assert torch.allclose(norms[norms > 0], torch.ones(()), atol=1e-5)
