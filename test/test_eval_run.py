"""amp-eval davis: the offline path and the ROS path (real node process, rosbag2 replay in
lockstep) produce the report, and the same masks for the same input."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from ros_domains import domain

from amp_ros.eval_cli import main as offline_main
from amp_ros.ros.eval_cli import main


@pytest.fixture()
def davis_fixture(tmp_path: Path, make_frame) -> Path:
    """Two 5-frame sequences (48×64) of a textured square moving over a textured background."""
    root = tmp_path / "davis"
    for seq, step in (("square-right", (3, 0)), ("square-down", (0, 2))):
        frames = root / "JPEGImages" / "480p" / seq
        masks = root / "Annotations" / "480p" / seq
        frames.mkdir(parents=True)
        masks.mkdir(parents=True)
        background = make_frame(48, 64, seed=1)
        square = make_frame(16, 16, seed=2)
        for t in range(5):
            frame, mask = background.copy(), np.zeros((48, 64), np.uint8)
            x, y = 10 + step[0] * t, 10 + step[1] * t
            frame[y:y + 16, x:x + 16] = square
            mask[y:y + 16, x:x + 16] = 255
            cv2.imwrite(str(frames / f"{t:05d}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            cv2.imwrite(str(masks / f"{t:05d}.png"), mask)
    return root


def _masks(folder: Path) -> dict[str, np.ndarray]:
    return {str(p.relative_to(folder)): cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
            for p in sorted(folder.rglob("*.png"))}


def _offline_and_ros(
    common: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, domain_id: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Run `amp-eval davis COMMON` offline and through the node; the masks of both runs."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the node process: same arithmetic as here
    monkeypatch.setenv("AMP_EVAL_DOMAIN_ID", str(domain_id))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for via in ("offline", "ros"):
            assert main(["davis", *common, "--out", str(tmp_path / via), "--via", via]) == 0
    finally:
        torch.set_num_threads(threads)
    return _masks(tmp_path / "offline" / "masks"), _masks(tmp_path / "ros" / "masks")


def test_offline_and_ros_give_the_same_masks(
    davis_fixture: Path, tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    common = ["--root", str(davis_fixture), "--checkpoint", str(tiny_checkpoint), "--quiet"]
    offline, ros = _offline_and_ros(common, tmp_path, monkeypatch, domain("eval_run_masks"))
    assert len(offline) == 10 and offline.keys() == ros.keys()
    for name, mask in offline.items():
        assert mask.shape == (48, 64)
        np.testing.assert_array_equal(mask, ros[name], err_msg=name)

    for out in ("offline", "ros"):
        metrics = json.loads((tmp_path / out / "metrics.json").read_text())
        assert set(metrics["sequences"]) == {"square-right", "square-down"}
        assert metrics["config"]["via"] == out
        assert metrics["fps"] > 0
        assert (tmp_path / out / "report.md").is_file()
        assert (tmp_path / out / "plots" / "j_per_sequence.png").is_file()
    same = json.loads((tmp_path / "offline" / "metrics.json").read_text())["global"]
    other = json.loads((tmp_path / "ros" / "metrics.json").read_text())["global"]
    assert same["JF"] == other["JF"]

    table = tmp_path / "results.md"
    assert main(["compare", f"offline={tmp_path / 'offline'}", f"ros={tmp_path / 'ros'}",
                 "--out", str(table)]) == 0
    text = table.read_text()
    assert f"| offline | {same['JF']:.3f} |" in text and "| square-down |" in text
    assert str(tmp_path / "ros" / "metrics.json") in text


def test_no_adapt_and_no_crf_are_recorded(davis_fixture: Path, tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "ablation"
    assert main(["davis", "--root", str(davis_fixture), "--checkpoint", str(tiny_checkpoint),
                 "--out", str(out), "--no-crf", "--no-adapt", "--levels", "2", "--no-plots",
                 "--quiet"]) == 0
    config = json.loads((out / "metrics.json").read_text())["config"]
    assert config["crf"] is False and config["adapt"] is False
    assert config["head_levels"] == [2]


def test_missing_checkpoint_is_a_clear_error(davis_fixture: Path, tmp_path: Path, capsys) -> None:
    code = main(["davis", "--root", str(davis_fixture), "--checkpoint", str(tmp_path / "nope"),
                 "--out", str(tmp_path / "out"), "--quiet"])
    assert code == 1
    assert "checkpoint file missing" in capsys.readouterr().err


def test_ros_free_entry_point_explains_via_ros(davis_fixture: Path, tiny_checkpoint: Path, tmp_path: Path,
                                               capsys) -> None:
    """amp_ros.eval_cli imports no ROS, so --via ros is for amp-eval (amp_ros.ros.eval_cli)."""
    code = offline_main(["davis", "--root", str(davis_fixture), "--checkpoint", str(tiny_checkpoint),
                         "--out", str(tmp_path / "out"), "--quiet", "--via", "ros"])
    assert code == 1
    assert "python -m amp_ros.ros.eval_cli" in capsys.readouterr().err


def test_teach_first_frames_protocol(davis_fixture: Path, tiny_checkpoint: Path, tmp_path: Path) -> None:
    """--teach-first-frame --shots 2: frames 0 and 1 keep their ground truth, later frames are
    the taught class's pixels (the same as Pipeline.teach on the first two frames gives), and
    metrics.json records the protocol; --via ros refuses two shots (/amp/teach takes one)."""
    from amp_ros.datasets import load_davis, read_frame
    from amp_ros.pipeline import Pipeline

    common = ["--root", str(davis_fixture), "--checkpoint", str(tiny_checkpoint), "--quiet",
              "--no-plots", "--teach-first-frame", "--shots", "2"]
    assert offline_main(["davis", *common, "--out", str(tmp_path / "taught")]) == 0
    masks = _masks(tmp_path / "taught" / "masks")
    metrics = json.loads((tmp_path / "taught" / "metrics.json").read_text())
    assert metrics["config"]["protocol"] == "teach the first 2 frame(s)"

    (sequence,) = load_davis(davis_fixture, sequences=["square-down"])
    pipeline = Pipeline.from_checkpoint(tiny_checkpoint)
    frames = [read_frame(p) for p in sequence.frames]
    for frame in frames[:2]:
        pipeline.step(frame)
    class_id = pipeline.teach("target", [sequence.read_gt(0), sequence.read_gt(1)]).class_id
    for t in range(5):
        written = masks[f"square-down/{t:05d}.png"] > 0
        if t < 2:
            assert np.array_equal(written, sequence.read_gt(t))
        else:
            assert np.array_equal(written, pipeline.step(frames[t]).labels == class_id)
    assert main(["davis", *common, "--out", str(tmp_path / "ros"), "--via", "ros"]) == 1


def test_teach_first_frame_offline_and_ros_give_the_same_masks(
    davis_fixture: Path, tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One shot through the real node (/amp/teach on the replayed first frame, ~/labels
    recorded) and through the pipeline: the same masks, frame for frame. Without the taught
    class's CRF: after it the tiny random checkpoint's class keeps a pixel or none (real-frame
    teaching with the CRF is test_real_data.py's)."""
    common = ["--root", str(davis_fixture), "--checkpoint", str(tiny_checkpoint), "--quiet",
              "--no-plots", "--teach-first-frame", "--set", "taught_crf=false"]
    offline, ros = _offline_and_ros(common, tmp_path, monkeypatch, domain("eval_run_teach"))
    assert len(offline) == 10 and offline.keys() == ros.keys()
    taught = [mask for name, mask in offline.items() if not name.endswith("00000.png")]
    assert all(0 < (mask > 0).mean() < 0.5 for mask in taught)  # the class, not nothing or all
    for name, mask in offline.items():
        assert np.array_equal(mask, ros[name]), name


def test_set_parses_pipeline_settings_by_parameter_name() -> None:
    """--set NAME=VALUE: typed like the setting's default; unknown names and bad values refused."""
    import argparse

    from amp_ros.eval_cli import parse_setting
    from amp_ros.runner import RunSettings

    assert parse_setting("taught_search_radius=0") == ("taught_search_radius", 0.0)
    assert parse_setting("taught_background_grid=1") == ("taught_background_grid", 1)
    assert parse_setting("taught_crf=false") == ("taught_crf", False)
    for bad in ("nonsense=1", "taught_background_grid=two", "taught_crf=maybe", "alpha",
                "taught_alpha=1.5", "taught_background_grid=0"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_setting(bad)
    settings = RunSettings(crf=False, overrides=(("taught_search_radius", 0.0),))
    assert settings.pipeline_values() == {"crf": False, "taught_crf": False, "adapt": True,
                                          "taught_search_radius": 0.0}
    assert settings.describe()["settings"] == {"taught_search_radius": 0.0}
