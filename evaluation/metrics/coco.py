"""COCO detection and instance-segmentation evaluation, equal to pycocotools' COCOeval.

    result = evaluate(gt, detections, iou_type="bbox")
    result.stats            # the 12 numbers of COCOeval.stats, same order and meaning
    result.precision        # T x R x K x A x M, as COCOeval.eval["precision"]
    result.matches          # per-image, per-category match tables for every IoU threshold

CLI: python -m evaluation.metrics.coco GT.json DT.json --iou-type bbox

One deliberate difference: pycocotools tests annotation ids for truthiness, so a ground truth
with id 0 can never count as matched there; here matches are tracked by position and id 0 is
an ordinary id.
"""

import argparse
import json
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evaluation.metrics.coco_data import (
    Annotations,
    CocoFormatError,
    image_sizes,
    load_detections,
    load_ground_truth,
    to_rles,
)
from evaluation.metrics.coco_match import box_iou, greedy_match, mask_iou

IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
AREA_RANGES = [[0**2, 1e5**2], [0**2, 32**2], [32**2, 96**2], [96**2, 1e5**2]]
AREA_LABELS = ["all", "small", "medium", "large"]
STAT_NAMES = ["AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large",
              "AR1", "AR10", "AR100", "AR_small", "AR_medium", "AR_large"]


@dataclass(frozen=True)
class Params:
    """COCOeval.params, with the same defaults."""

    iou_type: str = "bbox"
    iou_thrs: np.ndarray = field(default_factory=lambda: IOU_THRESHOLDS.copy())
    rec_thrs: np.ndarray = field(default_factory=lambda: RECALL_THRESHOLDS.copy())
    max_dets: tuple[int, ...] = (1, 10, 100)
    area_rng: tuple[tuple[float, float], ...] = tuple(tuple(r) for r in AREA_RANGES)
    area_rng_lbl: tuple[str, ...] = tuple(AREA_LABELS)
    img_ids: tuple[Any, ...] = ()
    cat_ids: tuple[Any, ...] = ()
    use_cats: bool = True


@dataclass
class MatchTables:
    """Matches at every IoU threshold (area range "all"), one row per kept detection.

    Detections are grouped by (image, category) in sorted image order, best score first,
    truncated to the largest maxDets; `gt_*` arrays hold one row per ground truth likewise.
    Indices refer to positions in the input lists.
    """

    iou_thrs: np.ndarray
    det_index: np.ndarray
    det_image: np.ndarray
    det_category: np.ndarray
    det_score: np.ndarray
    det_rank: np.ndarray  # rank within its image and category, 0 = best score
    det_gt: np.ndarray  # T x N: index of the matched ground truth, -1 for none
    det_iou: np.ndarray  # T x N: IoU with the matched ground truth (0 for none)
    det_ignored: np.ndarray  # T x N: matched a crowd/ignored ground truth
    gt_index: np.ndarray
    gt_image: np.ndarray
    gt_category: np.ndarray
    gt_ignored: np.ndarray
    gt_det: np.ndarray  # T x G: index of the detection that matched it, -1 for none


@dataclass
class CocoResult:
    params: Params
    stats: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    scores: np.ndarray
    cat_ids: list[Any]
    matches: MatchTables

    @property
    def per_category_ap(self) -> dict[Any, float]:
        """AP@[.5:.95] per category (area all, largest maxDets); -1 without ground truth."""
        result = {}
        for k, cat in enumerate(self.cat_ids):
            s = self.precision[:, :, k, 0, -1]
            result[cat] = float(np.mean(s[s > -1])) if np.any(s > -1) else -1.0
        return result


def evaluate(gt: dict, detections: list[dict], iou_type: str = "bbox", **params: Any
             ) -> CocoResult:
    """Evaluate COCO results against ground truth exactly as pycocotools' COCOeval does."""
    if iou_type not in ("bbox", "segm"):
        raise CocoFormatError(f"iou_type must be 'bbox' or 'segm', not {iou_type!r}")
    gts, image_ids, category_ids = load_ground_truth(gt, iou_type)
    dts = load_detections(detections, image_ids, iou_type)
    p = _params(iou_type, image_ids, category_ids, params)
    gt_masks = dt_masks = None
    if iou_type == "segm":
        sizes = image_sizes(gt)
        gt_masks, dt_masks = to_rles(gts, sizes), to_rles(dts, sizes)
    per_image = _evaluate_images(p, gts, dts, gt_masks, dt_masks)
    precision, recall, scores = _accumulate(p, per_image)
    stats = _summarize(p, precision, recall)
    return CocoResult(p, stats, precision, recall, scores, list(p.cat_ids),
                      per_image.pop("tables"))


