"""The algorithm catalogue as plain data: which models each scenario offers, their metric,
input size and training defaults. No torch: the web process validates a task's model here,
and only the worker imports the builders (`training_runtime.models.registry`).

Scenarios are the platform's: "classification", "detection", "segmentation" (instance
segmentation). The metric is "accuracy" for classification and "map50" for the other two.

Default models (``get(scenario)`` with no name), chosen to train well from scratch or from a
checkpoint on one GPU:

- classification: resnet18 (small_cnn is the choice for tiny images such as 32x32);
- detection: fasterrcnn_mobilenet_v3_large_320_fpn (fast, small memory);
- segmentation: maskrcnn_resnet50_fpn (the only one).

Imports the standard library only (tests/training_runtime/test_purity.py proves it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

Scenario = Literal["classification", "detection", "segmentation"]
Metric = Literal["accuracy", "map50"]

SCENARIOS: tuple[str, ...] = ("classification", "detection", "segmentation")
METRICS: dict[str, str] = {"classification": "accuracy", "detection": "map50",
                           "segmentation": "map50"}
DEFAULT_MODELS: dict[str, str] = {
    "classification": "resnet18",
    "detection": "fasterrcnn_mobilenet_v3_large_320_fpn",
    "segmentation": "maskrcnn_resnet50_fpn",
}
# (min_size, max_size) of each detector's internal resize, torchvision's defaults. SSDlite
# always resizes to 320x320.
RESIZE: dict[str, tuple[int, int]] = {
    "fasterrcnn_mobilenet_v3_large_320_fpn": (320, 640),
    "fasterrcnn_mobilenet_v3_large_fpn": (800, 1333),
    "retinanet_resnet50_fpn": (800, 1333),
    "ssdlite320_mobilenet_v3_large": (320, 320),
    "maskrcnn_resnet50_fpn": (800, 1333),
}


class UnknownModelError(KeyError):
    """A scenario or model name the catalogue does not know; the message lists the known ones."""

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
class OfficialWeights:
    """torchvision's published weights of a model: the enum member, the file and its checksum.

    torchvision names every file ``<stem>-<first hex digits of its sha256>.pth``; `sha256_prefix`
    is that prefix (8 or 10 hex digits), which ``training_runtime.weights`` checks a file against.
    """

    enum: str  # e.g. "ResNet18_Weights.IMAGENET1K_V1"
    file_name: str
    sha256_prefix: str
    source: str  # what they were trained on: "imagenet1k" or "coco"

    @property
    def url(self) -> str:
        """Where torchvision downloads the file from."""
        return WEIGHTS_BASE_URL + self.file_name


WEIGHTS_BASE_URL = "https://download.pytorch.org/models/"


@dataclass(frozen=True)
class Algorithm:
    """A catalogued model: scenario, name, input size (h, w), training defaults and metric.

    `resize` (detection and segmentation only) is the (min_size, max_size) of the model's own
    resize, and the input size is its shorter side. `weights` are torchvision's published
    pretrained weights (None for small_cnn, which has none).
    """

    scenario: Scenario
    name: str
    input_size: tuple[int, int]
    defaults: TrainDefaults
    metric: Metric
    description: str
    resize: tuple[int, int] | None = None
    weights: OfficialWeights | None = None


def _adamw(lr: float, batch_size: int, epochs: int, weight_decay: float = 0.05) -> TrainDefaults:
    """AdamW with cosine decay after one warm-up epoch."""
    return TrainDefaults(lr=lr, batch_size=batch_size, epochs=epochs, warmup_epochs=1,
                         weight_decay=weight_decay, optimizer="adamw", schedule="cosine")


def _sgd(lr: float, batch_size: int, epochs: int, schedule: Literal["cosine", "step"],
         weight_decay: float = 1e-4) -> TrainDefaults:
    """SGD (momentum 0.9 in the trainer) after one warm-up epoch."""
    return TrainDefaults(lr=lr, batch_size=batch_size, epochs=epochs, warmup_epochs=1,
                         weight_decay=weight_decay, optimizer="sgd", schedule=schedule)


def _classifier(name: str, size: int, defaults: TrainDefaults, description: str) -> Algorithm:
    """A classification entry with a square input."""
    return Algorithm("classification", name, (size, size), defaults, "accuracy", description)


def _detector(scenario: Scenario, name: str, defaults: TrainDefaults,
              description: str) -> Algorithm:
    """A detection or segmentation entry; input size is the model's shorter-side resize."""
    low, high = RESIZE[name]
    return Algorithm(scenario, name, (low, low), defaults, "map50", description, (low, high))


def _official(enum: str, file_name: str, source: str) -> OfficialWeights:
    """torchvision's weights whose file is `file_name` (its checksum prefix read from it)."""
    return OfficialWeights(enum, file_name, file_name.rsplit("-", 1)[1].removesuffix(".pth"),
                           source)


