"""One registry: (scenario, model name) -> how to build the model, with its catalogue entry.

What each model is (scenario, metric, input size, training defaults, the scenario's default
model) is torch-free data in `training_runtime.catalogue`, which the web process reads; this
module adds what only the worker needs: the builder and the class-dependent head keys.

``num_classes`` in ``build`` is always the number of dataset labels; detection and segmentation
builders add torchvision's background class themselves (see detection.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from training_runtime import catalogue
from training_runtime.catalogue import (
    DEFAULT_MODELS,
    METRICS,
    SCENARIOS,
    Metric,
    Scenario,
    TrainDefaults,
    UnknownModelError,
)
from training_runtime.models import classification as cls
from training_runtime.models import detection as det
from training_runtime.models.weights import Opener, load_pretrained

Builder = Callable[..., nn.Module]

__all__ = ["DEFAULT_MODELS", "METRICS", "SCENARIOS", "Builder", "Metric", "ModelSpec", "Scenario",
           "TrainDefaults", "UnknownModelError", "build", "get", "get_by_name", "names", "specs"]


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
    backbone_prefixes: tuple[str, ...] = ()  # the parameters freeze_backbone_epochs freezes


_RESNET_BODY = ("conv1.", "bn1.", "layer1.", "layer2.", "layer3.", "layer4.")
# name -> the parameter-name prefixes of its pretrained feature extractor.
_BACKBONES: dict[str, tuple[str, ...]] = {
    "small_cnn": ("features.",), "resnet18": _RESNET_BODY,
    "mobilenet_v3_small": ("features.",), "mobilenet_v3_large": ("features.",),
    "efficientnet_b0": ("features.",),
}


# name -> (builder, head prefixes): one per catalogue entry, no more, no less.
_BUILDERS: dict[str, tuple[Builder, tuple[str, ...]]] = {
    "small_cnn": (cls.build_small_cnn, cls.SMALL_CNN_HEAD),
    "resnet18": (cls.build_resnet18, cls.RESNET_HEAD),
    "mobilenet_v3_small": (cls.build_mobilenet_v3_small, cls.MOBILENET_V3_HEAD),
    "mobilenet_v3_large": (cls.build_mobilenet_v3_large, cls.MOBILENET_V3_HEAD),
    "efficientnet_b0": (cls.build_efficientnet_b0, cls.EFFICIENTNET_HEAD),
    "fasterrcnn_mobilenet_v3_large_320_fpn": (det.build_fasterrcnn_mobilenet_v3_large_320_fpn,
                                              det.FASTER_RCNN_HEAD),
    "fasterrcnn_mobilenet_v3_large_fpn": (det.build_fasterrcnn_mobilenet_v3_large_fpn,
                                          det.FASTER_RCNN_HEAD),
    "retinanet_resnet50_fpn": (det.build_retinanet_resnet50_fpn, det.RETINANET_HEAD),
    "ssdlite320_mobilenet_v3_large": (det.build_ssdlite320_mobilenet_v3_large,
                                      det.SSDLITE_HEAD),
    "maskrcnn_resnet50_fpn": (det.build_maskrcnn_resnet50_fpn, det.MASK_RCNN_HEAD),
}


def _spec(entry: catalogue.Algorithm) -> ModelSpec:
    """The catalogue entry with its builder and head keys."""
    builder, heads = _BUILDERS[entry.name]
    return ModelSpec(entry.scenario, entry.name, builder, entry.input_size, entry.defaults,
                     entry.metric, entry.description, heads, entry.resize,
                     _BACKBONES.get(entry.name, ("backbone.",)))  # detectors: backbone.*


if set(_BUILDERS) != {entry.name for entry in catalogue.algorithms()}:
    # A model catalogued without a builder (or the reverse) would pass the web process's
    # validation and fail on the worker: refuse to start instead.
    raise ImportError("training_runtime.models.registry: builders and catalogue disagree: "
                      f"{sorted(set(_BUILDERS) ^ {e.name for e in catalogue.algorithms()})}")
_SPECS: tuple[ModelSpec, ...] = tuple(_spec(entry) for entry in catalogue.algorithms())
_REGISTRY: dict[tuple[str, str], ModelSpec] = {(s.scenario, s.name): s for s in _SPECS}


def names(scenario: str) -> tuple[str, ...]:
    """The model names registered for `scenario`, in registration order."""
    return catalogue.names(scenario)


def specs() -> tuple[ModelSpec, ...]:
    """Every registered model."""
    return _SPECS


def get(scenario: str, name: str | None = None) -> ModelSpec:
    """The spec of model `name` in `scenario`; None means the scenario's default model."""
    entry = catalogue.get(scenario, name)
    return _REGISTRY[(entry.scenario, entry.name)]


def get_by_name(name: str) -> ModelSpec:
    """The spec of model `name`, whatever its scenario (names are unique across scenarios)."""
    for spec in _SPECS:
        if spec.name == name:
            return spec
    raise UnknownModelError(f"Unknown model {name!r}; known models: "
                            f"{', '.join(s.name for s in _SPECS)}.")


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
