"""Deterministic train/validation split (T10): same data, same seed, same split, whatever order
the files were listed in."""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from training_runtime.data.dataset import DatasetIndex, Sample


def _key(seed: int, sample: Sample) -> str:
    return hashlib.sha256(f"{seed}\x00{sample.path}".encode()).hexdigest()


def _validation_count(size: int, fraction: float) -> int:
    """Round to nearest; at least one when the group has 2+ items, never the whole group."""
    if size < 2:
        return 0
    return min(size - 1, max(1, math.floor(size * fraction + 0.5)))


def split_samples(index: DatasetIndex, validation_fraction: float = 0.2,
                  seed: int = 0) -> tuple[list[Sample], list[Sample]]:
    """Split stratified by label; every label with 2+ images gets a validation image if possible.

    Classification stratifies by the image's label. Detection and segmentation stratify by the
    image's rarest label (images without objects form their own group), then move images so that
    each label with 2+ images is seen in validation without leaving a label absent from training.
    Both lists come back sorted by path.
    """
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError("validation_fraction must be between 0 and 1 (exclusive)")
    samples = sorted(index.samples, key=lambda s: s.path)
    image_counts: dict[int, int] = defaultdict(int)
    for sample in samples:
        for label in sample.label_set():
            image_counts[label] += 1

    groups: dict[int, list[Sample]] = defaultdict(list)
    for sample in samples:
        labels = sample.label_set()
        group = min(labels, key=lambda lb: (image_counts[lb], lb)) if labels else -1
        groups[group].append(sample)

    validation: set[str] = set()
    for group in sorted(groups):
        members = sorted(groups[group], key=lambda s: _key(seed, s))
        validation.update(s.path for s in members[:_validation_count(len(members),
                                                                     validation_fraction)])
    if index.scenario != "classification":
        _cover_every_label(samples, validation, image_counts, seed)
    train = [s for s in samples if s.path not in validation]
    val = [s for s in samples if s.path in validation]
    return train, val


def _cover_every_label(samples: list[Sample], validation: set[str],
                       image_counts: dict[int, int], seed: int) -> None:
    def train_counts() -> dict[int, int]:
        counts: dict[int, int] = defaultdict(int)
        for s in samples:
            if s.path not in validation:
                for label in s.label_set():
                    counts[label] += 1
        return counts

    for label in sorted(image_counts):
        if image_counts[label] < 2:
            continue
        if any(label in s.label_set() for s in samples if s.path in validation):
            continue
        counts = train_counts()
        candidates = sorted((s for s in samples
                             if s.path not in validation and label in s.label_set()),
                            key=lambda s: _key(seed, s))
        for s in candidates:
            if all(counts[lb] >= 2 for lb in s.label_set()):
                validation.add(s.path)
                break
