"""Check the AMP premise on a trained checkpoint: imprinted proxies ≈ learned heads.

``python -m amp_ros.training.imprint_check --checkpoint CKPT --data DIR [--frames 30]``

1. NMAP proxies (eq. 1, :func:`amp_ros.proxies.nmap`) of background and object are computed
   from ``--frames`` training frames (sequences not held out for validation, frames spread
   evenly, each with both classes present) on every head level.
2. Their cosine similarity to the learned head rows is reported per level (also the cross terms
   and the cosine between the two learned rows, for scale).
3. Validation J (as in training: argmax at the training size, every 2nd frame of the held-out
   sequences) is measured with the learned heads and with the heads replaced by the imprinted
   proxies (same learned logit scale, via ``export_state`` / ``restore_state``).

Frames are stacked per feature-map size; when the data mixes frame sizes, only the most common
size is used (eq. 1 averages over shots of one size). The figures go to ``--out`` as JSON.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from amp_ros.checkpoint import InputConfig, load_checkpoint
from amp_ros.classifier import ClassifierState
from amp_ros.inference import predict
from amp_ros.proxies import nmap
from amp_ros.training.data import DEFAULT_CACHE, list_sequences, load_sequences
from amp_ros.training.train import VAL_SEQUENCES, validate

BACKGROUND, OBJECT = "background", "object"


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
        raise SystemExit("imprint_check: no training frame has both object and background")
    picks = np.linspace(0, len(candidates) - 1, min(count, len(candidates))).round().astype(int)
    return [candidates[i] for i in sorted(set(picks.tolist()))]


@torch.no_grad()
def imprinted_proxies(model, sequences, picks, input_config: InputConfig) -> tuple[dict, int]:
    """{class name: [proxy per level]} from the picked frames; also how many frames were used."""
    predictions = []
    for i, t in picks:
        seq = sequences[i]
        pred = predict(model, seq.frames[t], seq.flows[t].astype(np.float32), input_config)
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
        cache: str, val_stride: int = 2) -> dict:
    """All figures as a JSON-ready dict."""
    torch.set_num_threads(2)
    checkpoint = load_checkpoint(checkpoint_dir)
    model, input_config = checkpoint.model, checkpoint.input
    classifier = model.classifier
    val_names = set(val_sequences)
    available = [(r, n) for r in data for n in list_sequences(r)]
    train_sel = [(r, n) for r, n in available if n not in val_names]
    val_sel = [(r, n) for r, n in available if n in val_names]
    train_seqs = load_sequences(train_sel, input_config.max_side, cache=cache)
    picks = pick_frames(train_seqs, frames)
    proxies, used = imprinted_proxies(model, train_seqs, picks, input_config)

    levels = list(model.config.head_levels)
    learned = {name: classifier.proxies(name) for name in (BACKGROUND, OBJECT)}
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
        "val_sequences": [f"{Path(r).name}/{n}" for r, n in val_sel],
        "cosine": similarity,
    }
    if val_sel:
        val_seqs = load_sequences(val_sel, input_config.max_side, cache=cache)
        learned_j, learned_per, _, _ = validate(model, val_seqs, input_config, val_stride)
        original = classifier.export_state()
        rows = [[proxies[name][lv] for name in original.names] for lv in range(len(levels))]
        imprinted = ClassifierState(ids=original.ids, names=original.names,
                                    weights=tuple(torch.stack(r) for r in rows),
                                    log_scale=original.log_scale)
        classifier.restore_state(imprinted)
        imprinted_j, imprinted_per, _, _ = validate(model, val_seqs, input_config, val_stride)
        classifier.restore_state(original)
        result["val_j"] = {"learned_heads": learned_j, "imprinted_heads": imprinted_j,
                           "learned_per_sequence": learned_per,
                           "imprinted_per_sequence": imprinted_per}
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m amp_ros.training.imprint_check",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="checkpoint folder")
    parser.add_argument("--data", nargs="+", required=True, help="DAVIS-layout folder(s)")
    parser.add_argument("--frames", type=int, default=30, help="training frames to imprint from")
    parser.add_argument("--val-sequences", nargs="+", default=list(VAL_SEQUENCES))
    parser.add_argument("--cache", default=str(DEFAULT_CACHE))
    parser.add_argument("--out", default="runs/imprint_check.json", help="JSON output file")
    args = parser.parse_args(argv)
    result = run(args.checkpoint, args.data, args.frames, args.val_sequences, args.cache)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
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
