"""TIDE error analysis for object detection (Bolya et al., ECCV 2020), on our COCO engine.

    report = tide(gt, detections)                  # iou_fg=0.5, iou_bg=0.1, bbox
    report.baseline_ap                             # COCO AP at iou_fg (area all, 100 dets), 0-1
    report.counts["loc"], report.delta_ap["loc"]   # how many, and the AP fixing them would add
    report.per_label[category_id]                  # {"ap", "counts", "delta_ap"} for one label
    report.detection_errors[i]                     # "tp", an error type, "ignored" or None
    tide_from_result(coco_result)                  # reuse an `evaluate` run that has iou_fg

Matching is COCO's, not tidecv's: a detection is a true positive when our engine (equal to
pycocotools) matches it at `iou_fg` in area range "all" with its image-and-category cap of
max_dets, so `baseline_ap` is exactly `evaluate(gt, dets, iou_thrs=[iou_fg])`'s AP. Detections
matched to crowd regions are "ignored"; detections beyond the cap or of a category or image the
ground truth does not list are not evaluated (None). IoUs for the error types are taken against
the non-crowd ground truth of the detection's image, every category.

Each unmatched detection gets the first type that fits, in tidecv's order (with the paper's
half-open intervals, so each IoU falls on exactly one side of each threshold):

    loc   best IoU with ground truth of its own class in [iou_bg, iou_fg)
    cls   best IoU with ground truth of another class >= iou_fg
    dupe  best IoU with already matched ground truth of its own class >= iou_fg
    bkg   IoU < iou_bg with every ground truth of the image (or the image has none)
    both  the rest: best IoU with another class in [iou_bg, iou_fg), none with its own class

"missed" counts ground truth that is unmatched and that no cls or loc error points at (the
error's target is the ground truth with the best IoU, the first in input order on a tie).

The fixing oracle is tidecv's, applied to one type at a time (and to all at once for
`fixed_ap["all"]`), relabelling the AP data points rather than matching again:
  cls, loc  the error becomes a true positive for its target (cls: in the target's class) when
            the target is unmatched and this error is the highest-scoring cls or loc error
            pointing at it (earlier input first on a tie); otherwise it is removed;
  both, dupe, bkg  the detection is removed;
  missed    the missed ground truth no longer counts (fewer positives, so recall rises).
Fixed detections keep their score and their place among equal scores (image, input order).
ΔAP = AP_fixed - AP_baseline, in AP units (0-1); the oracle only removes false positives, turns
them into true positives or drops positives nobody found, so it is never negative.

Averaging follows COCO: the mean over categories with ground truth (101-point interpolated AP).
Where tidecv drops a category from the mean once fixing leaves it with neither ground truth nor
detections, we keep it, scored 1.0 (0.0 if detections remain), so the overall ΔAP is exactly the
mean of the per-label ΔAPs. Per label, detection errors count under the predicted category and
missed ground truth under its own.
"""

from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np

from metrics.coco import AREA_RANGES, CocoResult, evaluate
from metrics.coco_data import image_sizes, to_rles
from metrics.coco_match import box_iou_pairs, make_pairs, mask_iou_pairs

ERROR_TYPES = ("cls", "loc", "both", "dupe", "bkg", "missed")
_NONE, _TP, _IGNORED, _CLS, _LOC, _BOTH, _DUPE, _BKG = range(8)
_NAMES = np.array([None, "tp", "ignored", "cls", "loc", "both", "dupe", "bkg"], dtype=object)
_DET_CODES = {"cls": _CLS, "loc": _LOC, "both": _BOTH, "dupe": _DUPE, "bkg": _BKG}


class LabelTide(TypedDict):
    ap: float  # AP at iou_fg; -1 for a category without ground truth
    counts: dict[str, int]
    delta_ap: dict[str, float]


