"""A model's downloadable formats in storage, and the copies a task's `output_path` asks for.

    models/<tenant>/<model>.zip               the platform's artifact (artifacts.py)
    models/<tenant>/<model>.onnx              ONNX, when the export could build and check it
    models/<tenant>/<model>.torchscript.pt    TorchScript, likewise
    exports/<tenant>/<output_path>/...        the same three files, when the task named a path

The model's `formats` (recorded by the event that registers it) say per format either where
its file is or why there is none.
"""

import json
import posixpath
from pathlib import Path
from typing import Any

from core.errors import ValidationFailed
from modelregistry import artifacts

FORMATS = ("artifact", "onnx", "torchscript")
SUFFIXES = {"artifact": ".zip", "onnx": ".onnx", "torchscript": ".torchscript.pt"}
OUTPUT_ROOT = "exports"


def key_of(tenant_id: object, model_id: object, fmt: str) -> str:
    """Where format `fmt` of a model is stored."""
    return f"models/{tenant_id}/{model_id}{SUFFIXES[fmt]}"


def output_prefix(tenant_id: object, output_path: str) -> str:
    """The storage prefix a task's `output_path` names, inside the tenant's own `exports/<id>/`;
    a 400 on `output_path` for a path that leaves it (absolute, `..`, another tenant's)."""
    own = f"{OUTPUT_ROOT}/{tenant_id}"
    path = (output_path or "").strip()
    problem = None
    if path.startswith(("/", "\\")) or ":" in path or "\\" in path:
        problem = "must be a relative path inside your exports folder"
    elif any(part == ".." for part in path.split("/")):
        problem = "must not contain '..'"
    elif path.startswith(f"{OUTPUT_ROOT}/") and not (path + "/").startswith(own + "/"):
        problem = "names another tenant's exports folder"
    if problem:
        raise ValidationFailed(f"output_path {problem}.", fields={"output_path": [
            f"{problem.capitalize()} (files go to {own}/<output_path>/)."]})
    if (path + "/").startswith(own + "/"):
        path = path[len(own):]
    relative = posixpath.normpath("/" + path).lstrip("/")
    return own if relative in ("", ".") else f"{own}/{relative}"


def _summary(folder: Path) -> dict[str, dict[str, Any]]:
    """The manifest's `exports` entries (file, max_abs_diff, ... or unavailable)."""
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    exports = manifest.get("exports") or {}
    return {fmt: dict(exports.get(fmt) or {"unavailable": "not exported by this platform "
                                                          "version"})
            for fmt in FORMATS[1:]}


def store(folder: Path, tenant_id: object, model_id: object,
          output_path: str = "") -> dict[str, dict[str, Any]]:
    """Upload the ONNX and TorchScript files of an exported artifact folder (the zip is
    stored by artifacts.store) and, for an `output_path`, copies of all three; the formats."""
    formats: dict[str, dict[str, Any]] = {"artifact": {"key": key_of(tenant_id, model_id,
                                                                      "artifact")}}
    for fmt, entry in _summary(folder).items():
        if "file" in entry and (folder / entry["file"]).is_file():
            key = key_of(tenant_id, model_id, fmt)
            artifacts.upload(folder / entry["file"], key)
            formats[fmt] = {"key": key, **{k: v for k, v in entry.items()
                                           if k in ("max_abs_diff", "opset", "fixed_input_size")}}
        else:
            formats[fmt] = {"unavailable": entry.get("unavailable", "not exported")}
    if output_path:
        prefix = output_prefix(tenant_id, output_path)
        for fmt, entry in formats.items():
            if "key" in entry:
                artifacts.copy(entry["key"], f"{prefix}/{model_id}{SUFFIXES[fmt]}")
    return formats


def available(formats: dict[str, Any]) -> list[str]:
    """The formats a model can be downloaded in, in FORMATS order."""
    return [fmt for fmt in FORMATS if "key" in (formats.get(fmt) or {})]
