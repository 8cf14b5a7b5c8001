"""Plain `colcon build` of this repository in a workspace, and the node started from the install.

What a ROS user does: clone the repository into ``ws/src/``, run ``colcon build`` with no flags,
source ``install/setup.bash`` and ``ros2 run amp_ros vos_node``. colcon (colcon-common-extensions,
from PyPI) builds the one package amp_ros, whose CMakeLists.txt also builds the services of
amp_interfaces/ into the same prefix, against the ROS 2 wheels of this venv (no ROS install).
``ros2`` itself (ros2cli) is not on PyPI, so the node is started the way ``ros2 run`` does it:
``<prefix of amp_ros>/lib/amp_ros/vos_node`` with the prefix from the ament index.

Cost: one build (about 20 s on two cores) shared by the module, one node start.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from ros_domains import domain

from amp_ros.ros.dds_env import dds_variables, dds_variables_applied

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
DOMAIN_ID = domain("colcon_build")
BUILD_TIMEOUT = 900


def _source_files() -> list[str]:
    """The repository's files as a clone has them: tracked plus untracked-but-not-ignored."""
    result = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                            capture_output=True, check=True, timeout=60)  # fmt: skip
    return [name for name in result.stdout.decode().split("\0") if name and (REPO / name).is_file()]


def _user_env() -> dict[str, str]:
    """A shell with the venv on PATH (activated) and no ROS setup sourced."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AMENT_", "COLCON_", "CMAKE_PREFIX_PATH", "PYTHONPATH"))}  # fmt: skip
    env["PATH"] = os.pathsep.join([str(VENV_BIN), env.get("PATH", "")])
    env["VIRTUAL_ENV"] = sys.prefix
    env["OMP_NUM_THREADS"] = "1"
    return env


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ws/src/amp_ros (a copy of this checkout), built by a plain ``colcon build`` in ws/."""
    colcon = VENV_BIN / "colcon"
    assert colcon.is_file(), "colcon is missing from the venv: run `make venv` (requirements-dev.txt)"
    assert shutil.which("cmake"), "cmake is needed by colcon build (and by make venv)"
    ws = tmp_path_factory.mktemp("ws")
    source = ws / "src" / "amp_ros"
    for name in _source_files():
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    result = subprocess.run([str(colcon), "build"], cwd=ws, env=_user_env(), capture_output=True,
                            text=True, timeout=BUILD_TIMEOUT, stdin=subprocess.DEVNULL)  # fmt: skip
    assert result.returncode == 0, f"colcon build failed:\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
    assert "1 package finished" in result.stdout, result.stdout
    return ws


