"""Prediction inputs: PIL images, HxWx3 uint8 arrays, image bytes or paths -> RGB tensors.

Every malformed input raises InvalidImageError (a ValueError, which the serving app turns into
a 400) naming the input's position and what is wrong. Files and bytes are decoded with the same
format allow-list and pixel limit as training data; EXIF orientation is not applied, as in
training.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torchvision.transforms.v2 import functional as F

from training_runtime.data.images import (
    ALLOWED_FORMATS,
    DEFAULT_LIMITS,
    EXTENSIONS_TEXT,
    upright,
)

ImageInput = Any  # PIL.Image.Image | np.ndarray | bytes | str | os.PathLike


class InvalidImageError(ValueError):
    """An input that is not a usable image; the message says which one and why."""

    code = "invalid_image"


def _decode(data: bytes | os.PathLike | str, where: str) -> Image.Image:
    """Decode image bytes or a file as RGB within the platform's limits."""
    try:
        source = io.BytesIO(data) if isinstance(data, bytes) else open(data, "rb")  # noqa: SIM115
    except OSError as exc:
        raise InvalidImageError(f"{where}: cannot read the file ({exc.strerror}).") from None
    try:
        with source, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source, formats=ALLOWED_FORMATS) as im:
                if im.size[0] * im.size[1] > DEFAULT_LIMITS.max_pixels:
                    raise InvalidImageError(f"{where}: {im.size[0]}x{im.size[1]} pixels is over "
                                            f"the limit of {DEFAULT_LIMITS.max_pixels}.")
                im.load()
                return upright(im).convert("RGB")
    except InvalidImageError:
        raise
    except Image.UnidentifiedImageError:
        raise InvalidImageError(f"{where}: not an image Pillow can read as {EXTENSIONS_TEXT}."
                                ) from None
    except Exception as exc:  # hostile bytes can raise anything from inside a decoder
        raise InvalidImageError(f"{where}: the image is corrupt or truncated "
                                f"({type(exc).__name__}).") from None


def _from_array(array: np.ndarray, where: str) -> Tensor:
    """A CxHxW uint8 tensor from an HxWx3 uint8 array."""
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise InvalidImageError(f"{where}: expected an HxWx3 uint8 array, got shape "
                                f"{array.shape} and dtype {array.dtype}.")
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).contiguous()


def to_tensor(image: ImageInput, where: str = "image") -> Tensor:
    """The RGB image as a CxHxW uint8 tensor, or InvalidImageError."""
    if isinstance(image, Tensor) and image.dtype == torch.uint8 and image.dim() == 3 \
            and image.shape[0] == 3:  # already decoded (a server decodes before it batches)
        tensor = image
    elif isinstance(image, Image.Image):
        tensor = F.pil_to_tensor(upright(image).convert("RGB"))
    elif isinstance(image, np.ndarray):
        tensor = _from_array(image, where)
    elif isinstance(image, bytes | str | os.PathLike):
        tensor = F.pil_to_tensor(_decode(image, where))
    else:
        raise InvalidImageError(f"{where}: expected a PIL image, an HxWx3 uint8 array, image "
                                f"bytes or a path, got {type(image).__name__}.")
    if tensor.shape[1] == 0 or tensor.shape[2] == 0:
        raise InvalidImageError(f"{where}: the image has no pixels.")
    return tensor


def resize(image: Tensor, input_size: tuple[int, int]) -> Tensor:
    """A uint8 CxHxW image at the model's input size: the eval transforms' first step."""
    return F.resize(image, list(input_size), antialias=True)


def normalize(images: Tensor, normalization: tuple[Sequence[float], Sequence[float]] | None
              ) -> Tensor:
    """uint8 images (CxHxW, or a NxCxHxW batch at once) scaled to [0, 1] and normalised: the
    eval transforms' last steps."""
    scaled = F.to_dtype(images, torch.float32, scale=True)
    if normalization is None:
        return scaled
    mean, std = normalization
    return F.normalize(scaled, mean=list(mean), std=list(std))


def preprocess(image: Tensor, input_size: tuple[int, int],
               normalization: tuple[Sequence[float], Sequence[float]] | None) -> Tensor:
    """Resize a uint8 CxHxW image, scale to [0, 1] and normalise: the eval transforms' steps."""
    return normalize(resize(image, input_size), normalization)
