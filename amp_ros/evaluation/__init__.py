"""Scoring only: DAVIS-2016 / FBMS-59 measures, scoring of a results folder, reports and tables.

Reading datasets and results is :mod:`amp_ros.datasets`; producing results is
:mod:`amp_ros.runner` (offline) or :mod:`amp_ros.ros.eval_run` (through the node). ROS-free
(numpy, OpenCV; matplotlib only when plotting). Typical use::

    sequences = amp_ros.datasets.load_dataset("davis", root, split="val")
    metrics = evaluate_results(sequences, results_dir, out, fps=fps, config=cfg)

or, from in-memory masks, ``score_sequence(preds, gts)`` per sequence and ``summarise(...)``.
"""

from __future__ import annotations

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
    pool_runs,
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
    "boundary_f",
    "boundary_tolerance",
    "build_metrics",
    "decay_bins",
    "disk",
    "evaluate_results",
    "jaccard",
    "pool_runs",
    "region_precision_recall",
    "score_results",
    "score_sequence",
    "scored_positions",
    "seg2bmap",
    "sequence_statistics",
    "summarise",
    "write_report",
]
