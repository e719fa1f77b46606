"""The "auto" model: algorithm, input size, batch size, epochs and learning rate chosen from the
dataset's statistics and the compute spec, with the reasons, for the task's config and events.

    choice = choose(DatasetStats(...), ComputeBudget(device="cpu", cores=4, memory_gb=8,
                                                     max_duration_s=1500))
    choice.algorithm, choice.input_size, choice.batch_size, choice.epochs, choice.lr
    choice.reasons  # ["images are 28x28: small_cnn at 32x32 (no upscaling to 224) ...", ...]

Pure and torch-free (the web process may call it). The schedule is sized to the time budget from
the seconds one optimiser step takes: pass `step_seconds(algorithm, input_size, batch_size)`
measured on the worker, or rely on the rough per-pixel estimate below.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Literal

from training_runtime import catalogue

StepSeconds = Callable[[str, tuple[int, int], int], float]


@dataclass(frozen=True)
class DatasetStats:
    """What auto looks at: sizes in pixels, counts; object sizes relative to the image side."""

    scenario: str
    image_count: int
    label_count: int
    median_width: int
    median_height: int
    min_images_per_label: int  # classification: images; detection: images holding the label
    median_object_size: float | None = None  # sqrt(box area) / sqrt(image area), 0..1
    objects_per_image: float | None = None


@dataclass(frozen=True)
class ComputeBudget:
    """The compute spec: device kind, cores, memory (GiB) and the task's time limit."""

    device: Literal["cpu", "gpu"]
    cores: int
    memory_gb: float
    gpu_memory_gb: float | None = None
    max_duration_s: float | None = None


@dataclass(frozen=True)
class AutoChoice:
    """The chosen training setup and why; `as_config()` is what the task records."""

    algorithm: str
    input_size: tuple[int, int]
    batch_size: int
    epochs: int
    lr: float
    estimated_epoch_s: float
    reasons: list[str] = field(default_factory=list)

    def as_config(self) -> dict[str, object]:
        """Plain values for the task's config (lists, not tuples)."""
        values = asdict(self)
        values["input_size"] = list(self.input_size)
        return values


# Rough seconds per image-megapixel of one training step (forward + backward), per model, on
# one CPU core and on a mid-range GPU; only used when no measured step time is given.
_COST_S_PER_MPIXEL = {
    "small_cnn": (0.02, 0.0004), "mobilenet_v3_small": (0.05, 0.0006),
    "mobilenet_v3_large": (0.12, 0.001), "efficientnet_b0": (0.3, 0.002),
    "resnet18": (0.25, 0.0015), "fasterrcnn_mobilenet_v3_large_320_fpn": (0.4, 0.004),
    "fasterrcnn_mobilenet_v3_large_fpn": (0.5, 0.005), "retinanet_resnet50_fpn": (2.0, 0.015),
    "ssdlite320_mobilenet_v3_large": (0.3, 0.003), "maskrcnn_resnet50_fpn": (2.5, 0.02),
}
_EVAL_SHARE = 0.25  # validation, checkpoints and loading on top of the training steps
_BUDGET_SHARE = 0.85  # the rest of max_duration is left for startup, evaluation and export
_SMALL_SIDE = 64  # images up to this side are "tiny": small_cnn territory


def estimated_step_seconds(budget: ComputeBudget) -> StepSeconds:
    """A per-pixel estimate of one step's seconds on `budget`'s device (no measurement)."""
    def seconds(algorithm: str, size: tuple[int, int], batch: int) -> float:
        cpu, gpu = _COST_S_PER_MPIXEL[algorithm]
        pixels = size[0] * size[1] * batch / 1e6
        if budget.device == "gpu":
            return gpu * pixels + 0.01
        return cpu * pixels / max(1, budget.cores) ** 0.8 + 0.005
    return seconds


def _ceil_to(value: float, step: int) -> int:
    return int(math.ceil(value / step) * step)


def _classifier(stats: DatasetStats, budget: ComputeBudget,
                reasons: list[str]) -> tuple[str, tuple[int, int]]:
    side = max(stats.median_width, stats.median_height)
    if side <= _SMALL_SIDE:
        size = max(16, _ceil_to(side, 16))
        reasons.append(f"images are about {stats.median_width}x{stats.median_height}: small_cnn at "
                       f"{size}x{size}, no upscaling to ImageNet's 224 (it would only cost time)")
        return "small_cnn", (size, size)
    size = min(224, max(64, _ceil_to(side, 32)))
    few = stats.min_images_per_label < 100
    if budget.device == "cpu":
        name = "mobilenet_v3_small" if few or budget.cores < 8 else "mobilenet_v3_large"
        reasons.append(f"CPU with {budget.cores} cores: {name}, the lightest pretrained network "
                       "that suits photos")
    elif few:
        name = "resnet18"
        reasons.append(f"{stats.min_images_per_label} images in the smallest label: resnet18 "
                       "from ImageNet weights, robust to fine-tune on little data")
    else:
        name = "efficientnet_b0"
        reasons.append("GPU and enough images per label: efficientnet_b0, the best accuracy "
                       "per FLOP of the catalogue")
    if size < 224:
        reasons.append(f"images are about {stats.median_width}x{stats.median_height}: input "
                       f"{size}x{size} rather than upscaling to 224")
    return name, (size, size)


