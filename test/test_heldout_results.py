"""scripts/heldout_results.sh's queue (DRY=1 lists the evaluations it would run, runs none)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "heldout_results.sh"
FOLDS = "2|runs/f2/best|boat,swing;3|runs/f3/best|lucia,train"

pytestmark = pytest.mark.skipif(not (REPO / ".venv" / "bin" / "python").is_file(),
                                reason="the script runs .venv/bin/python: make venv first")


def _dry(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT)], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "DRY": "1", "OUT": str(tmp_path / "out"), **env})


def test_one_table_queues_only_its_evaluations(tmp_path: Path) -> None:
    done = _dry(tmp_path, TABLES="cross_validation", FOLDS=FOLDS, FOLD1="")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "u2netp bus,car-turn,dance-jump,hike,mallard-fly,stroller --checkpoint u2netp",
        "fold2 boat,swing --checkpoint runs/f2/best --max-side 320",
        "fold3 lucia,train --checkpoint runs/f3/best --max-side 320",
    ]


def test_an_evaluation_already_done_is_not_queued_again(tmp_path: Path) -> None:
    (tmp_path / "out" / "fold2").mkdir(parents=True)
    (tmp_path / "out" / "fold2" / "metrics.json").write_text("{}")
    done = _dry(tmp_path, TABLES="cross_validation", FOLDS=FOLDS, FOLD1="")
    assert [line.split()[0] for line in done.stdout.splitlines()] == ["u2netp", "fold3"]


def test_a_table_the_template_lacks_is_an_error(tmp_path: Path) -> None:
    done = _dry(tmp_path, TABLES="cross_validation folds_typo")
    assert done.returncode == 2
    assert "no {{folds_typo}} in docs/results.template.md" in done.stderr
