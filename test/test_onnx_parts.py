"""Network parts run by onnxruntime: the same features as torch, verified files, a torch fallback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import amp_ros.training.ship as ship
from amp_ros.checkpoint import load_checkpoint
from amp_ros.errors import CheckpointError
from amp_ros.flow import compute_dis_flow
from amp_ros.inference import predict, shrink_frame
from amp_ros.models import default_checkpoint_path
from amp_ros.onnx_parts import OnnxPart, with_onnx_parts
from amp_ros.pipeline import Pipeline
from amp_ros.settings import PipelineConfig

DEMO = Path(__file__).resolve().parent.parent / "data" / "demo"


def demo_frames(count: int) -> list[np.ndarray]:
    """The first ``count`` frames of the embedded clip, RGB at 854×480."""
    paths = sorted(DEMO.glob("JPEGImages/480p/*/*.jpg"))[:count]
    return [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in paths]


@pytest.fixture(scope="module")
def shipped_tiny(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny checkpoint shipped with amp-ship: its motion stream exported to ONNX."""
    models = tmp_path_factory.mktemp("models")
    assert ship.main(["--checkpoint", str(tiny_checkpoint), "--name", "tiny", "--models", str(models)]) == 0
    return models / "tiny"


def test_the_shipped_default_computes_what_torch_computes_on_a_real_frame() -> None:
    """The default model's ONNX parts (U²-Netp trunk and motion stream) give the torch network's
    head features within 1e-4 on a demo frame and its flow."""
    checkpoint = load_checkpoint(default_checkpoint_path())
    assert set(checkpoint.onnx_parts) == {"appearance", "motion"}
    first, second = (shrink_frame(f, checkpoint.input.max_side) for f in demo_frames(2))
    flow = compute_dis_flow(first, second)
    onnx_network = with_onnx_parts(checkpoint.network, checkpoint.onnx_parts)
    by_torch = predict(checkpoint.network, second, flow, checkpoint.input).features
    by_onnx = predict(onnx_network, second, flow, checkpoint.input).features
    assert isinstance(onnx_network.appearance.trunk, OnnxPart) and isinstance(onnx_network.motion, OnnxPart)
    assert not isinstance(checkpoint.network.motion, OnnxPart)  # the checkpoint's own is left alone
    for a, b in zip(by_torch, by_onnx, strict=True):
        assert a.shape == b.shape
        assert float((a - b).abs().max()) < 3e-4


def test_ship_exports_the_parts_and_the_pipeline_runs_them(shipped_tiny: Path, make_frame) -> None:
    record = json.loads((shipped_tiny / "config.json").read_text())["onnx"]
    assert set(record["parts"]) == {"motion"}  # a WRN appearance has no U²-Net trunk
    assert record["weights_sha256"] == json.loads((shipped_tiny / "config.json").read_text())["sha256"]
    onnx_pipeline = Pipeline.from_checkpoint(shipped_tiny)
    torch_pipeline = Pipeline.from_checkpoint(shipped_tiny, config=PipelineConfig(onnx=False))
    assert (onnx_pipeline.runtime, torch_pipeline.runtime) == ("onnxruntime", "torch")
    for shift in range(3):
        frame = make_frame(48, 64, shift=(shift, 0))
        a, b = onnx_pipeline.step(frame), torch_pipeline.step(frame)
        assert np.abs(a.probability - b.probability).max() < 1e-3
    onnx_pipeline.configure(onnx=False)
    assert onnx_pipeline.runtime == "torch"


def test_shipping_again_keeps_an_export_that_matches_the_weights(
    shipped_tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_export(*_args: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(ship, "export_parts", no_export)
    assert ship.main(["--checkpoint", str(shipped_tiny), "--name", "again", "--models", str(tmp_path)]) == 0
    again = load_checkpoint(tmp_path / "again")
    assert again.onnx_parts["motion"].read_bytes() == (shipped_tiny / "motion.onnx").read_bytes()


@pytest.mark.parametrize("damage, message", [
    ("bytes", "does not match the sha256"),
    ("weights", "exported from other weights"),
    ("missing", "checkpoint file missing"),
    ("outside", "must lie in the checkpoint folder"),
    ("part", "has no part 'appearance'"),
])
def test_a_damaged_onnx_record_or_file_is_refused(shipped_tiny: Path, tmp_path: Path,
                                                   damage: str, message: str) -> None:
    folder = tmp_path / "damaged"
    shutil.copytree(shipped_tiny, folder)
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text())
    part = config["onnx"]["parts"]["motion"]
    if damage == "bytes":
        data = bytearray((folder / "motion.onnx").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (folder / "motion.onnx").write_bytes(bytes(data))
    elif damage == "weights":
        config["onnx"]["weights_sha256"] = "0" * 64
    elif damage == "missing":
        (folder / "motion.onnx").unlink()
    elif damage == "outside":
        part["file"] = "../motion.onnx"
    else:
        config["onnx"]["parts"]["appearance"] = dict(part)
    config_path.write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(folder)


def test_sessions_follow_torchs_thread_count_and_tiny_inputs_use_torch(shipped_tiny: Path) -> None:
    checkpoint = load_checkpoint(shipped_tiny)
    part = with_onnx_parts(checkpoint.network, checkpoint.onnx_parts).motion
    threads = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            part(torch.zeros(1, 3, 16, 24))
            assert part.threads == n
            assert part._session.get_session_options().intra_op_num_threads == n
    finally:
        torch.set_num_threads(threads)
    tiny = torch.rand(1, 3, 1, 5)
    with torch.no_grad():
        expected = checkpoint.network.motion(tiny)
        for a, b in zip(part(tiny), expected, strict=True):
            assert torch.equal(a, b)  # the torch fallback itself, bit for bit


def test_without_onnxruntime_the_network_runs_in_torch_and_says_so(
    shipped_tiny: Path, monkeypatch: pytest.MonkeyPatch, make_frame
) -> None:
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxruntime" else find_spec(name, *a))
    with pytest.warns(UserWarning, match="onnxruntime is not installed"):
        pipeline = Pipeline.from_checkpoint(shipped_tiny)
    assert pipeline.runtime == "torch"
    assert pipeline.step(make_frame(48, 64)).mask.shape == (48, 64)
