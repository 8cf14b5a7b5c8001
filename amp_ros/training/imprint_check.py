"""Check the AMP premise on a trained checkpoint: imprinted proxies ≈ learned heads.

``python -m amp_ros.training.imprint_check --checkpoint CKPT --data DIR [--frames 30]``

1. NMAP proxies (eq. 1, :func:`amp_ros.proxies.nmap`) of background and object are computed
   from ``--frames`` training frames (the sequences training uses, i.e. not held out for
   validation by :func:`amp_ros.training.sampling.split_sequences`; frames spread evenly, each
   with both classes present) on every head level.
2. Their cosine similarity to the learned head rows is reported per level (also the cross terms
   and the cosine between the two learned rows, for scale).
3. Validation J (as in training: argmax at the training size, every 2nd frame of the held-out
   sequences) is measured with the learned heads and with the heads replaced by the imprinted
   proxies (same learned logit scale; a proxy set in place of the heads' one).

Frames are stacked per feature-map size; when the data mixes frame sizes, only the most common
size is used (eq. 1 averages over shots of one size). The figures go to ``--out`` as JSON.
``--threads N`` sets torch's CPU threads (0 = torch's default; the recorded checks used 2).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from amp_ros.atomic_write import atomic_write
from amp_ros.checkpoint import InputConfig, load_checkpoint
from amp_ros.errors import AmpError
from amp_ros.inference import predict
from amp_ros.proxies import nmap
from amp_ros.proxy_set import ProxySet
from amp_ros.training import TrainingError
from amp_ros.training.data import DEFAULT_CACHE, dataset_name, load_sequences
from amp_ros.training.folds import VAL_SEQUENCES
from amp_ros.training.model import TrainingModel
from amp_ros.training.sampling import split_sequences
from amp_ros.training.threads import DEFAULT_THREADS, set_threads
from amp_ros.training.validation import DEFAULT_STRIDE, validate

PROG = "python -m amp_ros.training.imprint_check"
BACKGROUND, OBJECT = "background", "object"
DEFAULT_FRAMES = 30
DEFAULT_OUT = "runs/imprint_check.json"


def pick_frames(
    sequences: Sequence, count: int
) -> list[tuple[int, int]]:
    """``count`` (sequence index, frame) pairs spread evenly over the sequences' frames ≥ 1
    whose mask has both object and background."""
    candidates = [
        (i, t) for i, seq in enumerate(sequences) for t in range(1, len(seq))
        if 0 < seq.masks[t].sum() < seq.masks[t].size
    ]
    if not candidates:
        raise TrainingError("no training frame has both object and background")
    picks = np.linspace(0, len(candidates) - 1, min(count, len(candidates))).round().astype(int)
    return [candidates[i] for i in sorted(set(picks.tolist()))]


@torch.no_grad()
def imprinted_proxies(model, sequences, picks, input_config: InputConfig) -> tuple[dict, int]:
    """{class name: [proxy per level]} from the picked frames; also how many frames were used."""
    predictions = []
    for i, t in picks:
        seq = sequences[i]
        pred = predict(model.network, seq.frames[t], seq.flows[t].astype(np.float32), input_config)
        predictions.append((pred, torch.from_numpy(seq.masks[t].astype(bool))))
    common = Counter(p.size for p, _ in predictions).most_common(1)[0][0]
    used = [(p, m) for p, m in predictions if p.size == common]
    masks = torch.stack([m for _, m in used])
    proxies: dict[str, list[torch.Tensor]] = {BACKGROUND: [], OBJECT: []}
    for level in range(len(used[0][0].features)):
        features = torch.stack([p.features[level] for p, _ in used])
        proxies[OBJECT].append(nmap(features, masks))
        proxies[BACKGROUND].append(nmap(features, ~masks))
    return proxies, len(used)


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(F.cosine_similarity(a.flatten(), b.flatten(), dim=0))


def run(checkpoint_dir: str, data: Sequence[str], frames: int, val_sequences: Sequence[str],
        cache: str, val_stride: int = DEFAULT_STRIDE) -> dict:
    """All figures as a JSON-ready dict. The train/validation split is training's
    (:func:`~amp_ros.training.sampling.split_sequences`)."""
    checkpoint = load_checkpoint(checkpoint_dir)
    model, input_config = TrainingModel.from_checkpoint(checkpoint), checkpoint.input
    train_sel, val_sel = split_sequences(data, None, val_sequences)
    train_seqs = load_sequences(train_sel, input_config.max_side, cache=cache)
    picks = pick_frames(train_seqs, frames)
    proxies, used = imprinted_proxies(model, train_seqs, picks, input_config)

    levels = list(model.config.head_levels)
    learned_set = checkpoint.proxies
    learned = {name: learned_set.proxies(name) for name in (BACKGROUND, OBJECT)}
    similarity = {}
    for index, level in enumerate(levels):
        similarity[level] = {
            "object_proxy_vs_object_head": _cos(proxies[OBJECT][index], learned[OBJECT][index]),
            "background_proxy_vs_background_head": _cos(proxies[BACKGROUND][index],
                                                         learned[BACKGROUND][index]),
            "object_proxy_vs_background_head": _cos(proxies[OBJECT][index], learned[BACKGROUND][index]),
            "background_proxy_vs_object_head": _cos(proxies[BACKGROUND][index], learned[OBJECT][index]),
            "object_head_vs_background_head": _cos(learned[OBJECT][index], learned[BACKGROUND][index]),
            "object_proxy_vs_background_proxy": _cos(proxies[OBJECT][index], proxies[BACKGROUND][index]),
        }

    result: dict = {
        "checkpoint": str(checkpoint_dir), "data": list(data), "frames_requested": frames,
        "frames_used": used,
        "frames": [f"{train_seqs[i].key}/{t:05d}" for i, t in picks],
        "val_sequences": [f"{dataset_name(r)}/{n}" for r, n in val_sel],
        "cosine": similarity,
    }
    if val_sel:
        val_seqs = load_sequences(val_sel, input_config.max_side, cache=cache)
        learned_j, learned_per, _, _ = validate(model, val_seqs, input_config, val_stride)
        imprinted = ProxySet(learned_set.names, learned_set.ids,
                             tuple(torch.stack([proxies[n][lv] for n in learned_set.names])
                                   for lv in range(len(levels))))
        imprinted_j, imprinted_per, _, _ = validate(model, val_seqs, input_config, val_stride,
                                                    proxies=imprinted)
        result["val_j"] = {"learned_heads": learned_j, "imprinted_heads": imprinted_j,
                           "learned_per_sequence": learned_per,
                           "imprinted_per_sequence": imprinted_per}
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="checkpoint folder")
    parser.add_argument("--data", nargs="+", required=True, help="DAVIS-layout folder(s)")
    parser.add_argument("--frames", type=int, default=DEFAULT_FRAMES,
                        help="training frames to imprint from")
    parser.add_argument("--val-sequences", nargs="+", default=list(VAL_SEQUENCES))
    parser.add_argument("--cache", default=str(DEFAULT_CACHE))
    parser.add_argument("--out", default=DEFAULT_OUT, help="JSON output file")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                        help="torch CPU threads; 0 = torch's default (the recorded checks used 2)")
    args = parser.parse_args(argv)
    if args.threads < 0:
        parser.error("--threads must be 0 (torch's default) or positive")
    set_threads(args.threads)
    try:
        result = run(args.checkpoint, args.data, args.frames, args.val_sequences, args.cache)
    except AmpError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    out = atomic_write(args.out, json.dumps(result, indent=2) + "\n")
    for level, figures in result["cosine"].items():
        print(f"{level:8s} cos(object proxy, object head) {figures['object_proxy_vs_object_head']:+.3f}"
              f"  cos(background proxy, background head) "
              f"{figures['background_proxy_vs_background_head']:+.3f}")
    if "val_j" in result:
        print(f"val J: learned heads {result['val_j']['learned_heads']:.4f}, "
              f"imprinted heads {result['val_j']['imprinted_heads']:.4f}")
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
