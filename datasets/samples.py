"""Built-in sample datasets (SPEC T2): one per scenario, generated, deterministic, shared.

They belong to a platform tenant that nobody can sign in to, so their events and stored zips
have an owner like everything else; `Dataset.objects.visible_to(tenant)` shows them to every
tenant, and commands refuse to change them.

- classification: scikit-learn's handwritten digits (1,797 images, 8x8 upscaled to 32x32
  PNGs, one folder per digit); synthetic shapes when scikit-learn is not installed;
- detection and segmentation: synthetic COCO, coloured rectangles, ellipses and triangles on
  noise, with polygons.
"""

import io
import json
import math
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from django.core.files.base import ContentFile
from PIL import Image, ImageDraw

from accounts.api import TenantRef, ensure_tenant
from datasets import commands
from datasets.models import Dataset

PLATFORM_TENANT_ID = uuid.UUID("5a3b1e00-0000-4000-8000-000000000001")
PLATFORM_TENANT_NAME = "Platform (built-in samples)"
SHAPES = ("rectangle", "ellipse", "triangle")
SHAPE_COLOURS = {"rectangle": (220, 60, 50), "ellipse": (60, 190, 80), "triangle": (60, 90, 220)}


@dataclass(frozen=True)
class Sample:
    name: str
    kind: str
    format: str
    build: Callable[[int | None], bytes]  # images (None: the full sample) -> zip bytes


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue()


def _zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in sorted(files.items()):
            method = zipfile.ZIP_STORED if name.endswith(".png") else zipfile.ZIP_DEFLATED
            zf.writestr(name, data, compress_type=method)
    return out.getvalue()


def digits_zip(images: int | None = None) -> bytes:
    """scikit-learn's digits as `<digit>/<n>.png`, 32x32 grey; `images` caps the count."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    count = len(digits.target) if images is None else min(images, len(digits.target))
    files = {}
    for n in range(count):
        pixels = (digits.images[n] * (255 / 16)).clip(0, 255).astype(np.uint8)
        image = Image.fromarray(pixels, mode="L").resize((32, 32), Image.Resampling.BILINEAR)
        files[f"{digits.target[n]}/{n:04d}.png"] = _png(image)
    return _zip(files)


def _noise(rng: np.random.Generator, size: int) -> Image.Image:
    base = rng.integers(70, 150, size=3)
    pixels = base + rng.normal(0, 18, size=(size, size, 3))
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8), mode="RGB")


def _polygon(shape: str, cx: float, cy: float, rx: float, ry: float) -> list[float]:
    if shape == "rectangle":
        points = [(cx - rx, cy - ry), (cx + rx, cy - ry), (cx + rx, cy + ry), (cx - rx, cy + ry)]
    elif shape == "triangle":
        points = [(cx, cy - ry), (cx + rx, cy + ry), (cx - rx, cy + ry)]
    else:
        steps = [2 * math.pi * k / 24 for k in range(24)]
        points = [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in steps]
    return [round(v, 1) for point in points for v in point]


def _colour(rng: np.random.Generator, shape: str) -> tuple[int, int, int]:
    return tuple(int(c) for c in np.clip(np.array(SHAPE_COLOURS[shape]) + rng.integers(
        -25, 26, size=3), 0, 255))


def shapes_folders_zip(images: int | None = None) -> bytes:
    """One shape per 32x32 image, `<shape>/<n>.png` (the classification fallback)."""
    rng = np.random.default_rng(7)
    count = 240 if images is None else images
    files = {}
    for n in range(count):
        shape = SHAPES[n % len(SHAPES)]
        image = _noise(rng, 32)
        cx, cy = rng.uniform(12, 20, size=2)
        rx, ry = rng.uniform(6, 10, size=2)
        flat = _polygon(shape, cx, cy, rx, ry)
        ImageDraw.Draw(image).polygon(list(zip(flat[::2], flat[1::2], strict=True)),
                                      fill=_colour(rng, shape))
        files[f"{shape}/{n:04d}.png"] = _png(image)
    return _zip(files)


def shapes_coco_zip(images: int | None = None, *, seed: int = 11) -> bytes:
    """64x64 noise images with 1 to 3 shapes each, as COCO with boxes and polygons."""
    rng = np.random.default_rng(seed)
    count = 150 if images is None else images
    files: dict[str, bytes] = {}
    doc: dict = {"images": [], "annotations": [],
                 "categories": [{"id": i + 1, "name": s} for i, s in enumerate(SHAPES)]}
    for n in range(count):
        image = _noise(rng, 64)
        draw = ImageDraw.Draw(image)
        file_name = f"{n:04d}.png"
        doc["images"].append({"id": n + 1, "file_name": file_name, "width": 64, "height": 64})
        for k in range(int(rng.integers(1, 4))):
            shape = SHAPES[(n + k) % len(SHAPES)]
            rx, ry = rng.uniform(5, 12, size=2)
            cx, cy = rng.uniform(rx + 1, 63 - rx), rng.uniform(ry + 1, 63 - ry)
            flat = _polygon(shape, cx, cy, rx, ry)
            draw.polygon(list(zip(flat[::2], flat[1::2], strict=True)), fill=_colour(rng, shape))
            xs, ys = flat[::2], flat[1::2]
            box = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
            doc["annotations"].append({
                "id": len(doc["annotations"]) + 1, "image_id": n + 1,
                "category_id": SHAPES.index(shape) + 1, "bbox": [round(v, 1) for v in box],
                "area": round(box[2] * box[3], 1), "segmentation": [flat], "iscrowd": 0})
        files[f"images/{file_name}"] = _png(image)
    files["annotations.json"] = json.dumps(doc).encode()
    return _zip(files)


def _classification() -> Sample:
    try:
        import sklearn.datasets  # noqa: F401
    except ImportError:
        return Sample("Sample: shapes (classification)", "classification", "folders",
                      shapes_folders_zip)
    return Sample("Sample: handwritten digits", "classification", "folders", digits_zip)


def samples() -> list[Sample]:
    """The built-in samples, one per scenario."""
    return [
        _classification(),
        Sample("Sample: shapes (detection)", "detection", "coco", shapes_coco_zip),
        Sample("Sample: shapes (segmentation)", "segmentation", "coco",
               lambda images: shapes_coco_zip(images, seed=13)),
    ]


def platform_tenant() -> TenantRef:
    """The tenant that owns the built-in samples (created on first use; nobody signs in)."""
    return ensure_tenant(PLATFORM_TENANT_ID, PLATFORM_TENANT_NAME)


def seed_samples(*, images: int | None = None) -> list[Dataset]:
    """Create the built-in samples that are missing; returns the ones created now."""
    tenant = platform_tenant()
    existing = set(Dataset.objects.for_tenant(tenant.id).filter(
        builtin=True, archived_at__isnull=True).values_list("name", flat=True))
    created = []
    for sample in samples():
        if sample.name in existing:
            continue
        upload = ContentFile(sample.build(images), name="sample.zip")
        created.append(commands.add_builtin(tenant.id, upload, name=sample.name,
                                            kind=sample.kind, fmt=sample.format))
    return created
