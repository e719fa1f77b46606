"""Load pretrained weights from a local file, a file:// URL or object storage; never the network.

``load_pretrained(model, source)`` accepts a plain state dict or a checkpoint dict holding one
under "model" or "state_dict" (the trainer's own checkpoints). It reads with
``torch.load(weights_only=True)``, so a file holding arbitrary pickled objects is refused.

Keys are loaded when names and shapes match. The layers whose shape follows the number of
classes (the classifier, box predictor, mask logits: ``head_prefixes``) are dropped and reported
when their shapes differ, since a checkpoint trained for another label set is the usual case for
fine-tuning. Any other shape difference means the checkpoint is for another architecture, and
loading stops with ``PretrainedWeightsError``. Missing and unexpected keys are reported.

A classifier checkpoint (e.g. ImageNet resnet50 or mobilenet_v3_large) can seed a detector's
backbone: when the names do not match as they are, the key prefixes of the detectors' backbones
(``backbone.body.`` for torchvision's FPN backbones, ``backbone.`` otherwise; a classifier's
``features.`` stripped) are tried, and the mapping that matches the most tensors by name and
shape is used. The report names the mapping.
"""

from __future__ import annotations

import io
import logging
import os
import pickle
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

import torch
from torch import nn

from training_runtime.models.classification import (
    EFFICIENTNET_HEAD,
    MOBILENET_V3_HEAD,
    RESNET_HEAD,
    SMALL_CNN_HEAD,
)
from training_runtime.models.detection import (
    FASTER_RCNN_HEAD,
    MASK_RCNN_HEAD,
    RETINANET_HEAD,
    SSDLITE_HEAD,
)

log = logging.getLogger(__name__)

# Reads an object-storage location ("s3://bucket/key", ...) and returns its bytes or a binary
# file object. The platform passes its storage reader; this module never opens a network socket.
Opener = Callable[[str], bytes | IO[bytes]]

# The class-dependent layers of every registered architecture.
KNOWN_HEAD_PREFIXES: tuple[str, ...] = tuple(dict.fromkeys(
    SMALL_CNN_HEAD + RESNET_HEAD + MOBILENET_V3_HEAD + EFFICIENTNET_HEAD
    + FASTER_RCNN_HEAD + MASK_RCNN_HEAD + RETINANET_HEAD + SSDLITE_HEAD))

# BatchNorm's step counter is not a weight; checkpoints of frozen-BN models lack it.
_IGNORED_MISSING = ("num_batches_tracked",)


class PretrainedWeightsError(ValueError):
    """A checkpoint that cannot be loaded into the model; the message says why and what to do."""

    code = "pretrained_weights_invalid"


@dataclass(frozen=True)
class LoadReport:
    """What load_pretrained did: keys loaded, dropped head keys, missing and unexpected keys."""

    source: str
    loaded: tuple[str, ...]
    prefix_mapping: tuple[str, str] | None
    dropped_head: tuple[str, ...]
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]

    def summary(self) -> str:
        """One line for logs and task events."""
        parts = [f"loaded {len(self.loaded)} tensors from {self.source}"]
        if self.prefix_mapping is not None:
            strip, add = self.prefix_mapping
            parts.append(f"checkpoint keys {strip or '(all)'}* read as {add}*")
        if self.dropped_head:
            parts.append(f"dropped {len(self.dropped_head)} head tensors whose shape follows "
                         f"the number of classes ({_few(self.dropped_head)}); they stay random")
        if self.missing:
            parts.append(f"{len(self.missing)} model tensors not in the checkpoint "
                         f"({_few(self.missing)})")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} checkpoint tensors not in the model "
                         f"({_few(self.unexpected)})")
        return "; ".join(parts)


def _few(keys: Iterable[str], limit: int = 5) -> str:
    """The first `limit` keys, comma-separated, and how many more."""
    keys = list(keys)
    more = f", ... {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def _read(source: str | os.PathLike[str], opener: Opener | None) -> tuple[str, IO[bytes]]:
    """A display name and a seekable binary stream for `source`."""
    if isinstance(source, os.PathLike):
        path = Path(source)
    else:
        parsed = urlparse(source)
        if parsed.scheme == "file":
            path = Path(url2pathname(unquote(parsed.path)))
        elif len(parsed.scheme) > 1 and "://" in source:
            if opener is None:
                raise PretrainedWeightsError(
                    f"Pretrained weights at {source} need an object-storage reader; pass "
                    f"opener=..., or copy the file locally and pass its path.")
            got = opener(source)
            data = got if isinstance(got, bytes | bytearray) else got.read()
            return source, io.BytesIO(data)
        else:
            path = Path(source)
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise FileNotFoundError(
            f"Pretrained weights file {path} {what}; check the configured path "
            f"(no download is attempted).")
    return str(path), io.BytesIO(path.read_bytes())


