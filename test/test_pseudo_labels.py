"""Pseudo-labels for self-adaptation: exact fg/bg/ignore sets, and ignore really ignored."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import amp_ros.pipeline as pipeline_module
from amp_ros.errors import InputError
from amp_ros.inference import FrameFeatures
from amp_ros.pipeline import Pipeline
from amp_ros.proxies import IGNORE, blend, nmap
from amp_ros.pseudo_labels import PseudoLabelConfig, pseudo_labels

I = IGNORE  # noqa: E741 - keeps the expected maps readable


def _two_columns() -> np.ndarray:
    """6×8 map (diagonal exactly 10 px): columns 0–1 confident, except (0, 1) at exactly 0.8."""
    probability = np.full((6, 8), 0.1)
    probability[:, :2] = 0.9
    probability[0, 1] = 0.8  # not above the threshold: not foreground
    probability[3, 5] = 0.8  # neither: far from foreground, so background
    return probability


def test_thresholds_without_erosion() -> None:
    """fg: p > 0.8; bg: distance to fg > 0.3·10 = 3 px (strictly); the rest ignored.

    Rows 1–5: columns 2–4 lie 1, 2, 3 px from column 1 → ignored; 5–7 → background.
    Row 0: (0, 1) is not fg, so the nearest fg is (1, 1): (0, 4) is √10 ≈ 3.16 px away → bg.
    """
    config = PseudoLabelConfig(foreground_threshold=0.8, erosion=0.0, background_distance=0.3)
    expected = np.array(
        [
            [1, I, I, I, 0, 0, 0, 0],
            [1, 1, I, I, I, 0, 0, 0],
            [1, 1, I, I, I, 0, 0, 0],
            [1, 1, I, I, I, 0, 0, 0],
            [1, 1, I, I, I, 0, 0, 0],
            [1, 1, I, I, I, 0, 0, 0],
        ],
        dtype=np.uint8,
    )
    labels = pseudo_labels(_two_columns(), config)
    assert labels is not None and labels.dtype == np.uint8
    assert np.array_equal(labels, expected)


def test_foreground_is_eroded_first() -> None:
    """Erosion 0.1·10 = radius 1 (a 3×3 cross): column 1 and (0, 0) lose fg, become ignored.

    Distances are then measured from column 0, rows 1–5: (r, 4) is 4 px away → bg; row 0
    reaches (1, 0) diagonally: (0, 3) is √10 px away → bg, (0, 2) is √5 → ignored.
    """
    config = PseudoLabelConfig(foreground_threshold=0.8, erosion=0.1, background_distance=0.3)
    expected = np.array(
        [
            [I, I, I, 0, 0, 0, 0, 0],
            [1, I, I, I, 0, 0, 0, 0],
            [1, I, I, I, 0, 0, 0, 0],
            [1, I, I, I, 0, 0, 0, 0],
            [1, I, I, I, 0, 0, 0, 0],
            [1, I, I, I, 0, 0, 0, 0],
        ],
        dtype=np.uint8,
    )
    assert np.array_equal(pseudo_labels(_two_columns(), config), expected)


def test_threshold_is_a_parameter() -> None:
    """foreground_threshold 0.95 leaves no confident pixel in the map: None."""
    config = PseudoLabelConfig(foreground_threshold=0.95, erosion=0.0)
    assert pseudo_labels(_two_columns(), config) is None


def test_no_confident_foreground_gives_none() -> None:
    """All pixels at (not above) the threshold, or fg eroded to nothing: no update (None)."""
    assert pseudo_labels(np.full((6, 8), 0.8), PseudoLabelConfig(erosion=0.0)) is None
    speck = np.zeros((6, 8))
    speck[3, 4] = 1.0
    assert pseudo_labels(speck, PseudoLabelConfig(erosion=0.0)) is not None
    assert pseudo_labels(speck, PseudoLabelConfig(erosion=0.1)) is None  # a 1-px speck erodes


def test_rank_error() -> None:
    """A K×h×w map is not an h×w map."""
    with pytest.raises(InputError, match=r"expects an h×w probability map, got \(2, 6, 8\)"):
        pseudo_labels(np.zeros((2, 6, 8)), PseudoLabelConfig())


def test_self_adaptation_excludes_ignored_pixels(
    tiny_pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The authors' bug (ignore lost): here the proxies use labels == 1 and labels == 0 only.

    The network and the logits are replaced by fixed ones (object block in a 16×16 frame,
    random features); after one step the object and background rows must be exactly
    blend(Ŵ, nmap(features, labels == l), α) with the pseudo-labels of that probability map.
    """
    generator = torch.Generator().manual_seed(0)
    logits = torch.full((2, 16, 16), -5.0)
    logits[0] = 5.0
    logits[1, 5:11, 4:12] = 5.0
    logits[0, 5:11, 4:12] = -5.0
    features = [
        torch.rand(c, s, s, generator=generator) for c, s in zip(tiny_pipeline.base.channels, (4, 2, 2))
    ]
    frame = np.zeros((16, 16, 3), np.uint8)
    monkeypatch.setattr(pipeline_module, "predict", lambda *a, **k: FrameFeatures(features, frame))
    monkeypatch.setattr(pipeline_module, "class_logits", lambda *a, **k: logits.clone())
    tiny_pipeline.configure(crf=False, alpha=0.5)
    before = tiny_pipeline.base

    result = tiny_pipeline.step(frame)

    probability = torch.softmax(logits, 0)[1].numpy()
    labels = pseudo_labels(probability, tiny_pipeline.config.pseudo)
    assert labels is not None and (labels == IGNORE).any()
    assert result.adapted and tiny_pipeline.adaptation_updates == 1
    after = tiny_pipeline.base
    for row, value in ((after.index("object"), 1), (after.index("background"), 0)):
        selected = torch.from_numpy(labels == value)
        for level, feature in enumerate(features):
            expected = blend(F.normalize(before.weights[level][row], dim=0), nmap(feature, selected), 0.5)
            assert torch.equal(after.weights[level][row], expected)
    # With the ignored pixels counted as background, the proxy would differ: the test can fail.
    leaky = nmap(features[0], torch.from_numpy(labels != 1))
    assert not torch.allclose(leaky, nmap(features[0], torch.from_numpy(labels == 0)), atol=1e-4)
