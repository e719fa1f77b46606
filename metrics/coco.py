"""COCO detection and instance-segmentation evaluation, equal to pycocotools' COCOeval.

    result = evaluate(gt, detections, iou_type="bbox")
    result.stats            # the 12 numbers of COCOeval.stats, same order and meaning
    result.precision        # T x R x K x A x M, as COCOeval.eval["precision"]
    result.matches          # per-image, per-category match tables for every IoU threshold

CLI: python -m metrics.coco GT.json DT.json --iou-type bbox

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

from metrics.coco_data import (
    Annotations,
    CocoFormatError,
    image_sizes,
    load_detections,
    load_ground_truth,
    to_rles,
)
from metrics.coco_match import (
    Matches,
    Pairs,
    box_iou_pairs,
    make_pairs,
    mask_iou_pairs,
    match_all,
)

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

    @property
    def all_index(self) -> int:
        """The area range reports use: the one labelled "all", else the first."""
        return self.area_rng_lbl.index("all") if "all" in self.area_rng_lbl else 0

    @property
    def eval_cat_ids(self) -> tuple[Any, ...]:
        """Categories along the K axis: all of them, or one (-1) when categories are pooled."""
        return self.cat_ids if self.use_cats else (-1,)


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
    gt: Annotations  # the parsed inputs, in input order, for reports that look beyond matches
    dt: Annotations
    image_sizes: dict[Any, tuple[int, int]]  # image id -> (height, width), where given
    cache: dict = field(default_factory=dict, repr=False, compare=False)  # for report views

    @property
    def per_category_ap(self) -> dict[Any, float]:
        """AP@[.5:.95] per category (area all, maxDets 100 like stats[0], else the largest);
        -1 without ground truth."""
        max_dets = self.params.max_dets
        m = max_dets.index(100) if 100 in max_dets else len(max_dets) - 1
        result = {}
        for k, cat in enumerate(self.cat_ids):
            s = self.precision[:, :, k, self.params.all_index, m]
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
    sizes = image_sizes(gt)
    if iou_type == "segm":
        gt_masks, dt_masks = to_rles(gts, sizes), to_rles(dts, sizes)
    per_image = _evaluate_images(p, gts, dts, gt_masks, dt_masks)
    per_image["scores"] = dts.scores[per_image["det"]]
    precision, recall, scores = _accumulate(p, per_image)
    stats = _summarize(p, precision, recall)
    return CocoResult(p, stats, precision, recall, scores, list(p.eval_cat_ids),
                      per_image.pop("tables"), gts, dts, sizes)


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
        # The reference sorts them only when categories are used; pooled, the given order
        # decides ties between categories.
        cat_ids=tuple(np.unique(np.asarray(cat_ids)).tolist() if use_cats else cat_ids),
        use_cats=use_cats,
    )


def _index(values: np.ndarray, wanted: tuple) -> np.ndarray:
    """Position of each value in the sorted `wanted` ids, -1 when not wanted."""
    lookup = {value: position for position, value in enumerate(wanted)}
    return np.fromiter((lookup.get(v, -1) for v in values.tolist()), dtype=np.int64,
                       count=len(values))


def _evaluate_images(p: Params, gts: Annotations, dts: Annotations, gt_masks: list | None,
                     dt_masks: list | None) -> dict:
    """COCOeval.evaluate for every (category, area range, image) at once."""
    n_img = len(p.img_ids)
    gt_img, dt_img = _index(gts.image_ids, p.img_ids), _index(dts.image_ids, p.img_ids)
    gt_cat, dt_cat = _index(gts.category_ids, p.cat_ids), _index(dts.category_ids, p.cat_ids)
    gt_keep = np.flatnonzero((gt_img >= 0) & (gt_cat >= 0))
    dt_keep = np.flatnonzero((dt_img >= 0) & (dt_cat >= 0))
    # Pooled categories (use_cats=False): one group per image, in category order, as the
    # reference concatenates them.
    gt_k = gt_cat if p.use_cats else np.zeros_like(gt_cat)
    dt_k = dt_cat if p.use_cats else np.zeros_like(dt_cat)
    gt_group = gt_k[gt_keep] * n_img + gt_img[gt_keep]  # category-major, images in id order
    gt_rank = gt_cat[gt_keep] * len(gts) + gt_keep  # order within a group

    # Detections by group, best score first (stable), capped at the largest maxDets.
    dt_group_all = dt_k[dt_keep] * n_img + dt_img[dt_keep]
    order = np.lexsort((dt_cat[dt_keep], -dts.scores[dt_keep], dt_group_all))
    det = dt_keep[order]
    det_group = dt_group_all[order]
    group_start = np.r_[0, np.flatnonzero(det_group[1:] != det_group[:-1]) + 1]
    sizes = np.diff(np.r_[group_start, len(det)])
    rank = np.arange(len(det)) - np.repeat(group_start, sizes)
    kept = rank < p.max_dets[-1]
    det, det_group, rank = det[kept], det_group[kept], rank[kept]

    pair_det, pair_gt_local = make_pairs(det_group, rank, gt_group, gt_rank)
    pair_gt = gt_keep[pair_gt_local]
    crowd = gts.crowd
    if p.iou_type == "segm":
        ious = mask_iou_pairs(det[pair_det], pair_gt, dt_masks, gt_masks, crowd)
    else:
        ious = box_iou_pairs(dts.boxes[det[pair_det]], gts.boxes[pair_gt], crowd[pair_gt])
    max_rank = int(rank.max()) + 1 if len(rank) else 0
    rank_starts = np.searchsorted(rank[pair_det], np.arange(max_rank + 1), side="left")
    pairs = Pairs(det=pair_det, gt=pair_gt_local, iou=ious, rank_starts=rank_starts)

    areas = np.asarray(p.area_rng, dtype=np.float64)
    gt_area = gts.areas[gt_keep]
    gt_regular = ~(crowd[gt_keep][None, :] | (gt_area[None, :] < areas[:, :1])
                   | (gt_area[None, :] > areas[:, 1:]))
    dt_area = dts.areas[det]
    det_outside = (dt_area[None, :] < areas[:, :1]) | (dt_area[None, :] > areas[:, 1:])
    matches = match_all(pairs, len(det), len(gt_keep), gt_regular, crowd[gt_keep],
                        det_outside, p.iou_thrs)
    return {"det": det, "det_k": det_group // n_img, "rank": rank, "gt_keep": gt_keep,
            "gt_k": gt_group // n_img, "gt_regular": gt_regular, "matches": matches,
            "tables": _tables(p, gts, dts, det, det_group, rank, gt_keep, gt_group, n_img,
                              gt_regular, matches)}


def _tables(p: Params, gts: Annotations, dts: Annotations, det: np.ndarray,
            det_group: np.ndarray, rank: np.ndarray, gt_keep: np.ndarray,
            gt_group: np.ndarray, n_img: int, gt_regular: np.ndarray, m: Matches
            ) -> MatchTables:
    """The match tables at area range "all", with input indices."""
    img_ids = np.asarray(p.img_ids, dtype=object)
    cat_ids = np.asarray(p.eval_cat_ids, dtype=object)
    gt_order = np.argsort(gt_group, kind="stable")
    a = p.all_index
    det_gt = (np.where(m.gt[a] >= 0, gt_keep[np.maximum(m.gt[a], 0)], -1) if len(gt_keep)
              else np.full(m.gt[a].shape, -1))
    gt_det = (np.where(m.gt_det[a] >= 0, det[np.maximum(m.gt_det[a], 0)], -1) if len(det)
              else np.full(m.gt_det[a].shape, -1))[:, gt_order]
    return MatchTables(
        iou_thrs=p.iou_thrs, det_index=det, det_image=img_ids[det_group % n_img],
        det_category=cat_ids[det_group // n_img], det_score=dts.scores[det], det_rank=rank,
        det_gt=det_gt, det_iou=m.iou[a], det_ignored=m.ignored[a],
        gt_index=gt_keep[gt_order], gt_image=img_ids[gt_group[gt_order] % n_img],
        gt_category=cat_ids[gt_group[gt_order] // n_img],
        gt_ignored=~gt_regular[a][gt_order], gt_det=gt_det)


def _accumulate(p: Params, per_image: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """COCOeval.accumulate: precision at the recall thresholds, recall, and their scores."""
    n_t, n_r, n_k = len(p.iou_thrs), len(p.rec_thrs), len(p.eval_cat_ids)
    n_a, n_m = len(p.area_rng), len(p.max_dets)
    precision = -np.ones((n_t, n_r, n_k, n_a, n_m))
    recall = -np.ones((n_t, n_k, n_a, n_m))
    scores = -np.ones((n_t, n_r, n_k, n_a, n_m))
    matches: Matches = per_image["matches"]
    det_k, rank = per_image["det_k"], per_image["rank"]
    det_scores = per_image["scores"]
    npig = np.stack([np.bincount(per_image["gt_k"][regular], minlength=n_k)
                     for regular in per_image["gt_regular"]], axis=1)  # K x A
    k_bounds = np.searchsorted(det_k, np.arange(n_k + 1))
    for k in range(n_k):
        lo, hi = k_bounds[k], k_bounds[k + 1]
        for a in range(n_a):
            if npig[k, a] == 0:
                continue
            hit = matches.gt[a, :, lo:hi] >= 0
            ignored = matches.ignored[a, :, lo:hi]
            for m, max_det in enumerate(p.max_dets):
                keep = rank[lo:hi] < max_det
                kept_scores = det_scores[lo:hi][keep]
                order = np.argsort(-kept_scores, kind="mergesort")
                tp = np.cumsum((hit & ~ignored)[:, keep][:, order], axis=1).astype(float)
                fp = np.cumsum((~hit & ~ignored)[:, keep][:, order], axis=1).astype(float)
                n_d = tp.shape[1]
                if n_d == 0:
                    recall[:, k, a, m] = 0
                    precision[:, :, k, a, m] = 0
                    scores[:, :, k, a, m] = 0
                    continue
                rc = tp / npig[k, a]
                pr = tp / (fp + tp + np.spacing(1))
                pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]  # envelope
                recall[:, k, a, m] = rc[:, -1]
                # Per row, not with offsets: recall thresholds sit an ulp off k/100 and
                # shifting them would change which side of a recall they fall on.
                found = np.stack([np.searchsorted(row, p.rec_thrs, side="left") for row in rc])
                valid = found < n_d
                rows = np.broadcast_to(np.arange(n_t)[:, None], found.shape)
                q = np.where(valid, pr[rows, np.minimum(found, n_d - 1)], 0.0)
                precision[:, :, k, a, m] = q
                scores[:, :, k, a, m] = np.where(valid, kept_scores[order][
                    np.minimum(found, n_d - 1)], 0.0)
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
        mean(True),  # the reference asks for maxDets=100 here, whatever max_dets holds
        mean(True, 0.5, max_det=last), mean(True, 0.75, max_det=last),
        mean(True, area="small", max_det=last), mean(True, area="medium", max_det=last),
        mean(True, area="large", max_det=last),
        mean(False, max_det=md[0]), mean(False, max_det=md[1] if len(md) > 1 else md[-1]),
        mean(False, max_det=last), mean(False, area="small", max_det=last),
        mean(False, area="medium", max_det=last), mean(False, area="large", max_det=last),
    ])


def main(argv: list[str] | None = None) -> int:
    """CLI: print stats and per-category AP as JSON; exit 2 with a message on bad input."""
    parser = argparse.ArgumentParser(prog="python -m metrics.coco",
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
