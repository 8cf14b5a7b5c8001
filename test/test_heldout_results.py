"""scripts/heldout_results.sh's queue (DRY=1 lists the evaluations it would run, runs none)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "heldout_results.sh"
STORE_TOOL = REPO / "scripts" / "metrics_store.py"
FOLDS = "2|runs/f2/best|boat,swing;3|runs/f3/best|lucia,train"
FOLD_A = "bus,car-turn,dance-jump,hike,mallard-fly,stroller"

pytestmark = pytest.mark.skipif(not (REPO / ".venv" / "bin" / "python").is_file(),
                                reason="the script runs .venv/bin/python: make venv first")


def _dry(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """The script's queue for these variables (none inherited from the caller's shell)."""
    base = {k: v for k, v in os.environ.items()
            if k not in {"MODELS", "ABLATE", "SEQUENCES", "FOLD1", "FOLDS", "TABLES", "RECIPES",
                         "TRUNK", "EPISODIC", "IMPRINT", "STORE"}}
    return subprocess.run([str(SCRIPT)], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**base, "DRY": "1", "OUT": str(tmp_path / "out"), "MODELS": "wrn",
                               "ABLATE": "wrn", "STORE": str(tmp_path / "store"), **env})


def test_one_table_queues_only_its_evaluations(tmp_path: Path) -> None:
    # Every fold at the default (ABLATE) model's processing size: wrn's 256 px.
    done = _dry(tmp_path, TABLES="cross_validation", FOLDS=FOLDS, FOLD1="runs/f1/best")
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.splitlines()) == [
        "fold1 bmx-bumps,drift-turn,horsejump-low,motocross-bumps,rollerblade,tennis "
        "--checkpoint runs/f1/best --max-side 256",
        "fold2 boat,swing --checkpoint runs/f2/best --max-side 256",
        "fold3 lucia,train --checkpoint runs/f3/best --max-side 256",
        f"wrn {FOLD_A} --checkpoint wrn",
    ]


def test_the_settings_table_runs_each_setting_on_every_fold(tmp_path: Path) -> None:
    # Fold A, fold 1 and FOLDS, each: as shipped, α = 0, no propagation, propagation 0.3, no CRF.
    done = _dry(tmp_path, TABLES="settings_cross_validation", FOLDS=FOLDS, FOLD1="runs/f1/best")
    assert done.returncode == 0, done.stderr
    fold1 = "bmx-bumps,drift-turn,horsejump-low,motocross-bumps,rollerblade,tennis"
    folds = [("wrn", FOLD_A, "--checkpoint wrn"),
             ("fold1", fold1, "--checkpoint runs/f1/best --max-side 256"),
             ("fold2", "boat,swing", "--checkpoint runs/f2/best --max-side 256"),
             ("fold3", "lucia,train", "--checkpoint runs/f3/best --max-side 256")]
    settings = [("", ""), ("-no-adapt", " --no-adapt"), ("-no-propagation", " --set propagation=0"),
                ("-propagation-0.3", " --set propagation=0.3"), ("-no-crf", " --no-crf")]
    assert sorted(done.stdout.splitlines()) == sorted(
        f"{prefix}{suffix} {sequences} {options}{extra}"
        for prefix, sequences, options in folds for suffix, extra in settings)


def test_a_fold_without_sequences_takes_its_six_from_folds_py(tmp_path: Path) -> None:
    done = _dry(tmp_path, TABLES="cross_validation", FOLDS="4|runs/f4/best;x|runs/fx/best|bear")
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.splitlines()) == [
        "fold4 bear,dog-agility,hockey,mallard-water,rhino,surf --checkpoint runs/f4/best --max-side 256",
        "foldx bear --checkpoint runs/fx/best --max-side 256",
        f"wrn {FOLD_A} --checkpoint wrn",
    ]


def test_an_evaluation_already_done_is_not_queued_again(tmp_path: Path) -> None:
    (tmp_path / "out" / "fold2").mkdir(parents=True)
    (tmp_path / "out" / "fold2" / "metrics.json").write_text("{}")
    done = _dry(tmp_path, TABLES="cross_validation", FOLDS=FOLDS)
    assert sorted(line.split()[0] for line in done.stdout.splitlines()) == ["fold3", "wrn"]


def _train(checkpoint: Path, weights: bytes) -> None:
    """A stand-in checkpoint: its weights and the config that records their SHA-256, as saved."""
    (checkpoint / "model.safetensors").write_bytes(weights)
    (checkpoint / "config.json").write_text(json.dumps({"sha256": hashlib.sha256(weights).hexdigest()}))


def test_a_stored_evaluation_is_reused_unless_its_checkpoint_changed(tmp_path: Path) -> None:
    store, out = tmp_path / "store", tmp_path / "out"
    fold3 = tmp_path / "f3"  # a checkpoint here, retrained since its run was stored
    fold3.mkdir()
    _train(fold3, b"weights of the first training")
    (out / "fold3").mkdir(parents=True)
    (out / "fold3" / "metrics.json").write_text(
        json.dumps({"config": {"checkpoint": str(fold3)}, "sequences": {}}))
    saved = subprocess.run([str(REPO / ".venv" / "bin" / "python"), str(STORE_TOOL), "save",
                            str(store), str(out), "fold3", str(fold3)], cwd=REPO, timeout=60)
    assert saved.returncode == 0
    stored = json.loads((store / "fold3.json").read_text())
    assert stored["checkpoint_sha256"] == hashlib.sha256(b"weights of the first training").hexdigest()
    _train(fold3, b"weights of the second training")
    (out / "fold3" / "metrics.json").unlink()
    # fold 2's checkpoint is not on this machine; fold 4's stored run is of another checkpoint
    (store / "fold2.json").write_text(json.dumps(
        {**stored, "config": {"checkpoint": "runs/f2/best"}, "checkpoint_sha256": None}))
    (store / "fold4.json").write_text(json.dumps(
        {**stored, "config": {"checkpoint": "runs/old-f4/best"}}))

    done = _dry(tmp_path, TABLES="cross_validation",
                FOLDS=f"2|runs/f2/best|boat,swing;3|{fold3}|lucia,train;4|runs/f4/best|bear")
    assert done.returncode == 0, done.stderr
    # fold2 comes from the store (nothing here contradicts it); fold3 and fold4 run again
    assert sorted(line.split()[0] for line in done.stdout.splitlines()) == ["fold3", "fold4", "wrn"]
    assert json.loads((out / "fold2" / "metrics.json").read_text()) == {
        "config": {"checkpoint": "runs/f2/best"}, "sequences": {}}
    assert f"{store}/fold3.json was made with other weights than {fold3}'s" in done.stderr
    assert (f"{store}/fold4.json was made with another checkpoint than runs/f4/best"
            in done.stderr)


@pytest.mark.parametrize(("env", "message"), [
    ({"TABLES": "teach folds_typo"}, "no {{folds_typo}} in docs/results.template.md"),
    ({"TABLES": "fold."}, "no {{fold.}} in docs/results.template.md"),
    ({"TABLES": "cross_validation"}, "cross_validation needs FOLDS"),
    ({"TABLES": "folds"}, "folds needs FOLD1"),
    ({"TABLES": "settings_cross_validation"}, "settings_cross_validation needs FOLDS"),
    ({"FOLDS": "9|runs/f9/best"}, "expected NAME|CHECKPOINT[|SEQUENCES]"),
    ({"FOLDS": "2"}, "expected NAME|CHECKPOINT[|SEQUENCES]"),
    ({"FOLDS": "1|runs/f/best|boat", "FOLD1": "runs/f1/best"}, "not A, 1 or a repeat"),
    ({"FOLDS": FOLDS + ";2|runs/g/best|kite-walk"}, "not A, 1 or a repeat"),
])
def test_a_table_or_fold_it_cannot_compute_is_an_error(tmp_path: Path, env: dict, message: str) -> None:
    done = _dry(tmp_path, **env)
    assert done.returncode == 2 and message in done.stderr, done.stderr
