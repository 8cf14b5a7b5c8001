"""The only places training touches the network's class heads.

Training needs the heads in a few ways: the supervised logits of a batch, the per-level head
features for the episodic term, the learned logit scale, the object row, which parameters are
head parameters (no weight decay), and swapping the head weights (the imprint check). Each is one
small function here, so a change of how the network and its heads are split changes this module
only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from amp_ros.classifier import ClassifierState
from amp_ros.network import TwoStreamWRN
from amp_ros.training.augment import IGNORE
from amp_ros.training.episodes import prototype_loss

OBJECT = "object"
BACKGROUND = "background"
HEAD_PREFIX = "classifier."  # parameter names of the learnable heads (and the logit scale)


def supervised_logits(model: TwoStreamWRN, image: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
    """Class logits N×K×H×W of the learned heads at the input size."""
    return model(image, motion)


def episodic_features(
    model: TwoStreamWRN, image: torch.Tensor, motion: torch.Tensor
) -> list[torch.Tensor]:
    """Head features, one N×C_l×h_l×w_l map per head level (unit vectors per pixel)."""
    return model.features(image, motion)


def logit_scale(model: TwoStreamWRN) -> torch.Tensor:
    """The learned scale of the cosine logits (a scalar tensor, differentiable)."""
    return model.classifier.log_scale.exp()


def object_row(model: TwoStreamWRN) -> int:
    """Index of the object class in the logits."""
    return model.classifier.index(OBJECT)


def is_head_parameter(name: str) -> bool:
    """Whether ``name`` (from ``model.named_parameters()``) belongs to the heads."""
    return name.startswith(HEAD_PREFIX)


def learned_proxies(model: TwoStreamWRN, name: str) -> list[torch.Tensor]:
    """The learned head row of class ``name``, one per head level."""
    return model.classifier.proxies(name)


def head_state(model: TwoStreamWRN) -> ClassifierState:
    """A copy of the head weights (class ids, names, rows per level, logit scale)."""
    return model.classifier.export_state()


def set_head_state(model: TwoStreamWRN, state: ClassifierState) -> None:
    """Replace the head weights with ``state``."""
    model.classifier.restore_state(state)


def with_rows(state: ClassifierState, rows: dict[str, list[torch.Tensor]]) -> ClassifierState:
    """``state`` with each class's head rows replaced by ``rows[name]`` (one per level); same
    classes, same logit scale."""
    levels = len(state.weights)
    return ClassifierState(
        ids=state.ids, names=state.names,
        weights=tuple(torch.stack([rows[name][lv] for name in state.names]) for lv in range(levels)),
        log_scale=state.log_scale,
    )


def supervised_loss(
    model: TwoStreamWRN, image: torch.Tensor, motion: torch.Tensor, label: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy of the learned heads' logits against ``label`` (N×H×W, 255 ignored)."""
    return F.cross_entropy(supervised_logits(model, image, motion), label, ignore_index=IGNORE)


def episodic_loss(
    model: TwoStreamWRN,
    support_image: torch.Tensor, support_motion: torch.Tensor, support_label: torch.Tensor,
    query_image: torch.Tensor, query_motion: torch.Tensor, query_label: torch.Tensor,
) -> torch.Tensor:
    """The prototype loss (:func:`amp_ros.training.episodes.prototype_loss`) of a batch of
    episodes; support and query go through the network as one batch."""
    features = episodic_features(model, torch.cat([support_image, query_image]),
                                 torch.cat([support_motion, query_motion]))
    n = support_image.shape[0]
    return prototype_loss([f[:n] for f in features], support_label,
                          [f[n:] for f in features], query_label, logit_scale(model))