@dataclass
class TideReport:
    """Error counts and ΔAP per TIDE type, overall and per label, with per-item outcomes."""

    iou_fg: float
    iou_bg: float
    baseline_ap: float  # mean AP at iou_fg over categories with ground truth; -1 if none
    counts: dict[str, int]
    delta_ap: dict[str, float]
    fixed_ap: dict[str, float]  # AP after fixing each type, and "all" of them at once
    per_label: dict[Any, LabelTide]
    detection_errors: np.ndarray  # per input detection: "tp", a type, "ignored" or None
    detection_gt: np.ndarray  # per input detection: ground-truth index it concerns, -1 none
    gt_errors: np.ndarray  # per input ground truth: "tp", "missed", "covered" or None

    def summary(self) -> dict[str, Any]:
        """The numbers as plain JSON-ready values, without the per-item arrays."""
        return {"iou_fg": self.iou_fg, "iou_bg": self.iou_bg, "baseline_ap": self.baseline_ap,
                "counts": dict(self.counts), "delta_ap": dict(self.delta_ap),
                "fixed_ap": dict(self.fixed_ap),
                "per_label": [{"category_id": cat, **label}
                              for cat, label in self.per_label.items()]}


def tide(gt: dict, detections: list[dict], *, iou_fg: float = 0.5, iou_bg: float = 0.1,
         iou_type: str = "bbox", max_dets: int = 100) -> TideReport:
    """TIDE errors of COCO detections (bbox or segm) against COCO ground truth at iou_fg."""
    _check_thresholds(iou_fg, iou_bg)
    result = evaluate(gt, detections, iou_type=iou_type, iou_thrs=[iou_fg],
                      max_dets=(int(max_dets),), area_rng=[AREA_RANGES[0]], area_rng_lbl=["all"])
    sizes = image_sizes(gt) if iou_type == "segm" else None
    return tide_from_result(result, iou_fg=iou_fg, iou_bg=iou_bg, sizes=sizes)


def tide_from_result(result: CocoResult, *, iou_fg: float = 0.5, iou_bg: float = 0.1,
                     sizes: dict[Any, tuple[int, int]] | None = None) -> TideReport:
    """TIDE errors from an `evaluate` result whose IoU thresholds include iou_fg."""
    _check_thresholds(iou_fg, iou_bg)
    thresholds = np.asarray(result.params.iou_thrs)
    rows = np.flatnonzero(np.abs(thresholds - iou_fg) < 1e-12)
    if len(rows) == 0:
        raise ValueError(f"the evaluation has no IoU threshold {iou_fg}; evaluate with "
                         f"iou_thrs including it, or call tide() on the inputs")
    t = int(rows[0])
    m, p = result.matches, result.params
    if not p.use_cats:
        raise ValueError("TIDE needs per-category evaluation; evaluate with use_cats=True")
    cats = {cat: k for k, cat in enumerate(result.cat_ids)}
    images = {img: i for i, img in enumerate(p.img_ids)}
    n_k = len(result.cat_ids)

    # Detections evaluated by the engine (one row each) and regular ground truth.
    det = m.det_index
    det_k = _positions(m.det_category, cats)
    det_img = _positions(m.det_image, images)
    score = m.det_score
    ignored = m.det_ignored[t]
    tp = (m.det_gt[t] >= 0) & ~ignored
    regular = ~m.gt_ignored
    g = m.gt_index[regular]
    g_k = _positions(m.gt_category[regular], cats)
    g_img = _positions(m.gt_image[regular], images)
    used = m.gt_det[t][regular] >= 0

    code = np.where(tp, _TP, np.where(ignored, _IGNORED, _NONE))
    target = np.full(len(det), -1, dtype=np.int64)  # row in the regular ground truth
    gt_row = {index: row for row, index in enumerate(g.tolist())}
    target[tp] = _positions(m.det_gt[t][tp], gt_row)
    fp = np.flatnonzero(code == _NONE)
    ious = _pair_ious(result, det[fp], det_img[fp], g, g_img, sizes)
    code[fp], target[fp] = _classify(det_k[fp], ious, g_k, used, iou_fg, iou_bg)

    # A cls/loc error claims its target when that is unmatched; the best claim gets fixed.
    claims = np.flatnonzero(((code == _CLS) | (code == _LOC)) & (target >= 0))
    claims = claims[~used[target[claims]]]
    usable = np.zeros(len(g), dtype=bool)
    usable[target[claims]] = True
    missed = ~used & ~usable
    order = claims[np.lexsort((det[claims], -score[claims], target[claims]))]
    winners = order[np.r_[True, target[order][1:] != target[order][:-1]]] if len(order) else order

    runs = _Runs(det_k, score, det_img, det, tp, code, target, g_k, missed, winners, n_k,
                 p.rec_thrs)
    base = runs.ap_table(())
    fixed = {kind: runs.ap_table((kind,)) for kind in ERROR_TYPES}
    fixed["all"] = runs.ap_table(ERROR_TYPES)
    baseline = _mean(base)

    det_counts = {kind: np.bincount(det_k[code == c], minlength=n_k)
                  for kind, c in _DET_CODES.items()}
    det_counts["missed"] = np.bincount(g_k[missed], minlength=n_k)
    per_label: dict[Any, LabelTide] = {}
    for k, cat in enumerate(result.cat_ids):
        has_gt = bool(base[0, k] > -1)
        ap = float(np.mean(base[:, k])) if has_gt else -1.0
        per_label[cat] = LabelTide(
            ap=ap, counts={kind: int(det_counts[kind][k]) for kind in ERROR_TYPES},
            delta_ap={kind: float(np.mean(fixed[kind][:, k])) - ap if has_gt else 0.0
                      for kind in ERROR_TYPES})

    n_dets, n_gts = len(result.dt), len(result.gt)
    detection_errors = np.full(n_dets, None, dtype=object)
    detection_errors[det] = _NAMES[code]
    detection_gt = np.full(n_dets, -1, dtype=np.int64)
    detection_gt[det] = np.where(target >= 0, g[np.maximum(target, 0)], -1)
    gt_errors = np.full(n_gts, None, dtype=object)
    gt_errors[g] = np.where(used, "tp", np.where(missed, "missed", "covered"))
    return TideReport(
        iou_fg=float(thresholds[t]), iou_bg=float(iou_bg), baseline_ap=baseline,
        counts={kind: int(det_counts[kind].sum()) for kind in ERROR_TYPES},
        delta_ap={kind: _mean(fixed[kind]) - baseline if baseline > -1 else 0.0
                  for kind in ERROR_TYPES},
        fixed_ap={kind: _mean(table) for kind, table in fixed.items()},
        per_label=per_label, detection_errors=detection_errors, detection_gt=detection_gt,
        gt_errors=gt_errors)


