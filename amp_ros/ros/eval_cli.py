"""``amp-eval``: :mod:`amp_ros.eval_cli` with the ``--via ros`` runner (bags replayed through the
``amp_vos`` node) added to the ROS-free ``offline`` one."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from amp_ros import eval_cli
from amp_ros.ros.eval_run import RUNNERS


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``amp-eval``; returns the exit status."""
    return eval_cli.main(argv, runners=RUNNERS)


if __name__ == "__main__":
    sys.exit(main())