def _params(iou_type: str, image_ids: list, category_ids: list, given: dict[str, Any]) -> Params:
    known = {"iou_thrs", "rec_thrs", "max_dets", "area_rng", "area_rng_lbl", "img_ids",
             "cat_ids", "use_cats"}
    unknown = set(given) - known
    if unknown:
        raise TypeError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
    area_rng = tuple(tuple(float(v) for v in r) for r in given.get("area_rng", AREA_RANGES))
    labels = tuple(given.get("area_rng_lbl", AREA_LABELS[:len(area_rng)]))
    if len(labels) != len(area_rng):
        raise ValueError("area_rng_lbl needs one label per area range")
    use_cats = bool(given.get("use_cats", True))
    img_ids = given.get("img_ids") or image_ids
    cat_ids = given.get("cat_ids") or category_ids
    return Params(
        iou_type=iou_type,
        iou_thrs=np.asarray(given.get("iou_thrs", IOU_THRESHOLDS), dtype=np.float64),
        rec_thrs=np.asarray(given.get("rec_thrs", RECALL_THRESHOLDS), dtype=np.float64),
        max_dets=tuple(sorted(int(m) for m in given.get("max_dets", (1, 10, 100)))),
        area_rng=area_rng, area_rng_lbl=labels,
        img_ids=tuple(np.unique(np.asarray(img_ids)).tolist()),
        cat_ids=tuple(np.unique(np.asarray(cat_ids)).tolist()) if use_cats else (-1,),
        use_cats=use_cats,
    )


def _groups(annotations: Annotations, p: Params) -> dict[tuple[Any, Any], list[int]]:
    wanted_images, wanted_cats = set(p.img_ids), set(p.cat_ids)
    groups: dict[tuple[Any, Any], list[int]] = {}
    for index, (image, cat) in enumerate(zip(annotations.image_ids.tolist(),
                                             annotations.category_ids.tolist(), strict=True)):
        if image not in wanted_images or (p.use_cats and cat not in wanted_cats):
            continue
        groups.setdefault((image, cat if p.use_cats else -1), []).append(index)
    return groups


def _evaluate_images(p: Params, gts: Annotations, dts: Annotations, gt_masks: list | None,
                     dt_masks: list | None) -> dict:
    """COCOeval.evaluate: match every (category, area range, image); keep what accumulate needs."""
    gt_groups, dt_groups = _groups(gts, p), _groups(dts, p)
    max_det = p.max_dets[-1]
    n_t = len(p.iou_thrs)
    entries: dict[tuple[int, int], list] = {}
    tables: dict[str, list] = {key: [] for key in (
        "det_index", "det_image", "det_category", "det_score", "det_rank", "det_gt", "det_iou",
        "det_ignored", "gt_index", "gt_image", "gt_category", "gt_ignored", "gt_det")}
    for k, cat in enumerate(p.cat_ids):
        for image in p.img_ids:
            g = np.asarray(gt_groups.get((image, cat), []), dtype=np.int64)
            d = np.asarray(dt_groups.get((image, cat), []), dtype=np.int64)
            if len(g) == 0 and len(d) == 0:
                continue
            d = d[np.argsort(-dts.scores[d], kind="mergesort")][:max_det]
            crowd = gts.crowd[g]
            if p.iou_type == "segm":
                ious = mask_iou([dt_masks[i] for i in d], [gt_masks[i] for i in g], crowd)
            else:
                ious = box_iou(dts.boxes[d], gts.boxes[g], crowd)
            for a, (lo, hi) in enumerate(p.area_rng):
                gt_area = gts.areas[g]
                ignore = crowd | (gt_area < lo) | (gt_area > hi)
                order = np.argsort(ignore, kind="mergesort")
                sorted_ious = ious[:, order]
                matched, ignored = greedy_match(sorted_ious, ignore[order], crowd[order],
                                                p.iou_thrs)
                dt_area = dts.areas[d]
                outside = (dt_area < lo) | (dt_area > hi)
                ignored = ignored | ((matched < 0) & outside[None, :])
                entries.setdefault((k, a), []).append(
                    (dts.scores[d], matched >= 0, ignored, int(np.count_nonzero(~ignore))))
                if a == 0:
                    _add_tables(tables, image, cat, d, g[order], sorted_ious, ignore[order],
                                matched, ignored, dts.scores[d])
    return {"entries": entries, "tables": _finish_tables(tables, p.iou_thrs, n_t)}


