"""The hold-out split when no test set is given (T10): deterministic and stratified."""

import random
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from training_runtime.data import DatasetIndex, Sample


def classification_index(per_label, order_seed=None):
    samples = [Sample(path=f"{label}/{n}.jpg", width=32, height=32, label=i)
               for i, (label, count) in enumerate(per_label.items()) for n in range(count)]
    if order_seed is not None:
        random.Random(order_seed).shuffle(samples)
    return DatasetIndex(Path("/data"), "classification", list(per_label), samples)


def paths(samples):
    return [s.path for s in samples]


def test_the_same_data_gives_the_same_split_whatever_the_listing_order():
    counts = {"cat": 40, "dog": 25, "fish": 7}
    reference = classification_index(counts).split(0.2, seed=3)

    for order_seed in range(5):
        train, val = classification_index(counts, order_seed).split(0.2, seed=3)
        assert (paths(train), paths(val)) == (paths(reference[0]), paths(reference[1]))


def test_another_seed_gives_another_split():
    index = classification_index({"cat": 40, "dog": 40})

    assert paths(index.split(seed=0)[1]) != paths(index.split(seed=1)[1])


def test_classification_is_stratified_by_label_at_the_requested_fraction():
    index = classification_index({"cat": 50, "dog": 20, "fish": 10})

    train, val = index.split(0.2)

    assert Counter(s.label for s in val) == {0: 10, 1: 4, 2: 2}
    assert len(train) + len(val) == 80
    assert not set(paths(train)) & set(paths(val))


def test_every_label_with_two_images_gets_one_for_validation_and_keeps_one_for_training():
    index = classification_index({"cat": 30, "rare": 2, "single": 1})

    train, val = index.split(0.1)

    assert Counter(s.label for s in val)[1] == 1
    assert Counter(s.label for s in train)[1] == 1
    assert [s.path for s in train if s.label == 2] == ["single/0.jpg"]


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_a_fraction_outside_zero_to_one_is_refused(fraction):
    with pytest.raises(ValueError, match="between 0 and 1"):
        classification_index({"a": 3}).split(fraction)


def detection_index(images):
    samples = [Sample(path=f"images/{n}.jpg", width=32, height=32,
                      boxes=[(0.0, 0.0, 4.0, 4.0)] * len(labels), box_labels=list(labels))
               for n, labels in enumerate(images)]
    return DatasetIndex(Path("/data"), "detection", ["common", "rare"], samples)


def test_detection_covers_a_rare_label_in_validation():
    images = [[0]] * 30 + [[0, 1], [0, 1], [0, 1]] + [[]] * 5

    train, val = detection_index(images).split(0.2)

    for side in (train, val):
        assert any(1 in s.box_labels for s in side)
    assert any(not s.box_labels for s in val)  # background images are split too


@settings(max_examples=60, deadline=None)
@given(counts=st.lists(st.integers(1, 30), min_size=1, max_size=6),
       fraction=st.floats(0.05, 0.5), seed=st.integers(0, 10), order=st.integers(0, 10))
def test_split_invariants(counts, fraction, seed, order):
    per_label = {f"l{i}": c for i, c in enumerate(counts)}
    train, val = classification_index(per_label, order).split(fraction, seed)
    again = classification_index(per_label).split(fraction, seed)

    assert (paths(train), paths(val)) == (paths(again[0]), paths(again[1]))
    assert sorted(paths(train) + paths(val)) == sorted(paths(classification_index(per_label)
                                                             .samples))
    for i, count in enumerate(counts):
        in_val = sum(1 for s in val if s.label == i)
        assert in_val <= max(count - 1, 0)
        if count >= 2:
            assert in_val >= 1
