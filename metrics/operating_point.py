"""Precision, recall and F1 of detections at an IoU and a score threshold, from the match tables.

Definitions: detections with score >= the threshold, matched to ground truth greedily
as COCO does at that IoU (maxDets 100 per image and label, area "all"); a detection matched to
crowd ground truth is ignored (neither kept nor counted); precision = matched / detections kept,
recall = matched / non-crowd ground truth, F1 their harmonic mean; a ratio with a zero
denominator is 0; overall figures pool all labels (micro average). The IoU is the grid's own
float, as in COCO: 0.9 means 0.8999999999999999.

Greedy matching takes detections in descending score, so dropping every detection below a
threshold never changes the matches of those above it: one matching at each IoU of the grid
(done by `evaluate`) serves every score threshold, and moving a slider is a few array
operations over the stored tables. The threshold may also differ per label (`ScoreThresholds`,
a validation task's per-label confidences): greedy matching within one label never looks at
another label's detections, so the same argument holds label by label.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from metrics.coco import CocoResult


def _ratio(numerator: np.ndarray | float, denominator: np.ndarray | float) -> np.ndarray:
    numerator, denominator = np.asarray(numerator, float), np.asarray(denominator, float)
    return np.divide(numerator, denominator, out=np.zeros(np.broadcast(numerator,
                     denominator).shape), where=denominator > 0)


def _f1(precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
    return _ratio(2 * precision * recall, precision + recall)


def iou_index(result: CocoResult, iou: float) -> int:
    """Row of the IoU grid for `iou` (which must be one of the evaluated thresholds)."""
    grid = result.matches.iou_thrs
    hits = np.flatnonzero(np.isclose(grid, iou, rtol=0, atol=1e-9))
    if len(hits) == 0:
        raise ValueError(f"IoU {iou} is not among the evaluated thresholds "
                         f"{', '.join(f'{v:.2f}' for v in grid)}")
    return int(hits[0])


@dataclass(frozen=True)
class ScoreThresholds:
    """A base score threshold and per-label exceptions (category id -> threshold)."""

    base: float
    per_label: Mapping[Any, float] = field(default_factory=dict)

    def by_label(self, category_ids: Sequence[Any]) -> np.ndarray:
        """The threshold of each category, in `category_ids` order."""
        return np.array([float(self.per_label.get(c, self.base)) for c in category_ids],
                        dtype=float)


Score = float | ScoreThresholds


def base_score(score: Score) -> float:
    """The single threshold, or the base of per-label ones."""
    return score.base if isinstance(score, ScoreThresholds) else float(score)


def kept_by_score(result: CocoResult, score: Score, det_k: np.ndarray) -> np.ndarray:
    """Which match-table detections (label positions `det_k`) reach their label's threshold."""
    scores = result.matches.det_score
    if not isinstance(score, ScoreThresholds):
        return scores >= score
    floors = score.by_label(result.cat_ids)
    return scores >= (floors[det_k] if len(floors) else np.zeros(len(det_k)))


@dataclass(frozen=True)
class Figures:
    """Counts and ratios for one label, or pooled over all labels."""

    category_id: Any
    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    fn: int
    gt_count: int
    det_count: int


@dataclass(frozen=True)
class OperatingPoint:
    iou: float
    score: Score
    overall: Figures
    per_label: list[Figures]


def _label_indices(result: CocoResult) -> tuple[np.ndarray, np.ndarray]:
    lookup = {cat: k for k, cat in enumerate(result.cat_ids)}
    tables = result.matches
    det_k = np.fromiter((lookup[c] for c in tables.det_category.tolist()), dtype=np.int64,
                        count=len(tables.det_category))
    gt_k = np.fromiter((lookup[c] for c in tables.gt_category.tolist()), dtype=np.int64,
                       count=len(tables.gt_category))
    return det_k, gt_k


