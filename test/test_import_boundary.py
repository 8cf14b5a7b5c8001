"""Everything that imports ROS lives under amp_ros/ros/.

Two checks: a static one over the source of every module outside amp_ros/ros/ (every import
statement, at module level or inside a function or class), and a runtime one (importing every
such module in a fresh interpreter loads no ROS module).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "amp_ros"
ROS_DIR = PACKAGE / "ros"

ROS_PACKAGES = (
    "rclpy", "rcl_interfaces", "sensor_msgs", "std_msgs", "std_srvs", "diagnostic_msgs",
    "builtin_interfaces", "amp_interfaces", "lifecycle_msgs", "launch", "launch_ros",
    "ament_index_python",
)  # fmt: skip
"""Top-level packages of ROS, and ``rosidl*`` by prefix. ``rosbags`` is pure Python, not ROS."""


def is_ros(module: str) -> bool:
    """Whether importing ``module`` is importing ROS (or amp_ros's own ROS layer)."""
    top = module.split(".")[0]
    return (top in ROS_PACKAGES or top.startswith("rosidl") or module == "amp_ros.ros"
            or module.startswith("amp_ros.ros."))


def imports(source: str, package: str) -> list[tuple[int, str]]:
    """(line, module) of every import in ``source``, anywhere in it; ``from X import y`` yields
    X and X.y (y may be a module); relative imports are resolved against ``package``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = parts[: len(parts) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def module_name(path: Path) -> str:
    """amp_ros/bag/write.py → amp_ros.bag.write; amp_ros/bag/__init__.py → amp_ros.bag."""
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def outside_ros() -> list[Path]:
    """Every module of amp_ros that is not under amp_ros/ros/."""
    return sorted(p for p in PACKAGE.rglob("*.py") if ROS_DIR not in p.parents)


def test_the_checker_sees_every_kind_of_import() -> None:
    source = (
        "import os, rosbags\n"
        "def f():\n    import rclpy.node\n"
        "class C:\n    def g(self):\n        from ..ros import replay\n"
        "from rosidl_runtime_py import convert\n"
        "from . import results\n"
    )
    found = {m for _, m in imports(source, "amp_ros.datasets") if is_ros(m)}
    assert found == {"rclpy.node", "amp_ros.ros", "amp_ros.ros.replay", "rosidl_runtime_py",
                     "rosidl_runtime_py.convert"}


def test_no_module_outside_ros_imports_ros() -> None:
    """Not at module level, not inside a function: ROS entry points belong under amp_ros/ros/."""
    names = {module_name(p) for p in outside_ros()}
    assert {"amp_ros.runner", "amp_ros.eval_cli", "amp_ros.datasets.results", "amp_ros.bag.write",
            "amp_ros.evaluation.scoring", "amp_ros.demo"} <= names  # the walk sees the package
    offenders = []
    for path in outside_ros():
        name = module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        offenders += [f"{path.relative_to(REPO)}:{line}: {module}"
                      for line, module in imports(path.read_text(), package) if is_ros(module)]
    assert offenders == []


def test_modules_outside_ros_load_no_ros() -> None:
    """Importing all of them in a new process loads no ROS module (nor does amp_ros itself)."""
    modules = [module_name(p) for p in outside_ros()]
    probe = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    completed = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                               text=True, timeout=300, check=False)
    assert completed.returncode == 0, completed.stderr
    loaded = json.loads(completed.stdout.strip().splitlines()[-1])
    assert set(modules) <= set(loaded)
    assert [name for name in loaded if is_ros(name)] == []
