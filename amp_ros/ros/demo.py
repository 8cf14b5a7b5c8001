"""``make demo``: replay the embedded clip through the ``amp_vos`` node (``--via ros``, the
default) and show what it segmented; :mod:`amp_ros.demo` with the ROS runner added."""

from __future__ import annotations

import sys

from amp_ros import demo
from amp_ros.ros.eval_run import RUNNERS


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the exit status."""
    return demo.main(argv, runners=RUNNERS)


if __name__ == "__main__":
    sys.exit(main())
