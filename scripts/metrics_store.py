#!/usr/bin/env python3
"""The committed copies of heldout_results.sh's evaluations: STORE/LABEL.json.

    metrics_store.py save STORE OUT LABEL CHECKPOINT     OUT/LABEL/metrics.json → STORE/LABEL.json
    metrics_store.py restore STORE OUT LABEL CHECKPOINT  STORE/LABEL.json → OUT/LABEL/metrics.json

A stored file is the evaluation's metrics.json with ``checkpoint_sha256``, the SHA-256 of the
checkpoint's ``model.safetensors`` (as its ``config.json`` records it; loading a checkpoint checks
that record), added. ``restore`` copies it back (exit status 0) when it was
made with the same CHECKPOINT (the name or path amp-eval recorded) and that checkpoint is not on
this machine (a clone renders the tables from the store alone) or has those very weights; a
checkpoint retrained in place may have other weights (training is not always bit-reproducible),
so its run is evaluated again (exit status 1, with a message).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from amp_ros.atomic_write import atomic_write
from amp_ros.models import resolve_checkpoint

DIGEST = "checkpoint_sha256"


def weights_digest(checkpoint: str) -> str | None:
    """SHA-256 of the checkpoint's weights from its config, None when the checkpoint is not here."""
    config = resolve_checkpoint(checkpoint) / "config.json"
    return json.loads(config.read_text()).get("sha256") if config.is_file() else None


def save(store: Path, out: Path, label: str, checkpoint: str) -> int:
    metrics = json.loads((out / label / "metrics.json").read_text())
    metrics[DIGEST] = weights_digest(checkpoint)
    store.mkdir(parents=True, exist_ok=True)
    atomic_write(store / f"{label}.json", json.dumps(metrics, indent=1) + "\n")
    return 0


def restore(store: Path, out: Path, label: str, checkpoint: str) -> int:
    stored = store / f"{label}.json"
    if not stored.is_file():
        return 1
    metrics = json.loads(stored.read_text())
    if (metrics.get("config") or {}).get("checkpoint") != checkpoint:
        print(f"{stored} was made with another checkpoint than {checkpoint}: evaluating again",
              file=sys.stderr)
        return 1
    digest = weights_digest(checkpoint)
    if digest is not None and digest != metrics.get(DIGEST):
        print(f"{stored} was made with other weights than {checkpoint}'s: evaluating again",
              file=sys.stderr)
        return 1
    metrics.pop(DIGEST, None)
    (out / label).mkdir(parents=True, exist_ok=True)
    atomic_write(out / label / "metrics.json", json.dumps(metrics, indent=1) + "\n")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) != 5 or argv[0] not in ("save", "restore"):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    command, store, out, label, checkpoint = argv
    return (save if command == "save" else restore)(Path(store), Path(out), label, checkpoint)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
