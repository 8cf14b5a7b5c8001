"""``amp-bench`` runs and records what it measured (offline, and through the real node).

Nothing here asserts speed: only that the tool runs on a few tiny frames of the demo clip and
writes JSON with the expected keys and plausible values. The ``--via ros`` case starts the real
node over real DDS (this run's domain "benchmark", ros_domains.py) with reliable input, so no frame
is lost.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from ros_domains import domain

from amp_ros import benchmark
from amp_ros.benchmark import STAGES, BenchSettings, parse_size
from amp_ros.ros.bench_ros import _stream_result
from amp_ros.ros.dds_env import REPO

DOMAIN = domain("benchmark")
SIZE = "64x48"
COMMON = ["--size", SIZE]


def _run_offline(args: list[str], out: Path) -> dict:
    assert benchmark.main([*args, "--json", str(out)]) == 0
    return json.loads(out.read_text())


def _check_common(result: dict, via: str, frames: int) -> None:
    assert result["tool"] == "amp-bench" and result["via"] == via
    assert result["command"].startswith("amp-bench ") and f"--size {SIZE}" in result["command"]
    assert result["size"] == [64, 48] and result["frames"] == frames
    machine = result["machine"]
    assert machine["cpu"] and machine["cores"] >= 1 and machine["torch_threads"] >= 1
    assert isinstance(machine["cuda_available"], bool)
    assert result["time_to_first_mask_s"] > 0
    assert result["rss_mb"]["start"] > 0 and result["rss_mb"]["end"] > 0


def test_offline_writes_every_stage(tiny_checkpoint: Path, tmp_path: Path) -> None:
    result = _run_offline(["--checkpoint", str(tiny_checkpoint), *COMMON, "--frames", "4",
                           "--warmup", "1"], tmp_path / "offline.json")
    _check_common(result, "offline", 4)
    assert set(result["stages_ms"]) == set(STAGES)
    for stage in ("decode", "flow", "network", "crf", "output", "publish", "total"):
        stats = result["stages_ms"][stage]
        assert stats["count"] == 3 and 0 < stats["median"] <= stats["p95"] <= stats["max"], stage
    assert result["stages_ms"]["total"]["median"] >= result["stages_ms"]["network"]["median"]
    assert result["fps"] > 0 and result["load_s"] > 0
    assert 0 < result["latency_ms"]["median"] <= result["latency_ms"]["p95"]
    assert result["settings"] == {} and result["taught_classes"] == 0
    assert "rss_change_percent" in result  # None below 1,000 frames


def test_offline_settings_and_a_taught_class(tiny_checkpoint: Path, tmp_path: Path) -> None:
    result = _run_offline(["--checkpoint", str(tiny_checkpoint), *COMMON, "--frames", "3",
                           "--warmup", "1", "--config", "crf=false", "alpha=0", "--teach"],
                          tmp_path / "taught.json")
    _check_common(result, "offline", 3)
    assert result["settings"] == {"crf": False, "alpha": 0.0} and result["taught_classes"] == 1
    assert result["stages_ms"]["taught"]["median"] > 0
    assert result["adaptation_updates"] == 0  # alpha=0 reached the pipeline


@pytest.mark.parametrize("args, message", [
    (["--rate", "30"], "--rate"),
    (["--frames", "3", "--warmup", "3"], "--warmup"),
    (["--via", "ros"], "amp-bench"),  # the ROS-free entry point has no ros runner
])
def test_offline_entry_point_refuses_what_it_cannot_run(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert benchmark.main(args) == 1
    assert message in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_cuda_without_a_gpu_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert benchmark.main(["--device", "cuda"]) == 1
    assert "sees no CUDA device" in capsys.readouterr().err


def test_parse_size() -> None:
    assert parse_size("854x480") == (854, 480) and parse_size("1920×1080") == (1920, 1080)
    for bad in ("854", "axb", "8x8"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_size(bad)


def test_stream_result_counts_drops_and_splits_the_start_up() -> None:
    """Frame 0 is slow (the cold node), 1–2 are dropped, 3–4 come back after 0.1 s each."""
    published = [0.0, 0.1, 0.2, 0.3, 0.4]
    received = {0: 2.0, 3: 2.1, 4: 2.5}
    result = _stream_result(BenchSettings(frames=5, warmup=0, via="ros", rate=10.0), published, received)
    assert (result["published"], result["masks"], result["dropped"]) == (5, 3, 2)
    assert result["time_to_first_mask_s"] == pytest.approx(2.0)
    assert result["latency_all_ms"]["count"] == 3
    assert result["latency_ms"] is None  # every frame was published before the first mask came
    assert result["masks_per_s"] == pytest.approx(2 / 0.5)
    late = _stream_result(BenchSettings(frames=5, warmup=0, via="ros"), [0.0, 0.1, 2.1, 2.2, 2.3],
                          {0: 2.0, 2: 2.15, 4: 2.35})
    assert late["latency_ms"]["count"] == 2 and late["latency_ms"]["median"] == pytest.approx(50.0)


def test_amp_bench_is_a_console_script() -> None:
    """The script pip installs beside this interpreter (an egg-info left in the checkout by a
    build can shadow the installed entry points, so the script itself is run)."""
    script = Path(sys.executable).with_name("amp-bench")
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "--via {offline,ros}" in done.stdout


@pytest.fixture(scope="module")
def ros_result(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    """One 5-frame run through the real node (the JSON, and what the tool printed)."""
    out = tmp_path_factory.mktemp("bench_ros") / "ros.json"
    command = [sys.executable, "-m", "amp_ros.ros.bench_ros", "--via", "ros", "--checkpoint",
               str(tiny_checkpoint), *COMMON, "--frames", "5", "--warmup", "0", "--rate", "5",
               "--qos", "reliable", "--domain-id", str(DOMAIN), "--json", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(out.read_text()), done.stdout


def test_via_ros_through_the_real_node(ros_result: tuple[dict, str]) -> None:
    result, printed = ros_result
    _check_common(result, "ros", 5)
    assert result["published"] == 5 and 0 < result["masks"] <= 5
    assert result["masks"] + result["dropped"] == 5 and result["unmatched_masks"] == 0
    assert result["node_ready_s"] > 0 and result["rate_hz"] == 5.0
    assert 0 < result["latency_all_ms"]["median"] <= result["latency_all_ms"]["p95"]
    assert result["fps"] > 0  # reliable input: frame 0 and the newest frame are both segmented
    assert result["node_counters"].get("frames_failed", 0) == 0
    assert "frames/s" in printed


def test_docs_generator_fills_every_table(
    ros_result: tuple[dict, str], tiny_checkpoint: Path, tmp_path: Path
) -> None:
    """scripts/benchmarks_doc.py on real results: every {{table}} filled, commands and machine
    stated, the GPU section says plainly when there was no GPU."""
    results = tmp_path / "results"
    _run_offline(["--checkpoint", str(tiny_checkpoint), *COMMON, "--frames", "2", "--warmup", "1"],
                 results / "cpu-64x48-default.json")
    for case in ("ros-64x48", "soak-64x48"):
        (results / f"{case}.json").write_text(json.dumps(ros_result[0]))
    # a row of another model than most results ran names it
    other = json.loads((results / "cpu-64x48-default.json").read_text())
    other["checkpoint"], other["command"] = "u2net", other["command"] + " (other model)"
    (results / "cpu-64x48-u2net.json").write_text(json.dumps(other))
    doc = tmp_path / "benchmarks.md"
    done = subprocess.run([sys.executable, "scripts/benchmarks_doc.py", str(results), "--out", str(doc)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    text = doc.read_text()
    assert "{{" not in text and "(not run)" not in text
    assert text.count("Machine: ") == 3 and text.count("\namp-bench ") == 4  # one command each
    assert "| 64×48 | default (CRF + adaptation) |" in text
    assert "| 64×48 | model u2net, CRF + adaptation |" in text
    if not torch.cuda.is_available():
        assert "No GPU was available to this session" in text
