"""Offline evaluation: DAVIS-2016 / FBMS-59 measures, scoring and reports (readers: amp_ros.datasets).

ROS-free (numpy, OpenCV; matplotlib only when plotting). Typical use::

    sequences = load_dataset("davis", root, split="val")
    metrics = evaluate_results(sequences, results_dir, out, fps=fps, config=cfg)

or, from in-memory masks, ``score_sequence(preds, gts)`` per sequence and ``summarise(...)``.
"""

from __future__ import annotations

from amp_ros.datasets import (
    VideoSequence,
    load_dataset,
    load_davis,
    load_fbms,
    read_davis_mask,
    read_fbms_mask,
    read_result_mask,
    read_split,
    write_mask,
)
from amp_ros.evaluation.measures import (
    RegionScores,
    Stats,
    boundary_f,
    boundary_tolerance,
    decay_bins,
    disk,
    jaccard,
    region_precision_recall,
    seg2bmap,
    sequence_statistics,
)
from amp_ros.evaluation.report import build_metrics, write_report
from amp_ros.evaluation.scoring import (
    GlobalScores,
    SequenceScores,
    evaluate_results,
    score_results,
    score_sequence,
    scored_positions,
    summarise,
)

__all__ = [
    "GlobalScores",
    "RegionScores",
    "SequenceScores",
    "Stats",
    "VideoSequence",
    "boundary_f",
    "boundary_tolerance",
    "build_metrics",
    "decay_bins",
    "disk",
    "evaluate_results",
    "jaccard",
    "load_dataset",
    "load_davis",
    "load_fbms",
    "read_davis_mask",
    "read_fbms_mask",
    "read_result_mask",
    "read_split",
    "region_precision_recall",
    "score_results",
    "score_sequence",
    "scored_positions",
    "seg2bmap",
    "sequence_statistics",
    "summarise",
    "write_mask",
    "write_report",
]
