"""The in-memory index every reader produces: scenario, labels, samples and their targets."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Scenario = Literal["classification", "detection", "segmentation"]
SCENARIOS: tuple[str, ...] = ("classification", "detection", "segmentation")

# A segmentation is a COCO polygon list ([[x1, y1, x2, y2, ...], ...]) or an RLE dict
# ({"size": [h, w], "counts": str | list[int]}); masks are decoded only when training needs them.
Segmentation = list[list[float]] | dict[str, Any]


@dataclass
class Sample:
    """One image and its target: a label index (classification) or objects (detection,
    segmentation) with xyxy boxes in pixels, label indices and optional segmentations."""

    path: str  # relative POSIX path inside the dataset root
    width: int
    height: int
    label: int | None = None
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    box_labels: list[int] = field(default_factory=list)
    segmentations: list[Segmentation] = field(default_factory=list)
    iscrowd: list[bool] = field(default_factory=list)
    source_id: Any | None = None  # the image id in the annotation file, when it has one

    def label_set(self) -> set[int]:
        """The label indices present in this image."""
        if self.label is not None:
            return {self.label}
        return set(self.box_labels)


@dataclass
class DatasetIndex:
    """A validated dataset: where it lives, its scenario, its labels in order and its samples."""

    root: Path
    scenario: Scenario
    labels: list[str]
    samples: list[Sample]

    @property
    def image_count(self) -> int:
        """How many images the dataset holds."""
        return len(self.samples)

    def label_distribution(self) -> list[dict[str, Any]]:
        """`[{name, count, share, image_count}]` per label, in label order.

        `count` is objects for detection and segmentation, images for classification; `share`
        is count over the total count (0 when the total is 0).
        """
        counts = [0] * len(self.labels)
        images = [0] * len(self.labels)
        for sample in self.samples:
            if sample.label is not None:
                counts[sample.label] += 1
            for label in sample.box_labels:
                counts[label] += 1
            for label in sample.label_set():
                images[label] += 1
        total = sum(counts)
        return [{"name": name, "count": counts[i], "share": counts[i] / total if total else 0.0,
                 "image_count": images[i]} for i, name in enumerate(self.labels)]

    def split(self, validation_fraction: float = 0.2,
              seed: int = 0) -> tuple[list[Sample], list[Sample]]:
        """Deterministic (train, validation) hold-out split for when no test set is given (T10)."""
        from training_runtime.data.split import split_samples

        return split_samples(self, validation_fraction, seed)

    def summary(self) -> dict[str, Any]:
        """`{"image_count", "labels"}` as the Dataset resource carries them."""
        return {"image_count": self.image_count, "labels": self.label_distribution()}
