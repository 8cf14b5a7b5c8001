"""What training optimises: the stateless network and its learnable heads, side by side.

At run time the heads are exported as a proxy set (:meth:`ProxyHeads.proxy_set`) and the
network stays untouched; in training both are parameters of one module, and this module holds
the two losses: supervised cross-entropy of the learned heads and the episodic prototype term.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from amp_ros.checkpoint import HEADS_PREFIX, Checkpoint
from amp_ros.heads import ProxyHeads
from amp_ros.network import NetworkConfig, TwoStreamNetwork, build_heads
from amp_ros.training.augment import IGNORE
from amp_ros.training.episodes import prototype_loss


class TrainingModel(nn.Module):
    """``network`` (features) and ``classifier`` (the learnable cosine heads) trained together."""

    def __init__(self, network: TwoStreamNetwork, heads: ProxyHeads | None = None):
        super().__init__()
        self.network = network
        self.classifier = heads if heads is not None else build_heads(network)

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> TrainingModel:
        """The checkpoint's network and heads, ready to train further."""
        return cls(checkpoint.network, checkpoint.heads)

    @property
    def config(self) -> NetworkConfig:
        """The network's architecture."""
        return self.network.config

    def forward(self, image: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
        """Class logits N×K×H×W of the learned heads at the input size."""
        return self.classifier(self.network(image, motion), size=image.shape[-2:])


def is_head_parameter(name: str) -> bool:
    """Whether ``name`` (from ``model.named_parameters()``) belongs to the heads."""
    return name.startswith(HEADS_PREFIX)


def supervised_loss(
    model: TrainingModel, image: torch.Tensor, motion: torch.Tensor, label: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy of the learned heads' logits against ``label`` (N×H×W, 255 ignored)."""
    return F.cross_entropy(model(image, motion), label, ignore_index=IGNORE)


def episodic_loss(
    model: TrainingModel,
    support_image: torch.Tensor, support_motion: torch.Tensor, support_label: torch.Tensor,
    query_image: torch.Tensor, query_motion: torch.Tensor, query_label: torch.Tensor,
) -> torch.Tensor:
    """The prototype loss (:func:`amp_ros.training.episodes.prototype_loss`) of a batch of
    episodes; support and query go through the network as one batch."""
    features = model.network(torch.cat([support_image, query_image]),
                             torch.cat([support_motion, query_motion]))
    n = support_image.shape[0]
    return prototype_loss([f[:n] for f in features], support_label,
                          [f[n:] for f in features], query_label, model.classifier.log_scale.exp())
