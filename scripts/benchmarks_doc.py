#!/usr/bin/env python3
"""docs/benchmarks.md from amp-bench's --json results: docs/benchmarks.template.md with each
{{table}} replaced by a table written from OUT/*.json (no figure is typed by hand).

    .venv/bin/python scripts/benchmarks_doc.py OUT [--template T] [--out docs/benchmarks.md]

A result's table is chosen by its file name's prefix (scripts/benchmarks.sh names them): cpu-*
offline on the CPU, ros-* through the node, soak-* the long run through the node, gpu-* anything
with --device cuda. Rows are described from the JSON itself (size, settings, taught classes, and
the model where it is not the one most results ran). Every table is followed by the
machine it ran on and the exact commands.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from amp_ros.atomic_write import atomic_write
from amp_ros.benchmark import RSS_FRAME, machine_line

Result = dict[str, Any]
STAGE_COLUMNS = ("decode", "flow", "network", "crf", "adapt", "taught", "output", "publish")


def read_all(folder: Path) -> dict[str, Result]:
    """Every result in OUT, by file name (sorted)."""
    return {p.name: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def load(everything: dict[str, Result], prefix: str, usual: str | None) -> list[Result]:
    """The results <prefix>-*.json, by frame size (smaller first), then model (``usual`` first),
    then configuration."""
    results = [r for name, r in everything.items() if name.startswith(f"{prefix}-")]
    return sorted(results, key=lambda r: (r["size"][0] * r["size"][1], r["via"],
                                          r["checkpoint"] != usual, _config_order(r)))


def _config_order(result: Result) -> int:
    changed = result["settings"] or result.get("threads")
    return 0 if not changed and not result["taught_classes"] else (1 if changed else 2)


def usual_model(results: Sequence[Result]) -> str | None:
    """The checkpoint most of ``results`` ran: the rows of every table name any other."""
    counts = Counter(r["checkpoint"] for r in results)
    return counts.most_common(1)[0][0] if counts else None


def configuration(result: Result, usual: str | None = None) -> str:
    """The pipeline configuration of a result, in words; its model too when it is not ``usual``."""
    settings = dict(result["settings"])
    model = [] if usual is None or result["checkpoint"] == usual else [f"model {result['checkpoint']}"]
    words: list[str] = []
    if settings.pop("crf", True) is False:
        words.append("no CRF")
    if settings.pop("adapt", True) is False:
        words.append("no adaptation")
    if settings.pop("onnx", True) is False:
        words.append("network all in torch (onnx=false)")
    words += [f"{k}={v}" for k, v in settings.items()]
    if result.get("threads"):
        words.append(f"threads={result['threads']}")
    if result["taught_classes"]:
        count = result["taught_classes"]
        words.append(f"{count} taught class" + ("es" if count > 1 else ""))
    if not words:
        words.append("CRF + adaptation" if model else "default (CRF + adaptation)")
    return ", ".join(model + words)


def size(result: Result) -> str:
    """854×480."""
    return "×".join(str(v) for v in result["size"])


def ms(stats: dict[str, float] | None, key: str = "median") -> str:
    """A millisecond statistic, 1 decimal (2 below 1 ms); – when absent."""
    if not stats:
        return "–"
    value = stats[key]
    return f"{value:.2f}" if value < 1 else f"{value:.1f}"


def number(value: float | None, digits: int = 1) -> str:
    """A number with ``digits`` decimals; – when absent."""
    return "–" if value is None else f"{value:.{digits}f}"


def provenance(results: Sequence[Result]) -> str:
    """The machine(s), the load at the runs' starts, the dates, and the exact commands."""
    machines = sorted({machine_line({**r["machine"], "load_average": None}) for r in results})
    loads = [r["machine"]["load_average"][0] for r in results if r["machine"].get("load_average")]
    dates = sorted(r["started"] for r in results)
    lines = [f"Machine: {m}." for m in machines]
    if loads:
        lines.append(f"Load average (1 min) at the runs' starts: {min(loads):.2f}–{max(loads):.2f}; "
                     f"run {dates[0]} … {dates[-1]}. Commands:")
    lines += ["", "```bash", *(r["command"] for r in results), "```"]
    return "\n".join(lines)


