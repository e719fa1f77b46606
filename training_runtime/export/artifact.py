"""Model artifacts: one self-describing folder per exported model, written atomically.

    model-7/
      manifest.json         # what the model is and how to feed it; sha256 of every file
      weights.pt            # the state_dict (torch.load(..., weights_only=True) reads it)
      program.pt2           # classification only: a torch.export program (see programs.py)

The folder is built as a hidden sibling (".<name>.tmp-*") and renamed into place, so a reader
never sees half an artifact. `load_manifest` refuses a manifest of an unknown format version,
with a missing or ill-typed key, or whose files are missing or have another sha256.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import torch
import torchvision
from torch import nn

from training_runtime.export import formats, programs
from training_runtime.models import SCENARIOS, UnknownModelError, build, get
from training_runtime.train.checkpoint import load_checkpoint

MANIFEST_NAME = "manifest.json"
WEIGHTS_NAME = "weights.pt"
FORMAT = "automl-model"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("format", "format_version", "scenario", "model_name", "labels", "input_size",
                 "normalization", "build_options", "metrics", "program", "files", "created_at")
ProgramChoice = Literal["auto", "export", "torchscript", "none"]


class ArtifactError(Exception):
    """An artifact that cannot be written or trusted; `code` names the reason."""

    def __init__(self, message: str, *, code: str = "invalid_artifact") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Manifest:
    """A validated manifest.json and the folder it describes."""

    root: Path
    scenario: str
    model_name: str
    labels: tuple[str, ...]
    input_size: tuple[int, int]
    normalization: tuple[tuple[float, ...], tuple[float, ...]] | None
    build_options: dict[str, Any]
    metrics: dict[str, Any]
    program: dict[str, str] | None
    files: dict[str, dict[str, Any]]
    created_at: str
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)
    exports: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def weights_path(self) -> Path:
        """The state_dict file."""
        return self.root / WEIGHTS_NAME

    @property
    def program_path(self) -> Path | None:
        """The program file, or None when the artifact has weights only."""
        return self.root / self.program["file"] if self.program else None


def sha256_of(path: Path) -> str:
    """The hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _labels(labels: Any) -> tuple[str, ...]:
    """`labels` as a tuple of distinct non-empty strings, or ArtifactError."""
    if (not isinstance(labels, list | tuple) or not labels
            or not all(isinstance(x, str) and x for x in labels)):
        raise ArtifactError(f"labels must be a non-empty list of non-empty strings, "
                            f"got {labels!r}.")
    if len(set(labels)) != len(labels):
        raise ArtifactError(f"labels must be distinct, got {list(labels)!r}.")
    return tuple(labels)


def _input_size(size: Any) -> tuple[int, int]:
    """`size` as (height, width) of positive ints (an int means a square), or ArtifactError."""
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size, size)
    ok = (isinstance(size, list | tuple) and len(size) == 2
          and all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in size))
    if not ok:
        raise ArtifactError(f"input_size must be [height, width] in pixels, got {size!r}.")
    return int(size[0]), int(size[1])


def _normalization(value: Any) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """(mean, std), three finite numbers each and std > 0, or None; else ArtifactError."""
    if value is None:
        return None
    if isinstance(value, dict):
        value = (value.get("mean"), value.get("std"))
    try:
        mean, std = (tuple(float(x) for x in part) for part in value)
    except (TypeError, ValueError):
        raise ArtifactError(f"normalization must be (mean, std) or null, got {value!r}.") from None
    if (len(mean) != 3 or len(std) != 3 or not all(math.isfinite(x) for x in mean + std)
            or min(std) <= 0):
        raise ArtifactError(f"normalization needs 3 finite means and 3 positive stds, "
                            f"got mean={mean} std={std}.")
    return mean, std


def _spec(scenario: Any, model_name: Any) -> None:
    """ArtifactError unless the registry knows (scenario, model_name)."""
    if scenario not in SCENARIOS:
        raise ArtifactError(f"Unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}.")
    try:
        get(scenario, model_name)
    except UnknownModelError as exc:
        raise ArtifactError(str(exc), code="unknown_model") from None


def _write_program(choice: ProgramChoice, scenario: str, model: nn.Module, folder: Path,
                   input_size: tuple[int, int], num_labels: int) -> dict[str, str] | None:
    """The program entry of the manifest after writing it, or None for weights only."""
    if choice == "none":
        return None
    if scenario != "classification":
        if choice == "auto":
            return None
        raise ArtifactError(f"program={choice!r} is supported for classification only; "
                            f"export {scenario} models with program='auto' or 'none'.")
    kinds: tuple[programs.ProgramKind, ...] = (
        ("export", "torchscript") if choice == "auto" else (choice,))
    errors = []
    for kind in kinds:
        try:
            name = programs.write_program(kind, model, folder, input_size, num_labels)
            return {"kind": kind, "file": name}
        except programs.ProgramError as exc:
            errors.append(str(exc))
            with contextlib.suppress(FileNotFoundError):
                (folder / programs.PROGRAM_FILES[kind]).unlink()
    if choice == "auto":
        return None
    raise ArtifactError("; ".join(errors), code=programs.ProgramError.code)


