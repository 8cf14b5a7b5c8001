"""The pipeline's run-time settings: one frozen dataclass, the single source of their defaults.

Each field also carries its ROS parameter name, description and range (see
:mod:`amp_ros.setting_fields`): the node declares its parameters from them and config/vos.yaml is
checked against them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from amp_ros.crf import CrfConfig
from amp_ros.flow import DIS_PRESETS
from amp_ros.pseudo_labels import PseudoLabelConfig
from amp_ros.setting_fields import group, not_exposed, setting

RECENT_FRAMES = 8  # processed frames a pipeline keeps for teaching (k shots from the last k frames)


@dataclass(frozen=True)
class PipelineConfig:
    """Run-time settings; all can change between frames (see :meth:`Pipeline.configure`)."""

    adapt: bool = field(
        default=True, metadata=setting("self-adapt the background/object proxies every frame")
    )
    alpha: float = field(default=0.001, metadata=setting("self-adaptation rate (AMP eq. 2)", (0.0, 1.0)))
    teach_alpha: float = field(
        default=0.26, metadata=setting("rate when teaching a label that exists already", (0.0, 1.0))
    )
    taught_alpha: float = field(
        default=0.003, metadata=setting("self-adaptation rate of taught classes per frame", (0.0, 1.0))
    )
    taught_crf: bool = field(
        default=True, metadata=setting("refine each taught class's decision with the dense CRF")
    )
    taught_background_grid: int = field(
        default=4, metadata=setting(
            "a taught class's background proxies: one per cell of this many × as many cells over "
            "the frame (1 = one proxy of the whole background); a class keeps the grid it was "
            "taught with",
            (1, 8), read_only=True,
        )
    )
    taught_search_radius: float = field(
        default=0.08, metadata=setting(
            "a taught object is looked for within this distance of where it was in the previous "
            "frame (fraction of the diagonal; the whole frame when it was not seen; 0 = always)",
            (0.0, 1.0),
        )
    )
    pseudo: PseudoLabelConfig = field(default_factory=PseudoLabelConfig, metadata=group())
    propagation: float = field(
        default=0.2, metadata=setting(
            "weight of the previous frame's object probability, carried along the flow, in this "
            "frame's (0 = off)", (0.0, 1.0),
        )
    )
    onnx: bool = field(
        default=True, metadata=setting(
            "run the network parts the checkpoint ships as ONNX (motion stream, U²-Net trunk) on "
            "onnxruntime when the device is the CPU (faster than torch there; same features)"
        )
    )
    crf: bool = field(default=True, metadata=setting("refine with a dense CRF"))
    crf_config: CrfConfig = field(default_factory=CrfConfig, metadata=group("crf_"))
    dis_preset: str = field(
        default="medium", metadata=setting(
            "OpenCV DIS preset of the flow the pipeline computes itself (flow_source dis or auto): "
            "medium is what the shipped models were trained with; fast and ultrafast cost less",
            DIS_PRESETS,
        )
    )
    mask_threshold: float = field(
        default=0.5, metadata=setting("object probability above this is in ~/mask", (0.0, 1.0))
    )
    head_levels: tuple[int, ...] | None = field(  # None = every level (a subset is an ablation)
        default=None, metadata=not_exposed("ablation of the evaluation tools")
    )
