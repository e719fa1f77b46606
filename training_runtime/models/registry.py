"""One registry: (scenario, model name) -> how to build the model, its training defaults, metric.

Scenarios are the platform's: "classification", "detection", "segmentation" (instance
segmentation). The metric is "accuracy" for classification and "map50" for the other two.

Default models (``get(scenario)`` with no name), chosen to train well from scratch or from a
checkpoint on one GPU:

- classification: resnet18 (small_cnn is the choice for tiny images such as 32x32);
- detection: fasterrcnn_mobilenet_v3_large_320_fpn (fast, small memory);
- segmentation: maskrcnn_resnet50_fpn (the only one).

``num_classes`` in ``build`` is always the number of dataset labels; detection and segmentation
builders add torchvision's background class themselves (see detection.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from torch import nn

from training_runtime.models import classification as cls
from training_runtime.models import detection as det
from training_runtime.models.weights import Opener, load_pretrained

Scenario = Literal["classification", "detection", "segmentation"]
Metric = Literal["accuracy", "map50"]
Builder = Callable[..., nn.Module]

SCENARIOS: tuple[str, ...] = ("classification", "detection", "segmentation")
METRICS: dict[str, str] = {"classification": "accuracy", "detection": "map50",
                           "segmentation": "map50"}
DEFAULT_MODELS: dict[str, str] = {
    "classification": "resnet18",
    "detection": "fasterrcnn_mobilenet_v3_large_320_fpn",
    "segmentation": "maskrcnn_resnet50_fpn",
}


class UnknownModelError(KeyError):
    """A scenario or model name the registry does not know; the message lists the known ones."""

    code = "unknown_model"

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class TrainDefaults:
    """Training hyperparameters that suit a model on one GPU; a task's settings override them."""

    lr: float
    batch_size: int
    epochs: int
    warmup_epochs: int
    weight_decay: float
    optimizer: Literal["sgd", "adamw"]
    schedule: Literal["cosine", "step"]

    def __post_init__(self) -> None:
        if not self.lr > 0 or self.batch_size < 1 or self.epochs < 1:
            raise ValueError(f"lr, batch_size and epochs must be positive: {self}")
        if not 0 <= self.warmup_epochs < self.epochs or self.weight_decay < 0:
            raise ValueError(f"need 0 <= warmup_epochs < epochs and weight_decay >= 0: {self}")
        if self.optimizer not in ("sgd", "adamw") or self.schedule not in ("cosine", "step"):
            raise ValueError(f"optimizer is sgd|adamw and schedule cosine|step: {self}")


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its builder, input size (h, w), training defaults and metric.

    `resize` (detection and segmentation only) is the (min_size, max_size) of the model's own
    resize; `head_prefixes` are the state-dict keys whose shape follows the number of classes.
    """

    scenario: Scenario
    name: str
    builder: Builder = field(repr=False)
    input_size: tuple[int, int]
    defaults: TrainDefaults
    metric: Metric
    description: str
    head_prefixes: tuple[str, ...] = ()
    resize: tuple[int, int] | None = None


def _adamw(lr: float, batch_size: int, epochs: int, weight_decay: float = 0.05) -> TrainDefaults:
    """AdamW with cosine decay after one warm-up epoch."""
    return TrainDefaults(lr=lr, batch_size=batch_size, epochs=epochs, warmup_epochs=1,
                         weight_decay=weight_decay, optimizer="adamw", schedule="cosine")


def _sgd(lr: float, batch_size: int, epochs: int, schedule: Literal["cosine", "step"],
         weight_decay: float = 1e-4) -> TrainDefaults:
    """SGD (momentum 0.9 in the trainer) after one warm-up epoch."""
    return TrainDefaults(lr=lr, batch_size=batch_size, epochs=epochs, warmup_epochs=1,
                         weight_decay=weight_decay, optimizer="sgd", schedule=schedule)


def _detector(scenario: Scenario, name: str, builder: Builder, heads: tuple[str, ...],
              defaults: TrainDefaults, description: str) -> ModelSpec:
    """A detection or segmentation spec; input size is the model's shorter-side resize."""
    low, high = det.RESIZE[name]
    return ModelSpec(scenario, name, builder, (low, low), defaults, METRICS[scenario],
                     description, heads, (low, high))


