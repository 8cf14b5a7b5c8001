"""``amp-bench``: how fast the pipeline segments and how much memory it holds, on the demo clip.

Speed is measured here, never asserted by tests. Frames are the embedded clip's (``data/demo``)
resized to ``--size`` and cycled when ``--frames`` exceeds the clip. ``--via offline`` calls the
pipeline in this process and times every stage of every frame: decode (the node's conversion of
an rgb8 Image), flow, network, CRF, adaptation, taught classes, output (the full-size mask) and
publish (the mono8 mask message, without DDS). ``--via ros`` (:mod:`amp_ros.ros.bench_ros`)
publishes the frames at ``--rate`` into the real node and times each mask's return instead.

Both report medians and 95th percentiles after ``--warmup`` frames, frames/s, the latency from a
frame's arrival to its mask, the time to the first mask and resident memory (VmRSS) at start, at
the 1,000th frame and at the end; ``--json`` writes it all with the machine and the command.

This module imports no ROS: ``python -m amp_ros.benchmark`` runs ``--via offline`` only; the
``amp-bench`` command is :mod:`amp_ros.ros.bench_ros`, the same parser with ``--via ros`` added.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np

from amp_ros.atomic_write import atomic_write
from amp_ros.errors import AmpError, InputError

REPO = Path(__file__).resolve().parent.parent
DEMO_CLIP = REPO / "data" / "demo"
STAGES = ("decode", "flow", "network", "crf", "adapt", "taught", "output", "publish", "total")
"""Per-frame stages of ``--via offline``; ``total`` is decode to publish (the frame's latency)."""
PIPELINE_STAGES = ("flow", "network", "crf", "adapt", "taught", "output")
"""The stages :meth:`amp_ros.pipeline.Pipeline.step` times itself."""
RSS_FRAME = 1000
"""Resident memory is also sampled at this frame (the soak's reference point)."""
SEPARATOR = "x"


@dataclass(frozen=True)
class BenchSettings:
    """What one benchmark run measures (the parsed command line)."""

    checkpoint: str | None = None  # shipped model name or folder; None = the default
    device: str = "cpu"
    size: tuple[int, int] = (854, 480)  # width, height
    frames: int = 100
    warmup: int = 5
    via: str = "offline"
    rate: float = 30.0  # Hz, --via ros only
    threads: int = 0  # torch CPU threads; 0 = torch's default
    overrides: tuple[tuple[str, object], ...] = ()  # pipeline settings by node parameter name
    teach: bool = False  # one taught class (the clip's first-frame ground truth)
    qos: str = "sensor_data"  # --via ros: the node's input QoS, and the publisher's
    domain_id: int | None = None  # --via ros: ROS domain of the node (None: from the pid)
    clip: Path = DEMO_CLIP
    command: str = "amp-bench"

    @property
    def measured(self) -> int:
        """Frames after the warm-up."""
        return self.frames - self.warmup


BenchRunner = Callable[[BenchSettings], dict[str, Any]]
"""``runner(settings) -> result``: one ``--via``; the result is what ``--json`` writes."""


# --- inputs --------------------------------------------------------------------------------------


def parse_size(text: str) -> tuple[int, int]:
    """``854x480`` → (854, 480); argparse's type."""
    width, _, height = text.lower().replace("×", SEPARATOR).partition(SEPARATOR)
    try:
        size = int(width), int(height)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, e.g. 854x480, got {text!r}") from None
    if min(size) < 16 or size[0] * size[1] > 8192 * 8192:
        raise argparse.ArgumentTypeError(f"size {text!r} out of range (16 px … 8192×8192)")
    return size


def clip_frames(clip: Path, size: tuple[int, int]) -> list[np.ndarray]:
    """The clip's frames as H×W×3 uint8 RGB resized to ``size`` (width, height)."""
    from amp_ros.datasets import load_davis, read_frame

    sequence = load_davis(clip)[0]
    return [_resized(read_frame(path), size, cv2.INTER_AREA) for path in sequence.frames]


def clip_first_mask(clip: Path, size: tuple[int, int]) -> np.ndarray:
    """The clip's first-frame ground truth (H×W bool) resized to ``size``: the class to teach."""
    from amp_ros.datasets import load_davis

    sequence = load_davis(clip)[0]
    mask = sequence.read_gt(0).astype(np.uint8)
    return _resized(mask, size, cv2.INTER_NEAREST).astype(bool)


def _resized(image: np.ndarray, size: tuple[int, int], interpolation: int) -> np.ndarray:
    if (image.shape[1], image.shape[0]) == tuple(size):
        return image
    return cv2.resize(image, size, interpolation=interpolation)


# --- measurements ------------------------------------------------------------------------------


def rss_mb(pid: int | str = "self") -> float | None:
    """Resident memory (VmRSS) of process ``pid`` in MiB from /proc; None where unreadable."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def summary(values: Sequence[float]) -> dict[str, float] | None:
    """median (= p50), p95, mean, min and max of ``values``; None when there are none."""
    if not len(values):
        return None
    array = np.asarray(values, dtype=np.float64)
    return {"median": float(np.median(array)), "p95": float(np.percentile(array, 95)),
            "mean": float(array.mean()), "min": float(array.min()), "max": float(array.max()),
            "count": int(array.size)}


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo; platform's answer elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def machine(device: str) -> dict[str, Any]:
    """The machine a run measured: CPU, cores, torch and its threads, GPU, load average."""
    import torch

    from amp_ros.pipeline import usable_cores

    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": usable_cores(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "onnxruntime": _version("onnxruntime"),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "python": platform.python_version(),
        "cuda_available": torch.cuda.is_available(),
        "load_average": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def check_device(device: str) -> None:
    """InputError unless torch can run on ``device`` (cpu, cuda, cuda:N)."""
    import torch

    if device == "cpu":
        return
    if not device.startswith("cuda"):
        raise InputError(f"--device must be cpu or cuda[:N], got {device!r}")
    if not torch.cuda.is_available():
        raise InputError(
            f"--device {device}: torch {torch.__version__} sees no CUDA device "
            f"(torch.cuda.is_available() is False; CUDA build {torch.version.cuda}); use --device cpu"
        )


def record(settings: BenchSettings) -> dict[str, Any]:
    """The part of a result every runner shares: what was run, where, with which command."""
    from amp_ros.models import resolve_checkpoint
    from amp_ros.provenance import checkpoint_label

    return {
        "tool": "amp-bench",
        "command": settings.command,
        "via": settings.via,
        "device": settings.device,
        "checkpoint": checkpoint_label(resolve_checkpoint(settings.checkpoint)),
        "size": list(settings.size),
        "frames": settings.frames,
        "warmup": settings.warmup,
        "settings": dict(settings.overrides),
        "taught_classes": int(settings.teach),
        "threads": settings.threads,  # --threads: here (offline) or the node's (ros); 0 = default
        "machine": machine(settings.device),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def rss_change_percent(rss: Mapping[str, float | None]) -> float | None:
    """Change of resident memory from frame 1,000 to the end, in percent; None without both."""
    base, end = rss.get(f"frame_{RSS_FRAME}"), rss.get("end")
    return None if not base or end is None else 100.0 * (end - base) / base


# --- offline -----------------------------------------------------------------------------------


def pipeline_config(overrides: Sequence[tuple[str, object]]) -> Any:
    """The PipelineConfig of the defaults with ``overrides`` (node parameter names) applied."""
    from amp_ros.setting_fields import build, flatten
    from amp_ros.settings import PipelineConfig

    values = {s.name: s.default for s in flatten(PipelineConfig)}
    values.update(dict(overrides))
    return build(PipelineConfig, values)


MESSAGE_TYPES = SimpleNamespace
"""A ROS-free message class for :func:`amp_ros.image_codec.image_message` (attributes only)."""


@dataclass
class _OfflineLog:
    """Per-frame stage times (seconds) and the resident memory samples of an offline run."""

    stages: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})
    rss: dict[str, float | None] = field(default_factory=dict)


def run_offline(settings: BenchSettings) -> dict[str, Any]:
    """``--via offline``: step the pipeline over the frames in this process, timing each stage."""
    import torch

    from amp_ros.image_codec import ImageTypes, image_message
    from amp_ros.models import resolve_checkpoint
    from amp_ros.pipeline import Pipeline

    if settings.threads:
        torch.set_num_threads(settings.threads)
    result = record(settings)
    log = _OfflineLog()
    log.rss["start"] = rss_mb()
    types = ImageTypes(image=MESSAGE_TYPES, header=MESSAGE_TYPES, time=MESSAGE_TYPES)
    frames = clip_frames(settings.clip, settings.size)
    messages = [image_message(types, frame, "rgb8") for frame in frames]
    del frames
    tick = time.perf_counter()
    pipeline = Pipeline.from_checkpoint(resolve_checkpoint(settings.checkpoint), device=settings.device,
                                        config=pipeline_config(settings.overrides))
    result["load_s"] = time.perf_counter() - tick
    result["runtime"] = pipeline.runtime  # what ran the network's heavy parts (onnx setting)
    log.rss["loaded"] = rss_mb()
    teach_mask = clip_first_mask(settings.clip, settings.size) if settings.teach else None
    measured_start = None
    start = time.perf_counter()
    for index in range(settings.frames):
        if index == settings.warmup:
            measured_start = time.perf_counter()
        times = _offline_frame(pipeline, messages[index % len(messages)], types, index)
        if index == 0:
            result["time_to_first_mask_s"] = times["total"]
            log.rss["first_mask"] = rss_mb()
            if teach_mask is not None:  # taught on the frame just processed, like /amp/teach
                pipeline.teach("target", teach_mask)
        if index + 1 == RSS_FRAME:
            log.rss[f"frame_{RSS_FRAME}"] = rss_mb()
        if index >= settings.warmup:
            for stage in STAGES:
                log.stages[stage].append(times[stage])
    end = time.perf_counter()
    log.rss["end"] = rss_mb()
    measured = settings.measured
    result.update(
        stages_ms={s: summary([v * 1000 for v in log.stages[s]]) for s in STAGES},
        fps=measured / (end - measured_start) if measured_start is not None else None,
        latency_ms=summary([v * 1000 for v in log.stages["total"]]),
        seconds=end - start,
        adaptation_updates=pipeline.adaptation_updates,
        rss_mb=log.rss,
        rss_change_percent=rss_change_percent(log.rss),
    )
    result["machine"]["load_average_end"] = (
        [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None
    )
    return result


def _offline_frame(pipeline: Any, message: Any, types: Any, index: int) -> dict[str, float]:
    """One frame as the node handles it: decode the Image, step, build the mask message."""
    from amp_ros.image_codec import image_message, image_to_rgb

    arrival = time.perf_counter()
    frame = image_to_rgb(message)
    decoded = time.perf_counter()
    step = pipeline.step(frame)
    stepped = time.perf_counter()
    image_message(types, step.mask, "mono8", stamp_ns=index)
    done = time.perf_counter()
    times = {stage: step.timings[stage] for stage in PIPELINE_STAGES}
    times.update(decode=decoded - arrival, publish=done - stepped, total=done - arrival)
    return times


RUNNERS: Mapping[str, BenchRunner] = {"offline": run_offline}
"""The runners available without ROS (:data:`amp_ros.ros.bench_ros.RUNNERS` adds ``ros``)."""
VIAS = ("offline", "ros")


# --- report ------------------------------------------------------------------------------------


def _ms(stats: Mapping[str, float] | None, key: str = "median") -> str:
    return "–" if not stats else f"{stats[key]:.1f}"


def _number(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def machine_line(info: Mapping[str, Any]) -> str:
    """One line naming the machine of a result (CPU, cores, torch threads, GPU, load)."""
    parts = [f"{info['cpu']}, {info['cores']} cores", f"torch {info['torch']} with "
             f"{info['torch_threads']} thread{'s' if info['torch_threads'] != 1 else ''}"]
    if info.get("onnxruntime"):
        parts.append(f"onnxruntime {info['onnxruntime']}")
    if info.get("gpu"):
        parts.append(f"GPU {info['gpu']}")
    if info.get("load_average"):
        parts.append(f"load average at start {info['load_average'][0]:.2f}")
    return "; ".join(parts)


def format_report(result: Mapping[str, Any]) -> str:
    """A short markdown report of one result (what ``amp-bench`` prints)."""
    width, height = result["size"]
    lines = [
        f"`{result['command']}`",
        "",
        f"machine: {machine_line(result['machine'])}; device {result['device']}",
        f"checkpoint {result['checkpoint']}, {width}×{height} frames, via {result['via']}, "
        f"{result['frames']} frames ({result['warmup']} warm-up)"
        + (f", settings {result['settings']}" if result["settings"] else "")
        + (", one taught class" if result["taught_classes"] else ""),
        "",
    ]
    if result.get("stages_ms"):
        lines += ["| stage | median ms | p95 ms |", "|---|---:|---:|"]
        lines += [f"| {stage} | {_ms(stats)} | {_ms(stats, 'p95')} |"
                  for stage, stats in result["stages_ms"].items()]
        lines.append("")
    latency = result.get("latency_ms")
    first = _number(result.get("time_to_first_mask_s"), 2)
    lines.append(f"frames/s {_number(result.get('fps'))}; latency p50 {_ms(latency)} ms, "
                 f"p95 {_ms(latency, 'p95')} ms; time to first mask {first} s")
    if result["via"] == "ros":
        lines.append(f"published {result['published']}, masks {result['masks']}, dropped "
                     f"{result['dropped']}; masks/s {_number(result.get('masks_per_s'))} at "
                     f"{result['rate_hz']:g} Hz input; node ready after "
                     f"{_number(result.get('node_ready_s'))} s")
    rss = result["rss_mb"]
    lines.append("resident memory MiB: " + ", ".join(f"{k} {_number(v, 0)}" for k, v in rss.items())
                 + (f" ({result['rss_change_percent']:+.2f} % from frame {RSS_FRAME} to the end)"
                    if result.get("rss_change_percent") is not None else ""))
    return "\n".join(lines) + "\n"


# --- command line ------------------------------------------------------------------------------


def parse_setting(text: str) -> tuple[str, object]:
    """``NAME=VALUE`` of a pipeline setting (node parameter name), typed; argparse's type."""
    from amp_ros.eval_cli import parse_setting as parse

    return parse(text)


def build_parser() -> argparse.ArgumentParser:
    """The ``amp-bench`` argument parser."""
    parser = argparse.ArgumentParser(prog="amp-bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu | cuda[:N] (default cpu)")
    parser.add_argument("--checkpoint", default=None,
                        help="shipped model name or folder (default: the shipped default)")
    parser.add_argument("--size", type=parse_size, default=(854, 480), metavar="WxH",
                        help="frame size the clip is resized to (default 854x480)")
    parser.add_argument("--frames", type=int, default=100,
                        help="frames to process, the clip cycled (default 100)")
    parser.add_argument("--warmup", type=int, default=5,
                        help="first frames left out of the medians (default 5)")
    parser.add_argument("--via", choices=VIAS, default="offline",
                        help="offline: the pipeline in this process; ros: publish into the node")
    parser.add_argument("--rate", type=float, default=None,
                        help="--via ros: input rate in Hz (default 30)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (offline: here; ros: the node's); 0 = torch's default")
    parser.add_argument("--config", dest="overrides", action="append", default=[], type=parse_setting,
                        metavar="NAME=VALUE", nargs="+",
                        help="pipeline settings by node parameter name, e.g. crf=false crf_iterations=5")
    parser.add_argument("--teach", action="store_true",
                        help="--via offline: one taught class (the clip's first-frame ground truth)")
    parser.add_argument("--qos", choices=("sensor_data", "reliable"), default="sensor_data",
                        help="--via ros: input QoS of the node and of the frame publisher")
    parser.add_argument("--domain-id", type=int, default=None,
                        help="--via ros: ROS domain of the node (default: from this process id)")
    parser.add_argument("--clip", type=Path, default=DEMO_CLIP, help="DAVIS-layout clip (default data/demo)")
    parser.add_argument("--json", type=Path, default=None, help="write the result as JSON here")
    return parser


def settings_from_args(args: argparse.Namespace, argv: Sequence[str]) -> BenchSettings:
    """BenchSettings from parsed arguments; InputError for a combination that cannot run."""
    if args.frames < 1 or not 0 <= args.warmup < args.frames:
        raise InputError(f"need 0 ≤ --warmup < --frames, got --warmup {args.warmup} --frames {args.frames}")
    if args.rate is not None and args.via != "ros":
        raise InputError("--rate paces the frames published into the node: it needs --via ros "
                         "(offline frames are processed back to back)")
    rate = 30.0 if args.rate is None else args.rate
    if not 0 < rate <= 1000:
        raise InputError(f"--rate must lie in (0, 1000] Hz, got {rate}")
    if args.teach and args.via != "offline":
        raise InputError("--teach is measured --via offline")
    if args.threads < 0:
        raise InputError("--threads must be ≥ 0")
    overrides = tuple(item for group in args.overrides for item in group)
    return BenchSettings(
        checkpoint=args.checkpoint, device=args.device, size=args.size, frames=args.frames,
        warmup=args.warmup, via=args.via, rate=rate, threads=args.threads, overrides=overrides,
        teach=args.teach, qos=args.qos, domain_id=args.domain_id, clip=args.clip,
        command=shlex.join(["amp-bench", *argv]),
    )


def main(argv: Sequence[str] | None = None, *, runners: Mapping[str, BenchRunner] = RUNNERS) -> int:
    """Run one benchmark, print its report and write --json; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        check_device(args.device)
        settings = settings_from_args(args, argv)
        runner = runners.get(settings.via)
        if runner is None:
            raise InputError(f"--via {settings.via} is not available from this ROS-free entry point; "
                             "run amp-bench (python -m amp_ros.ros.bench_ros)")
        result = runner(settings)
    except AmpError as err:
        print(f"amp-bench: {err}", file=sys.stderr)
        return 1
    if args.json is not None:
        atomic_write(args.json, json.dumps(result, indent=2) + "\n")
    print(format_report(result), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