def _detector(stats: DatasetStats, budget: ComputeBudget,
              reasons: list[str]) -> tuple[str, tuple[int, int]]:
    short = min(stats.median_width, stats.median_height)
    if stats.scenario == "segmentation":
        name = "maskrcnn_resnet50_fpn"
        cap = 800 if budget.device == "gpu" else 512
        reasons.append("instance segmentation: maskrcnn_resnet50_fpn (the only one)")
    else:
        small = stats.median_object_size is not None and stats.median_object_size < 0.05
        dense = stats.objects_per_image is not None and stats.objects_per_image > 15
        if budget.device == "gpu" and dense:
            name, cap = "retinanet_resnet50_fpn", 800
            reasons.append(f"about {stats.objects_per_image:.0f} objects per image on a GPU: "
                           "retinanet_resnet50_fpn, strong on dense scenes")
        elif budget.device == "gpu" and small:
            name, cap = "fasterrcnn_mobilenet_v3_large_fpn", 800
            reasons.append("small objects on a GPU: the 800px Faster R-CNN keeps them visible")
        else:
            name, cap = "fasterrcnn_mobilenet_v3_large_320_fpn", 320
            why = "CPU" if budget.device == "cpu" else "objects large enough at 320px"
            reasons.append(f"{why}: fasterrcnn_mobilenet_v3_large_320_fpn, fast and light")
    size = min(cap, max(128, _ceil_to(short, 32)))
    if size < cap:
        reasons.append(f"images' shorter side is about {short}px: resize to {size}, not {cap}")
    return name, (size, size)


def _batch_size(algorithm: catalogue.Algorithm, size: tuple[int, int], budget: ComputeBudget,
                image_count: int) -> int:
    default = algorithm.defaults.batch_size
    scale = (algorithm.input_size[0] * algorithm.input_size[1]) / (size[0] * size[1])
    if budget.device == "gpu":
        scale *= (budget.gpu_memory_gb or 16) / 16
    else:
        scale *= min(1.0, budget.memory_gb / 16)
    batch = int(default * min(4.0, scale))
    cap = 256 if algorithm.scenario == "classification" else 16
    # at least four steps an epoch: a batch larger than that only slows learning down
    return max(1, min(batch, cap, max(1, image_count // 4)))


def choose(stats: DatasetStats, budget: ComputeBudget, *,
           step_seconds: StepSeconds | None = None) -> AutoChoice:
    """Algorithm, input size, batch size, epochs and lr for `stats` on `budget`, with reasons."""
    if stats.image_count < 1 or stats.label_count < 1:
        raise ValueError("auto needs a dataset with images and labels")
    reasons: list[str] = []
    if stats.scenario == "classification":
        name, size = _classifier(stats, budget, reasons)
    else:
        name, size = _detector(stats, budget, reasons)
    algorithm = catalogue.get(stats.scenario, name)
    timer = step_seconds or estimated_step_seconds(budget)
    train_images = max(1, int(stats.image_count * 0.8))
    batch = _batch_size(algorithm, size, budget, train_images)
    defaults = algorithm.defaults
    lr = defaults.lr * batch / defaults.batch_size if defaults.optimizer == "sgd" else defaults.lr
    if batch != defaults.batch_size:
        reasons.append(f"batch size {batch} for {size[0]}x{size[1]} inputs on this "
                       f"{budget.device.upper()}" + (f"; lr scaled linearly to {lr:.3g}"
                                                     if defaults.optimizer == "sgd" else ""))
    steps = math.ceil(train_images / batch)
    epoch_s = steps * timer(name, size, batch) * (1 + _EVAL_SHARE)
    epochs = defaults.epochs
    if budget.max_duration_s is not None:
        fit = int(budget.max_duration_s * _BUDGET_SHARE // max(epoch_s, 1e-9))
        if fit < epochs:
            epochs = max(1, fit)
            reasons.append(f"an epoch takes about {epoch_s:.0f}s: {epochs} epochs fit in "
                           f"{budget.max_duration_s:.0f}s" + (
                               " (less than one: the stop keeps a partial model)"
                               if fit < 1 else ""))
    return AutoChoice(name, size, batch, epochs, lr, epoch_s, reasons)
