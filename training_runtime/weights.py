"""Pretrained weights: checksums, safe loading, fit checks, models built from them, and a store.

    verify_checksum(path, "f37072fd")                  # torchvision's prefix convention or full
    model = build_from_weights(get("classification", "resnet18"), 3, path)  # new 3-label head
    store = WeightStore(root); store.add_official("resnet18", path); store.path_for("resnet18")

Files are read with ``torch.load(weights_only=True)`` only. A model built from weights gets the
architecture the weights were trained for, every tensor loaded, then its class-dependent head
replaced for the dataset's labels: a new ``nn.Linear`` for classifiers, torchvision's own
``FastRCNNPredictor`` / ``MaskRCNNPredictor`` for the R-CNNs; RetinaNet and SSDlite keep their
freshly built classification head and load the rest. The store is plain files (no Django): the
platform's operator command fills it and workers read from it; nothing is downloaded per task.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

import torch
from torch import nn

from training_runtime import catalogue
from training_runtime.models.registry import ModelSpec, get_by_name
from training_runtime.models.weights import PretrainedWeightsError, read_state_dict

Source = str | os.PathLike[str] | IO[bytes]

# Buffers that are not weights: BatchNorm's step counter (absent from frozen-BN checkpoints,
# such as torchvision's detectors).
_NOT_WEIGHTS = ("num_batches_tracked",)
_CUSTOM_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_HEX = re.compile(r"^[0-9a-f]+$")


class ChecksumMismatch(PretrainedWeightsError):
    """A file's sha256 is not the one expected; the message names both."""

    code = "checksum_mismatch"


class WeightsDoNotFit(PretrainedWeightsError):
    """Weights made for another architecture: missing, unexpected or misshapen tensors."""

    code = "weights_do_not_fit"


class WeightsNotFound(LookupError):
    """The store holds no such weights; the message says how to add them."""

    code = "weights_not_found"


