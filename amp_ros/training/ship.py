"""Ship a trained checkpoint as the default model, recording its held-out scores.

``python -m amp_ros.training.ship --checkpoint runs/X/best --metrics OUT/metrics.json
[--metrics OUT2/metrics.json ...] [--dest amp_ros/models/default]`` copies the weights and the
config (no optimizer state) and adds each metrics.json's global figures and config under
``training.scores`` — figures written by the scorer, never typed by hand.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from amp_ros.checkpoint import CONFIG_FILE, WEIGHTS_FILE, load_checkpoint
from amp_ros.models import DEFAULT_MODEL


def main(argv: list[str] | None = None) -> int:
    """Copy, annotate and verify; returns the exit status."""
    parser = argparse.ArgumentParser(prog="amp-ship", description=__doc__)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--metrics", type=Path, nargs="*", default=[], help="metrics.json files")
    parser.add_argument("--dest", type=Path, default=DEFAULT_MODEL)
    args = parser.parse_args(argv)
    load_checkpoint(args.checkpoint)  # verify before shipping
    args.dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.checkpoint / WEIGHTS_FILE, args.dest / WEIGHTS_FILE)
    config = json.loads((args.checkpoint / CONFIG_FILE).read_text())
    scores = []
    for path in args.metrics:
        metrics = json.loads(path.read_text())
        scores.append({"metrics": str(path), "dataset": metrics["dataset"],
                       "sequences": sorted(metrics["sequences"]), "global": metrics["global"],
                       "fps": metrics.get("fps"), "config": metrics.get("config")})
    config.setdefault("training", {})["scores"] = scores
    (args.dest / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    load_checkpoint(args.dest)
    size = sum(f.stat().st_size for f in args.dest.iterdir()) / 1e6
    print(f"shipped {args.checkpoint} → {args.dest} ({size:.1f} MB, {len(scores)} score record(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
