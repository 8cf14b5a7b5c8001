"""``amp-eval --via ros``: each sequence becomes a rosbag2 that is replayed, in lockstep,
through the real ``amp_vos`` node running in its own process.

The node computes its own flow from the same frames as :func:`amp_ros.runner.run_offline`, so
both runners give the same masks. :data:`RUNNERS` is the runner table of ``amp-eval``.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from std_srvs.srv import Trigger

from amp_ros.bag.write import SourceFrame, write_bag
from amp_ros.datasets import VideoSequence, read_frame
from amp_ros.errors import AmpError, InputError
from amp_ros.ros.dds_env import apply_dds_variables
from amp_ros.ros.node_process import NodeProcess
from amp_ros.ros.replay import replay_bag
from amp_ros.runner import RUNNERS as OFFLINE_RUNNERS
from amp_ros.runner import Runner, RunSettings, RunStats


class NodeRunError(AmpError):
    """The node could not be started or reset, or a replay failed."""


def _bag_frames(sequence: VideoSequence) -> list[SourceFrame]:
    return [SourceFrame(name=path.stem, rgb=read_frame(path)) for path in sequence.frames]


def _reset(node: rclpy.node.Node, context: Context, timeout: float = 30.0) -> None:
    client = node.create_client(Trigger, "/amp/reset")
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        future = client.call_async(Trigger.Request())
        executor.spin_until_future_complete(future, timeout_sec=timeout)
    finally:
        executor.remove_node(node)
        executor.shutdown()
        node.destroy_client(client)
    if not future.done() or not future.result().success:
        raise NodeRunError("the node did not answer /amp/reset")


def run_via_ros(
    sequences: Sequence[VideoSequence], masks_dir: Path, settings: RunSettings, *, progress: bool = True
) -> RunStats:
    """The ``ros`` runner: replay every sequence through one ``amp_vos`` process (reset between
    sequences); masks go to masks_dir/<seq>/<frame>.png."""
    if settings.head_levels is not None:
        raise InputError("--levels is an offline ablation; the node always uses every level")
    if settings.teach_shots:
        raise InputError("--teach-first-frame runs --via offline only (the replay records ~/mask, "
                         "not ~/labels, and teaches nothing)")
    domain_id = int(os.environ.get("AMP_EVAL_DOMAIN_ID", 30 + os.getpid() % 60))
    stats = RunStats()
    with tempfile.TemporaryDirectory(prefix="amp-eval-") as tmp:
        tmp_dir = Path(tmp)
        node_process = NodeProcess(
            domain_id=domain_id,
            log_path=tmp_dir / "node.log",
            checkpoint=str(settings.checkpoint_path()),
            device=settings.device,
            crf=settings.crf,
            adapt=settings.adapt,
            flow_source="dis",
            qos="reliable",
            state_dir=str(tmp_dir / "state"),
            max_image_pixels=100_000_000,
        )
        apply_dds_variables()  # before this process's first participant
        context = Context()
        rclpy.init(context=context, domain_id=domain_id)
        node = rclpy.create_node("amp_eval", context=context)
        try:
            node_process.start()
            node_process.wait_ready(node)
            for sequence in sequences:
                bag = tmp_dir / "bags" / sequence.name
                bag.parent.mkdir(parents=True, exist_ok=True)
                write_bag(bag, _bag_frames(sequence), sequence=sequence.name, source="amp-eval",
                          overwrite=True)
                _reset(node, context)
                start = time.perf_counter()
                replay = replay_bag(bag, lockstep=True, send_flow=False, results_dir=masks_dir,
                                    sequence=sequence.name, context=context, timeout=120.0,
                                    progress=progress)
                stats.seconds += time.perf_counter() - start
                stats.frames += replay.frames_sent
                if replay.missing:
                    raise NodeRunError(f"{sequence.name}: no mask for frames {replay.missing[:5]}")
        except RuntimeError as err:
            raise NodeRunError(str(err)) from err
        finally:
            node.destroy_node()
            rclpy.try_shutdown(context=context)
            node_process.stop()
    return stats


RUNNERS: Mapping[str, Runner] = {**OFFLINE_RUNNERS, "ros": run_via_ros}
"""``amp-eval``'s runners: ``offline`` (:mod:`amp_ros.runner`) and ``ros``."""
