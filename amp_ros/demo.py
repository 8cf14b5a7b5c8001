"""The demo: segment the embedded clip, score it and show what was segmented.

Writes out/demo/ (masks, metrics.json, report.md, plots, overlay.mp4, contact_sheet.jpg) and
prints J&F and fps. Without a trained model it says plainly what is missing.

This module imports no ROS and runs ``--via offline``; ``make demo`` is
:mod:`amp_ros.ros.demo`, the same program with the ``ros`` runner (replay through the
``amp_vos`` node, its default).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np

from amp_ros.atomic_write import atomic_write
from amp_ros.datasets import VideoSequence, load_davis, read_frame, read_result_mask
from amp_ros.datasets.results import sequence_result_path
from amp_ros.errors import AmpError
from amp_ros.evaluation.scoring import evaluate_results
from amp_ros.overlay import render_overlay
from amp_ros.runner import RUNNERS, VIAS, Runner, RunSettings, run_sequences

REPO = Path(__file__).resolve().parent.parent
DEMO_CLIP = REPO / "data" / "demo"


def write_overlays(sequence: VideoSequence, masks_dir: Path, out: Path, columns: int = 4) -> None:
    """overlay.mp4 of every frame and a contact sheet of up to 12 evenly spaced frames."""
    overlays = []
    for index, frame_path in enumerate(sequence.frames):
        mask = read_result_mask(sequence_result_path(masks_dir, sequence, index))
        overlays.append(render_overlay(read_frame(frame_path), mask.astype(np.uint8) * 255))
    height, width = overlays[0].shape[:2]
    video = cv2.VideoWriter(str(out / "overlay.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 12, (width, height))
    for overlay in overlays:
        video.write(cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR))
    video.release()
    picks = np.linspace(0, len(overlays) - 1, min(12, len(overlays))).round().astype(int)
    tiles = [cv2.resize(overlays[i], (width // 2, height // 2)) for i in picks]
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % columns)
    rows = [np.hstack(tiles[r:r + columns]) for r in range(0, len(tiles), columns)]
    sheet = cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR)
    ok, jpeg = cv2.imencode(".jpg", sheet, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if ok:
        atomic_write(out / "contact_sheet.jpg", jpeg.tobytes())


def main(argv: list[str] | None = None, *, runners: Mapping[str, Runner] = RUNNERS) -> int:
    """Run the demo; returns the exit status. ``runners``: the ``--via`` runners available
    (:mod:`amp_ros.ros.demo` passes the ROS one too)."""
    parser = argparse.ArgumentParser(prog="amp-demo", description=__doc__)
    parser.add_argument("--clip", type=Path, default=DEMO_CLIP, help="DAVIS-layout clip folder")
    parser.add_argument("--out", type=Path, default=REPO / "out" / "demo")
    parser.add_argument("--checkpoint", default=None, help="shipped model name or folder")
    parser.add_argument("--via", choices=VIAS, default="ros")
    args = parser.parse_args(argv)
    try:
        settings = RunSettings(checkpoint=args.checkpoint, via=args.via)
        settings.checkpoint_path()
        sequences = load_davis(args.clip)
        masks = args.out / "masks"
        stats = run_sequences(sequences, masks, settings, runners=runners)
        metrics = evaluate_results(sequences, masks, args.out, dataset="davis",
                                   config=settings.describe(), fps=stats.fps)
        for sequence in sequences:
            write_overlays(sequence, masks, args.out)
    except AmpError as err:
        print(f"amp demo: {err}", file=sys.stderr)
        return 1
    overall = metrics["global"]
    print(f"demo clip {', '.join(s.name for s in sequences)}: J&F {overall['JF']:.3f} "
          f"(J {overall['J']['mean']:.3f}, F {overall['F']['mean']:.3f}), "
          f"{stats.fps:.2f} fps via {args.via}")
    print(f"look at {args.out / 'contact_sheet.jpg'} and {args.out / 'overlay.mp4'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
