"""ImprintableClassifier: cosine heads that are imprinted, adapted, removed and restored exactly."""

from __future__ import annotations

import math

import pytest
import torch

from amp_ros.classifier import ImprintableClassifier
from amp_ros.errors import InputError, UnknownClassError
from amp_ros.proxies import nmap


def _classifier() -> ImprintableClassifier:
    """Two levels with 4 and 6 channels, classes background/object."""
    return ImprintableClassifier([4, 6], ["background", "object"])


def _features(seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(1, 4, 3, 3, generator=generator), torch.randn(1, 6, 3, 3, generator=generator)]


def _set_weights(classifier: ImprintableClassifier, *weights: list[list[float]]) -> None:
    with torch.no_grad():
        for level, rows in enumerate(weights):
            classifier.weights[level] = torch.nn.Parameter(torch.tensor(rows))


def test_initial_classes_ids_and_unit_weights() -> None:
    """Classes get ids 0..K-1 in order; every weight row is a unit vector."""
    classifier = _classifier()
    assert classifier.class_names == ["background", "object"]
    assert classifier.class_ids == [0, 1]
    assert classifier.num_classes == 2
    assert classifier.class_id("object") == 1
    for weight, channels in zip(classifier.weights, (4, 6)):
        assert weight.shape == (2, channels)
        torch.testing.assert_close(weight.norm(dim=1), torch.ones(2))