def sha256_of(source: Source) -> str:
    """The full hex sha256 of a file (path) or of a binary stream read from its position."""
    digest = hashlib.sha256()
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    else:
        for chunk in iter(lambda: source.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_checksum(source: Source, expected: str, *, what: str = "") -> str:
    """The file's full sha256 if it starts with `expected` (8/10-hex prefix or all 64 digits).

    Raises ChecksumMismatch naming the expected and the actual digest.
    """
    expected = expected.strip().lower()
    if not _HEX.match(expected) or not (8 <= len(expected) <= 64):
        raise ValueError(f"expected checksum must be 8 to 64 hex digits, got {expected!r}")
    actual = sha256_of(source)
    if not actual.startswith(expected):
        name = what or (str(source) if isinstance(source, str | os.PathLike) else "the file")
        kind = "sha256" if len(expected) == 64 else "sha256 starting"
        raise ChecksumMismatch(f"{name}: expected {kind} {expected}, got sha256 {actual}; the "
                               f"file is corrupt or not the published one.")
    return actual


def load_weights(source: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The state dict in a file, read with weights_only=True (a checkpoint's "model" entry too)."""
    return read_state_dict(source)


@dataclass(frozen=True)
class FitReport:
    """How a state dict matches an architecture; `head` keys may differ freely."""

    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    mismatched: tuple[str, ...]  # "key (weights shape) vs model (shape)"
    head: tuple[str, ...]  # head tensors whose shape differs (another label count)

    @property
    def ok(self) -> bool:
        """Every non-head tensor is there with its shape, and nothing else is."""
        return not (self.missing or self.unexpected or self.mismatched)

    def summary(self) -> str:
        """One line naming the first few problems of each kind."""
        parts = [f"{label}: {_few(keys)}" for label, keys in (
            ("missing", self.missing), ("unexpected", self.unexpected),
            ("shape differs", self.mismatched)) if keys]
        return "; ".join(parts) or "fits"


def _few(keys: tuple[str, ...], limit: int = 3) -> str:
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def check_fit(state: Mapping[str, torch.Tensor], model: nn.Module,
              head_prefixes: tuple[str, ...] = ()) -> FitReport:
    """Compare `state` with `model`'s own tensors by name and shape, the head excepted."""
    own = model.state_dict()
    missing = tuple(k for k in own if k not in state and not k.endswith(_NOT_WEIGHTS))
    unexpected = tuple(k for k in state if k not in own and not k.endswith(_NOT_WEIGHTS))
    mismatched, head = [], []
    for key, tensor in state.items():
        if key in own and tuple(tensor.shape) != tuple(own[key].shape):
            if key.startswith(head_prefixes) if head_prefixes else False:
                head.append(key)
            else:
                mismatched.append(f"{key} {tuple(tensor.shape)} vs model {tuple(own[key].shape)}")
    return FitReport(missing, unexpected, tuple(mismatched), tuple(head))


def require_fit(state: Mapping[str, torch.Tensor], spec: ModelSpec, *, what: str = "weights"
                ) -> FitReport:
    """The fit of `state` with `spec`'s architecture, or WeightsDoNotFit saying why."""
    report = check_fit(state, spec.builder(weights_label_count(spec, state)), spec.head_prefixes)
    if not report.ok:
        raise WeightsDoNotFit(f"{what} do not fit {spec.name}: {report.summary()}; pick weights "
                              f"saved from a {spec.name} model.")
    return report


# The tensor whose first dimension is the class count of each head, and how many of those
# classes are not dataset labels (torchvision detectors' background).
_COUNTING: dict[str, tuple[str, int]] = {
    "small_cnn": ("fc.weight", 0),
    "resnet18": ("fc.weight", 0),
    "mobilenet_v3_small": ("classifier.3.weight", 0),
    "mobilenet_v3_large": ("classifier.3.weight", 0),
    "efficientnet_b0": ("classifier.1.weight", 0),
    "fasterrcnn_mobilenet_v3_large_320_fpn": ("roi_heads.box_predictor.cls_score.weight", 1),
    "fasterrcnn_mobilenet_v3_large_fpn": ("roi_heads.box_predictor.cls_score.weight", 1),
    "maskrcnn_resnet50_fpn": ("roi_heads.box_predictor.cls_score.weight", 1),
}


def weights_label_count(spec: ModelSpec, state: Mapping[str, torch.Tensor]) -> int:
    """How many dataset labels the weights' head was trained for (1 when it cannot be told)."""
    key, background = _COUNTING.get(spec.name, ("", 0))
    tensor = state.get(key)
    if tensor is None or tensor.dim() < 1 or tensor.shape[0] - background < 1:
        return 1
    return int(tensor.shape[0]) - background


def replace_head(model: nn.Module, spec: ModelSpec, num_classes: int) -> nn.Module:
    """`model` with a new, randomly initialised head for `num_classes` dataset labels."""
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
    from torchvision.models.detection.mask_rcnn import MaskRCNNPredictor

    name = spec.name
    if name in ("small_cnn", "resnet18"):
        model.fc = nn.Linear(model.fc.in_features, num_classes)
    elif name.startswith("mobilenet_v3"):
        model.classifier[3] = nn.Linear(model.classifier[3].in_features, num_classes)
    elif name == "efficientnet_b0":
        model.classifier[1] = nn.Linear(model.classifier[1].in_features, num_classes)
    elif name.startswith(("fasterrcnn", "maskrcnn")):
        box = model.roi_heads.box_predictor
        model.roi_heads.box_predictor = FastRCNNPredictor(box.cls_score.in_features,
                                                          num_classes + 1)
        if name.startswith("maskrcnn"):
            mask = model.roi_heads.mask_predictor
            model.roi_heads.mask_predictor = MaskRCNNPredictor(
                mask.conv5_mask.in_channels, mask.conv5_mask.out_channels, num_classes + 1)
    else:
        raise ValueError(f"{name}: no head replacement; build it with num_classes instead")
    return model


def build_from_weights(spec: ModelSpec, num_classes: int,
                       weights: str | os.PathLike[str] | Mapping[str, torch.Tensor],
                       **options) -> nn.Module:
    """`spec`'s model holding `weights` (a file or a state dict), its head for `num_classes`.

    Raises WeightsDoNotFit when the weights belong to another architecture.
    """
    state = dict(weights) if isinstance(weights, Mapping) else load_weights(weights)
    what = "the weights" if isinstance(weights, Mapping) else str(weights)
    if spec.name in _COUNTING:
        # Build what the weights were trained for, load everything, then swap the head.
        model = spec.builder(weights_label_count(spec, state), **options)
        report = check_fit(state, model)
        if not report.ok:
            raise WeightsDoNotFit(f"{what} do not fit {spec.name}: {report.summary()}.")
        model.load_state_dict(state, strict=False)  # only num_batches_tracked may be absent
        if weights_label_count(spec, state) != num_classes:
            replace_head(model, spec, num_classes)
        return model
    model = spec.builder(num_classes, **options)
    report = check_fit(state, model, spec.head_prefixes)
    if not report.ok:
        raise WeightsDoNotFit(f"{what} do not fit {spec.name}: {report.summary()}.")
    model.load_state_dict({k: v for k, v in state.items() if k not in report.head}, strict=False)
    return model


# --- the store ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class StoredWeights:
    """One file of the store: official (torchvision's) or custom (named by the operator)."""

    algorithm: str
    kind: str  # "official" | "custom"
    name: str  # the file name for official weights, the operator's name for custom ones
    path: str  # relative to the store's root
    sha256: str
    size: int

    def as_dict(self) -> dict[str, object]:
        """Plain values, for the index file and for listings."""
        return asdict(self)


class WeightStore:
    """Weights on disk under `root`: ``official/<file>``, ``custom/<algorithm>/<name>.pth`` and
    ``index.json`` listing them; every entry was checked before it was added."""

    INDEX = "index.json"

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def _entries(self) -> dict[str, StoredWeights]:
        path = self.root / self.INDEX
        if not path.is_file():
            return {}
        rows = json.loads(path.read_text())
        return {row["path"]: StoredWeights(**row) for row in rows}

    def _save_index(self, entries: dict[str, StoredWeights]) -> None:
        rows = [e.as_dict() for e in sorted(entries.values(), key=lambda e: e.path)]
        tmp = self.root / (self.INDEX + ".tmp")
        tmp.write_text(json.dumps(rows, indent=1))
        os.replace(tmp, self.root / self.INDEX)  # readers never see half an index

    def _stage(self, source: Source) -> Path:
        """A private copy of `source` inside the store (so the final move is atomic)."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.root, suffix=".part")
        with os.fdopen(fd, "wb") as out:
            if isinstance(source, str | os.PathLike):
                with open(source, "rb") as fh:
                    shutil.copyfileobj(fh, out)
            else:
                shutil.copyfileobj(source, out)
        return Path(name)

    def _commit(self, staged: Path, entry: StoredWeights) -> StoredWeights:
        target = self.root / entry.path
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, target)
        entries = self._entries()
        entries[entry.path] = entry
        self._save_index(entries)
        return entry

    def add_official(self, algorithm: str, source: Source) -> StoredWeights:
        """Add torchvision's weights of `algorithm`, refused unless the checksum matches."""
        official = _official(algorithm)
        staged = self._stage(source)
        try:
            digest = verify_checksum(staged, official.sha256_prefix,
                                     what=f"{official.file_name} for {algorithm}")
        except BaseException:
            staged.unlink(missing_ok=True)
            raise
        return self._commit(staged, StoredWeights(
            algorithm, "official", official.file_name, f"official/{official.file_name}",
            digest, staged.stat().st_size))

    def add_custom(self, algorithm: str, name: str, source: Source) -> StoredWeights:
        """Add weights named `name` for `algorithm`, refused unless they fit its architecture."""
        spec = get_by_name(algorithm)
        if not isinstance(name, str) or not _CUSTOM_NAME.match(name):
            raise ValueError(f"custom weights name {name!r}: use 1 to 64 lowercase letters, "
                             "digits, '-' or '_', starting with a letter or digit")
        staged = self._stage(source)
        try:
            require_fit(load_weights(staged), spec, what=f"custom weights {name!r}")
        except BaseException:
            staged.unlink(missing_ok=True)
            raise
        return self._commit(staged, StoredWeights(
            algorithm, "custom", name, f"custom/{algorithm}/{name}.pth", sha256_of(staged),
            staged.stat().st_size))

    def list(self) -> list[StoredWeights]:
        """Every stored file, by path."""
        return sorted(self._entries().values(), key=lambda e: e.path)

    def path_for(self, algorithm: str, custom: str | None = None) -> Path:
        """The file of `algorithm`'s official weights, or of its custom weights `custom`."""
        for entry in self._entries().values():
            if entry.algorithm != algorithm:
                continue
            if (custom is None and entry.kind == "official") or (
                    custom is not None and entry.kind == "custom" and entry.name == custom):
                path = self.root / entry.path
                if path.is_file():
                    return path
        if custom is None:
            raise WeightsNotFound(
                f"No pretrained weights for {algorithm} are installed; an operator runs "
                f"`manage.py weights fetch --algorithm {algorithm}` (or `weights import`).")
        raise WeightsNotFound(f"No custom weights {custom!r} for {algorithm}; installed: "
                              f"{', '.join(self.custom_names(algorithm)) or 'none'}.")

    def custom_names(self, algorithm: str) -> list[str]:
        """The names of `algorithm`'s custom weights."""
        return sorted(e.name for e in self._entries().values()
                      if e.algorithm == algorithm and e.kind == "custom")


def _official(algorithm: str) -> catalogue.OfficialWeights:
    entry = catalogue.OFFICIAL_WEIGHTS.get(algorithm)
    if entry is None:
        known = ", ".join(catalogue.OFFICIAL_WEIGHTS)
        raise WeightsNotFound(f"{algorithm!r} has no official pretrained weights; those with "
                              f"some: {known}.")
    return entry


def pretrained_path(store: WeightStore, algorithm: str, choice: bool | str) -> Path | None:
    """The file an effective `pretrained` option (true, false, a custom name) trains from."""
    if choice is False:
        return None
    return store.path_for(algorithm, None if choice is True else choice)