def operating_point(result: CocoResult, iou: float = 0.5, score: Score = 0.5) -> OperatingPoint:
    """P/R/F1 overall and per label at one IoU of the grid and a score threshold (or one per
    label)."""
    t = iou_index(result, iou)
    tables = result.matches
    det_k, gt_k = _label_indices(result)
    n_k = len(result.cat_ids)
    kept = kept_by_score(result, score, det_k) & ~tables.det_ignored[t]
    tp = np.bincount(det_k[kept & (tables.det_gt[t] >= 0)], minlength=n_k)
    det_count = np.bincount(det_k[kept], minlength=n_k)
    gt_count = np.bincount(gt_k[~tables.gt_ignored], minlength=n_k)
    precision, recall = _ratio(tp, det_count), _ratio(tp, gt_count)
    f1 = _f1(precision, recall)
    per_label = [
        Figures(cat, float(precision[k]), float(recall[k]), float(f1[k]), int(tp[k]),
                int(det_count[k] - tp[k]), int(gt_count[k] - tp[k]), int(gt_count[k]),
                int(det_count[k]))
        for k, cat in enumerate(result.cat_ids)
    ]
    total_tp, total_det, total_gt = int(tp.sum()), int(det_count.sum()), int(gt_count.sum())
    p, r = float(_ratio(total_tp, total_det)), float(_ratio(total_tp, total_gt))
    overall = Figures(None, p, r, float(_f1(np.array(p), np.array(r))), total_tp,
                      total_det - total_tp, total_gt - total_tp, total_gt, total_det)
    return OperatingPoint(iou, score, overall, per_label)


@dataclass(frozen=True)
class ThresholdTable:
    """One row per distinct score: the figures when that score is the threshold (>=)."""

    category_id: Any
    thresholds: np.ndarray  # descending
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    gt_count: int

    def best(self) -> dict[str, float] | None:
        """The threshold with the highest F1 (the higher threshold on ties); None if no rows."""
        if len(self.thresholds) == 0:
            return None
        i = int(np.argmax(self.f1))
        return {"threshold": float(self.thresholds[i]), "precision": float(self.precision[i]),
                "recall": float(self.recall[i]), "f1": float(self.f1[i])}


def table_from_scores(category_id: Any, scores: np.ndarray, matched: np.ndarray, gt_count: int
                      ) -> ThresholdTable:
    """The table of any scored decisions: `matched` says which were right, out of `gt_count`
    positives (one-vs-rest classification uses it too)."""
    order = np.argsort(-scores, kind="mergesort")
    scores, matched = scores[order], matched[order]
    tp = np.cumsum(matched)
    fp = np.cumsum(~matched)
    last_of_tie = np.r_[scores[1:] != scores[:-1], True] if len(scores) else np.zeros(0, bool)
    tp, fp, thresholds = tp[last_of_tie], fp[last_of_tie], scores[last_of_tie]
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, gt_count)
    return ThresholdTable(category_id, thresholds, precision, recall, _f1(precision, recall),
                          tp, fp, gt_count)


def threshold_tables(result: CocoResult, iou: float = 0.5) -> dict[Any, ThresholdTable]:
    """Per label: precision, recall and F1 at every distinct score, with the best-F1 row."""
    t = iou_index(result, iou)
    tables = result.matches
    det_k, gt_k = _label_indices(result)
    counted = ~tables.det_ignored[t]
    matched = tables.det_gt[t] >= 0
    gt_count = np.bincount(gt_k[~tables.gt_ignored], minlength=len(result.cat_ids))
    order = np.argsort(det_k, kind="stable")
    bounds = np.searchsorted(det_k[order], np.arange(len(result.cat_ids) + 1))
    out = {}
    for k, cat in enumerate(result.cat_ids):
        rows = order[bounds[k]:bounds[k + 1]]
        rows = rows[counted[rows]]
        out[cat] = table_from_scores(cat, tables.det_score[rows], matched[rows], int(gt_count[k]))
    return out


def overall_threshold_table(result: CocoResult, iou: float = 0.5) -> ThresholdTable:
    """The pooled (micro) table over all labels; its best row is the overall best-F1 threshold."""
    t = iou_index(result, iou)
    tables = result.matches
    counted = ~tables.det_ignored[t]
    return table_from_scores(None, tables.det_score[counted], (tables.det_gt[t] >= 0)[counted],
                  int(np.count_nonzero(~tables.gt_ignored)))


@dataclass(frozen=True)
class PRCurve:
    """Raw points at each distinct score, and COCO's 101-point interpolated precision."""

    category_id: Any
    precision: np.ndarray
    recall: np.ndarray
    thresholds: np.ndarray
    recall_grid: np.ndarray
    interpolated_precision: np.ndarray  # -1 where the label has no ground truth
    ap: float


def pr_curves(result: CocoResult, iou: float = 0.5) -> dict[Any, PRCurve]:
    """Per label PR curve at an IoU of the grid (area all, largest maxDets)."""
    t = iou_index(result, iou)
    curves = {}
    for k, (cat, table) in enumerate(threshold_tables(result, iou).items()):
        interpolated = result.precision[t, :, k, 0, -1]
        ap = float(np.mean(interpolated)) if np.all(interpolated > -1) else -1.0
        curves[cat] = PRCurve(cat, table.precision, table.recall, table.thresholds,
                              result.params.rec_thrs, interpolated, ap)
    return curves
