"""Models of training_runtime: the registry, the builders and pretrained-weight loading.

    spec = models.get("detection")                       # the scenario's default model
    model = models.build(spec, num_classes=len(labels), pretrained="/weights/coco.pth")

Imports torch and torchvision, never Django; nothing is downloaded at run time.
"""

from training_runtime.models.classification import SmallCNN
from training_runtime.models.registry import (
    DEFAULT_MODELS,
    METRICS,
    SCENARIOS,
    ModelSpec,
    TrainDefaults,
    UnknownModelError,
    build,
    get,
    names,
    specs,
)
from training_runtime.models.weights import (
    LoadReport,
    Opener,
    PretrainedWeightsError,
    load_pretrained,
    read_state_dict,
)

__all__ = [
    "DEFAULT_MODELS",
    "METRICS",
    "SCENARIOS",
    "LoadReport",
    "ModelSpec",
    "Opener",
    "PretrainedWeightsError",
    "SmallCNN",
    "TrainDefaults",
    "UnknownModelError",
    "build",
    "get",
    "load_pretrained",
    "names",
    "read_state_dict",
    "specs",
]
