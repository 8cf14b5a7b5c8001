"""Write evaluation results: OUT/metrics.json, OUT/report.md and OUT/plots/*.png.

Everything is rendered from the metrics dict (the content of metrics.json), so a saved
metrics.json can be re-rendered. Every file is written atomically (a reader never sees a
half-written one). Plots use matplotlib's Agg canvas (no display, no pyplot
global state); matplotlib is imported only when plotting.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amp_ros.atomic_write import atomic_path, atomic_write
from amp_ros.errors import InputError

if TYPE_CHECKING:
    from amp_ros.evaluation.scoring import GlobalScores, SequenceScores

METRICS_FILE = "metrics.json"
REPORT_FILE = "report.md"
PLOTS_DIR = "plots"


def build_metrics(
    dataset: str,
    per_sequence: Mapping[str, SequenceScores],
    summary: GlobalScores,
    *,
    fps: float | None = None,
    config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The metrics.json content: {"dataset", "sequences", "global", "fps", "config"}."""
    return {
        "dataset": dataset,
        "sequences": {name: scores.to_dict() for name, scores in per_sequence.items()},
        "global": summary.to_dict(),
        "fps": None if fps is None else float(fps),
        "config": dict(config) if config is not None else None,
    }


def write_metrics_json(out: str | Path, metrics: Mapping[str, Any]) -> Path:
    """Write OUT/metrics.json (values that JSON cannot hold are written as strings)."""
    return atomic_write(Path(out) / METRICS_FILE, json.dumps(metrics, indent=2, default=str) + "\n")


def _row(cells: list[str]) -> str:
    """One markdown table row."""
    return "| " + " | ".join(cells) + " |"


def render_markdown(metrics: Mapping[str, Any]) -> str:
    """Markdown report: headline figures and one table row per sequence plus the global row."""
    sequences: Mapping[str, Any] = metrics["sequences"]
    summary: Mapping[str, Any] = metrics["global"]
    region = "region" in summary
    header = ["sequence", "J mean", "J recall", "J decay", "F mean", "F recall", "F decay"]
    if region:
        header += ["P", "R", "F (region)"]
    header.append("frames")

    def cells(entry: Mapping[str, Any]) -> list[str]:
        values = [entry[m][s] for m in ("J", "F") for s in ("mean", "recall", "decay")]
        if region:
            values += [entry["region"][k] for k in ("precision", "recall", "F")]
        return [f"{v:.3f}" for v in values]

    lines = [
        f"# Evaluation report: {metrics['dataset']} ({len(sequences)} sequences)",
        "",
        f"- J&F: **{summary['JF']:.3f}** (J mean {summary['J']['mean']:.3f}, "
        f"F mean {summary['F']['mean']:.3f})",
    ]
    if region:
        r = summary["region"]
        lines.append(
            f"- foreground precision / recall / F: {r['precision']:.3f} / {r['recall']:.3f} / "
            f"{r['F']:.3f}"
        )
    fps = metrics.get("fps")
    lines.append(f"- speed: {fps:.2f} frames/s" if fps is not None else "- speed: not measured")
    lines += [
        "- scores are fractions in [0, 1]; dataset figures are means over sequences",
        "",
        _row(header),
        _row(["---"] + ["---:"] * (len(header) - 1)),
    ]
    for name, entry in sequences.items():
        lines.append(_row([name, *cells(entry), str(entry["frames"])]))
    total = sum(int(entry["frames"]) for entry in sequences.values())
    lines.append(_row(["**global**", *cells(summary), str(total)]))
    if metrics.get("config"):
        lines += [
            "",
            "## Config",
            "",
            "```json",
            json.dumps(metrics["config"], indent=2, default=str),
            "```",
        ]
    return "\n".join(lines) + "\n"


def write_markdown(out: str | Path, metrics: Mapping[str, Any]) -> Path:
    """Write OUT/report.md."""
    return atomic_write(Path(out) / REPORT_FILE, render_markdown(metrics))


def _safe_name(name: str) -> str:
    """A sequence name usable as a file name."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "_"


def _save(fig: Any, path: Path) -> None:
    """Save a matplotlib figure as PNG, atomically."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")


