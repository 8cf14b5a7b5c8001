"""The pipeline's run-time settings: one frozen dataclass, the single source of their defaults."""

from __future__ import annotations

from dataclasses import dataclass, field

from amp_ros.crf import CrfConfig
from amp_ros.pseudo_labels import PseudoLabelConfig


@dataclass(frozen=True)
class PipelineConfig:
    """Run-time settings; all can change between frames (see :meth:`Pipeline.configure`)."""

    adapt: bool = True
    alpha: float = 0.001  # self-adaptation rate per frame (AMP eq. 2)
    teach_alpha: float = 0.26  # rate for teaching a label that exists already
    taught_alpha: float = 0.01  # self-adaptation rate of taught classes per frame
    taught_crf: bool = True  # refine each taught class's decision with the dense CRF
    pseudo: PseudoLabelConfig = field(default_factory=PseudoLabelConfig)
    crf: bool = True
    crf_config: CrfConfig = field(default_factory=CrfConfig)
    dis_preset: str = "medium"
    mask_threshold: float = 0.5
    head_levels: tuple[int, ...] | None = None  # None = every level (a subset is an ablation)