# Detection learning rates follow torchvision's references (0.02 for 16 images, 0.01 for
# RetinaNet) scaled linearly to the batch size; classification SGD uses 0.1 per 256 images.
_SPECS: tuple[ModelSpec, ...] = (
    ModelSpec("classification", "small_cnn", cls.build_small_cnn, (32, 32),
              _adamw(lr=1e-3, batch_size=128, epochs=30), "accuracy",
              "Four conv-bn-relu stages for tiny images (32x32 to 64x64), about 0.4M parameters.",
              cls.SMALL_CNN_HEAD),
    ModelSpec("classification", "resnet18", cls.build_resnet18, (224, 224),
              _sgd(lr=0.025, batch_size=64, epochs=30, schedule="cosine"), "accuracy",
              "ResNet-18, 11.7M parameters: a solid default for photos.",
              cls.RESNET_HEAD),
    ModelSpec("classification", "mobilenet_v3_small", cls.build_mobilenet_v3_small, (224, 224),
              _adamw(lr=1e-3, batch_size=64, epochs=30, weight_decay=0.01), "accuracy",
              "MobileNetV3-Small, 2.5M parameters: fastest inference, edge devices.",
              cls.MOBILENET_V3_HEAD),
    ModelSpec("classification", "mobilenet_v3_large", cls.build_mobilenet_v3_large, (224, 224),
              _adamw(lr=1e-3, batch_size=64, epochs=30, weight_decay=0.01), "accuracy",
              "MobileNetV3-Large, 5.5M parameters: fast with better accuracy than Small.",
              cls.MOBILENET_V3_HEAD),
    ModelSpec("classification", "efficientnet_b0", cls.build_efficientnet_b0, (224, 224),
              _adamw(lr=1e-3, batch_size=32, epochs=30, weight_decay=0.01), "accuracy",
              "EfficientNet-B0, 5.3M parameters: best accuracy per FLOP of the set.",
              cls.EFFICIENTNET_HEAD),
    _detector("detection", "fasterrcnn_mobilenet_v3_large_320_fpn",
              det.build_fasterrcnn_mobilenet_v3_large_320_fpn, det.FASTER_RCNN_HEAD,
              _sgd(lr=0.01, batch_size=8, epochs=26, schedule="step"),
              "Faster R-CNN, MobileNetV3-Large FPN at 320px: fast, low memory, coarse objects."),
    _detector("detection", "fasterrcnn_mobilenet_v3_large_fpn",
              det.build_fasterrcnn_mobilenet_v3_large_fpn, det.FASTER_RCNN_HEAD,
              _sgd(lr=0.005, batch_size=4, epochs=26, schedule="step"),
              "Faster R-CNN, MobileNetV3-Large FPN at 800px: better on small objects."),
    _detector("detection", "retinanet_resnet50_fpn",
              det.build_retinanet_resnet50_fpn, det.RETINANET_HEAD,
              _sgd(lr=0.0025, batch_size=4, epochs=26, schedule="step"),
              "RetinaNet, ResNet-50 FPN at 800px: one-stage, strong on dense scenes."),
    _detector("detection", "ssdlite320_mobilenet_v3_large",
              det.build_ssdlite320_mobilenet_v3_large, det.SSDLITE_HEAD,
              _sgd(lr=0.1, batch_size=16, epochs=120, schedule="cosine", weight_decay=4e-5),
              "SSDlite, MobileNetV3-Large at 320x320: smallest and fastest, needs long training."),
    _detector("segmentation", "maskrcnn_resnet50_fpn",
              det.build_maskrcnn_resnet50_fpn, det.MASK_RCNN_HEAD,
              _sgd(lr=0.0025, batch_size=2, epochs=26, schedule="step"),
              "Mask R-CNN, ResNet-50 FPN at 800px: boxes and instance masks."),
)
_REGISTRY: dict[str, dict[str, ModelSpec]] = {s: {} for s in SCENARIOS}
for _spec in _SPECS:
    _REGISTRY[_spec.scenario][_spec.name] = _spec


def _models_of(scenario: str) -> dict[str, ModelSpec]:
    """The specs of `scenario`, or UnknownModelError listing the scenarios."""
    try:
        return _REGISTRY[scenario]
    except (KeyError, TypeError):
        raise UnknownModelError(
            f"Unknown scenario {scenario!r}; known scenarios: {', '.join(SCENARIOS)}.") from None


def names(scenario: str) -> tuple[str, ...]:
    """The model names registered for `scenario`, in registration order."""
    return tuple(_models_of(scenario))


def specs() -> tuple[ModelSpec, ...]:
    """Every registered model."""
    return _SPECS


def get(scenario: str, name: str | None = None) -> ModelSpec:
    """The spec of model `name` in `scenario`; None means the scenario's default model."""
    models = _models_of(scenario)
    key = DEFAULT_MODELS[scenario] if name is None else name
    if key not in models:
        raise UnknownModelError(
            f"Unknown {scenario} model {key!r}; known {scenario} models: "
            f"{', '.join(models)}.")
    return models[key]


def build(spec: ModelSpec, num_classes: int, *,
          pretrained: str | os.PathLike[str] | None = None, device: str = "cpu",
          opener: Opener | None = None, **options) -> nn.Module:
    """The model of `spec` sized for `num_classes` dataset labels, optionally with weights loaded.

    Detection and segmentation models get num_classes + 1 outputs (background is class 0).
    `options` go to the builder (e.g. min_size/max_size for detectors, in_channels for
    small_cnn). `pretrained` is a local path, a file:// URL or, with `opener`, an object-storage
    location; class-dependent head tensors of another size are dropped (see weights.py).
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be the number of dataset labels (>= 1), "
                         f"got {num_classes!r}")
    model = spec.builder(num_classes, **options)
    if pretrained is not None:
        load_pretrained(model, pretrained, opener=opener, head_prefixes=spec.head_prefixes)
    return model.to(device)