def write_plots(out: str | Path, metrics: Mapping[str, Any]) -> list[Path]:
    """OUT/plots/<seq>.png (J and F over time) and OUT/plots/j_per_sequence.png; returns paths."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    folder = Path(out) / PLOTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    sequences: Mapping[str, Any] = metrics["sequences"]
    for name, entry in sequences.items():
        fig = Figure(figsize=(7, 3.2))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        x = entry["frame_indices"]
        ax.plot(x, entry["J_per_frame"], marker=".", label=f"J (mean {entry['J']['mean']:.3f})")
        ax.plot(x, entry["F_per_frame"], marker=".", label=f"F (mean {entry['F']['mean']:.3f})")
        ax.set_ylim(0.0, 1.05)
        ax.set_xlabel("frame")
        ax.set_ylabel("score")
        ax.set_title(name)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower left")
        fig.tight_layout()
        path = folder / f"{_safe_name(name)}.png"
        _save(fig, path)
        written.append(path)

    names = list(sequences)
    fig = Figure(figsize=(max(6.0, 0.35 * len(names) + 2.0), 4.0))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.bar(range(len(names)), [sequences[n]["J"]["mean"] for n in names], color="tab:blue")
    j_mean = metrics["global"]["J"]["mean"]
    ax.axhline(j_mean, color="tab:red", linestyle="--", label=f"mean {j_mean:.3f}")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=90)
    ax.set_ylim(0.0, 1.15)
    ax.set_ylabel("J mean")
    ax.set_title(f"{metrics['dataset']}: J per sequence")
    ax.legend(loc="upper right")
    fig.tight_layout()
    path = folder / "j_per_sequence.png"
    _save(fig, path)
    written.append(path)
    return written


def write_report(
    out: str | Path, metrics: Mapping[str, Any], *, plots: bool = True
) -> dict[str, Path]:
    """Write metrics.json, report.md and (unless plots=False) the plots under OUT."""
    paths = {"metrics": write_metrics_json(out, metrics), "report": write_markdown(out, metrics)}
    if plots:
        for path in write_plots(out, metrics):
            paths[f"plot:{path.stem}"] = path
    return paths


def render_comparison(runs: Mapping[str, Mapping[str, Any]], sources: Mapping[str, str]) -> str:
    """Markdown comparing several runs' metrics.json: one global row per run, then per-sequence J.

    runs: label → metrics dict; sources: label → where its metrics.json lives (printed, so every
    figure can be traced to the command that wrote it), with the run's config as chosen (its
    every pipeline setting, ``config.pipeline``, stays in the metrics.json).
    """
    lines = [
        _row(["run", "J&F", "J mean", "J recall", "J decay", "F mean", "F recall", "F decay", "fps"]),
        _row(["---"] + ["---:"] * 8),
    ]
    for label, metrics in runs.items():
        g = metrics["global"]
        fps = metrics.get("fps")
        lines.append(_row([
            label, f"{g['JF']:.3f}",
            *(f"{g[m][k]:.3f}" for m in ("J", "F") for k in ("mean", "recall", "decay")),
            f"{fps:.2f}" if isinstance(fps, (int, float)) else "–",
        ]))
    names = sorted({name for metrics in runs.values() for name in metrics["sequences"]})
    lines += ["", "Per-sequence J mean:", "", _row(["sequence", *runs]), _row(["---"] + ["---:"] * len(runs))]
    for name in names:
        cells = [
            f"{metrics['sequences'][name]['J']['mean']:.3f}" if name in metrics["sequences"] else "–"
            for metrics in runs.values()
        ]
        lines.append(_row([name, *cells]))
    lines += ["", "Sources:", ""]
    for label in runs:
        chosen = {k: v for k, v in (runs[label].get("config") or {}).items() if k != "pipeline"}
        lines.append(f"- {label}: `{sources[label]}` (config: `{json.dumps(chosen)}`)")
    return "\n".join(lines) + "\n"


def render_spread(runs: Mapping[str, Mapping[str, Any]]) -> str:
    """One line on how far several runs' J means lie apart (the folds of a cross-validation):
    their mean, lowest, highest and sample standard deviation."""
    j = {label: float(metrics["global"]["J"]["mean"]) for label, metrics in runs.items()}
    low, high = min(j, key=j.__getitem__), max(j, key=j.__getitem__)
    spread = f", standard deviation {statistics.stdev(j.values()):.3f}" if len(j) > 1 else ""
    return (f"J mean of the {len(j)} runs: mean {statistics.fmean(j.values()):.3f}, lowest "
            f"{j[low]:.3f} ({low}), highest {j[high]:.3f} ({high}){spread}.\n")


def render_fold_means(folds: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    """A table of each pooled row's folders' J means (label → folder name → metrics), so that a
    pooled difference can be checked fold by fold; the header names the first row's folders.
    Rows that pool other numbers of folders, or another fold in a column, are an InputError."""
    widths = {len(runs) for runs in folds.values()}
    if len(widths) != 1:
        raise InputError(f"pooled rows pool different numbers of folders: {sorted(widths)}")
    first_label, first = next(iter(folds.items()))
    header = list(first)
    column_sequences = [set(metrics["sequences"]) for metrics in first.values()]
    for label, runs in folds.items():  # a column is one fold: the same sequences in every row
        for column, (name, metrics) in enumerate(runs.items()):
            if set(metrics["sequences"]) != column_sequences[column]:
                raise InputError(
                    f"pooled row {label!r}: folder {column + 1} ({name}) holds other sequences than "
                    f"folder {column + 1} of {first_label!r} ({header[column]}); list every row's "
                    "folders in the same fold order")
    lines = ["J mean of each pooled folder (columns in the order given, headed by the first "
             "row's folders):", "", _row(["run", *header]), _row(["---"] + ["---:"] * len(header))]
    for label, runs in folds.items():
        lines.append(_row([label, *(f"{m['global']['J']['mean']:.3f}" for m in runs.values())]))
    return "\n".join(lines) + "\n"