def _add_tables(tables: dict, image: Any, cat: Any, d: np.ndarray, g: np.ndarray,
                ious: np.ndarray, gt_ignore: np.ndarray, matched: np.ndarray,
                ignored: np.ndarray, scores: np.ndarray) -> None:
    """Record one (image, category) group's matches; `g` and `ious` are in matching order."""
    hit = matched >= 0
    column = np.maximum(matched, 0)
    rows = np.broadcast_to(np.arange(len(d)), matched.shape)
    gt_det = np.full((matched.shape[0], len(g)), -1, dtype=np.int64)
    if len(g):
        tables["det_gt"].append(np.where(hit, g[column], -1))
        tables["det_iou"].append(np.where(hit, ious[rows, column], 0.0))
        for t in range(matched.shape[0]):
            gt_det[t, matched[t][hit[t]]] = d[hit[t]]
    else:
        tables["det_gt"].append(np.full(matched.shape, -1, dtype=np.int64))
        tables["det_iou"].append(np.zeros(matched.shape))
    tables["det_index"].append(d)
    tables["det_image"].append([image] * len(d))
    tables["det_category"].append([cat] * len(d))
    tables["det_score"].append(scores)
    tables["det_rank"].append(np.arange(len(d)))
    tables["det_ignored"].append(ignored)
    tables["gt_index"].append(g)
    tables["gt_image"].append([image] * len(g))
    tables["gt_category"].append([cat] * len(g))
    tables["gt_ignored"].append(gt_ignore)
    tables["gt_det"].append(gt_det)


def _finish_tables(tables: dict, iou_thrs: np.ndarray, n_t: int) -> MatchTables:
    def flat(key: str, dtype: Any = None) -> np.ndarray:
        parts = [np.asarray(part, dtype=dtype) for part in tables[key]]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)

    def wide(key: str, dtype: Any) -> np.ndarray:
        parts = tables[key]
        return np.concatenate(parts, axis=1) if parts else np.zeros((n_t, 0), dtype=dtype)

    return MatchTables(
        iou_thrs=iou_thrs, det_index=flat("det_index", np.int64),
        det_image=flat("det_image", object), det_category=flat("det_category", object),
        det_score=flat("det_score", np.float64), det_rank=flat("det_rank", np.int64),
        det_gt=wide("det_gt", np.int64), det_iou=wide("det_iou", np.float64),
        det_ignored=wide("det_ignored", bool), gt_index=flat("gt_index", np.int64),
        gt_image=flat("gt_image", object), gt_category=flat("gt_category", object),
        gt_ignored=flat("gt_ignored", bool), gt_det=wide("gt_det", np.int64))


