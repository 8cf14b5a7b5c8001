"""Score predicted masks against ground truth, per sequence and over a dataset.

Protocols:
- ``davis`` (DAVIS-2016): J and boundary F on every annotated frame except the first and the
  last. A sequence of fewer than 3 frames has nothing left after that, so all its frames are
  scored instead (documented in SequenceScores.frame_indices).
- ``fbms``: J, boundary F and foreground-pixel precision/recall/F (all objects merged) on every
  annotated frame (FBMS annotates every ~20th frame).

Dataset figures are means over sequences (not over frames); J&F = (J mean + F mean) / 2.
All scores are fractions in [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from amp_ros.datasets import VideoSequence, read_result_mask
from amp_ros.datasets.results import sequence_result_path
from amp_ros.errors import InputError
from amp_ros.evaluation.measures import (
    DEFAULT_BOUND_TH,
    RegionScores,
    Stats,
    boundary_f,
    f_measure,
    jaccard,
    region_precision_recall,
    sequence_statistics,
)
from amp_ros.evaluation.report import build_metrics, write_report

PROTOCOLS = ("davis", "fbms")


@dataclass(frozen=True)
class SequenceScores:
    """Scores of one sequence: statistics plus the per-frame values they came from."""

    J: Stats
    F: Stats
    J_per_frame: tuple[float, ...]
    F_per_frame: tuple[float, ...]
    frame_indices: tuple[int, ...]
    """Index (into the sequence's frames) of each scored frame, for plots and traceability."""
    region: RegionScores | None = None
    """FBMS only: foreground precision/recall (frame means) and their F-measure."""
    precision_per_frame: tuple[float, ...] = ()
    recall_per_frame: tuple[float, ...] = ()

    @property
    def frames(self) -> int:
        """Number of scored frames."""
        return len(self.J_per_frame)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: J, F, frames, per-frame lists (and region figures for FBMS)."""
        out: dict[str, Any] = {
            "J": self.J.to_dict(),
            "F": self.F.to_dict(),
            "frames": self.frames,
            "frame_indices": list(self.frame_indices),
            "J_per_frame": list(self.J_per_frame),
            "F_per_frame": list(self.F_per_frame),
        }
        if self.region is not None:
            out["region"] = self.region.to_dict()
            out["precision_per_frame"] = list(self.precision_per_frame)
            out["recall_per_frame"] = list(self.recall_per_frame)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SequenceScores:
        """The inverse of :meth:`to_dict`: one sequence's scores read back from a metrics.json."""
        region = data.get("region")
        if region is not None:
            region = RegionScores(region["precision"], region["recall"], region["F"])
        return cls(
            J=Stats(**data["J"]),
            F=Stats(**data["F"]),
            J_per_frame=tuple(data["J_per_frame"]),
            F_per_frame=tuple(data["F_per_frame"]),
            frame_indices=tuple(data["frame_indices"]),
            region=region,
            precision_per_frame=tuple(data.get("precision_per_frame", ())),
            recall_per_frame=tuple(data.get("recall_per_frame", ())),
        )


@dataclass(frozen=True)
class GlobalScores:
    """Dataset figures: means over sequences of each sequence statistic, and J&F."""

    J: Stats
    F: Stats
    JF: float
    sequences: int
    region: RegionScores | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: {"J", "F", "JF", "sequences"[, "region"]}."""
        out: dict[str, Any] = {
            "J": self.J.to_dict(),
            "F": self.F.to_dict(),
            "JF": self.JF,
            "sequences": self.sequences,
        }
        if self.region is not None:
            out["region"] = self.region.to_dict()
        return out


def _check_protocol(protocol: str) -> None:
    """InputError unless `protocol` is one of PROTOCOLS."""
    if protocol not in PROTOCOLS:
        raise InputError(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")


def scored_positions(n: int, protocol: str = "davis", given: int = 0) -> list[int]:
    """Positions among `n` annotated frames that `protocol` scores.

    davis: all but the first and last (all of them when n < 3); fbms: all. given: the first
    `given` annotated frames were given to the method as labels (the teach protocol's shots)
    and are never scored.
    """
    _check_protocol(protocol)
    if n < 1:
        raise InputError("a sequence needs at least one annotated frame to be scored")
    if protocol == "davis" and n >= 3:
        positions = list(range(max(1, given), n - 1))
    else:
        positions = list(range(given, n))
    if not positions:
        raise InputError(f"no frame left to score: {n} annotated, the first {given} given")
    return positions


class _Accumulator:
    """Per-frame scores of one sequence, turned into SequenceScores at the end."""

    def __init__(self, protocol: str, bound_th: float) -> None:
        self.region = protocol == "fbms"
        self.bound_th = bound_th
        self.j: list[float] = []
        self.f: list[float] = []
        self.p: list[float] = []
        self.r: list[float] = []
        self.indices: list[int] = []

    def add(self, pred: np.ndarray, gt: np.ndarray, frame_index: int) -> None:
        """Score one H×W prediction against its H×W ground truth."""
        self.j.append(jaccard(pred, gt))
        self.f.append(boundary_f(pred, gt, self.bound_th))
        if self.region:
            precision, recall = region_precision_recall(pred, gt)
            self.p.append(precision)
            self.r.append(recall)
        self.indices.append(int(frame_index))

    def result(self) -> SequenceScores:
        """Statistics of the frames added so far."""
        region = None
        if self.region:
            precision, recall = float(np.mean(self.p)), float(np.mean(self.r))
            region = RegionScores(precision, recall, f_measure(precision, recall))
        return SequenceScores(
            J=sequence_statistics(self.j),
            F=sequence_statistics(self.f),
            J_per_frame=tuple(self.j),
            F_per_frame=tuple(self.f),
            frame_indices=tuple(self.indices),
            region=region,
            precision_per_frame=tuple(self.p),
            recall_per_frame=tuple(self.r),
        )


def score_sequence(
    pred_masks: Sequence[np.ndarray],
    gt_masks: Sequence[np.ndarray],
    *,
    protocol: str = "davis",
    frame_indices: Sequence[int] | None = None,
    bound_th: float = DEFAULT_BOUND_TH,
) -> SequenceScores:
    """Score one sequence from in-memory masks (what the pipeline runner calls).

    pred_masks, gt_masks: one H×W mask per annotated frame, in order (any nonzero = object).
    frame_indices: frame number of each annotated frame (default 0..n-1), kept for plots.
    The protocol picks which of them are scored (see scored_positions).
    """
    _check_protocol(protocol)
    if len(pred_masks) != len(gt_masks):
        raise InputError(
            f"score_sequence got {len(pred_masks)} predicted masks but {len(gt_masks)} "
            f"ground-truth masks"
        )
    indices = list(range(len(gt_masks))) if frame_indices is None else list(frame_indices)
    if len(indices) != len(gt_masks):
        raise InputError(
            f"score_sequence got {len(indices)} frame indices for {len(gt_masks)} masks"
        )
    acc = _Accumulator(protocol, bound_th)
    for k in scored_positions(len(gt_masks), protocol):
        acc.add(pred_masks[k], gt_masks[k], indices[k])
    return acc.result()


def summarise(per_sequence: Mapping[str, SequenceScores]) -> GlobalScores:
    """Dataset figures: each statistic averaged over sequences; J&F from the two means."""
    if not per_sequence:
        raise InputError("summarise needs at least one scored sequence")
    scores = list(per_sequence.values())

    def mean_stats(pick: Callable[[SequenceScores], Stats]) -> Stats:
        return Stats(
            mean=float(np.mean([pick(s).mean for s in scores])),
            recall=float(np.mean([pick(s).recall for s in scores])),
            decay=float(np.mean([pick(s).decay for s in scores])),
        )

    j_stats = mean_stats(lambda s: s.J)
    f_stats = mean_stats(lambda s: s.F)
    region = None
    regions = [s.region for s in scores if s.region is not None]
    if regions:
        precision = float(np.mean([r.precision for r in regions]))
        recall = float(np.mean([r.recall for r in regions]))
        region = RegionScores(precision, recall, f_measure(precision, recall))
    return GlobalScores(
        J=j_stats,
        F=f_stats,
        JF=(j_stats.mean + f_stats.mean) / 2.0,
        sequences=len(scores),
        region=region,
    )


def pool_runs(runs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """One metrics dict over every sequence of several runs (the folds of a cross-validation),
    summarised like one dataset; a sequence in two runs is an InputError (counted twice)."""
    per_sequence: dict[str, SequenceScores] = {}
    for label, metrics in runs.items():
        for name, data in metrics["sequences"].items():
            if name in per_sequence:
                raise InputError(f"sequence {name!r} is in more than one pooled run ({label!r} among them)")
            per_sequence[name] = SequenceScores.from_dict(data)
    dataset = ", ".join(sorted({str(metrics.get("dataset")) for metrics in runs.values()}))
    return build_metrics(dataset, per_sequence, summarise(per_sequence), config={"pooled": list(runs)})


def check_results(sequences: Sequence[VideoSequence], results_dir: str | Path) -> None:
    """Raise InputError naming the first missing result mask (and how many are missing)."""
    missing = [
        sequence_result_path(results_dir, seq, i)
        for seq in sequences
        for i in seq.gt_frames
        if not sequence_result_path(results_dir, seq, i).is_file()
    ]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise InputError(f"missing result mask {missing[0]}{more}")


def score_results(
    sequences: Sequence[VideoSequence],
    results_dir: str | Path,
    *,
    bound_th: float = DEFAULT_BOUND_TH,
    progress: bool = False,
    given_frames: int = 0,
) -> dict[str, SequenceScores]:
    """Score a results folder (<results>/<seq>/<frame stem>.png) against each sequence's truth.

    The protocol follows each sequence's dataset; the first ``given_frames`` annotated frames
    (labels the method was given) are not scored. Every annotated frame must have a result
    (checked before scoring starts); a result of another size than its ground truth is an error
    naming both files.
    """
    check_results(sequences, results_dir)
    plans = {
        seq.name: scored_positions(len(seq.gt_frames), seq.dataset, given_frames) for seq in sequences
    }
    scores: dict[str, SequenceScores] = {}
    with tqdm(
        total=sum(len(p) for p in plans.values()), unit="frame", disable=not progress
    ) as bar:
        for seq in sequences:
            bar.set_description(seq.name)
            acc = _Accumulator(seq.dataset, bound_th)
            for k in plans[seq.name]:
                frame_index = seq.gt_frames[k]
                gt = seq.read_gt(k)
                path = sequence_result_path(results_dir, seq, frame_index)
                pred = read_result_mask(path)
                if pred.shape != gt.shape:
                    raise InputError(
                        f"result mask {path} is {pred.shape[1]}×{pred.shape[0]} (W×H) but its "
                        f"ground truth {seq.gt_paths[k]} is {gt.shape[1]}×{gt.shape[0]}"
                    )
                acc.add(pred, gt, frame_index)
                bar.update(1)
            scores[seq.name] = acc.result()
    return scores


def evaluate_results(
    sequences: Sequence[VideoSequence],
    results_dir: str | Path,
    out: str | Path,
    *,
    dataset: str | None = None,
    config: Mapping[str, Any] | None = None,
    fps: float | None = None,
    bound_th: float = DEFAULT_BOUND_TH,
    progress: bool = False,
    plots: bool = True,
    given_frames: int = 0,
) -> dict[str, Any]:
    """Score a results folder and write OUT/metrics.json, OUT/report.md and OUT/plots/.

    This is the one call both `amp-eval score` and a pipeline run (`amp-eval davis`) end with.
    dataset: label for the report (default: the sequences' dataset); config, fps: recorded
    as-is in metrics.json; given_frames: see :func:`score_results`. Returns the metrics dict
    written to metrics.json.
    """
    if not sequences:
        raise InputError("evaluate_results needs at least one sequence")
    per_sequence = score_results(sequences, results_dir, bound_th=bound_th, progress=progress,
                                 given_frames=given_frames)
    metrics = build_metrics(
        dataset if dataset is not None else sequences[0].dataset,
        per_sequence,
        summarise(per_sequence),
        fps=fps,
        config=config,
    )
    write_report(out, metrics, plots=plots)
    return metrics
