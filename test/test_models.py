"""Resolving the node's ``checkpoint`` value: default, shipped name, or folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from amp_ros import models
from amp_ros.errors import CheckpointError


@pytest.fixture()
def models_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(models, "MODELS", tmp_path)
    return tmp_path


def test_no_default_model_says_what_is_missing(models_dir: Path) -> None:
    with pytest.raises(CheckpointError, match=r"no trained model in .*amp-train"):
        models.resolve_checkpoint("")
    (models_dir / "DEFAULT").write_text("wrn\n")  # named, but not shipped
    with pytest.raises(CheckpointError, match="DEFAULT names 'wrn'"):
        models.resolve_checkpoint(None)


def test_names_resolve_to_shipped_folders_and_other_values_are_paths(models_dir: Path) -> None:
    for name in ("effnet", "wrn"):
        (models_dir / name).mkdir()
        (models_dir / name / "config.json").write_text("{}")
    (models_dir / "DEFAULT").write_text("effnet\n")
    assert models.shipped_models() == ["effnet", "wrn"]
    assert models.resolve_checkpoint(None) == models_dir / "effnet"
    assert models.resolve_checkpoint("") == models_dir / "effnet"
    assert models.resolve_checkpoint("wrn") == models_dir / "wrn"
    assert models.resolve_checkpoint("~/ckpt") == Path.home() / "ckpt"
