"""ProxySet, cosine_logits and the training heads: exact, hand-checked expectations."""

from __future__ import annotations

import math

import pytest
import torch

from amp_ros.errors import InputError, UnknownClassError
from amp_ros.heads import ProxyHeads
from amp_ros.proxies import nmap
from amp_ros.proxy_set import ProxySet, cosine_logits
from amp_ros.taught_classes import TaughtClasses, background_cells


def _set(*weights: list[list[float]], names: tuple[str, ...] = ("background", "object")) -> ProxySet:
    return ProxySet(names, tuple(range(len(names))), tuple(torch.tensor(w) for w in weights))


def _base() -> ProxySet:
    """Two levels with 4 and 6 channels: background e0, object e1 at both."""
    return _set([[1.0, 0, 0, 0], [0, 1.0, 0, 0]], [[1.0, 0, 0, 0, 0, 0], [0, 1.0, 0, 0, 0, 0]])


def _features(seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(1, 4, 3, 3, generator=generator), torch.randn(1, 6, 3, 3, generator=generator)]


def test_logits_summed_over_levels_with_1x1_features() -> None:
    """1×1 features: cosines per level, summed, times the scale, constant over the output.

    Level 0: feature (3, 4) → (0.6, 0.8); weights e0, e1 → cosines (0.6, 0.8).
    Level 1: feature (0, 0, 2) → e2; weights e0, e2 → cosines (0, 1). Sum (0.6, 1.8).
    """
    proxies = _set([[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], names=("a", "b"))
    features = [torch.tensor([3.0, 4.0]).view(1, 2, 1, 1), torch.tensor([0.0, 0.0, 2.0]).view(1, 3, 1, 1)]
    logits = cosine_logits(features, proxies, 10.0, (3, 5))
    assert logits.shape == (1, 2, 3, 5)
    expected = torch.tensor([0.6, 1.8]).view(1, 2, 1, 1).expand(1, 2, 3, 5) * 10.0
    torch.testing.assert_close(logits, expected, rtol=1e-6, atol=1e-6)


def test_logits_upsampled_bilinearly() -> None:
    """1×2 cosines upsampled to 1×4 (align_corners=False): [1, ¾, ¼, 0] and its mirror.

    Level 1 sees e1 against weights e0, e2, contributing 0 everywhere.
    """
    proxies = _set([[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], names=("a", "b"))
    level0 = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).view(1, 2, 1, 2)  # left e0, right e1
    level1 = torch.tensor([0.0, 1.0, 0.0]).view(1, 3, 1, 1)
    logits = cosine_logits([level0, level1], proxies, math.e, (1, 4)) / math.e
    expected = torch.tensor([[1.0, 0.75, 0.25, 0.0], [0.0, 0.25, 0.75, 1.0]]).view(1, 2, 1, 4)
    torch.testing.assert_close(logits, expected, rtol=0, atol=1e-6)


def test_a_subset_of_levels_is_summed_and_rescaled() -> None:
    """Class 0 has cosine 1 at level 0 and 0 at level 1; class 1 the reverse."""
    proxies = _set([[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]])
    features = [torch.tensor([1.0, 0.0]).view(1, 2, 1, 1), torch.tensor([1.0, 0.0]).view(1, 2, 1, 1)]
    assert cosine_logits(features, proxies, 1.0, (1, 1)).flatten().tolist() == [1.0, 1.0]
    # level 0 only, ×2 (2 levels / 1 used)
    assert cosine_logits(features, proxies, 1.0, (1, 1), levels=[0]).flatten().tolist() == [2.0, 0.0]
    with pytest.raises(InputError, match="non-empty subset"):
        cosine_logits(features, proxies, 1.0, (1, 1), levels=[2])


def test_logits_shape_and_channel_errors() -> None:
    """Wrong level count or channel count is an InputError saying what was expected."""
    features = _features()
    with pytest.raises(InputError, match="expected 2 feature levels, got 1"):
        cosine_logits(features[:1], _base(), 1.0, (3, 3))
    with pytest.raises(InputError, match="level 1 features have 5 channels, the proxies 6"):
        cosine_logits([features[0], torch.ones(1, 5, 3, 3)], _base(), 1.0, (3, 3))


def test_imprinted_class_wins_on_its_own_features() -> None:
    """A proxy made from one pixel's features has cosine 1 there at every level: it wins."""
    features = _features()
    mask = torch.zeros(3, 3)
    mask[1, 2] = 1
    proxies = _base().imprint("cup", [nmap(f[0], mask) for f in features], class_id=7)
    assert proxies.names == ("background", "object", "cup") and proxies.class_id("cup") == 7
    logits = cosine_logits(features, proxies, 10.0, (3, 3))
    assert logits[0, :, 1, 2].argmax() == proxies.index("cup")
    torch.testing.assert_close(logits[0, 2, 1, 2], torch.tensor(20.0))


def test_imprint_normalises_and_refuses_bad_input() -> None:
    """Imprinted rows are unit vectors; duplicate names and ids and bad proxies are refused."""
    base = _base()
    cup = base.imprint("cup", [torch.tensor([0.0, 3.0, 0.0, 4.0]), torch.ones(6)], 2)
    assert torch.equal(cup.weights[0][2], torch.tensor([0.0, 0.6, 0.0, 0.8]))
    assert base.names == ("background", "object")  # the original set is unchanged
    with pytest.raises(InputError, match="exists already"):
        cup.imprint("cup", [torch.ones(4), torch.ones(6)], 3)
    with pytest.raises(InputError, match="must be unique"):
        cup.imprint("box", [torch.ones(4), torch.ones(6)], 1)
    with pytest.raises(InputError, match=r"expected one proxy per level \(2\), got 1"):
        cup.imprint("box", [torch.ones(4)], 3)
    with pytest.raises(InputError, match=r"level 1 proxy has shape \(5,\), expected \(6,\)"):
        cup.imprint("box", [torch.ones(4), torch.ones(5)], 3)
    with pytest.raises(InputError, match="level 0 proxy is not finite"):
        cup.imprint("box", [torch.full((4,), float("nan")), torch.ones(6)], 3)


def test_adapt_is_equation_2() -> None:
    """W ← αP̂ + (1−α)W, re-normalised: e0 and e1 at α = ½ give (½, ½)/‖·‖ = (√½, √½)."""
    proxies = _set([[1.0, 0.0], [0.6, 0.8]])
    adapted = proxies.adapt("background", [torch.tensor([0.0, 1.0])], 0.5)
    torch.testing.assert_close(adapted.weights[0][0], torch.full((2,), 0.5**0.5))
    assert torch.equal(adapted.weights[0][1], torch.tensor([0.6, 0.8]))  # other rows untouched
    assert torch.equal(proxies.weights[0][0], torch.tensor([1.0, 0.0]))  # the original is unchanged
    unchanged = proxies.adapt("object", [torch.tensor([1.0, 0.0])], 0.0)
    assert torch.equal(unchanged.weights[0], proxies.weights[0])
    replaced = proxies.adapt("object", [torch.tensor([3.0, 4.0])], 1.0)
    torch.testing.assert_close(replaced.weights[0][1], torch.tensor([0.6, 0.8]))


def test_remove_subset_merge_keep_ids_and_rows() -> None:
    """Removing a class keeps the others' ids and rows; merge appends; collisions are refused."""
    proxies = _base().imprint("cup", [torch.ones(4), torch.ones(6)], 2)
    proxies = proxies.imprint("box", [torch.arange(4.0), torch.arange(6.0)], 3)
    box_rows = [w[3].clone() for w in proxies.weights]
    without = proxies.remove("cup")
    assert without.names == ("background", "object", "box") and without.ids == (0, 1, 3)
    assert all(torch.equal(w[2], row) for w, row in zip(without.weights, box_rows))
    taught = proxies.subset(["box", "cup"])
    assert taught.names == ("box", "cup") and taught.ids == (3, 2)
    merged = _base().merge(taught)
    assert merged.names == ("background", "object", "box", "cup")
    assert all(torch.equal(m, p[[0, 1, 3, 2]]) for m, p in zip(merged.weights, proxies.weights))
    with pytest.raises(InputError, match="must be unique"):
        proxies.merge(taught)
    with pytest.raises(UnknownClassError, match="unknown class 'lid'"):
        proxies.remove("lid")


def test_set_validation() -> None:
    """Names and ids must match in number and be unique; weights need one row per class."""
    with pytest.raises(InputError, match="2 class names but 1 ids"):
        ProxySet(("a", "b"), (0,), (torch.ones(2, 3),))
    with pytest.raises(InputError, match=r"level 0 weights have shape \(3, 3\), expected \(2, C\)"):
        ProxySet(("a", "b"), (0, 1), (torch.ones(3, 3),))
    with pytest.raises(InputError, match="at least one head level"):
        ProxySet(("a",), (0,), ())


def test_proxies_are_unit_copies() -> None:
    """proxies(name) returns unit vectors that do not alias the weights."""
    proxies = _set([[3.0, 4.0], [0.0, 2.0]])
    vectors = proxies.proxies("background")
    torch.testing.assert_close(vectors[0], torch.tensor([0.6, 0.8]))
    vectors[0].zero_()
    assert torch.equal(proxies.weights[0][0], torch.tensor([3.0, 4.0]))


def test_heads_export_their_rows_and_train() -> None:
    """ProxyHeads: the exported set equals the parameters; logits carry gradients to them."""
    heads = ProxyHeads([4, 6], ["background", "object"], scale=10.0)
    exported = heads.proxy_set()
    assert exported.names == ("background", "object") and exported.ids == (0, 1)
    assert all(torch.equal(e, w.detach()) for e, w in zip(exported.weights, heads.weights))
    torch.testing.assert_close(heads.scale, torch.tensor(10.0))
    logits = heads(_features(), (3, 3))
    torch.testing.assert_close(logits, cosine_logits(_features(), exported, 10.0, (3, 3)))
    logits[0, 1].sum().backward()
    assert heads.weights[0].grad is not None and heads.log_scale.grad is not None
    exported.weights[0].zero_()  # a copy: the parameters stay
    assert heads.weights[0].abs().sum() > 0


def test_heads_constructor_errors() -> None:
    """No levels, duplicate or missing class names are refused."""
    with pytest.raises(InputError, match="at least one feature level"):
        ProxyHeads([], ["a"])
    with pytest.raises(InputError, match=r"unique and non-empty, got \['a', 'a'\]"):
        ProxyHeads([4], ["a", "a"])


def test_background_cells_split_the_frame_into_a_grid() -> None:
    """An 8×8 background minus a 4×4 object in the top-left corner, 2×2 grid: cells 1, 2, 3
    hold background; cell 0 is all object. A cell under 1 % of the background is left out."""
    background = torch.ones(8, 8, dtype=torch.bool)
    background[:4, :4] = False
    cells = background_cells(background, grid=2)
    assert list(cells) == ["2x2:1", "2x2:2", "2x2:3"]
    assert all(int(c.sum()) == 16 for c in cells.values())
    assert bool(cells["2x2:3"][4:, 4:].all()) and not bool(cells["2x2:3"][:4].any())
    sliver = torch.zeros(20, 20, dtype=torch.bool)
    sliver[:, 10:] = True  # the right half, cells 1 and 3 of a 2×2 grid …
    sliver[0, 0] = True  # … and one pixel of cell 0: 1/201 of the background
    assert list(background_cells(sliver, grid=2)) == ["2x2:1", "2x2:3"]
    # k shots: a cell needs background in every shot; flipped, the object is in cell 2
    shots = torch.stack([background, background.flip(0)])
    assert list(background_cells(shots, grid=2)) == ["2x2:1", "2x2:3"]


def test_taught_classes_pair_objects_with_backgrounds() -> None:
    """imprint/adapt/remove keep a class's object row and its background set together."""
    taught = TaughtClasses.empty((2,))
    assert len(taught) == 0 and taught.channels == (2,)
    background = {"4x4:0": [torch.tensor([1.0, 0.0])], "4x4:5": [torch.tensor([0.0, 1.0])]}
    taught = taught.imprint("cup", 7, [torch.tensor([3.0, 4.0])], background)
    assert taught.names == ("cup",) and taught.ids == (7,)
    torch.testing.assert_close(taught.objects.weights[0][0], torch.tensor([0.6, 0.8]))
    adapted = taught.adapt("cup", [torch.tensor([0.6, 0.8])],
                           {"4x4:0": [torch.tensor([0.0, 1.0])], "4x4:9": [torch.tensor([1.0, 0.0])]}, 0.5)
    torch.testing.assert_close(adapted.objects.weights[0][0], torch.tensor([0.6, 0.8]))
    cells = adapted.background("cup")
    assert cells.names == ("4x4:0", "4x4:5", "4x4:9") and cells.ids == (0, 5, 9)  # 9 is new
    assert adapted.grid("cup") == 4
    with pytest.raises(InputError, match="mix grids"):
        adapted.adapt("cup", None, {"2x2:1": [torch.tensor([1.0, 0.0])]}, 0.5)
    with pytest.raises(InputError, match=r"named <grid>x<grid>:<index>, got 'cell0'"):
        taught.imprint("box", 8, [torch.tensor([1.0, 0.0])], {"cell0": [torch.tensor([1.0, 0.0])]})
    torch.testing.assert_close(cells.weights[0][0], torch.full((2,), 0.5**0.5))
    assert torch.equal(cells.weights[0][1], torch.tensor([0.0, 1.0]))
    assert len(adapted.remove("cup")) == 0
    with pytest.raises(InputError, match="1 taught classes but 0 backgrounds"):
        TaughtClasses(taught.objects, ())
    with pytest.raises(InputError, match="needs at least one background proxy"):
        taught.imprint("box", 8, [torch.tensor([1.0, 0.0])], {})
