"""Export of trained models as self-describing artifact folders (see artifact.py).

    path = export.export_artifact(model, "/artifacts/model-7", scenario="classification",
                                  model_name="resnet18", labels=labels, input_size=(224, 224),
                                  normalization=(IMAGENET_MEAN, IMAGENET_STD), metrics=metrics)
    manifest = export.load_manifest(path)     # ArtifactError when damaged or tampered with
"""

from training_runtime.export.artifact import (
    FORMAT_VERSION,
    MANIFEST_NAME,
    WEIGHTS_NAME,
    ArtifactError,
    Manifest,
    export_artifact,
    export_checkpoint,
    load_manifest,
    sha256_of,
)
from training_runtime.export.programs import ProgramError, load_program

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "WEIGHTS_NAME",
    "ArtifactError",
    "Manifest",
    "ProgramError",
    "export_artifact",
    "export_checkpoint",
    "load_manifest",
    "load_program",
    "sha256_of",
]