def _accumulate(p: Params, per_image: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """COCOeval.accumulate: precision at the recall thresholds, recall, and their scores."""
    n_t, n_r, n_k = len(p.iou_thrs), len(p.rec_thrs), len(p.cat_ids)
    n_a, n_m = len(p.area_rng), len(p.max_dets)
    precision = -np.ones((n_t, n_r, n_k, n_a, n_m))
    recall = -np.ones((n_t, n_k, n_a, n_m))
    scores = -np.ones((n_t, n_r, n_k, n_a, n_m))
    for (k, a), entries in per_image["entries"].items():
        npig = sum(entry[3] for entry in entries)
        if npig == 0:
            continue
        ranks = np.concatenate([np.arange(len(entry[0])) for entry in entries])
        all_scores = np.concatenate([entry[0] for entry in entries])
        all_matched = np.concatenate([entry[1] for entry in entries], axis=1)
        all_ignored = np.concatenate([entry[2] for entry in entries], axis=1)
        for m, max_det in enumerate(p.max_dets):
            keep = ranks < max_det
            det_scores = all_scores[keep]
            order = np.argsort(-det_scores, kind="mergesort")
            sorted_scores = det_scores[order]
            matched = all_matched[:, keep][:, order]
            ignored = all_ignored[:, keep][:, order]
            tp_sum = np.cumsum(matched & ~ignored, axis=1).astype(float)
            fp_sum = np.cumsum(~matched & ~ignored, axis=1).astype(float)
            n_d = tp_sum.shape[1]
            for t in range(n_t):
                tp, fp = tp_sum[t], fp_sum[t]
                rc = tp / npig
                pr = tp / (fp + tp + np.spacing(1))
                recall[t, k, a, m] = rc[-1] if n_d else 0
                q, ss = np.zeros(n_r), np.zeros(n_r)
                if n_d:
                    pr = np.maximum.accumulate(pr[::-1])[::-1]  # precision envelope
                    inds = np.searchsorted(rc, p.rec_thrs, side="left")
                    valid = inds < n_d
                    q[valid] = pr[inds[valid]]
                    ss[valid] = sorted_scores[inds[valid]]
                precision[t, :, k, a, m] = q
                scores[t, :, k, a, m] = ss
    return precision, recall, scores


def _summarize(p: Params, precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
    """COCOeval.summarize's 12 numbers."""

    def mean(ap: bool, iou: float | None = None, area: str = "all", max_det: int = 100) -> float:
        a = [i for i, label in enumerate(p.area_rng_lbl) if label == area]
        m = [i for i, value in enumerate(p.max_dets) if value == max_det]
        s = precision if ap else recall
        if iou is not None:
            s = s[np.where(iou == p.iou_thrs)[0]]
        s = s[:, :, :, a, m] if ap else s[:, :, a, m]
        return -1.0 if len(s[s > -1]) == 0 else float(np.mean(s[s > -1]))

    md = p.max_dets
    last = md[2] if len(md) > 2 else md[-1]
    return np.array([
        mean(True, max_det=last), mean(True, 0.5, max_det=last), mean(True, 0.75, max_det=last),
        mean(True, area="small", max_det=last), mean(True, area="medium", max_det=last),
        mean(True, area="large", max_det=last),
        mean(False, max_det=md[0]), mean(False, max_det=md[1] if len(md) > 1 else md[-1]),
        mean(False, max_det=last), mean(False, area="small", max_det=last),
        mean(False, area="medium", max_det=last), mean(False, area="large", max_det=last),
    ])


def main(argv: list[str] | None = None) -> int:
    """CLI: print stats and per-category AP as JSON; exit 2 with a message on bad input."""
    parser = argparse.ArgumentParser(prog="python -m evaluation.metrics.coco",
                                     description="COCO evaluation, equal to pycocotools.")
    parser.add_argument("ground_truth", help="COCO ground-truth JSON file")
    parser.add_argument("detections", help="COCO results JSON file (a list)")
    parser.add_argument("--iou-type", choices=["bbox", "segm"], default="bbox")
    args = parser.parse_args(argv)
    try:
        gt = _read_json(args.ground_truth, "ground truth")
        dets = _read_json(args.detections, "detections")
        result = evaluate(gt, dets, iou_type=args.iou_type)
    except CocoFormatError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    names = {c.get("id"): c.get("name") for c in gt.get("categories", []) if isinstance(c, dict)}
    print(json.dumps({
        "iou_type": args.iou_type,
        "stats": [float(v) for v in result.stats],
        "stat_names": STAT_NAMES,
        "per_category": [{"category_id": cat, "name": names.get(cat), "ap": ap}
                         for cat, ap in result.per_category_ap.items()],
    }, indent=2))
    return 0


def _read_json(path: str, what: str) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise CocoFormatError(f"{what} file not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CocoFormatError(f"{what} file {path} is not valid JSON: {error}") from None


if __name__ == "__main__":
    sys.exit(main())
