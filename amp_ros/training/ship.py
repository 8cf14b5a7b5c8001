"""Ship a trained checkpoint as the default model, recording its held-out scores.

``python -m amp_ros.training.ship --checkpoint runs/X/best --name wrn [--metrics OUT/metrics.json
...] [--default]`` copies the weights and the config (no optimizer state) to
``amp_ros/models/<name>/``, adds each metrics.json's global figures and config under
``training.scores`` (figures written by the scorer, never typed by hand), and with ``--default``
makes it the model the node loads.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from amp_ros.checkpoint import CONFIG_FILE, WEIGHTS_FILE, load_checkpoint
from amp_ros.models import MODELS


def main(argv: list[str] | None = None) -> int:
    """Copy, annotate and verify; returns the exit status."""
    parser = argparse.ArgumentParser(prog="amp-ship", description=__doc__)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--metrics", type=Path, nargs="*", default=[], help="metrics.json files")
    parser.add_argument("--name", required=True, help="folder name under --models")
    parser.add_argument("--models", type=Path, default=MODELS, help="models folder")
    parser.add_argument("--default", action="store_true", help="make it the default model")
    args = parser.parse_args(argv)
    args.dest = args.models / args.name
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
    if args.default:
        (args.models / "DEFAULT").write_text(args.name + "\n")
    size = sum(f.stat().st_size for f in args.dest.iterdir()) / 1e6
    print(f"shipped {args.checkpoint} → {args.dest} ({size:.1f} MB, {len(scores)} score record(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