def offline_table(results: Sequence[Result], usual: str | None) -> str:
    """Per-stage medians, frames/s, latency, time to the first mask, memory."""
    if not results:
        return "(not run)"
    head = ("| frames | configuration | " + " | ".join(STAGE_COLUMNS) + " | total (p95) | frames/s | "
            "first mask s | RSS start → end MiB |")
    rows = [head, "|---|---|" + "---:|" * (len(STAGE_COLUMNS) + 4)]
    for r in results:
        stages = r["stages_ms"]
        rss = r["rss_mb"]
        rows.append(
            f"| {size(r)} | {configuration(r, usual)} | " + " | ".join(ms(stages[s]) for s in STAGE_COLUMNS)
            + f" | {ms(stages['total'])} ({ms(stages['total'], 'p95')}) | {number(r['fps'])} | "
            f"{number(r['time_to_first_mask_s'], 2)} | "
            f"{number(rss.get('start'), 0)} → {number(rss.get('end'), 0)} |"
        )
    frames = {(r["frames"], r["warmup"]) for r in results}
    note = "; ".join(f"{n} frames, medians over the {n - w} after {w} warm-up" for n, w in sorted(frames))
    return "\n".join(rows) + f"\n\nMilliseconds per frame (median); {note}.\n\n" + provenance(results)


def ros_table(results: Sequence[Result], usual: str | None) -> str:
    """Through the node: masks/s, dropped, latency, time to the first mask, node memory."""
    if not results:
        return "(not run)"
    rows = ["| frames | input | masks/s | published | dropped (%) | latency p50 ms | p95 ms | "
            "first mask s | node ready s | node RSS start → end MiB |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        rss = r["rss_mb"]
        rows.append(
            f"| {size(r)} | {r['rate_hz']:g} Hz, {configuration(r, usual)} | {number(r['masks_per_s'])} | "
            f"{r['published']} | {r['dropped']} ({r['dropped_percent']:.0f} %) | {ms(r['latency_ms'])} | "
            f"{ms(r['latency_ms'], 'p95')} | {number(r['time_to_first_mask_s'], 2)} | "
            f"{number(r['node_ready_s'], 1)} | {number(rss.get('start'), 0)} → {number(rss.get('end'), 0)} |"
        )
    return "\n".join(rows) + "\n\n" + provenance(results)


def soak_table(results: Sequence[Result]) -> str:
    """The long run: node memory at frame 1,000 and at the end, and how the stream held up."""
    if not results:
        return "(not run)"
    rows = [f"| frames | input | node RSS start MiB | at frame {RSS_FRAME:,} | at the end | change | "
            "masks | dropped (%) | latency p50 / p95 ms |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        rss, change = r["rss_mb"], r.get("rss_change_percent")
        rows.append(
            f"| {r['published']:,} × {size(r)} | {r['rate_hz']:g} Hz | {number(rss.get('start'), 0)} | "
            f"{number(rss.get(f'frame_{RSS_FRAME}'), 1)} | {number(rss.get('end'), 1)} | "
            f"{'–' if change is None else f'{change:+.2f} %'} | {r['masks']:,} | "
            f"{r['dropped']:,} ({r['dropped_percent']:.0f} %) | "
            f"{ms(r['latency_ms'])} / {ms(r['latency_ms'], 'p95')} |"
        )
    return "\n".join(rows) + "\n\n" + provenance(results)


def gpu_section(everything: dict[str, Result], usual: str | None) -> str:
    """The GPU runs, or a plain statement that there was no GPU."""
    results = load(everything, "gpu", usual)
    if not results:
        cpus = sorted({f"{r['machine']['cpu']}, {r['machine']['cores']} cores" for r in everything.values()})
        return ("**No GPU was available to this session**: `torch.cuda.is_available()` was False on "
                + (" and ".join(cpus) or "this machine") + ", so none of the GPU targets was measured.")
    parts = []
    offline = [r for r in results if r["via"] == "offline"]
    ros = [r for r in results if r["via"] == "ros"]
    if offline:
        parts.append(offline_table(offline, usual))
    if ros:
        parts.append(ros_table(ros, usual))
    return "\n\n".join(parts)


def render(folder: Path, template: str) -> str:
    """The template with every {{name}} replaced by its table."""
    everything = read_all(folder)
    usual = usual_model(list(everything.values()))
    tables: dict[str, Callable[[], str]] = {
        "offline_cpu": lambda: offline_table(load(everything, "cpu", usual), usual),
        "ros": lambda: ros_table(load(everything, "ros", usual), usual),
        "soak": lambda: soak_table(load(everything, "soak", usual)),
        "gpu": lambda: gpu_section(everything, usual),
    }

    def table(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in tables:
            raise KeyError(f"the template names an unknown table {{{{{name}}}}}; known: {sorted(tables)}")
        return tables[name]()

    return re.sub(r"\{\{(\w+)\}\}", table, template)


def main(argv: Sequence[str] | None = None) -> int:
    """Write docs/benchmarks.md (or --out) from the results in OUT."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path,
                        help="folder of amp-bench --json files (scripts/benchmarks.sh's OUT)")
    parser.add_argument("--template", type=Path, default=Path("docs/benchmarks.template.md"))
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    args = parser.parse_args(argv)
    atomic_write(args.out, render(args.results, args.template.read_text()))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