def read_state_dict(source: str | os.PathLike[str], *,
                    opener: Opener | None = None) -> dict[str, torch.Tensor]:
    """The tensors of a state dict or of a checkpoint's "model"/"state_dict" entry."""
    name, stream = _read(source, opener)
    try:
        obj = torch.load(stream, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise PretrainedWeightsError(
            f"{name} holds objects other than tensors and plain containers, which are not "
            f"loaded for safety (weights_only=True); save model.state_dict() instead. "
            f"torch said: {str(exc).splitlines()[0]}") from exc
    except Exception as exc:  # torch raises RuntimeError, EOFError, KeyError... on junk
        detail = str(exc).splitlines()[0] if str(exc) else "no detail"
        raise PretrainedWeightsError(
            f"{name} is not a readable PyTorch checkpoint ({exc.__class__.__name__}: "
            f"{detail}); save it with torch.save(model.state_dict(), path).") from exc
    if isinstance(obj, Mapping):
        for key in ("model", "state_dict"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj:
        raise PretrainedWeightsError(
            f"{name} holds a {type(obj).__name__}, not a state dict (or a checkpoint dict with "
            f"a 'model' or 'state_dict' entry).")
    not_tensors = [str(k) for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise PretrainedWeightsError(
            f"{name} is not a state dict: entries {_few(not_tensors)} are not tensors.")
    state = {str(k): v for k, v in obj.items()}
    if all(k.startswith("module.") for k in state):  # saved from DataParallel / DDP
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return state


# (prefix stripped from checkpoint keys, prefix added): classifier checkpoints into backbones.
BACKBONE_PREFIX_MAPPINGS: tuple[tuple[str, str], ...] = (
    ("", "backbone.body."),        # resnet50 into Faster/Mask R-CNN and RetinaNet FPN backbones
    ("features.", "backbone.body."),  # mobilenet_v3 features into the FPN mobilenet backbones
    ("", "backbone."),
    ("features.", "backbone.features."),
)


def _matching(state: Mapping[str, torch.Tensor], own: Mapping[str, torch.Tensor]) -> int:
    return sum(1 for k, v in state.items() if k in own and v.shape == own[k].shape)


def _align_prefixes(state: dict[str, torch.Tensor], own: Mapping[str, torch.Tensor]
                    ) -> tuple[dict[str, torch.Tensor], tuple[str, str] | None]:
    """`state` renamed by the backbone mapping that matches most tensors, if any beats none."""
    best, best_count, mapping = state, _matching(state, own), None
    if best_count * 2 >= len(state):  # most keys already match: the same architecture
        return state, None
    for strip, add in BACKBONE_PREFIX_MAPPINGS:
        renamed = {add + k.removeprefix(strip): v for k, v in state.items()
                   if k.startswith(strip)}
        count = _matching(renamed, own)
        if count > best_count:
            best, best_count, mapping = renamed, count, (strip, add)
    return best, mapping


def load_pretrained(model: nn.Module, source: str | os.PathLike[str], *,
                    opener: Opener | None = None,
                    head_prefixes: Iterable[str] = KNOWN_HEAD_PREFIXES) -> LoadReport:
    """Load the matching tensors of a checkpoint into `model` in place and report what happened."""
    name = str(source)
    heads = tuple(head_prefixes)
    own = model.state_dict()
    state, mapping = _align_prefixes(read_state_dict(source, opener=opener), own)
    keep: dict[str, torch.Tensor] = {}
    dropped: list[str] = []
    conflicts: list[str] = []
    for key, tensor in state.items():
        if key not in own:
            continue
        if tuple(tensor.shape) == tuple(own[key].shape):
            keep[key] = tensor
        elif key.startswith(heads):
            dropped.append(key)
        else:
            conflicts.append(f"{key} {tuple(tensor.shape)} vs model {tuple(own[key].shape)}")
    if conflicts:
        raise PretrainedWeightsError(
            f"{name} was trained for another architecture: {len(conflicts)} tensors differ in "
            f"shape outside the classification head ({_few(conflicts, 3)}); pick the "
            f"checkpoint of the same model.")
    if not keep:
        raise PretrainedWeightsError(
            f"No tensor of {name} matches the model ({model.__class__.__name__}); checkpoint "
            f"keys start {_few(sorted(state), 3)}, model keys start {_few(list(own), 3)}.")
    model.load_state_dict(keep, strict=False)
    report = LoadReport(
        source=name,
        loaded=tuple(keep),
        prefix_mapping=mapping,
        dropped_head=tuple(dropped),
        missing=tuple(k for k in own if k not in keep and k not in dropped
                      and not k.endswith(_IGNORED_MISSING)),
        unexpected=tuple(k for k in state if k not in own),
    )
    level = logging.WARNING if report.missing or report.unexpected else logging.INFO
    log.log(level, "pretrained weights: %s", report.summary())
    return report