def _in_install(ws: Path, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run ``args`` in a shell that sourced ws/install/setup.bash (cwd: outside the checkout)."""
    command = ["bash", "-c", 'source "$0/install/setup.bash" && exec "$@"', str(ws), *args]
    return subprocess.run(command, cwd=ws, env=_user_env(), capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL, **kwargs)  # fmt: skip


def test_colcon_finds_one_package_with_its_interfaces(workspace: Path) -> None:
    """The install holds amp_ros (scripts in lib/amp_ros, launch and config in share) and the
    services amp_interfaces/srv/Teach and Forget, registered in the ament index."""
    prefix = workspace / "install" / "amp_ros"
    for script in ("vos_node", "amp-bag", "amp-eval", "amp-teach", "amp-train", "amp-bench"):
        assert os.access(prefix / "lib" / "amp_ros" / script, os.X_OK), script
    share = prefix / "share"
    for path in ("amp_ros/package.xml", "amp_ros/launch/vos.launch.py", "amp_ros/config/vos.yaml",
                 "amp_ros/config/fastdds_shm.xml", "amp_interfaces/srv/Teach.srv",
                 "amp_interfaces/srv/Forget.srv", "ament_index/resource_index/packages/amp_ros",
                 "ament_index/resource_index/packages/amp_interfaces"):  # fmt: skip
        assert (share / path).is_file(), path
    interfaces = (share / "ament_index/resource_index/rosidl_interfaces/amp_interfaces").read_text()
    assert {"srv/Teach.srv", "srv/Forget.srv"} <= set(interfaces.split())


def test_sourced_install_imports_from_the_install(workspace: Path) -> None:
    """After sourcing install/setup.bash, amp_ros, amp_interfaces and the shipped model come from
    the install space (not from this checkout), and the service types load."""
    check = (
        "import amp_ros, amp_interfaces\n"
        "from amp_interfaces.srv import Forget, Teach\n"
        "from ament_index_python.packages import get_package_prefix, get_package_share_directory\n"
        "from amp_ros.models import default_checkpoint_path\n"
        "print(amp_ros.__file__, amp_interfaces.__file__, get_package_prefix('amp_ros'),\n"
        "      get_package_share_directory('amp_interfaces'), default_checkpoint_path(),\n"
        "      Teach.Request.__module__, Forget.Response.__module__)\n"
    )
    result = _in_install(workspace, "python3", "-c", check)
    assert result.returncode == 0, result.stderr
    install = str(workspace / "install" / "amp_ros")
    *paths, teach_module, forget_module = result.stdout.split()
    assert all(path.startswith(install) for path in paths), paths
    assert teach_module.startswith("amp_interfaces.srv") and forget_module.startswith("amp_interfaces")


def test_installed_vos_node_comes_up_and_stops_cleanly(workspace: Path, tmp_path: Path) -> None:
    """`ros2 run amp_ros vos_node`, as ros2 run does it: the script under the package prefix; its
    services appear (typed amp_interfaces/srv/...) and SIGINT ends it with status 0."""
    import rclpy
    from rclpy.context import Context
    from rclpy.node import Node

    where = "from ament_index_python.packages import get_package_prefix as p; print(p('amp_ros'))"
    prefix = _in_install(workspace, "python3", "-c", where)
    assert prefix.returncode == 0, prefix.stderr
    executable = Path(prefix.stdout.strip()) / "lib" / "amp_ros" / "vos_node"
    env = {**_user_env(), **dds_variables(), "ROS_DOMAIN_ID": str(DOMAIN_ID), "PYTHONUNBUFFERED": "1"}
    log_path = tmp_path / "vos_node.log"
    command = ["bash", "-c", 'source "$0/install/setup.bash" && exec "$@"', str(workspace),
               str(executable), "--ros-args", "-p", f"state_dir:={tmp_path / 'state'}"]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)  # fmt: skip
    context = Context()
    try:
        with dds_variables_applied():
            rclpy.init(context=context, domain_id=DOMAIN_ID)
            node = Node("colcon_test_client", context=context)
            services = _wait_for_services(node, process, log_path)
            node.destroy_node()
        assert services["/amp/teach"] == ["amp_interfaces/srv/Teach"]
        assert services["/amp/forget"] == ["amp_interfaces/srv/Forget"]
        assert services["/amp/reset"] == ["std_srvs/srv/Trigger"]
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0, log_path.read_text(errors="replace")
        assert "Traceback" not in log_path.read_text(errors="replace")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if context.ok():
            rclpy.shutdown(context=context)


def _wait_for_services(node: object, process: subprocess.Popen[bytes], log_path: Path,
                       timeout: float = 90.0) -> dict[str, list[str]]:  # fmt: skip
    """The node's /amp/* services once all three are visible; fails with the node's log."""
    deadline = time.monotonic() + timeout
    while True:
        services = {name: types for name, types in node.get_service_names_and_types()
                    if name.startswith("/amp/")}  # fmt: skip
        if {"/amp/teach", "/amp/forget", "/amp/reset"} <= set(services):
            return services
        log = log_path.read_text(errors="replace")
        assert process.poll() is None, f"vos_node exited with {process.returncode}:\n{log}"
        assert time.monotonic() < deadline, f"vos_node not up after {timeout} s:\n{log}"
        time.sleep(0.2)


# --- package.xml declares what the code imports ------------------------------------------------

ROS_IMPORTS_TO_KEYS = {
    "rclpy": "rclpy", "rcl_interfaces": "rcl_interfaces", "sensor_msgs": "sensor_msgs",
    "std_msgs": "std_msgs", "std_srvs": "std_srvs", "diagnostic_msgs": "diagnostic_msgs",
    "builtin_interfaces": "builtin_interfaces", "lifecycle_msgs": "lifecycle_msgs",
    "launch": "launch", "launch_ros": "launch_ros", "ament_index_python": "ament_index_python",
    "numpy": "python3-numpy", "cv2": "python3-opencv", "tqdm": "python3-tqdm",
    "matplotlib": "python3-matplotlib",
}  # fmt: skip
"""Top-level import → the rosdep key of package.xml that provides it."""


def _imported_top_levels() -> set[str]:
    """Top-level modules imported anywhere in amp_ros/ and launch/ (module level or not)."""
    import ast

    found = set()
    for path in [*REPO.glob("amp_ros/**/*.py"), *REPO.glob("launch/*.py")]:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found


def test_package_xml_declares_every_ros_import() -> None:
    """Every ROS package (and rosdep-keyed library) the code imports is a dependency in
    package.xml; amp_interfaces is built by this package itself, so it is not one."""
    root = ET.parse(REPO / "package.xml").getroot()
    declared = {e.text.strip() for e in root if e.tag.endswith("depend") and e.text}
    imported = _imported_top_levels()
    needed = {ROS_IMPORTS_TO_KEYS[name] for name in imported if name in ROS_IMPORTS_TO_KEYS}
    assert needed <= declared, f"imported but not in package.xml: {sorted(needed - declared)}"
    assert {"lifecycle_msgs", "launch", "launch_ros", "ament_index_python", "rcl_interfaces"} <= declared
    ros_like = {name for name in imported if name.startswith(("rcl", "rosidl", "launch", "ament"))
                or name.endswith(("_msgs", "_srvs", "_interfaces"))}  # fmt: skip
    unknown = ros_like - set(ROS_IMPORTS_TO_KEYS) - {"amp_interfaces"}
    assert not unknown, f"ROS imports without a package.xml key in this test: {sorted(unknown)}"
    assert "amp_interfaces" not in declared
    assert root.find("export/build_type").text == "ament_cmake"


def test_workspace_fixture_is_isolated_from_this_checkout() -> None:
    """The build copies the files a clone has: no venv, no build output."""
    names = _source_files()
    assert "package.xml" in names and "CMakeLists.txt" in names and "amp_interfaces/srv/Teach.srv" in names
    assert not any(name.startswith((".venv/", "build/", "install/", "log/")) for name in names)
