"""Detection and instance-segmentation models from torchvision, built without downloads.

``num_classes`` here is always the number of dataset labels. torchvision's detectors reserve
class 0 for the background, so each builder passes ``num_classes + 1`` to torchvision: dataset
label k (0-based) is model class k + 1, and the model's output labels are 1..num_classes.

R-CNN and RetinaNet models resize every image so its shorter side is ``min_size`` and its longer
side at most ``max_size`` (``RESIZE`` holds each model's defaults; pass smaller values to build
a fast model, as the tests do). SSDlite always resizes to 320x320 and ignores both.
"""

from __future__ import annotations

from torch import nn
from torchvision.models import detection as tvd

# (min_size, max_size) of each model's internal resize: catalogue data, the web process reads it.
from training_runtime.catalogue import RESIZE as RESIZE

# Keys whose shape follows num_classes (dropped when a checkpoint has another label count).
FASTER_RCNN_HEAD = ("roi_heads.box_predictor.",)
MASK_RCNN_HEAD = ("roi_heads.box_predictor.", "roi_heads.mask_predictor.mask_fcn_logits.")
RETINANET_HEAD = ("head.classification_head.cls_logits.",)
SSDLITE_HEAD = ("head.classification_head.",)


def _check_labels(num_classes: int) -> int:
    """The torchvision class count (labels + background) for `num_classes` dataset labels."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be the number of dataset labels (>= 1), "
                         f"got {num_classes!r}")
    return num_classes + 1


def _resize(name: str, min_size: int | None, max_size: int | None) -> dict[str, int]:
    """The min_size/max_size keyword arguments, the model's defaults where not given."""
    default_min, default_max = RESIZE[name]
    low = default_min if min_size is None else min_size
    high = max(default_max, low) if max_size is None else max_size
    if low < 1 or high < low:
        raise ValueError(f"{name}: need 1 <= min_size <= max_size, got {low} and {high}")
    return {"min_size": low, "max_size": high}


def build_fasterrcnn_mobilenet_v3_large_320_fpn(
    num_classes: int, *, min_size: int | None = None, max_size: int | None = None, **kwargs
) -> nn.Module:
    """Faster R-CNN, MobileNetV3-Large FPN backbone, low resolution (320); labels + background."""
    name = "fasterrcnn_mobilenet_v3_large_320_fpn"
    return tvd.fasterrcnn_mobilenet_v3_large_320_fpn(
        weights=None, weights_backbone=None, num_classes=_check_labels(num_classes),
        **_resize(name, min_size, max_size), **kwargs)


def build_fasterrcnn_mobilenet_v3_large_fpn(
    num_classes: int, *, min_size: int | None = None, max_size: int | None = None, **kwargs
) -> nn.Module:
    """Faster R-CNN, MobileNetV3-Large FPN backbone, full resolution; labels + background."""
    name = "fasterrcnn_mobilenet_v3_large_fpn"
    return tvd.fasterrcnn_mobilenet_v3_large_fpn(
        weights=None, weights_backbone=None, num_classes=_check_labels(num_classes),
        **_resize(name, min_size, max_size), **kwargs)


def build_retinanet_resnet50_fpn(
    num_classes: int, *, min_size: int | None = None, max_size: int | None = None, **kwargs
) -> nn.Module:
    """RetinaNet, ResNet-50 FPN backbone; labels + background."""
    name = "retinanet_resnet50_fpn"
    return tvd.retinanet_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=_check_labels(num_classes),
        **_resize(name, min_size, max_size), **kwargs)


def build_ssdlite320_mobilenet_v3_large(
    num_classes: int, *, min_size: int | None = None, max_size: int | None = None, **kwargs
) -> nn.Module:
    """SSDlite 320x320, MobileNetV3-Large backbone; labels + background.

    min_size and max_size are accepted for a uniform signature and ignored: SSDlite's input
    size is fixed at 320x320.
    """
    del min_size, max_size
    return tvd.ssdlite320_mobilenet_v3_large(
        weights=None, weights_backbone=None, num_classes=_check_labels(num_classes), **kwargs)


def build_maskrcnn_resnet50_fpn(
    num_classes: int, *, min_size: int | None = None, max_size: int | None = None, **kwargs
) -> nn.Module:
    """Mask R-CNN, ResNet-50 FPN backbone, for instance segmentation; labels + background."""
    name = "maskrcnn_resnet50_fpn"
    return tvd.maskrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=_check_labels(num_classes),
        **_resize(name, min_size, max_size), **kwargs)
