"""Training: data loading + flow cache, augmentation, and amp-train end to end on a tiny fixture."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from amp_ros.checkpoint import load_checkpoint
from amp_ros.training import augment
from amp_ros.training.data import flow_cache_dir, list_sequences, load_sequence
from amp_ros.training.train import main

HEIGHT, WIDTH, FRAMES = 48, 64, 4


def _textured(rng: np.random.Generator) -> np.ndarray:
    noise = rng.integers(0, 255, (HEIGHT // 4, WIDTH // 4, 3), dtype=np.uint8)
    return cv2.resize(noise, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)


def _make_dataset(root: Path, level: str = "480p") -> Path:
    """Two sequences of 4 frames (48×64): a textured square moving right on a textured background."""
    rng = np.random.default_rng(0)
    for s, name in enumerate(("alpha", "beta")):
        background = _textured(rng)
        square = _textured(rng)[:16, :16]
        images = root / "JPEGImages" / level / name
        masks = root / "Annotations" / level / name
        images.mkdir(parents=True)
        masks.mkdir(parents=True)
        for t in range(FRAMES):
            frame = background.copy()
            mask = np.zeros((HEIGHT, WIDTH), np.uint8)
            x, y = 8 + 4 * t + 6 * s, 14
            frame[y:y + 16, x:x + 16] = square
            mask[y:y + 16, x:x + 16] = 255
            cv2.imwrite(str(images / f"{t:05d}.jpg"), frame)
            cv2.imwrite(str(masks / f"{t:05d}.png"), mask)
    return root


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    return _make_dataset(tmp_path / "tiny")


def test_flow_cache_written_and_reused(dataset: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert list_sequences(dataset) == ["alpha", "beta"]
    seq = load_sequence(dataset, "alpha", 64, cache=cache)
    folder = flow_cache_dir(cache, "tiny", "alpha", 64)
    files = sorted(folder.glob("*.npy"))
    assert [f.stem for f in files] == [f"{t:05d}" for t in range(FRAMES)]
    assert len(seq) == FRAMES and seq.frames[0].shape == (HEIGHT, WIDTH, 3)
    assert seq.masks[1].sum() == 16 * 16
    assert not seq.flows[0].any()  # frame 0: zero flow, like the pipeline's first frame
    assert seq.flows[2][20:28, 16:28, 0].mean() > 1.0  # the square moves right
    # A cached file is read back instead of recomputed.
    marker = np.full((HEIGHT, WIDTH, 2), 7.0, np.float16)
    np.save(folder / "00002.npy", marker)
    again = load_sequence(dataset, "alpha", 64, cache=cache)
    np.testing.assert_array_equal(again.flows[2], marker)


def test_dataset_without_resolution_level(tmp_path: Path) -> None:
    root = _make_dataset(tmp_path / "flat", level="")
    seq = load_sequence(root, "beta", 32, cache=None)
    assert seq.frames[0].shape == (24, 32, 3) and seq.masks[0].shape == (24, 32)


def test_paste_sets_known_flow_and_label() -> None:
    h, w = 60, 80
    frame = np.zeros((h, w, 3), np.uint8)
    flow = np.full((h, w, 2), 0.5, np.float32)
    label = np.zeros((h, w), np.uint8)
    rgb = np.full((10, 10, 3), 200, np.uint8)
    alpha = np.ones((10, 10), np.float32)
    motion = augment.PasteMotion(prev_xy=(20.0, 20.0), prev_scale=2.0,
                                 curr_xy=(26.0, 17.0), curr_scale=2.0)
    out_frame, out_flow, out_label = augment.paste_object(frame, flow, label, (rgb, alpha), motion)
    # Previous placement covers x, y in [20, 40): its flow is the displacement (6, −3).
    np.testing.assert_allclose(out_flow[22:38, 22:38, 0], 6.0)
    np.testing.assert_allclose(out_flow[22:38, 22:38, 1], -3.0)
    np.testing.assert_allclose(out_flow[:, :15], 0.5)  # background keeps its own flow
    # Current placement covers x in [26, 46), y in [17, 37): object in label and frame.
    assert (out_label[19:35, 28:44] == 1).all()
    assert (out_frame[19:35, 28:44] == 200).all()
    assert (out_label[45:, :] == 0).all() and (out_label[:, 50:] == 0).all()


def test_paste_zoom_flow_matches_motion() -> None:
    motion = augment.PasteMotion(prev_xy=(10.0, 10.0), prev_scale=1.0,
                                 curr_xy=(12.0, 10.0), curr_scale=1.5)
    flow = np.zeros((64, 64, 2), np.float32)
    _, out, _ = augment.paste_object(np.zeros((64, 64, 3), np.uint8), flow,
                                     np.zeros((64, 64), np.uint8),
                                     (np.zeros((20, 20, 3), np.uint8), np.ones((20, 20), np.float32)),
                                     motion)
    # A point at patch coordinate u = 10 is at x0 = 20 before and x1 = 12 + 15 = 27 after.
    np.testing.assert_allclose(out[20, 20], [7.0, 5.0])


def test_flip_negates_flow_x() -> None:
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (8, 10, 3), dtype=np.uint8)
    flow = rng.normal(size=(8, 10, 2)).astype(np.float32)
    label = rng.integers(0, 2, (8, 10), dtype=np.uint8)
    f2, fl2, l2 = augment.hflip(frame, flow, label)
    np.testing.assert_array_equal(f2, frame[:, ::-1])
    np.testing.assert_array_equal(l2, label[:, ::-1])
    np.testing.assert_allclose(fl2[..., 0], -flow[:, ::-1, 0])
    np.testing.assert_allclose(fl2[..., 1], flow[:, ::-1, 1])


def test_scale_crop_scales_flow_with_pixels() -> None:
    rng = np.random.default_rng(0)
    flow = np.full((40, 40, 2), 1.0, np.float32)
    _, out, label = augment.scale_crop(np.zeros((40, 40, 3), np.uint8), flow,
                                       np.zeros((40, 40), np.uint8), (40, 40), rng, zoom=(2.0, 2.0))
    assert out.shape == (40, 40, 2) and label.shape == (40, 40)
    np.testing.assert_allclose(out, 2.0, rtol=1e-5)


def test_amp_train_end_to_end_and_resume(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    common = ["--data", str(dataset), "--sequences", "alpha", "--val-sequences", "beta",
              "--out", str(out), "--width", "0.0625", "--blocks", "1,1,1", "--max-side", "64",
              "--crop", "32,48", "--batch-size", "2", "--steps-per-epoch", "2", "--warmup", "1",
              "--cache", str(tmp_path / "cache"), "--seed", "3"]
    assert main([*common, "--epochs", "1"]) == 0
    checkpoint = load_checkpoint(out / "best")
    assert checkpoint.input.max_side == 64
    training = checkpoint.training
    assert training["val_sequences"] == ["tiny/beta"] and training["train_sequences"] == ["tiny/alpha"]
    assert training["seed"] == 3 and len(training["val_j"]) == 1
    assert "amp-train" in training["command"] and training["machine"]["cpu_count"]
    assert load_checkpoint(out / "last").model.config.width == 0.0625
    assert (out / "last" / "optimizer.safetensors").is_file()
    before = json.loads((out / "log.json").read_text())["log"]

    assert main([*common, "--epochs", "2", "--resume"]) == 0
    log = json.loads((out / "log.json").read_text())["log"]
    assert [e["epoch"] for e in log] == [1, 2]
    assert log[0] == before[0]
    assert 0.0 <= log[1]["val_j"] <= 1.0
    state = json.loads((out / "last" / "trainer_state.json").read_text())
    assert state["epoch"] == 2 and len(state["commands"]) == 2
    assert load_checkpoint(out / "last").training["epoch"] == 2


def test_resumed_run_matches_uninterrupted(dataset: Path, tmp_path: Path) -> None:
    def run(out: Path, epochs: list[int]) -> list[float]:
        for n in epochs:
            args = ["--data", str(dataset), "--sequences", "alpha", "--val-sequences", "beta",
                    "--out", str(out), "--width", "0.0625", "--blocks", "1,1,1",
                    "--max-side", "64", "--crop", "32,48", "--batch-size", "2",
                    "--steps-per-epoch", "1", "--cache", str(tmp_path / "cache"),
                    "--epochs", str(n), "--resume"]
            assert main(args) == 0
        return [e["train_loss"] for e in json.loads((out / "log.json").read_text())["log"]]

    straight = run(tmp_path / "a", [2])
    resumed = run(tmp_path / "b", [1, 2])
    np.testing.assert_allclose(resumed, straight, rtol=1e-4)


def test_bad_blocks_are_rejected(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["--data", str(dataset), "--out", str(tmp_path / "x"), "--blocks", "3,4"])


def test_imprint_check_reports_figures(dataset: Path, tmp_path: Path) -> None:
    from amp_ros.training import imprint_check

    out = tmp_path / "run"
    assert main(["--data", str(dataset), "--sequences", "alpha", "--val-sequences", "beta",
                 "--out", str(out), "--width", "0.0625", "--blocks", "1,1,1", "--max-side", "64",
                 "--crop", "32,48", "--batch-size", "2", "--steps-per-epoch", "1",
                 "--cache", str(tmp_path / "cache"), "--epochs", "1"]) == 0
    report = tmp_path / "imprint.json"
    assert imprint_check.main(["--checkpoint", str(out / "best"), "--data", str(dataset),
                               "--val-sequences", "beta", "--frames", "3",
                               "--cache", str(tmp_path / "cache"), "--out", str(report)]) == 0
    result = json.loads(report.read_text())
    assert result["frames_used"] == 3 and result["val_sequences"] == ["tiny/beta"]
    assert set(result["cosine"]) == {"stride4", "stride8", "trunk"}
    for figures in result["cosine"].values():
        assert all(-1.0001 <= v <= 1.0001 for v in figures.values())
    learned = result["val_j"]["learned_heads"]
    assert learned == pytest.approx(load_checkpoint(out / "best").training["val_j"][0])
    assert 0.0 <= result["val_j"]["imprinted_heads"] <= 1.0


def test_efficientnet_appearance_frozen_train_and_resume(dataset: Path, tmp_path: Path) -> None:
    import torch

    from amp_ros.efficientnet import EfficientNetLite0Trunk, load_imagenet_weights

    out = tmp_path / "run"
    common = ["--data", str(dataset), "--sequences", "alpha", "--val-sequences", "beta",
              "--out", str(out), "--appearance", "efficientnet_lite0", "--width", "0.0625",
              "--blocks", "1,1,1", "--max-side", "64", "--crop", "32,48", "--batch-size", "2",
              "--steps-per-epoch", "2", "--warmup", "1", "--cache", str(tmp_path / "cache")]
    assert main([*common, "--epochs", "1"]) == 0
    checkpoint = load_checkpoint(out / "best")
    assert checkpoint.model.config.appearance == "efficientnet_lite0"
    training = checkpoint.training
    assert training["appearance"] == "efficientnet_lite0" and training["freeze_appearance"] is True
    init = training["appearance_init"]
    assert init["licence"] == "Apache-2.0" and Path(init["file"]).is_file()
    # Frozen: the trunk (weights and BatchNorm statistics) is still exactly the ImageNet one.
    imagenet = EfficientNetLite0Trunk()
    load_imagenet_weights(imagenet)
    trained = checkpoint.model.appearance.trunk.state_dict()
    for name, tensor in imagenet.state_dict().items():
        assert torch.equal(trained[name], tensor), name
    # ... while the projections to the WRN widths trained (moved off their BatchNorm init).
    projection_bn = checkpoint.model.appearance.projections[0][1]
    assert not torch.equal(projection_bn.running_mean, torch.zeros_like(projection_bn.running_mean))

    # --resume keeps the appearance stream, its freezing and its provenance.
    with pytest.raises(SystemExit):
        main([*common, "--epochs", "2", "--resume", "--no-freeze-appearance"])
    assert main([*common, "--epochs", "2", "--resume"]) == 0
    last = load_checkpoint(out / "last")
    assert last.training["epoch"] == 2 and last.training["appearance_init"] == init
    for name, tensor in imagenet.state_dict().items():
        assert torch.equal(last.model.appearance.trunk.state_dict()[name], tensor), name


def test_frozen_trunk_stays_in_eval_mode() -> None:
    from amp_ros.network import two_stream_wrn
    from amp_ros.training.train import freeze_appearance_trunk, make_optimizer

    model = two_stream_wrn(width=0.0625, group_blocks=(1, 1, 1), appearance="efficientnet_lite0")
    frozen = freeze_appearance_trunk(model)
    model.train()
    trunk = model.appearance.trunk
    assert frozen == sum(p.numel() for p in trunk.parameters()) > 0
    assert not any(m.training for m in trunk.modules())
    assert all(m.training for m in model.appearance.projections.modules())
    assert model.motion.training
    optimised = {id(p) for g in make_optimizer(model, 1e-3, 0.0).param_groups for p in g["params"]}
    assert not optimised & {id(p) for p in trunk.parameters()}
    assert {id(p) for p in model.appearance.projections.parameters()} <= optimised


def test_freeze_needs_pretrained_appearance(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["--data", str(dataset), "--out", str(tmp_path / "x"), "--freeze-appearance"])
