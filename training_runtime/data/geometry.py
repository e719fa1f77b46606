"""Checks on boxes, polygons and RLE masks against the image they belong to (pure Python)."""

from __future__ import annotations

import math
from typing import Any

from training_runtime.data import report as codes

BOX_TOLERANCE = 1.0  # pixels a box or polygon may stick out of the image (rounding in tools)
MAX_RLE_CHARS = 10_000_000


def is_number(value: object) -> bool:
    """A finite int or float (booleans are not numbers here)."""
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def check_box(x0: float, y0: float, x1: float, y1: float,
              width: int, height: int) -> tuple[str, str] | None:
    """(code, message) for an xyxy box that is empty or leaves the image, else None."""
    if x1 <= x0 or y1 <= y0:
        return codes.EMPTY_BOX, (f"Box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) has zero or negative "
                                 "area; redraw it or delete it.")
    tol = BOX_TOLERANCE
    if x0 < -tol or y0 < -tol or x1 > width + tol or y1 > height + tol:
        return codes.BOX_OUTSIDE_IMAGE, (f"Box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) lies outside the "
                                         f"{width}x{height} image; redraw it inside the image.")
    return None


def check_polygons(value: list[Any], width: int, height: int) -> tuple[str, str] | None:
    """(code, message) for a COCO polygon list that is malformed or leaves the image."""
    if not value:
        return codes.MISSING_SEGMENTATION, "The segmentation is empty; draw the object's outline."
    tol = BOX_TOLERANCE
    for n, poly in enumerate(value):
        if not isinstance(poly, list) or not all(is_number(v) for v in poly):
            return codes.INVALID_POLYGON, (f"Polygon {n} must be a list of numbers "
                                           "[x1, y1, x2, y2, ...]; re-export the annotation.")
        if len(poly) % 2:
            return codes.INVALID_POLYGON, (f"Polygon {n} has an odd number of coordinates "
                                           f"({len(poly)}); each point needs x and y.")
        if len(poly) < 6:
            return codes.INVALID_POLYGON, (f"Polygon {n} has {len(poly) // 2} point(s); a polygon"
                                           " needs at least 3. Redraw it or delete it.")
        xs, ys = poly[0::2], poly[1::2]
        if min(xs) < -tol or min(ys) < -tol or max(xs) > width + tol or max(ys) > height + tol:
            return codes.BOX_OUTSIDE_IMAGE, (f"Polygon {n} goes outside the {width}x{height} "
                                             "image; redraw it inside the image.")
    return None


def _decode_rle_string(counts: str) -> list[int] | None:
    """pycocotools' compressed RLE string to run lengths, or None when malformed."""
    runs: list[int] = []
    p = 0
    while p < len(counts):
        x = k = 0
        more = True
        while more:
            if p >= len(counts) or k > 12:
                return None
            c = ord(counts[p]) - 48
            if not 0 <= c < 64:
                return None
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(runs) > 2:
            x += runs[-2]
        if x < 0:
            return None
        runs.append(x)
    return runs


def check_rle(value: dict[str, Any], width: int, height: int) -> tuple[str, str] | None:
    """(code, message) for an RLE dict whose size differs from the image or whose runs don't
    cover exactly height x width pixels."""
    size, counts = value.get("size"), value.get("counts")
    if (not isinstance(size, list) or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in size)):
        return codes.INVALID_RLE, "RLE needs \"size\": [height, width]; re-export the mask."
    if size != [height, width]:
        return codes.SIZE_MISMATCH, (f"RLE size {size} differs from the image's [height, width] "
                                     f"[{height}, {width}]; re-export the mask for this image.")
    if isinstance(counts, str):
        runs = _decode_rle_string(counts) if len(counts) <= MAX_RLE_CHARS else None
    elif isinstance(counts, list) and all(isinstance(v, int) and not isinstance(v, bool)
                                          and v >= 0 for v in counts):
        runs = counts
    else:
        runs = None
    if runs is None:
        return codes.INVALID_RLE, ("RLE \"counts\" must be a list of run lengths or a compressed "
                                   "string; re-export the mask.")
    if sum(runs) != width * height:
        return codes.INVALID_RLE, (f"RLE runs cover {sum(runs)} pixels, but the image has "
                                   f"{width * height}; re-export the mask.")
    return None