def _check_thresholds(iou_fg: float, iou_bg: float) -> None:
    if not 0.0 <= iou_bg <= iou_fg <= 1.0:
        raise ValueError(f"need 0 <= iou_bg <= iou_fg <= 1, got iou_bg={iou_bg}, "
                         f"iou_fg={iou_fg}; TIDE's defaults are 0.1 and 0.5")


def _positions(values: np.ndarray, lookup: dict) -> np.ndarray:
    return np.fromiter((lookup[v] for v in values.tolist()), dtype=np.int64, count=len(values))


def _mean(table: np.ndarray) -> float:
    """COCO's mean over the R x K precision table, skipping categories without ground truth."""
    valid = table[table > -1]
    return float(np.mean(valid)) if len(valid) else -1.0


@dataclass
class _PairIous:
    det: np.ndarray  # row among the detections being classified, pairs grouped by it
    gt: np.ndarray  # row in the regular ground truth
    iou: np.ndarray
    count: np.ndarray  # pairs per detection

    def best(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per detection, the best IoU among masked pairs (-1 for none) and its ground truth."""
        n = len(self.count)
        best, target = np.full(n, -1.0), np.full(n, -1, dtype=np.int64)
        if len(self.iou) == 0:
            return best, target
        has = self.count > 0
        starts = (np.cumsum(self.count) - self.count)[has]
        values = np.where(mask, self.iou, -1.0)
        best[has] = np.maximum.reduceat(values, starts)
        at_best = np.where(values == best[self.det], np.arange(len(values)), len(values))
        first = np.minimum.reduceat(at_best, starts)
        target[has] = np.where(best[has] >= 0, self.gt[first], -1)
        return best, target


def _pair_ious(result: CocoResult, dets: np.ndarray, det_img: np.ndarray, g: np.ndarray,
               g_img: np.ndarray, sizes: dict | None) -> _PairIous:
    """IoU of every detection with every regular ground truth of its image."""
    # Per detection, its image's ground truth in input order (the first wins a tie).
    pair_det, pair_gt = make_pairs(det_img, np.zeros(len(dets), dtype=np.int64), g_img, g)
    no_crowd = np.zeros(len(pair_det), dtype=bool)
    if result.params.iou_type == "segm":
        sizes = sizes or result.image_sizes
        gt_rles, dt_rles = to_rles(result.gt, sizes), to_rles(result.dt, sizes)
        iou = mask_iou_pairs(dets[pair_det], g[pair_gt], dt_rles, gt_rles, no_crowd)
    else:
        iou = box_iou_pairs(result.dt.boxes[dets[pair_det]], result.gt.boxes[g[pair_gt]],
                            no_crowd)
    return _PairIous(pair_det, pair_gt, iou, np.bincount(pair_det, minlength=len(dets)))


def _classify(det_k: np.ndarray, ious: _PairIous, g_k: np.ndarray,
              used: np.ndarray, iou_fg: float, iou_bg: float) -> tuple[np.ndarray, np.ndarray]:
    """Error code and target ground-truth row of each unmatched detection, in TIDE's order."""
    same_class = g_k[ious.gt] == det_k[ious.det]
    same, same_target = ious.best(same_class)
    other, other_target = ious.best(~same_class)
    dupe, dupe_target = ious.best(same_class & used[ious.gt])
    anything, _ = ious.best(np.ones(len(ious.iou), dtype=bool))
    is_loc = (same >= iou_bg) & (same < iou_fg)
    is_cls = other >= iou_fg
    is_dupe = dupe >= iou_fg
    is_bkg = anything < iou_bg
    code = np.select([is_loc, is_cls, is_dupe, is_bkg], [_LOC, _CLS, _DUPE, _BKG], _BOTH)
    target = np.select([is_loc, is_cls, is_dupe, is_bkg],
                       [same_target, other_target, dupe_target, -1], other_target)
    return code, target


class _Runs:
    """AP tables (R x K, as COCO's precision at one IoU) of the baseline and of fixed runs."""

    def __init__(self, det_k: np.ndarray, score: np.ndarray, det_img: np.ndarray,
                 det: np.ndarray, tp: np.ndarray, code: np.ndarray, target: np.ndarray,
                 g_k: np.ndarray, missed: np.ndarray, winners: np.ndarray, n_k: int,
                 rec_thrs: np.ndarray):
        self.det_k, self.tp, self.code, self.target = det_k, tp, code, target
        self.g_k, self.missed, self.winners, self.n_k = g_k, missed, winners, n_k
        self.rec_thrs = rec_thrs
        # COCO's order within a category: score descending, then image, then input order.
        self.order = np.lexsort((det, det_img, -score))
        self.counted = (code != _NONE) & (code != _IGNORED)
        self.npig = np.bincount(g_k, minlength=n_k)

    def ap_table(self, fix: tuple[str, ...]) -> np.ndarray:
        """Precision at the recall thresholds per category after fixing the given types."""
        keep, k, tp = self.counted.copy(), self.det_k.copy(), self.tp.copy()
        npig = self.npig.copy()
        for kind in fix:
            if kind == "missed":
                npig -= np.bincount(self.g_k[self.missed], minlength=self.n_k)
                continue
            keep[self.code == _DET_CODES[kind]] = False
            if kind in ("cls", "loc"):
                won = self.winners[self.code[self.winners] == _DET_CODES[kind]]
                keep[won], tp[won] = True, True
                k[won] = self.g_k[self.target[won]]
        rows = self.order[keep[self.order]]
        rows = rows[np.argsort(k[rows], kind="stable")]
        bounds = np.searchsorted(k[rows], np.arange(self.n_k + 1))
        table = -np.ones((len(self.rec_thrs), self.n_k))
        for cat in np.flatnonzero(self.npig > 0):
            hit = tp[rows[bounds[cat]:bounds[cat + 1]]]
            table[:, cat] = self._precision(hit, int(npig[cat]))
        return table

    def _precision(self, hit: np.ndarray, npig: int) -> np.ndarray:
        """COCOeval.accumulate's interpolated precision for one category, computed alike."""
        n_d = len(hit)
        if npig == 0:  # fixing left no ground truth: perfect unless detections remain
            return np.full(len(self.rec_thrs), 0.0 if n_d else 1.0)
        if n_d == 0:
            return np.zeros(len(self.rec_thrs))
        tps = np.cumsum(hit).astype(float)
        fps = np.cumsum(~hit).astype(float)
        rc = tps / npig
        pr = tps / (fps + tps + np.spacing(1))
        pr = np.maximum.accumulate(pr[::-1])[::-1]
        found = np.searchsorted(rc, self.rec_thrs, side="left")
        return np.where(found < n_d, pr[np.minimum(found, n_d - 1)], 0.0)