def export_artifact(model: nn.Module, path: Path | str, *, scenario: str, model_name: str,
                    labels: list[str] | tuple[str, ...], input_size: int | tuple[int, int],
                    normalization: tuple[Any, Any] | None, metrics: dict[str, Any],
                    build_options: dict[str, Any] | None = None,
                    extra: dict[str, Any] | None = None, program: ProgramChoice = "auto",
                    overwrite: bool = False, portable: bool = False) -> Path:
    """Write `model` as an artifact folder at `path` (atomically) and return `path`.

    `build_options` are the keyword arguments `models.build` needs to rebuild the same
    architecture (e.g. min_size/max_size of a detector). `program`: "auto" writes a
    torch.export program for classification (TorchScript if export fails, nothing if both
    fail) and weights only for detection/segmentation; "export"/"torchscript" insist.
    `portable` also writes ONNX and TorchScript files (formats.py), each checked against the
    eager model; the manifest's `exports` says which exist and why any other does not.
    """
    _spec(scenario, model_name)
    label_list = _labels(labels)
    size = _input_size(input_size)
    norm = _normalization(normalization)
    options = dict(build_options or {})
    if program not in ("auto", "export", "torchscript", "none"):
        raise ArtifactError(f"program must be auto, export, torchscript or none, got {program!r}.")
    path = Path(path)
    if path.exists() and not overwrite:
        raise ArtifactError(f"{path} already exists; pick another path or pass overwrite=True.",
                            code="artifact_exists")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        torch.save(state, tmp / WEIGHTS_NAME)
        program_entry = _write_program(program, scenario, model, tmp, size, len(label_list))
        exports = (formats.write_formats(model, tmp, scenario=scenario, input_size=size,
                                         num_labels=len(label_list)) if portable else {})
        files = {p.name: {"sha256": sha256_of(p), "bytes": p.stat().st_size}
                 for p in sorted(tmp.iterdir())}
        manifest = {
            "format": FORMAT, "format_version": FORMAT_VERSION,
            "scenario": scenario, "model_name": model_name, "labels": list(label_list),
            "input_size": list(size),
            "normalization": None if norm is None else {"mean": list(norm[0]),
                                                        "std": list(norm[1])},
            "build_options": options, "metrics": dict(metrics), "extra": dict(extra or {}),
            "program": program_entry, "files": files, "exports": exports,
            "preprocessing": preprocessing(scenario, size, norm),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "torch_version": torch.__version__, "torchvision_version": torchvision.__version__,
        }
        try:
            text = json.dumps(manifest, indent=2, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ArtifactError(f"metrics, build_options and extra must be plain JSON values "
                                f"(finite numbers): {exc}") from None
        (tmp / MANIFEST_NAME).write_text(text + "\n", encoding="utf-8")
        _replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def preprocessing(scenario: str, size: tuple[int, int],
                  norm: tuple[tuple[float, ...], tuple[float, ...]] | None) -> dict[str, Any]:
    """How an image becomes the model's input, for someone with only the manifest."""
    steps = {"colour_order": "RGB", "layout": "NCHW", "dtype": "float32",
             "resize": f"stretch to height {size[0]} x width {size[1]} (bilinear, antialiased; "
                       f"aspect ratio not kept)", "scale": "divide 8-bit values by 255 (to [0, 1])"}
    if norm is not None:
        steps["normalise"] = {"mean": list(norm[0]), "std": list(norm[1]),
                              "rule": "(x - mean) / std per channel, after scaling"}
    if scenario != "classification":
        steps["outputs"] = ("boxes in pixels of the resized input: multiply x by original "
                            "width / input width and y by original height / input height; "
                            "label k is labels[k - 1]")
    return steps


def _replace(tmp: Path, path: Path) -> None:
    """Rename the finished folder `tmp` to `path`, moving an old artifact aside first."""
    old = None
    if path.exists():
        old = path.parent / f".{path.name}.old-{os.getpid()}-{os.urandom(4).hex()}"
        os.rename(path, old)
    os.rename(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def export_checkpoint(checkpoint: Path | str, path: Path | str, *, scenario: str,
                      model_name: str, labels: list[str] | tuple[str, ...],
                      input_size: int | tuple[int, int], normalization: tuple[Any, Any] | None,
                      build_options: dict[str, Any] | None = None, **kwargs: Any) -> Path:
    """Export a trainer's `best.pt` (weights, metric name and value, epoch) as an artifact."""
    state = load_checkpoint(checkpoint)
    if not isinstance(state, dict) or "model" not in state:
        raise ArtifactError(f"{checkpoint} is not a training checkpoint (no 'model' weights).")
    model = build(get(scenario, model_name), num_classes=len(_labels(labels)),
                  **(build_options or {}))
    model.load_state_dict(state["model"])
    metrics = dict(kwargs.pop("metrics", {}))
    if state.get("metric_name") and state.get("metric") is not None:
        metrics.setdefault(state["metric_name"], state["metric"])
    if state.get("epoch") is not None:
        metrics.setdefault("epoch", state["epoch"])
    return export_artifact(model.eval(), path, scenario=scenario, model_name=model_name,
                           labels=labels, input_size=input_size, normalization=normalization,
                           metrics=metrics, build_options=build_options, **kwargs)


def _read_json(root: Path) -> dict[str, Any]:
    """The parsed manifest.json of `root`, or ArtifactError."""
    manifest_path = root / MANIFEST_NAME
    if not manifest_path.is_file():
        raise ArtifactError(f"{root} is not a model artifact: {MANIFEST_NAME} is missing.",
                            code="artifact_not_found")
    try:
        data = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{manifest_path} is not valid JSON ({exc}); re-export the model."
                            ) from None
    if not isinstance(data, dict):
        raise ArtifactError(f"{manifest_path} must hold a JSON object; re-export the model.")
    return data


def _check_files(root: Path, files: Any, program: Any) -> None:
    """ArtifactError unless every listed file exists with its sha256 (weights always listed)."""
    if not isinstance(files, dict) or WEIGHTS_NAME not in files:
        raise ArtifactError(f"manifest 'files' must list {WEIGHTS_NAME} with its sha256.")
    if program is not None and (not isinstance(program, dict)
                                or program.get("kind") not in programs.PROGRAM_FILES
                                or program.get("file") not in files):
        raise ArtifactError(f"manifest 'program' must be null or a kind in "
                            f"{sorted(programs.PROGRAM_FILES)} with a listed file, "
                            f"got {program!r}.")
    for name, entry in files.items():
        if (not isinstance(name, str) or Path(name).name != name or name in ("", ".", "..")
                or name == MANIFEST_NAME):
            raise ArtifactError(f"manifest lists {name!r}, which is not a file of the artifact.")
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            raise ArtifactError(f"manifest entry of {name} needs a sha256.")
        file = root / name
        if not file.is_file():
            raise ArtifactError(f"{name} is missing from {root}; re-export the model.",
                                code="artifact_incomplete")
        actual = sha256_of(file)
        if actual != entry["sha256"]:
            raise ArtifactError(f"{name} has sha256 {actual[:12]}..., the manifest says "
                                f"{entry['sha256'][:12]}...: the file was changed or damaged; "
                                f"re-export the model.", code="artifact_tampered")


def load_manifest(path: Path | str, *, verify_files: bool = True) -> Manifest:
    """The validated manifest of the artifact folder `path` (sha256 of files checked)."""
    root = Path(path)
    data = _read_json(root)
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise ArtifactError(f"manifest.json of {root} lacks {', '.join(missing)}; "
                            f"re-export the model.")
    if data["format"] != FORMAT:
        raise ArtifactError(f"manifest format is {data['format']!r}, expected {FORMAT!r}.")
    version = data["format_version"]
    if version != FORMAT_VERSION:
        hint = ("upgrade the platform" if isinstance(version, int) and version > FORMAT_VERSION
                else "re-export the model")
        raise ArtifactError(f"Artifact format version {version!r} is not supported (this "
                            f"platform reads version {FORMAT_VERSION}); {hint}.",
                            code="unsupported_format")
    _spec(data["scenario"], data["model_name"])
    for key in ("build_options", "metrics"):
        if not isinstance(data[key], dict):
            raise ArtifactError(f"manifest '{key}' must be an object, got {data[key]!r}.")
    if verify_files:
        _check_files(root, data["files"], data["program"])
    return Manifest(
        root=root, scenario=data["scenario"], model_name=data["model_name"],
        labels=_labels(data["labels"]), input_size=_input_size(data["input_size"]),
        normalization=_normalization(data["normalization"]),
        build_options=data["build_options"], metrics=data["metrics"], program=data["program"],
        files=data["files"], created_at=str(data["created_at"]), format_version=version,
        extra=data.get("extra") if isinstance(data.get("extra"), dict) else {},
        exports=data.get("exports") if isinstance(data.get("exports"), dict) else {})
