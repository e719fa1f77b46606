"""The training options a task may set, validated into their effective values.

    effective, errors = resolve_options({"augmentation": "strong"}, algorithm)
    if errors: ...  # {"augmentation": "must be one of none, light, strong"}: a 400 naming it

Pure and torch-free: the web process validates a task here, the worker trains with the same
effective values, and the task records them in its config. Every option has a default, so the
returned dict always holds all of them:

- image_size: the model's input side in pixels (int, or [height, width]); the algorithm's own;
- augmentation: none | light (flip, mild colour) | strong (flip, crop-zoom, rotation, colour);
- optimizer: sgd | adamw | adam (the algorithm's default otherwise);
- freeze_backbone_epochs: train only the head for the first N epochs (0);
- early_stopping_patience: stop after N epochs without a better validation metric (None: off);
- mixed_precision: float16 autocast on CUDA (true; ignored on CPU);
- seed: the split's and training's random seed (0);
- pretrained: true (the algorithm's official weights), false (random), or the name of custom
  weights installed for the algorithm; true by default where official weights exist.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from training_runtime.catalogue import Algorithm

AUGMENTATIONS = ("none", "light", "strong")
OPTIMIZERS = ("sgd", "adamw", "adam")
IMAGE_SIZE_RANGE = (16, 2048)
OPTION_NAMES = ("image_size", "augmentation", "optimizer", "freeze_backbone_epochs",
                "early_stopping_patience", "mixed_precision", "seed", "pretrained")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _image_size(value: Any) -> tuple[int, int] | str:
    low, high = IMAGE_SIZE_RANGE
    message = (f"must be an integer from {low} to {high}, or [height, width] of such integers")
    sides = [value, value] if _is_int(value) else value
    if not isinstance(sides, list | tuple) or len(sides) != 2:
        return message
    if not all(_is_int(side) and low <= side <= high for side in sides):
        return message
    return int(sides[0]), int(sides[1])


def _count(value: Any, *, minimum: int, maximum: int) -> int | str:
    if not _is_int(value) or not minimum <= value <= maximum:
        return f"must be an integer from {minimum} to {maximum}"
    return int(value)


def resolve_options(raw: Mapping[str, Any] | None, algorithm: Algorithm, *,
                    epochs: int | None = None, custom_weights: Iterable[str] | None = None
                    ) -> tuple[dict[str, Any], dict[str, str]]:
    """The effective value of every option and, per invalid field, what it must be.

    `epochs` bounds freeze_backbone_epochs; `custom_weights` (the names installed for the
    algorithm; None to skip the check) validates a custom `pretrained` name. Unknown keys are
    errors too, so a typo is not silently ignored.
    """
    raw = dict(raw or {})
    errors: dict[str, str] = {}
    for key in sorted(set(raw) - set(OPTION_NAMES)):
        errors[key] = f"is not an option; the options are {', '.join(OPTION_NAMES)}"
    effective: dict[str, Any] = {}

    size = raw.get("image_size")
    checked = algorithm.input_size if size is None else _image_size(size)
    if isinstance(checked, str):
        errors["image_size"] = checked
    else:
        effective["image_size"] = list(checked)

    for key, choices, default in (
            ("augmentation", AUGMENTATIONS, "light"),
            ("optimizer", OPTIMIZERS, algorithm.defaults.optimizer)):
        value = raw.get(key, default)
        if value not in choices:
            errors[key] = f"must be one of {', '.join(choices)}"
        else:
            effective[key] = value

    limit = max(0, (epochs or algorithm.defaults.epochs) - 1)
    freeze = _count(raw.get("freeze_backbone_epochs", 0), minimum=0, maximum=limit)
    if isinstance(freeze, str):
        errors["freeze_backbone_epochs"] = f"{freeze} (fewer than the epochs)"
    else:
        effective["freeze_backbone_epochs"] = freeze

    patience = raw.get("early_stopping_patience")
    checked_patience = None if patience is None else _count(patience, minimum=1, maximum=1000)
    if isinstance(checked_patience, str):
        errors["early_stopping_patience"] = f"{checked_patience}, or null to train every epoch"
    else:
        effective["early_stopping_patience"] = checked_patience

    amp = raw.get("mixed_precision", True)
    if not isinstance(amp, bool):
        errors["mixed_precision"] = "must be true or false"
    else:
        effective["mixed_precision"] = amp

    seed = _count(raw.get("seed", 0), minimum=0, maximum=2**32 - 1)
    if isinstance(seed, str):
        errors["seed"] = seed
    else:
        effective["seed"] = seed

    pretrained = _pretrained(raw.get("pretrained"), algorithm, custom_weights)
    if pretrained[1]:
        errors["pretrained"] = pretrained[1]
    else:
        effective["pretrained"] = pretrained[0]
    return (effective if not errors else {}), errors


def _pretrained(value: Any, algorithm: Algorithm, custom: Iterable[str] | None
                ) -> tuple[bool | str, str]:
    """(effective value, error message or "")."""
    has_official = algorithm.weights is not None
    if value is None:
        return has_official, ""
    if value is True:
        if not has_official:
            return False, (f"{algorithm.name} has no official pretrained weights; use false "
                           "or the name of custom weights")
        return True, ""
    if value is False:
        return False, ""
    if not isinstance(value, str) or not value:
        return False, "must be true, false or the name of custom weights"
    if custom is not None and value not in set(custom):
        names = ", ".join(sorted(custom)) or "none are installed"
        return False, f"no custom weights {value!r} for {algorithm.name} ({names})"
    return value, ""
