"""Models trained elsewhere, checked and re-exported as this platform's artifact.

Two sources: the platform's own artifact folder (a downloaded zip, extracted by the caller) or a
torchvision state dict plus a declaration {scenario, algorithm, labels, input_size}. Weights are
read with `torch.load(weights_only=True)` only (a pickle that needs code is refused), and must
fit the declared architecture exactly: the label count is read from the head's tensors, and
keys of another architecture are named. The accepted model is exported anew (portable formats
and their checks included), so an imported model is served and evaluated like a trained one.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from training_runtime.export.artifact import (
    MANIFEST_NAME,
    ArtifactError,
    _input_size,
    _labels,
    _spec,
    export_artifact,
    load_manifest,
)
from training_runtime.models import build, get


class ImportRefused(ValueError):
    """The upload cannot become a model; `field` is the request field to blame."""

    def __init__(self, message: str, field: str = "file") -> None:
        super().__init__(message)
        self.field = field


def _weights(path: Path) -> dict[str, torch.Tensor]:
    """A state dict of tensors, read without running pickled code."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ImportRefused(f"The weights are not a weights-only PyTorch file (only tensors "
                            f"are read, never code): {first}") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]  # a training checkpoint
    if (not isinstance(state, dict) or not state
            or not all(isinstance(v, torch.Tensor) for v in state.values())):
        raise ImportRefused("The weights file must hold a state dict: names to tensors.")
    return state


def _fit(model: nn.Module, state: dict[str, torch.Tensor], algorithm: str,
         labels: int) -> None:
    """Load `state` into `model` strictly, or refuse naming what does not fit."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ImportRefused(
            f"The weights are not those of {algorithm}: {len(missing)} tensors missing "
            f"(e.g. {missing[:2]}), {len(unexpected)} unexpected (e.g. {unexpected[:2]}).")
    wrong = [k for k, v in state.items() if tuple(v.shape) != tuple(expected[k].shape)]
    if wrong:
        raise ImportRefused(
            f"The weights do not fit {algorithm} with {labels} labels: {wrong[0]} has shape "
            f"{tuple(state[wrong[0]].shape)}, expected {tuple(expected[wrong[0]].shape)} "
            f"(is the label count right?).", field="labels" if len(wrong) <= 4 else "file")
    model.load_state_dict(state)


def declared(values: dict[str, Any]) -> dict[str, Any]:
    """The declaration of a state dict upload, checked: scenario, algorithm, labels, size."""
    try:
        _spec(values.get("scenario"), values.get("algorithm"))
    except ArtifactError as exc:
        raise ImportRefused(str(exc), field="algorithm") from None
    try:
        labels = _labels(values.get("labels"))
    except ArtifactError as exc:
        raise ImportRefused(str(exc), field="labels") from None
    spec = get(values["scenario"], values["algorithm"])
    try:
        size = _input_size(values.get("input_size") or spec.input_size)
    except ArtifactError as exc:
        raise ImportRefused(str(exc), field="input_size") from None
    options = values.get("build_options") or {}
    if not isinstance(options, dict):
        raise ImportRefused("build_options must be an object.", field="build_options")
    return {"scenario": values["scenario"], "algorithm": values["algorithm"],
            "labels": list(labels), "input_size": size, "build_options": options}


def import_model(source: Path, into: Path, declaration: dict[str, Any] | None) -> Path:
    """Check an upload and export it as an artifact folder at `into`; ImportRefused if not.

    `source` is an extracted artifact folder (declaration None) or a state dict file.
    """
    if declaration is None:
        if not (source / MANIFEST_NAME).is_file():
            raise ImportRefused(f"The zip is not a model artifact: {MANIFEST_NAME} is missing.")
        try:
            manifest = load_manifest(source)
        except ArtifactError as exc:
            raise ImportRefused(f"The artifact is not valid: {exc}") from None
        info = {"scenario": manifest.scenario, "algorithm": manifest.model_name,
                "labels": list(manifest.labels), "input_size": manifest.input_size,
                "build_options": manifest.build_options}
        weights, normalization = manifest.weights_path, manifest.normalization
    else:
        info, weights = declared(declaration), source
        normalization = None
        if info["scenario"] == "classification":
            from training_runtime.data.transforms import IMAGENET_MEAN, IMAGENET_STD
            normalization = (IMAGENET_MEAN, IMAGENET_STD)
    spec = get(info["scenario"], info["algorithm"])
    try:
        model = build(spec, len(info["labels"]), **info["build_options"])
    except (TypeError, ValueError) as exc:
        raise ImportRefused(f"build_options do not fit {info['algorithm']}: {exc}",
                            field="build_options") from None
    _fit(model, _weights(weights), info["algorithm"], len(info["labels"]))
    return export_artifact(model.eval(), into, scenario=info["scenario"],
                           model_name=info["algorithm"], labels=info["labels"],
                           input_size=info["input_size"], normalization=normalization,
                           metrics={}, build_options=info["build_options"],
                           extra={"lineage": "imported"}, portable=True, overwrite=True)
