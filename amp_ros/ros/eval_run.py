"""``amp-eval --via ros``: each sequence becomes a rosbag2 that is replayed, in lockstep,
through the real ``amp_vos`` node running in its own process.

With ``--teach-first-frame`` the first frame is replayed alone, ``/amp/teach`` is called with its
ground truth (empty image, the mask stamped like the replayed frame: the node teaches on the frame
it kept under that stamp) and the rest is replayed while ``~/labels`` is recorded; the taught
class is forgotten again before the next sequence.

The node computes its own flow from the same frames as :func:`amp_ros.runner.run_offline`, so
both runners give the same masks. :data:`RUNNERS` is the runner table of ``amp-eval``.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from std_srvs.srv import Trigger

from amp_interfaces.srv import Forget, Teach
from amp_ros.bag.write import SourceFrame, write_bag
from amp_ros.datasets import VideoSequence, read_frame
from amp_ros.datasets.results import write_result
from amp_ros.errors import AmpError, InputError
from amp_ros.ros.dds_env import apply_dds_variables
from amp_ros.ros.messages import image_msg
from amp_ros.ros.node_process import NodeProcess
from amp_ros.ros.replay import replay_bag
from amp_ros.runner import RUNNERS as OFFLINE_RUNNERS
from amp_ros.runner import TAUGHT_LABEL, Runner, RunSettings, RunStats, first_masks


class NodeRunError(AmpError):
    """The node could not be started or reset, or a replay failed."""


def _bag_frames(sequence: VideoSequence) -> list[SourceFrame]:
    return [SourceFrame(name=path.stem, rgb=read_frame(path)) for path in sequence.frames]


LABELS_TOPIC = "/amp_vos/labels"


def _call(node: rclpy.node.Node, context: Context, kind: type, name: str, request: Any,
          timeout: float = 30.0) -> Any:
    """Call service ``name`` and return its response; NodeRunError if it fails or is silent."""
    client = node.create_client(kind, name)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        if not client.wait_for_service(timeout_sec=timeout):
            raise NodeRunError(f"the node does not offer {name}")
        future = client.call_async(request)
        executor.spin_until_future_complete(future, timeout_sec=timeout)
    finally:
        executor.remove_node(node)
        executor.shutdown()
        node.destroy_client(client)
    if not future.done() or not future.result().success:
        message = future.result().message if future.done() else "no answer"
        raise NodeRunError(f"{name} failed: {message}")
    return future.result()


def _reset(node: rclpy.node.Node, context: Context) -> None:
    _call(node, context, Trigger, "/amp/reset", Trigger.Request())


def _teach(node: rclpy.node.Node, context: Context, mask: np.ndarray, stamp_ns: int) -> int:
    """Teach class TAUGHT_LABEL on the frame the node processed with stamp ``stamp_ns`` (empty
    image, the mask stamped like the frame); its id."""
    request = Teach.Request(
        label=TAUGHT_LABEL, mask=image_msg(mask.astype(np.uint8) * 255, "mono8", stamp_ns=stamp_ns)
    )
    response = _call(node, context, Teach, "/amp/teach", request)
    used = response.stamp.sec * 1_000_000_000 + response.stamp.nanosec
    if used != stamp_ns:
        raise NodeRunError(f"/amp/teach used the frame stamped {used}, not {stamp_ns}")
    return int(response.class_id)


def _forget(node: rclpy.node.Node, context: Context) -> None:
    _call(node, context, Forget, "/amp/forget", Forget.Request(label=TAUGHT_LABEL))


def _labels_writer(
    masks_dir: Path, sequence: VideoSequence, class_id: int
) -> Callable[[str, int, np.ndarray], None]:
    """An ``on_mask`` for the replay of ``~/labels``: writes the taught class's pixels."""
    index = {path.stem: i for i, path in enumerate(sequence.frames)}

    def write(name: str, stamp_ns: int, labels: np.ndarray) -> None:
        write_result(masks_dir, sequence, index[name], labels == class_id)

    return write


def run_via_ros(
    sequences: Sequence[VideoSequence], masks_dir: Path, settings: RunSettings, *, progress: bool = True
) -> RunStats:
    """The ``ros`` runner: replay every sequence through one ``amp_vos`` process (reset between
    sequences); masks go to masks_dir/<seq>/<frame>.png."""
    if settings.head_levels is not None:
        raise InputError("--levels is an offline ablation; the node always uses every level")
    if settings.teach_shots > 1:
        raise InputError("--via ros teaches from one frame (/amp/teach takes one mask; teaching a "
                         "label again adapts it); use --shots 1, or --via offline for k shots")
    domain_id = int(os.environ.get("AMP_EVAL_DOMAIN_ID", 30 + os.getpid() % 60))
    stats = RunStats()
    with tempfile.TemporaryDirectory(prefix="amp-eval-") as tmp:
        tmp_dir = Path(tmp)
        node_process = NodeProcess(
            domain_id=domain_id,
            log_path=tmp_dir / "node.log",
            checkpoint=str(settings.checkpoint_path()),
            device=settings.device,
            **settings.pipeline_values(),
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
                _reset(node, context)
                frames = _bag_frames(sequence)
                parts = [(frames, None)]
                if settings.teach_shots:
                    given = first_masks(sequence, 1)[0]
                    parts = [(frames[:1], None), (frames[1:], given)]
                for part, (part_frames, teach_mask) in enumerate(parts):
                    bag = tmp_dir / "bags" / f"{sequence.name}-{part}"
                    bag.parent.mkdir(parents=True, exist_ok=True)
                    write_bag(bag, part_frames, sequence=sequence.name, source="amp-eval",
                              overwrite=True)
                    start = time.perf_counter()
                    if teach_mask is None:
                        replay = replay_bag(bag, lockstep=True, send_flow=False,
                                            results_dir=masks_dir, sequence=sequence.name,
                                            context=context, timeout=120.0, progress=progress)
                    else:  # the frame before was taught: record the taught class's labels
                        class_id = _teach(node, context, teach_mask, replay.frames[-1].stamp_ns)
                        replay = replay_bag(
                            bag, lockstep=True, send_flow=False, mask_topic=LABELS_TOPIC,
                            sequence=sequence.name, context=context, timeout=120.0,
                            progress=progress,
                            on_mask=_labels_writer(masks_dir, sequence, class_id),
                        )
                        write_result(masks_dir, sequence, 0, teach_mask)
                        _forget(node, context)
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
