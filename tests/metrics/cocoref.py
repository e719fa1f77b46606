"""pycocotools' COCOeval as the reference, with the engine's parameter names.

`reference(gt, dets, iou_type, **params)` runs COCO/COCOeval quietly on deep copies of the
inputs (pycocotools mutates them) with `iou_thrs`, `max_dets`, `area_rng`, `area_rng_lbl`,
`cat_ids`, `img_ids`, `use_cats`; an empty results list, which `loadRes` cannot take, is
evaluated as results with no annotations. `differences(result, ref)` lists where an engine result
departs from it. faster-coco-eval is a second reference.
"""

import contextlib
import copy
import io
from dataclasses import dataclass

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

PARAM_NAMES = {
    "iou_thrs": "iouThrs",
    "max_dets": "maxDets",
    "area_rng": "areaRng",
    "area_rng_lbl": "areaRngLbl",
    "cat_ids": "catIds",
    "img_ids": "imgIds",
    "use_cats": "useCats",
}


@dataclass(frozen=True)
class Reference:
    stats: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    per_category_ap: dict[int, float]


def _empty_results(coco_gt: COCO) -> COCO:
    """What loadRes would give for an empty list (it fails on one): no annotations."""
    results = COCO()
    results.dataset = {"images": list(coco_gt.dataset["images"]),
                       "categories": copy.deepcopy(coco_gt.dataset["categories"]),
                       "annotations": []}
    results.createIndex()
    return results


def _per_category_ap(evaluation: COCOeval) -> dict[int, float]:
    """AP@[.5:.95] per category, area "all", maxDets 100; −1 without ground truth."""
    p = evaluation.params
    if not p.useCats or "all" not in p.areaRngLbl or 100 not in p.maxDets:
        return {}
    a, m = list(p.areaRngLbl).index("all"), list(p.maxDets).index(100)
    aps = {}
    for k, cat_id in enumerate(p.catIds):
        s = evaluation.eval["precision"][:, :, k, a, m]
        aps[int(cat_id)] = float(np.mean(s[s > -1])) if (s > -1).any() else -1.0
    return aps


def reference(gt: dict, dets: list[dict], iou_type: str = "bbox", **params: object) -> Reference:
    """pycocotools' COCOeval on deep copies of the inputs, its prints swallowed."""
    unknown = set(params) - set(PARAM_NAMES)
    if unknown:
        raise TypeError(f"unknown COCOeval parameters {sorted(unknown)}")
    gt, dets = copy.deepcopy(gt), copy.deepcopy(dets)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(dets) if dets else _empty_results(coco_gt)
        evaluation = COCOeval(coco_gt, coco_dt, iou_type)
        for name, value in params.items():
            if name == "iou_thrs":
                value = np.asarray(value, dtype=float)
            elif name == "use_cats":
                value = int(bool(value))
            setattr(evaluation.params, PARAM_NAMES[name], copy.deepcopy(value))
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return Reference(
        stats=np.asarray(evaluation.stats, dtype=float),
        precision=evaluation.eval["precision"],
        recall=evaluation.eval["recall"],
        per_category_ap=_per_category_ap(evaluation),
    )


def reference_stats(gt: dict, dets: list[dict], iou_type: str = "bbox",
                    **params: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(stats, precision, recall) as pycocotools computes them."""
    ref = reference(gt, dets, iou_type, **params)
    return ref.stats, ref.precision, ref.recall


def faster_coco_eval_stats(gt: dict, dets: list[dict], iou_type: str = "bbox") -> np.ndarray:
    """The 12 stats from faster-coco-eval's COCOeval_faster, a second reference."""
    from faster_coco_eval import COCO as FasterCOCO
    from faster_coco_eval import COCOeval_faster

    gt, dets = copy.deepcopy(gt), copy.deepcopy(dets)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = FasterCOCO(gt)
        coco_dt = coco_gt.loadRes(dets)
        evaluation = COCOeval_faster(coco_gt, coco_dt, iou_type, print_function=lambda *a: None)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return np.asarray(evaluation.stats[:12], dtype=float)


STAT_NAMES = ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large",
              "AR1", "AR10", "AR100", "AR_small", "AR_medium", "AR_large")


def differences(result: object, ref: Reference, *, atol: float = 1e-9) -> list[str]:
    """Where an engine result differs from the reference: stats, precision, recall, per-category
    AP; one line each, empty when they agree to `atol`."""
    found = []
    for name in ("stats", "precision", "recall"):
        mine = np.asarray(getattr(result, name), dtype=float)
        theirs = getattr(ref, name)
        if mine.shape != theirs.shape:
            found.append(f"{name}: engine shape {mine.shape}, pycocotools {theirs.shape}")
            continue
        bad = np.argwhere(~np.isclose(mine, theirs, atol=atol, rtol=0))
        if name == "stats":
            found += [f"stats[{i}] {STAT_NAMES[i] if i < 12 else ''}: engine {mine[i]!r}, "
                      f"pycocotools {theirs[i]!r}" for (i,) in bad]
        elif len(bad):
            first = tuple(int(i) for i in bad[0])
            found.append(f"{name}: {len(bad)} cells differ, first at {first}: engine "
                         f"{mine[first]!r}, pycocotools {theirs[first]!r}")
    if ref.per_category_ap:
        mine_ap = {int(k): float(v) for k, v in result.per_category_ap.items()}
        for cat_id in sorted(set(mine_ap) | set(ref.per_category_ap)):
            a, b = mine_ap.get(cat_id), ref.per_category_ap.get(cat_id)
            if a is None or b is None or abs(a - b) > atol:
                found.append(f"per_category_ap[{cat_id}]: engine {a!r}, pycocotools {b!r}")
    return found