# The weights each catalogued torchvision model starts from (its weights enum's DEFAULT);
# tests/training_runtime/test_weights_catalogue.py reads them back from torchvision's enums.
OFFICIAL_WEIGHTS: dict[str, OfficialWeights] = {
    "resnet18": _official("ResNet18_Weights.IMAGENET1K_V1", "resnet18-f37072fd.pth",
                          "imagenet1k"),
    "mobilenet_v3_small": _official("MobileNet_V3_Small_Weights.IMAGENET1K_V1",
                                    "mobilenet_v3_small-047dcff4.pth", "imagenet1k"),
    "mobilenet_v3_large": _official("MobileNet_V3_Large_Weights.IMAGENET1K_V2",
                                    "mobilenet_v3_large-5c1a4163.pth", "imagenet1k"),
    "efficientnet_b0": _official("EfficientNet_B0_Weights.IMAGENET1K_V1",
                                 "efficientnet_b0_rwightman-7f5810bc.pth", "imagenet1k"),
    "fasterrcnn_mobilenet_v3_large_320_fpn": _official(
        "FasterRCNN_MobileNet_V3_Large_320_FPN_Weights.COCO_V1",
        "fasterrcnn_mobilenet_v3_large_320_fpn-907ea3f9.pth", "coco"),
    "fasterrcnn_mobilenet_v3_large_fpn": _official(
        "FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1",
        "fasterrcnn_mobilenet_v3_large_fpn-fb6a3cc7.pth", "coco"),
    "retinanet_resnet50_fpn": _official("RetinaNet_ResNet50_FPN_Weights.COCO_V1",
                                        "retinanet_resnet50_fpn_coco-eeacb38b.pth", "coco"),
    "ssdlite320_mobilenet_v3_large": _official(
        "SSDLite320_MobileNet_V3_Large_Weights.COCO_V1",
        "ssdlite320_mobilenet_v3_large_coco-a79551df.pth", "coco"),
    "maskrcnn_resnet50_fpn": _official("MaskRCNN_ResNet50_FPN_Weights.COCO_V1",
                                       "maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth", "coco"),
}


# Detection learning rates follow torchvision's references (0.02 for 16 images, 0.01 for
# RetinaNet) scaled linearly to the batch size; classification SGD uses 0.1 per 256 images.
_ALGORITHMS: tuple[Algorithm, ...] = (
    _classifier("small_cnn", 32, _adamw(lr=1e-3, batch_size=128, epochs=30),
                "Four conv-bn-relu stages for tiny images (32x32 to 64x64), about 0.4M "
                "parameters."),
    _classifier("resnet18", 224, _sgd(lr=0.025, batch_size=64, epochs=30, schedule="cosine"),
                "ResNet-18, 11.7M parameters: a solid default for photos."),
    _classifier("mobilenet_v3_small", 224,
                _adamw(lr=1e-3, batch_size=64, epochs=30, weight_decay=0.01),
                "MobileNetV3-Small, 2.5M parameters: fastest inference, edge devices."),
    _classifier("mobilenet_v3_large", 224,
                _adamw(lr=1e-3, batch_size=64, epochs=30, weight_decay=0.01),
                "MobileNetV3-Large, 5.5M parameters: fast with better accuracy than Small."),
    _classifier("efficientnet_b0", 224,
                _adamw(lr=1e-3, batch_size=32, epochs=30, weight_decay=0.01),
                "EfficientNet-B0, 5.3M parameters: best accuracy per FLOP of the set."),
    _detector("detection", "fasterrcnn_mobilenet_v3_large_320_fpn",
              _sgd(lr=0.01, batch_size=8, epochs=26, schedule="step"),
              "Faster R-CNN, MobileNetV3-Large FPN at 320px: fast, low memory, coarse objects."),
    _detector("detection", "fasterrcnn_mobilenet_v3_large_fpn",
              _sgd(lr=0.005, batch_size=4, epochs=26, schedule="step"),
              "Faster R-CNN, MobileNetV3-Large FPN at 800px: better on small objects."),
    _detector("detection", "retinanet_resnet50_fpn",
              _sgd(lr=0.0025, batch_size=4, epochs=26, schedule="step"),
              "RetinaNet, ResNet-50 FPN at 800px: one-stage, strong on dense scenes."),
    _detector("detection", "ssdlite320_mobilenet_v3_large",
              _sgd(lr=0.1, batch_size=16, epochs=120, schedule="cosine", weight_decay=4e-5),
              "SSDlite, MobileNetV3-Large at 320x320: smallest and fastest, needs long training."),
    _detector("segmentation", "maskrcnn_resnet50_fpn",
              _sgd(lr=0.0025, batch_size=2, epochs=26, schedule="step"),
              "Mask R-CNN, ResNet-50 FPN at 800px: boxes and instance masks."),
)
_ALGORITHMS = tuple(replace(a, weights=OFFICIAL_WEIGHTS.get(a.name)) for a in _ALGORITHMS)
_CATALOGUE: dict[str, dict[str, Algorithm]] = {s: {} for s in SCENARIOS}
for _algorithm in _ALGORITHMS:
    _CATALOGUE[_algorithm.scenario][_algorithm.name] = _algorithm


def _of(scenario: str) -> dict[str, Algorithm]:
    """The algorithms of `scenario`, or UnknownModelError listing the scenarios."""
    try:
        return _CATALOGUE[scenario]
    except (KeyError, TypeError):
        raise UnknownModelError(
            f"Unknown scenario {scenario!r}; known scenarios: {', '.join(SCENARIOS)}.") from None


def names(scenario: str) -> tuple[str, ...]:
    """The model names catalogued for `scenario`, in catalogue order."""
    return tuple(_of(scenario))


def algorithms() -> tuple[Algorithm, ...]:
    """Every catalogued model."""
    return _ALGORITHMS


def get(scenario: str, name: str | None = None) -> Algorithm:
    """The entry of model `name` in `scenario`; None means the scenario's default model."""
    models = _of(scenario)
    key = DEFAULT_MODELS[scenario] if name is None else name
    if not isinstance(key, str) or key not in models:
        raise UnknownModelError(
            f"Unknown {scenario} model {key!r}; known {scenario} models: "
            f"{', '.join(models)}.")
    return models[key]
