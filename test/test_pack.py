"""The training-data pack (amp_ros.training.pack) and the cross-validation folds it trains on."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from amp_ros.errors import InputError
from amp_ros.training.data import list_sequences, load_sequence
from amp_ros.training.folds import FOLDS, VAL_SEQUENCES
from amp_ros.training.options import parse_options
from amp_ros.training.pack import main, pack, pack_sequence, split_parts

REPO = Path(__file__).resolve().parent.parent
SHARED_DAVIS = REPO.parent / "shared" / "data" / "davis2016-train"
HEIGHT, WIDTH, FRAMES = 60, 80, 3


def _make_dataset(root: Path) -> Path:
    """Two sequences of three 60×80 frames, a bright square on smooth noise, DAVIS 480p layout."""
    rng = np.random.default_rng(0)
    for s, name in enumerate(("alpha", "beta")):
        images = root / "JPEGImages" / "480p" / name
        masks = root / "Annotations" / "480p" / name
        images.mkdir(parents=True)
        masks.mkdir(parents=True)
        noise = rng.integers(0, 255, (HEIGHT // 5, WIDTH // 5, 3), dtype=np.uint8)
        background = cv2.resize(noise, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
        for t in range(FRAMES):
            frame, mask = background.copy(), np.zeros((HEIGHT, WIDTH), np.uint8)
            x = 10 + 5 * t + 20 * s
            frame[20:40, x:x + 20] = 230
            mask[20:40, x:x + 20] = 255
            cv2.imwrite(str(images / f"{t:05d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
            cv2.imwrite(str(masks / f"{t:05d}.png"), mask)
    return root


def test_split_parts_fills_each_part_in_order() -> None:
    assert split_parts([5, 5, 5, 1], 10) == [[0, 1], [2, 3]]
    assert split_parts([10, 1], 10) == [[0], [1]]
    assert split_parts([3, 8, 2], 10) == [[0], [1, 2]]
    assert split_parts([], 10) == []
    with pytest.raises(InputError, match="item 1 takes 11 bytes"):
        split_parts([1, 11], 10)


def test_pack_reads_back_as_training_data(tmp_path: Path) -> None:
    source = _make_dataset(tmp_path / "toyset")
    out = tmp_path / "pack"
    one_sequence = max(pack_sequence(source, n, 40, 90).size for n in ("alpha", "beta"))
    manifest = pack([source], out, 40, quality=90, part_bytes=one_sequence, log=lambda _: None)

    assert manifest["datasets"] == ["toyset"] and manifest["max_side"] == 40
    assert [p["sequences"] for p in manifest["parts"]] == [["toyset/alpha"], ["toyset/beta"]]
    assert json.loads((out / "pack.json").read_text()) == manifest
    merged = tmp_path / "merged"
    for part in manifest["parts"]:  # what scripts/device_train.sh does: cp -r part*/. merged/
        for path in (out / part["name"]).rglob("*"):
            if path.is_file():
                target = merged / path.relative_to(out / part["name"])
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(path.read_bytes())
    assert sorted(p.name for p in (merged / "toyset" / "JPEGImages" / "alpha").iterdir()) == [
        "00000.webp", "00001.webp", "00002.webp"]
    assert list_sequences(merged / "toyset") == ["alpha", "beta"]
    for name in ("alpha", "beta"):
        packed = load_sequence(merged / "toyset", name, 40, cache=None)
        original = load_sequence(source, name, 40, cache=None)
        assert packed.dataset == original.dataset == "toyset"
        for a, b in zip(packed.masks, original.masks, strict=True):
            np.testing.assert_array_equal(a, b)  # masks at the training size, exactly
        for a, b in zip(packed.frames, original.frames, strict=True):
            assert a.shape == b.shape == (30, 40, 3)
            # only the WebP coding differs (it keeps brightness at full resolution, colour at half)
            gray_a, gray_b = (cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(float) for f in (a, b))
            assert np.abs(gray_a - gray_b).mean() < 4.0


def test_pack_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = _make_dataset(tmp_path / "toyset")
    with pytest.raises(InputError, match="toyset/alpha alone is larger than a part"):
        pack([source], tmp_path / "small", 40, part_bytes=100, log=lambda _: None)
    pack([source], tmp_path / "pack", 40, log=lambda _: None)
    with pytest.raises(InputError, match="already holds a pack"):
        pack([source], tmp_path / "pack", 40, log=lambda _: None)
    other = _make_dataset(tmp_path / "elsewhere" / "toyset")
    with pytest.raises(InputError, match="share a name"):
        pack([source, other], tmp_path / "twice", 40, log=lambda _: None)
    assert main(["--data", str(source), "--out", str(tmp_path / "pack"), "--max-side", "40"]) == 1
    assert "already holds a pack" in capsys.readouterr().err


def test_folds_hold_each_sequence_once() -> None:
    assert FOLDS["A"] == VAL_SEQUENCES
    names = [n for fold in FOLDS.values() for n in fold]
    assert len(names) == len(set(names)) == 30
    assert all(len(fold) == 6 for fold in FOLDS.values())
    assert parse_options(["--data", "d", "--out", "o", "--fold", "3"]).val_sequences == FOLDS["3"]
    assert parse_options(["--data", "d", "--out", "o"]).val_sequences == VAL_SEQUENCES
    with pytest.raises(SystemExit):
        parse_options(["--data", "d", "--out", "o", "--fold", "2", "--val-sequences", "bus"])


def test_folds_are_the_davis_train_sequences() -> None:
    if not SHARED_DAVIS.is_dir():
        pytest.skip(f"{SHARED_DAVIS} is not here (the shared data exists beside the repo in CI only)")
    assert sorted(n for fold in FOLDS.values() for n in fold) == list_sequences(SHARED_DAVIS)