def test_logits_summed_over_levels_with_1x1_features() -> None:
    """1×1 features: cosines per level, summed, times the scale, constant over the output.

    Level 0: feature (3, 4) → (0.6, 0.8); weights e0, e1 → cosines (0.6, 0.8).
    Level 1: feature (0, 0, 2) → e2; weights e0, e2 → cosines (0, 1). Sum (0.6, 1.8).
    """
    classifier = ImprintableClassifier([2, 3], ["a", "b"], scale=10.0)
    _set_weights(classifier, [[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    features = [torch.tensor([3.0, 4.0]).view(1, 2, 1, 1), torch.tensor([0.0, 0.0, 2.0]).view(1, 3, 1, 1)]
    logits = classifier(features, size=(3, 5))
    assert logits.shape == (1, 2, 3, 5)
    expected = torch.tensor([0.6, 1.8]).view(1, 2, 1, 1).expand(1, 2, 3, 5) * 10.0
    torch.testing.assert_close(logits, expected, rtol=1e-6, atol=1e-6)


def test_logits_upsampled_bilinearly() -> None:
    """1×2 cosines upsampled to 1×4 (align_corners=False): [1, ¾, ¼, 0] and its mirror.

    Level 1 sees e1 against weights e0, e2, contributing 0 everywhere.
    """
    classifier = ImprintableClassifier([2, 3], ["a", "b"], scale=math.e)
    _set_weights(classifier, [[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    level0 = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).view(1, 2, 1, 2)  # left e0, right e1
    level1 = torch.tensor([0.0, 1.0, 0.0]).view(1, 3, 1, 1)
    logits = classifier([level0, level1], size=(1, 4)) / classifier.log_scale.exp()
    expected = torch.tensor([[1.0, 0.75, 0.25, 0.0], [0.0, 0.25, 0.75, 1.0]]).view(1, 2, 1, 4)
    torch.testing.assert_close(logits, expected, rtol=0, atol=1e-6)


def test_imprinted_class_wins_on_its_own_features() -> None:
    """A proxy made from one pixel's features has cosine 1 there at every level: it wins."""
    classifier = _classifier()
    features = _features()
    mask = torch.zeros(3, 3)
    mask[1, 2] = 1
    proxies = [nmap(f[0], mask) for f in features]
    class_id = classifier.imprint("cup", proxies)
    assert class_id == 2
    logits = classifier(features, size=(3, 3))
    assert logits[0, :, 1, 2].argmax() == classifier.index("cup")
    torch.testing.assert_close(logits[0, 2, 1, 2], 2 * classifier.log_scale.exp())


def test_imprinted_region_wins_where_features_match() -> None:
    """A region of identical features imprints a class that wins on the whole region."""
    classifier = _classifier()
    features = _features(1)
    region = torch.zeros(3, 3, dtype=torch.bool)
    region[:2, :2] = True
    for level in features:
        level[0][:, region] = level[0][:, 0, 0][:, None]
    classifier.imprint("box", [nmap(f[0], region) for f in features])
    winners = classifier(features, size=(3, 3))[0].argmax(0)
    assert bool((winners[region] == classifier.index("box")).all())


def test_imprint_normalises_and_errors() -> None:
    """Imprinted rows are unit vectors; bad names, ids and proxies are refused with messages."""
    classifier = _classifier()
    classifier.imprint("cup", [torch.tensor([0.0, 3.0, 0.0, 4.0]), torch.ones(6)])
    assert torch.equal(classifier.weights[0][2], torch.tensor([0.0, 0.6, 0.0, 0.8]))
    with pytest.raises(InputError, match="class 'cup' exists already; adapt it instead"):
        classifier.imprint("cup", [torch.ones(4), torch.ones(6)])
    with pytest.raises(InputError, match="class id 1 is taken"):
        classifier.imprint("box", [torch.ones(4), torch.ones(6)], class_id=1)
    with pytest.raises(InputError, match=r"expected one proxy per level \(2\), got 1"):
        classifier.imprint("box", [torch.ones(4)])
    with pytest.raises(InputError, match=r"level 1 proxy has shape \(5,\), expected \(6,\)"):
        classifier.imprint("box", [torch.ones(4), torch.ones(5)])
    with pytest.raises(InputError, match="level 0 proxy is not finite"):
        classifier.imprint("box", [torch.full((4,), float("nan")), torch.ones(6)])
    assert classifier.class_names == ["background", "object", "cup"]


def test_adapt_alpha_zero_leaves_weights_untouched() -> None:
    """α=0: every weight tensor is bit-for-bit what it was."""
    classifier = _classifier()
    before = [w.detach().clone() for w in classifier.weights]
    classifier.adapt("object", [torch.ones(4), torch.ones(6)], 0.0)
    assert all(torch.equal(a, b) for a, b in zip(before, classifier.weights))


def test_adapt_alpha_one_replaces_with_the_proxy() -> None:
    """α=1: the class's rows become the (normalised) proxies."""
    classifier = _classifier()
    proxies = [torch.tensor([0.0, 0.0, 1.0, 0.0]), torch.tensor([0.0, 3.0, 0.0, 0.0, 4.0, 0.0])]
    classifier.adapt("object", proxies, 1.0)
    assert torch.equal(classifier.weights[0][1], proxies[0])
    assert torch.equal(classifier.weights[1][1], proxies[1] / proxies[1].norm())


def test_adapt_hand_computed_and_other_classes_untouched() -> None:
    """W=(1,0), P̂=(0,1), α=0.5 → (1/√2, 1/√2); the other class stays bit-identical."""
    classifier = ImprintableClassifier([2], ["background", "object"])
    _set_weights(classifier, [[1.0, 0.0], [0.6, 0.8]])
    classifier.adapt("background", [torch.tensor([0.0, 1.0])], 0.5)
    torch.testing.assert_close(classifier.weights[0][0], torch.full((2,), 0.5**0.5))
    assert torch.equal(classifier.weights[0][1], torch.tensor([0.6, 0.8]))


def test_adapt_never_changes_other_classes() -> None:
    """Adapting one class leaves every other row at every level bit-identical."""
    classifier = _classifier()
    classifier.imprint("cup", [torch.ones(4), torch.ones(6)])
    before = [w.detach().clone() for w in classifier.weights]
    generator = torch.Generator().manual_seed(3)
    classifier.adapt(
        "object", [torch.randn(4, generator=generator), torch.randn(6, generator=generator)], 0.3
    )
    for old, new in zip(before, classifier.weights):
        assert torch.equal(old[[0, 2]], new[[0, 2]])
        assert not torch.equal(old[1], new[1])
        torch.testing.assert_close(new[1].norm(), torch.tensor(1.0))


def test_remove_keeps_ids_of_the_others() -> None:
    """Removing a class deletes its rows; the other classes keep their ids and weights."""
    classifier = _classifier()
    classifier.imprint("cup", [torch.ones(4), torch.ones(6)])
    classifier.imprint("box", [torch.arange(4.0), torch.arange(6.0)])
    box_rows = [w[3].detach().clone() for w in classifier.weights]
    classifier.remove("cup")
    assert classifier.class_names == ["background", "object", "box"]
    assert classifier.class_ids == [0, 1, 3]
    assert classifier.class_id("box") == 3
    assert all(torch.equal(w[2], row) for w, row in zip(classifier.weights, box_rows))
    assert classifier.imprint("lid", [torch.ones(4), torch.ones(6)]) == 4
    with pytest.raises(UnknownClassError, match="unknown class 'cup'; known classes:"):
        classifier.remove("cup")


def test_unknown_class_message() -> None:
    """UnknownClassError is a KeyError whose message is not quoted."""
    with pytest.raises(KeyError) as info:
        _classifier().index("cup")
    assert str(info.value) == "unknown class 'cup'; known classes: ['background', 'object']"


def test_export_restore_exact_round_trip() -> None:
    """restore_state(export_state()) brings back ids, names, weights and scale bit-exactly."""
    classifier = _classifier()
    classifier.imprint("cup", [torch.arange(4.0), torch.arange(6.0)])
    state = classifier.export_state()
    classifier.adapt("background", [torch.ones(4), torch.ones(6)], 0.5)
    classifier.remove("cup")
    classifier.imprint("box", [torch.ones(4), torch.ones(6)], class_id=7)
    with torch.no_grad():
        classifier.log_scale.fill_(0.0)
    classifier.restore_state(state)
    again = classifier.export_state()
    assert again.ids == (0, 1, 2) and again.names == ("background", "object", "cup")
    assert again.log_scale == state.log_scale
    assert all(torch.equal(a, b) for a, b in zip(again.weights, state.weights))
    # The snapshot is a copy: changing the classifier later does not change it.
    classifier.adapt("cup", [torch.ones(4), torch.ones(6)], 1.0)
    assert torch.equal(state.weights[0][2], again.weights[0][2])


def test_restore_state_shape_errors() -> None:
    """A state for a different head layout is refused with the expected shape."""
    classifier = _classifier()
    state = classifier.export_state()
    other = ImprintableClassifier([4], ["background", "object"]).export_state()
    with pytest.raises(InputError, match="state has 1 levels, classifier 2"):
        classifier.restore_state(other)
    bad = type(state)(state.ids, state.names, (state.weights[0], torch.ones(2, 5)), state.log_scale)
    with pytest.raises(InputError, match=r"state level 1 has shape \(2, 5\), expected \(2, 6\)"):
        classifier.restore_state(bad)


def test_forward_shape_and_channel_errors() -> None:
    """Wrong level count or channel count is an InputError saying what was expected."""
    classifier = _classifier()
    features = _features()
    with pytest.raises(InputError, match="expected 2 feature levels, got 1"):
        classifier(features[:1], size=(3, 3))
    with pytest.raises(InputError, match="level 1 features have 5 channels, the head expects 6"):
        classifier([features[0], torch.ones(1, 5, 3, 3)], size=(3, 3))


def test_constructor_errors() -> None:
    """No levels, duplicate or missing class names are refused."""
    with pytest.raises(InputError, match="at least one feature level"):
        ImprintableClassifier([], ["a"])
    with pytest.raises(InputError, match=r"unique and non-empty, got \['a', 'a'\]"):
        ImprintableClassifier([4], ["a", "a"])
    with pytest.raises(InputError, match=r"unique and non-empty, got \[\]"):
        ImprintableClassifier([4], [])


def test_proxies_are_unit_copies() -> None:
    """proxies(name) returns unit vectors that do not alias the weights."""
    classifier = _classifier()
    proxies = classifier.proxies("object")
    proxies[0].zero_()
    assert classifier.weights[0][1].norm() > 0.99


def test_a_subset_of_levels_is_summed_and_rescaled() -> None:
    # Two levels of 1×1 features; class 0 has cosine 1 at level 0 and 0 at level 1.
    classifier = ImprintableClassifier([2, 2], ["background", "object"], scale=1.0)
    with torch.no_grad():
        classifier.weights[0].copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        classifier.weights[1].copy_(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    features = [torch.tensor([1.0, 0.0]).view(1, 2, 1, 1), torch.tensor([1.0, 0.0]).view(1, 2, 1, 1)]
    both = classifier(features, size=(1, 1))
    assert both.flatten().tolist() == [1.0, 1.0]  # (1 + 0), (0 + 1)
    first = classifier(features, size=(1, 1), levels=[0])
    assert first.flatten().tolist() == [2.0, 0.0]  # level 0 only, ×2 (2 levels / 1 used)
    with pytest.raises(InputError, match="non-empty subset"):
        classifier(features, size=(1, 1), levels=[2])
