"""Committed files record no folder of the machine they were made on, and no host name.

Paths are recorded relative to the repository, datasets by name, shipped models by name.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

MACHINE_PATH = re.compile(r"""(?:^|[\s"'`(=\[,])(/(?:work|home|root|tmp|opt|Users|mnt|srv|scratch)/\S*)""")
"""An absolute path under a machine-specific folder, at the start of a token."""

ALLOWED = (
    "/opt/ros/",  # the standard ROS 2 install prefix, in setup instructions (`source /opt/ros/...`)
    "/opt/python/",  # the manylinux build prefix baked into the ROS wheels, which amp_interfaces
    # filters out of its include dirs (and explains why)
)


def tracked_text_files() -> list[Path]:
    """Files git tracks (committed or added) that decode as UTF-8 text."""
    names = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True)
    files = []
    for name in names.stdout.decode().split("\0"):
        path = REPO / name
        if not name or not path.is_file():
            continue
        try:
            path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # weights, images, bags
        files.append(path)
    return files


def machine_paths(text: str) -> list[str]:
    """The absolute machine paths in ``text`` that are not allowed."""
    return [m for m in MACHINE_PATH.findall(text) if not m.startswith(ALLOWED)]


def test_the_pattern() -> None:
    # The examples are split ("/" "work/…") so that this file does not match itself.
    assert machine_paths('"data": ["/' 'work/shared/data/davis2016-train"]') == [
        "/" 'work/shared/data/davis2016-train"]']
    assert machine_paths("checkpoint /" "home/me/runs/best") == ["/" "home/me/runs/best"]
    assert machine_paths("(`/" "tmp/x`)") == ["/" "tmp/x`)"]
    assert machine_paths("source /" "opt/ros/kilted/setup.bash") == []
    assert machine_paths("runs/work/tmp/x, ../shared/data/davis2016-train, a/home/b") == []


def test_no_absolute_machine_paths_in_tracked_files() -> None:
    files = tracked_text_files()
    assert any(p.name == "config.json" for p in files)  # the shipped models' configs are scanned
    found = {str(p.relative_to(REPO)): paths for p in files if (paths := machine_paths(p.read_text()))}
    assert found == {}


def test_no_host_names_in_shipped_configs() -> None:
    def keys(value: object) -> list[str]:
        if isinstance(value, dict):
            return [k for key, item in value.items() for k in (key, *keys(item))]
        if isinstance(value, list):
            return [k for item in value for k in keys(item)]
        return []

    configs = sorted((REPO / "amp_ros" / "models").glob("*/config.json"))
    assert configs
    for path in configs:
        assert not {"host", "hostname"} & set(keys(json.loads(path.read_text()))), path


def test_recorded_paths_are_portable(tmp_path: Path) -> None:
    """What amp-eval (metrics.json config) and ship (training.scores) record."""
    from amp_ros.models import MODELS
    from amp_ros.provenance import checkpoint_label, repo_relative
    from amp_ros.runner import RunSettings

    assert checkpoint_label(MODELS / "wrn") == "wrn"
    assert RunSettings(checkpoint="efficientnet-lite0").describe()["checkpoint"] == "efficientnet-lite0"
    assert checkpoint_label(REPO / "runs" / "effnet" / "best") == "runs/effnet/best"
    assert repo_relative(REPO / "out" / "results" / "wrn" / "metrics.json") == "out/results/wrn/metrics.json"
    assert repo_relative("out/x/metrics.json") == "out/x/metrics.json"
    assert repo_relative(tmp_path / "elsewhere") == str(tmp_path / "elsewhere")  # the user's own


def test_no_machine_paths_in_the_shipped_onnx_graphs() -> None:
    """The exporter writes Python stack traces into node metadata; amp-ship strips them."""
    graphs = sorted((REPO / "amp_ros" / "models").glob("*/*.onnx"))
    assert graphs  # the default model ships its network parts as ONNX
    found = {str(p.relative_to(REPO)): paths[:3] for p in graphs
             if (paths := machine_paths(p.read_bytes().decode("latin-1")))}
    assert found == {}
