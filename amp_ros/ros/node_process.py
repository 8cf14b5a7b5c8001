"""The ``amp_vos`` node as a child process: used by ``amp-eval --via ros``, the demo and tests.

The child runs on its own localhost-only ROS domain with the shared-memory Fast DDS profile
(:func:`amp_ros.ros.dds_env.child_env`).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from rclpy.node import Node

from amp_ros.ros.dds_env import REPO, child_env
from amp_ros.ros.node_config import NODE_NAME

SERVICES = ("/amp/teach", "/amp/forget", "/amp/reset")
"""The services of a node in the root namespace (see :meth:`NodeProcess.services`)."""
START_TIMEOUT = 60.0  # the node imports torch and loads a checkpoint


def _param_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value else "''"
    return repr(value)


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it when the parent dies (no orphan nodes). Linux only."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class NodeProcess:
    """The ``amp_vos`` node in a subprocess, its stdout and stderr written to ``log_path``.

    ``parameters`` become ``-p name:=value`` ROS parameters; ``omp_threads`` sets the child's
    OMP_NUM_THREADS; ``namespace`` and ``name`` remap the node's (``__ns``, ``__node``);
    ``remap`` adds ``-r from:=to`` rules; ``env`` adds environment variables.
    """

    def __init__(
        self,
        *,
        domain_id: int,
        log_path: Path,
        params_file: Path | None = None,
        omp_threads: int | None = None,
        namespace: str = "",
        name: str = NODE_NAME,
        remap: dict[str, str] | None = None,
        env: dict[str, str] | None = None,
        **parameters: object,
    ):
        self.domain_id = domain_id
        self.log_path = Path(log_path)
        self.params_file = params_file
        self.omp_threads = omp_threads
        self.namespace = "/" + namespace.strip("/") if namespace.strip("/") else ""
        self.name = name
        self.remap = dict(remap or {})
        self.env = dict(env or {})
        self.parameters = parameters
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def fqn(self) -> str:
        """The node's fully qualified name, e.g. /amp_vos or /cam1/amp_vos."""
        return f"{self.namespace}/{self.name}"

    def services(self) -> tuple[str, ...]:
        """The node's teach, forget and reset services (relative names under its namespace)."""
        return tuple(self.namespace + name for name in SERVICES)

    def lifecycle_service(self, name: str) -> str:
        """The node's lifecycle service ``name`` (change_state, get_state, ...)."""
        return f"{self.fqn}/{name}"

    def command(self) -> list[str]:
        """The command line that starts the node."""
        args = [sys.executable, "-m", "amp_ros.ros.node", "--ros-args"]
        if self.namespace:
            args += ["-r", f"__ns:={self.namespace}"]
        if self.name != NODE_NAME:
            args += ["-r", f"__node:={self.name}"]
        for source, target in self.remap.items():
            args += ["-r", f"{source}:={target}"]
        if self.params_file is not None:  # first, so that the -p below override it
            args += ["--params-file", str(self.params_file)]
        for name, value in self.parameters.items():
            args += ["-p", f"{name}:={_param_value(value)}"]
        return args

    def start(self) -> NodeProcess:
        """Start the process (returns at once; see :meth:`wait_ready`)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**child_env(self.domain_id, threads=self.omp_threads), **self.env}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(), cwd=REPO, env=env,
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )
        return self

    @property
    def alive(self) -> bool:
        """Whether the process runs."""
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        """Everything the node wrote so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, node: Node, timeout: float = START_TIMEOUT) -> None:
        """Wait until the node's services are visible from ``node`` (with autostart false: its
        lifecycle services); RuntimeError with the node's log if it died or hung."""
        if self.parameters.get("autostart", True):
            expected = set(self.services())
        else:
            expected = {self.lifecycle_service("change_state"), self.lifecycle_service("get_state")}
        deadline = time.monotonic() + timeout
        while not expected <= {name for name, _ in node.get_service_names_and_types()}:
            if not self.alive:
                raise RuntimeError(f"node exited with {self.process.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"node not ready after {timeout} s:\n{self.log()}")
            time.sleep(0.2)

    def wait_for_log(self, text: str, timeout: float = 15.0) -> bool:
        """Whether ``text`` appears in the node's log within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def stop(self, timeout: float = 15.0, signum: int = signal.SIGINT) -> int | None:
        """``signum`` (SIGINT), then SIGKILL if it has not exited within ``timeout``; returns the
        exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        return self.process.returncode

    def __enter__(self) -> NodeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
