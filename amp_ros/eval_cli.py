"""`amp-eval`: segment DAVIS-2016 / FBMS-59 sequences, score results and write a report.

Usage:
    amp-eval davis --root DAVIS --out OUT [--sequences a,b | --split FILE] [--checkpoint CKPT]
                   [--via offline|ros] [--no-crf] [--no-adapt] [--teach-first-frame [--shots K]]
    amp-eval fbms  --root FBMS --out OUT ...   (same options)
    amp-eval score --root DAVIS --results RESULTS --out OUT [--sequences a,b | --split FILE]
                   [--dataset davis|fbms] [--resolution 480p] [--no-plots] [--quiet]

Subcommands are registered in build_parser(); each has an ``_add_<name>_command`` that builds
its parser (reusing add_dataset_arguments) and sets ``handler`` to a ``_run_<name>(args) -> int``.
Errors the package raises on purpose (bad input, missing files) end with a one-line message
and exit status 1.

This module imports no ROS: ``python -m amp_ros.eval_cli`` segments with the runners of
:data:`amp_ros.runner.RUNNERS` (``--via offline``). The ``amp-eval`` command is
:mod:`amp_ros.ros.eval_cli`, the same parser with the ``ros`` runner added (``--via ros``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from amp_ros.atomic_write import atomic_write
from amp_ros.datasets import DATASETS, VideoSequence, load_dataset
from amp_ros.errors import AmpError, InputError
from amp_ros.evaluation.scoring import evaluate_results, pool_runs
from amp_ros.runner import RUNNERS, VIAS, Runner, RunSettings, run_sequences


def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    """--root, --dataset, --sequences/--split and --resolution: which sequences to use."""
    parser.add_argument("--root", type=Path, required=True, help="dataset root folder")
    parser.add_argument(
        "--dataset", choices=DATASETS, default="davis",
        help="dataset layout and protocol (default: davis)",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--sequences", type=lambda s: [n for n in s.split(",") if n.strip()],
        help="comma-separated sequence names (default: all)",
    )
    which.add_argument(
        "--split", help="split file (path, or a name looked up under ROOT and ROOT/ImageSets)"
    )
    parser.add_argument(
        "--resolution", default="480p",
        help="DAVIS resolution folder, used when present (default: 480p)",
    )


def load_sequences(args: argparse.Namespace) -> list[VideoSequence]:
    """The sequences selected by the add_dataset_arguments options."""
    return load_dataset(
        args.dataset, args.root, sequences=args.sequences, split=args.split,
        resolution=args.resolution,
    )


def parse_setting(text: str) -> tuple[str, bool | int | float | str]:
    """``NAME=VALUE`` → (name, value typed like the setting's default); argparse's type."""
    from amp_ros.setting_fields import flatten
    from amp_ros.settings import PipelineConfig

    name, _, value = text.partition("=")
    settings = {s.name: s for s in flatten(PipelineConfig)}
    if name not in settings or not value:
        raise argparse.ArgumentTypeError(
            f"expected NAME=VALUE with NAME one of {sorted(settings)}, got {text!r}"
        )
    setting = settings[name]
    try:
        if isinstance(setting.default, bool):
            if value.lower() not in ("true", "false"):
                raise ValueError(value)
            return name, value.lower() == "true"
        typed = type(setting.default)(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{name} takes a {type(setting.default).__name__}, got {value!r}"
        ) from None
    if setting.choices is not None and typed not in setting.choices:
        raise argparse.ArgumentTypeError(f"{name} must be one of {setting.choices}, got {value!r}")
    if setting.choices is None and setting.limits is not None:
        low, high = setting.limits
        if not low <= typed <= high:
            raise argparse.ArgumentTypeError(f"{name} must lie in [{low}, {high}], got {value!r}")
    return name, typed


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """--out, --no-plots and --quiet: where and how the report is written."""
    parser.add_argument("--out", type=Path, required=True, help="output folder for the report")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _print_summary(metrics: dict, out: Path, seconds: float) -> None:
    """One-paragraph summary of a finished evaluation on stdout."""
    g = metrics["global"]
    print(
        f"{metrics['dataset']}: {g['sequences']} sequences  J&F {g['JF']:.3f}  "
        f"J {g['J']['mean']:.3f}/{g['J']['recall']:.3f}/{g['J']['decay']:.3f}  "
        f"F {g['F']['mean']:.3f}/{g['F']['recall']:.3f}/{g['F']['decay']:.3f}  "
        "(mean/recall/decay)"
    )
    if "region" in g:
        r = g["region"]
        print(f"foreground P/R/F {r['precision']:.3f}/{r['recall']:.3f}/{r['F']:.3f}")
    print(f"report: {out / 'report.md'}  ({seconds:.1f} s)")


# --- score: results folder -> metrics ---------------------------------------------------------


def _add_score_command(subparsers: argparse._SubParsersAction) -> None:
    """`score`: evaluate an existing results folder (<results>/<seq>/<frame stem>.png)."""
    parser = subparsers.add_parser(
        "score", help="score a results folder against ground truth",
        description="Score <results>/<seq>/<frame stem>.png masks against the ground truth.",
    )
    add_dataset_arguments(parser)
    parser.add_argument("--results", type=Path, required=True, help="results folder")
    add_report_arguments(parser)
    parser.set_defaults(handler=_run_score)


def _run_score(args: argparse.Namespace) -> int:
    """Handler of `score`."""
    start = time.perf_counter()
    sequences = load_sequences(args)
    metrics = evaluate_results(
        sequences, args.results, args.out, dataset=args.dataset,
        config={"results": str(args.results), "root": str(args.root)},
        progress=not args.quiet, plots=not args.no_plots,
    )
    _print_summary(metrics, args.out, time.perf_counter() - start)
    return 0


# --- davis / fbms: run the pipeline over sequences, then score ----------------------------------


def _add_run_command(subparsers: argparse._SubParsersAction, name: str) -> None:
    """`davis` / `fbms`: segment the sequences (offline or through the ROS node), then score."""
    parser = subparsers.add_parser(
        name, help=f"segment {name.upper()} sequences with amp_ros and score them",
        description="Run the amp_ros pipeline over every sequence (directly, or through the "
        "amp_vos node by rosbag2 replay), write OUT/masks/<seq>/<frame>.png and score them.",
    )
    add_dataset_arguments(parser)
    parser.set_defaults(dataset=name)
    parser.add_argument("--checkpoint", default=None,
                        help="shipped model name or checkpoint folder (default: the node's default)")
    parser.add_argument("--via", choices=VIAS, default="offline",
                        help="offline: call the pipeline; ros: replay bags through the node")
    parser.add_argument("--no-crf", action="store_true", help="disable the dense CRF")
    parser.add_argument("--no-adapt", action="store_true", help="disable self-adaptation (α = 0)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda (default: cpu)")
    parser.add_argument("--levels", type=lambda s: tuple(int(v) for v in s.split(",")), default=None,
                        help="ablation: head levels to use, e.g. 2 (offline only; default all)")
    parser.add_argument("--max-side", type=int, default=0,
                        help="processing size, longer side in px (default: the checkpoint's)")
    parser.add_argument("--no-motion", action="store_true",
                        help="ablation: zero flow for every frame (offline only)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], type=parse_setting,
                        metavar="NAME=VALUE",
                        help="a pipeline setting by its node parameter name, e.g. "
                             "taught_search_radius=0 (repeatable; ablations)")
    parser.add_argument("--teach-first-frame", action="store_true",
                        help="semi-supervised protocol: teach a class from the first frame(s)' "
                             "ground truth and score that class on the frames after")
    parser.add_argument("--shots", type=int, default=1,
                        help="with --teach-first-frame: teach from the first K frames (default 1)")
    add_report_arguments(parser)
    parser.set_defaults(handler=_run_pipeline)


def _run_pipeline(args: argparse.Namespace) -> int:
    """Handler of `davis` / `fbms`."""
    start = time.perf_counter()
    sequences = load_sequences(args)
    from amp_ros.settings import RECENT_FRAMES  # loads torch (via pseudo-labels): only when running

    if not 1 <= args.shots <= RECENT_FRAMES:
        raise InputError(f"--shots must lie in 1…{RECENT_FRAMES} (the frames a pipeline keeps), "
                         f"got {args.shots}")
    if args.shots != 1 and not args.teach_first_frame:
        raise InputError("--shots needs --teach-first-frame")
    if args.max_side and not 32 <= args.max_side <= 4096:
        raise InputError(f"--max-side must lie in 32…4096, got {args.max_side}")
    if args.no_motion and args.via != "offline":
        raise InputError("--no-motion is an offline ablation (--via offline)")
    settings = RunSettings(
        checkpoint=args.checkpoint, via=args.via, crf=not args.no_crf,
        adapt=not args.no_adapt, device=args.device, head_levels=args.levels,
        teach_shots=args.shots if args.teach_first_frame else 0,
        overrides=tuple(args.overrides), motion=not args.no_motion,
        max_side=args.max_side,
    )
    masks = args.out / "masks"
    stats = run_sequences(sequences, masks, settings, runners=args.runners,
                          progress=not args.quiet)
    metrics = evaluate_results(
        sequences, masks, args.out, dataset=args.dataset, config=settings.describe(),
        fps=stats.fps, progress=not args.quiet, plots=not args.no_plots,
        given_frames=settings.teach_shots,
    )
    _print_summary(metrics, args.out, time.perf_counter() - start)
    print(f"fps {stats.fps:.2f} ({stats.frames} frames, via {args.via})")
    return 0


# --- compare: several metrics.json -> one markdown table ---------------------------------------


def _add_compare_command(subparsers: argparse._SubParsersAction) -> None:
    """`compare`: tabulate several runs (for docs/results.md; no figure is typed by hand)."""
    parser = subparsers.add_parser(
        "compare", help="tabulate several evaluation folders as markdown",
        description="Render LABEL=OUT_DIR runs (each with metrics.json) as markdown tables.",
    )
    parser.add_argument(
        "runs", nargs="+",
        help="LABEL=DIR, DIR holding metrics.json; LABEL=DIR,DIR,… pools several folders into "
             "one row (one setting over the folds of a cross-validation; every such row lists "
             "its folds in the same order, and a folder's path holds no comma) and adds a table "
             "of each folder's J mean",
    )
    parser.add_argument("--out", type=Path, default=None, help="write here (default: stdout)")
    parser.add_argument(
        "--pooled", metavar="LABEL", default=None,
        help="add a row LABEL over every sequence of the runs together (the folds of a "
             "cross-validation; a sequence in two runs is an error) and a line on their spread",
    )
    parser.set_defaults(handler=_run_compare)


def _run_compare(args: argparse.Namespace) -> int:
    """Handler of `compare`."""
    from amp_ros.evaluation.report import render_comparison, render_fold_means, render_spread

    runs, sources, folds = {}, {}, {}
    for spec in args.runs:
        label, sep, folders = spec.rpartition("=")  # labels may contain "=", folders not
        if not sep or not all(folders.split(",")):
            raise InputError(f"expected LABEL=DIR or LABEL=DIR,DIR,…, got {spec!r}")
        if label in runs:
            raise InputError(f"label {label!r} is given twice")
        paths = [Path(folder) / "metrics.json" for folder in folders.split(",")]
        names = [path.parent.name for path in paths]  # a pooled row's folders go by these
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise InputError(f"{label!r}: more than one of its folders ends in {twice[0]!r} (a pooled "
                             "row names its folders by their last component)")
        loaded = {name: json.loads(path.read_text()) for name, path in zip(names, paths, strict=True)}
        if len(paths) == 1:
            runs[label] = loaded[names[0]]
        else:
            folds[label] = loaded
            try:
                runs[label] = pool_runs(loaded)
            except InputError as error:
                raise InputError(f"{label!r}: {error}") from None
        sources[label] = " + ".join(str(path) for path in paths)
    spread = ""
    if args.pooled is not None:
        if args.pooled in runs:
            raise InputError(f"--pooled {args.pooled!r} is already a run's label")
        spread = "\n" + render_spread(runs)
        runs[args.pooled] = pool_runs(runs)
        sources[args.pooled] = "pooled: the runs above"
    text = render_comparison(runs, sources) + spread
    if folds:
        text += "\n" + render_fold_means(folds)
    if args.out is None:
        print(text, end="")
    else:
        atomic_write(args.out, text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The amp-eval argument parser with all subcommands."""
    parser = argparse.ArgumentParser(
        prog="amp-eval", description="Evaluate video object segmentation (DAVIS-2016, FBMS-59)."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_score_command(subparsers)
    _add_run_command(subparsers, "davis")
    _add_run_command(subparsers, "fbms")
    _add_compare_command(subparsers)
    return parser


def main(argv: Sequence[str] | None = None, *, runners: Mapping[str, Runner] = RUNNERS) -> int:
    """Entry point of `amp-eval`; returns the exit status. ``runners``: the ``--via`` runners
    available (:mod:`amp_ros.ros.eval_cli` passes the ROS one too)."""
    args = build_parser().parse_args(argv)
    args.runners = runners
    try:
        return args.handler(args)
    except (AmpError, OSError) as err:
        print(f"amp-eval: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
