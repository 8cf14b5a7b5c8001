"""``python -m amp_ros.benchmark``: per-stage timings of the pipeline on the embedded clip.

Speed is measured here, never asserted by tests. Prints the median and 90th percentile of every
stage (flow, network, CRF, adaptation, taught classes, output) per configuration, and the
machine it ran on. The "one taught class" row teaches the clip's first-frame ground truth.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import numpy as np
import torch

from amp_ros.datasets import load_davis, read_frame
from amp_ros.demo import DEMO_CLIP
from amp_ros.pipeline import Pipeline

CONFIGS = {
    "default (CRF + adapt)": {},
    "no CRF": {"crf": False},
    "no adaptation": {"adapt": False},
    "one taught class": {},
}
TAUGHT_CONFIG = "one taught class"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a markdown table."""
    parser = argparse.ArgumentParser(prog="amp-benchmark", description=__doc__)
    parser.add_argument("--checkpoint", default=None, help="shipped model name or folder (default: default)")
    parser.add_argument("--clip", type=Path, default=DEMO_CLIP)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    from amp_ros.models import resolve_checkpoint
    from amp_ros.provenance import checkpoint_label

    checkpoint = resolve_checkpoint(args.checkpoint)
    sequence = load_davis(args.clip)[0]
    frames = [read_frame(p) for p in sequence.frames[: args.frames + 1]]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__} with {torch.get_num_threads()} threads, device {args.device}; "
          f"frames {frames[0].shape[1]}×{frames[0].shape[0]}, checkpoint {checkpoint_label(checkpoint)}\n")
    stages = ("flow", "network", "crf", "adapt", "taught", "output", "total")
    print("| config | " + " | ".join(f"{s} ms (median / p90)" for s in stages) + " | fps |")
    print("|---|" + "---:|" * (len(stages) + 1))
    for name, changes in CONFIGS.items():
        pipeline = Pipeline.from_checkpoint(checkpoint, device=args.device)
        pipeline.configure(**changes)
        pipeline.step(frames[0])  # warm-up; also gives the next frame its DIS flow
        if name == TAUGHT_CONFIG:
            pipeline.teach("target", sequence.read_gt(0))
        timings = [pipeline.step(frame).timings for frame in frames[1:]]
        cells = []
        for stage in stages:
            values = np.array([t[stage] for t in timings]) * 1000
            cells.append(f"{np.median(values):.0f} / {np.percentile(values, 90):.0f}")
        fps = 1000 / np.median([t["total"] * 1000 for t in timings])
        print(f"| {name} | " + " | ".join(cells) + f" | {fps:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
