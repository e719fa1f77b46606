"""IoU and the reference's greedy matching, vectorised across images, categories and areas.

Matching follows COCOeval.evaluateImg: within an (image, category) group detections go in
descending score (stable), each taking the best remaining ground truth with IoU >= t; regular
ground truth is preferred to ignored (crowd or outside the area range), on equal IoU the later
ground truth wins, and crowd ground truth may be matched any number of times. Because a
detection only competes with the earlier detections of its own group, the r-th detection of
every group is matched in one step, for every area range and IoU threshold at once.

The box IoU reproduces pycocotools' C code operation for operation, so an IoU lying exactly on
a threshold decides the same way.
"""

from dataclasses import dataclass

import numpy as np


@dataclass
class Pairs:
    """Every (detection, ground truth) pair that shares an image and category.

    Sorted by the detection's rank in its group, then detection, then ground-truth order.
    """

    det: np.ndarray  # index into the kept detections
    gt: np.ndarray  # index into the ground truth
    iou: np.ndarray
    rank_starts: np.ndarray  # pairs of rank r are rank_starts[r]:rank_starts[r + 1]


def make_pairs(det_group: np.ndarray, det_rank: np.ndarray, gt_group: np.ndarray,
               gt_rank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Detection and ground-truth indices of all pairs, ground truth in `gt_rank` order."""
    gt_order = np.lexsort((gt_rank, gt_group))
    sorted_groups = gt_group[gt_order]
    first = np.searchsorted(sorted_groups, det_group, side="left")
    count = np.searchsorted(sorted_groups, det_group, side="right") - first
    det = np.repeat(np.arange(len(det_group)), count)
    offsets = np.arange(len(det)) - np.repeat(np.cumsum(count) - count, count)
    gt = gt_order[np.repeat(first, count) + offsets]
    order = np.lexsort((gt_rank[gt], det, det_rank[det]))
    return det[order], gt[order]


def box_iou_pairs(dt: np.ndarray, gt: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """IoU of paired boxes (x, y, w, h) exactly as pycocotools' bbIou computes it."""
    w = np.minimum(dt[:, 2] + dt[:, 0], gt[:, 2] + gt[:, 0]) - np.maximum(dt[:, 0], gt[:, 0])
    h = np.minimum(dt[:, 3] + dt[:, 1], gt[:, 3] + gt[:, 1]) - np.maximum(dt[:, 1], gt[:, 1])
    inter = w * h
    dt_area = dt[:, 2] * dt[:, 3]
    union = np.where(crowd, dt_area, dt_area + gt[:, 2] * gt[:, 3] - inter)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((w > 0) & (h > 0), inter / union, 0.0)


def mask_iou_pairs(det: np.ndarray, gt: np.ndarray, dt_rles: list, gt_rles: list,
                   crowd: np.ndarray) -> np.ndarray:
    """IoU of paired RLE masks, computed per (detection, ground-truth) block with pycocotools."""
    from pycocotools import mask as mask_utils

    ious = np.zeros(len(det))
    if len(det) == 0:
        return ious
    # Pairs of one detection are contiguous; compute each detection's row in one call.
    starts = np.flatnonzero(np.r_[True, det[1:] != det[:-1]])
    ends = np.r_[starts[1:], len(det)]
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        gts = gt[start:end].tolist()
        row = mask_utils.iou([dt_rles[det[start]]], [gt_rles[g] for g in gts],
                             [int(crowd[g]) for g in gts])
        ious[start:end] = np.asarray(row, dtype=np.float64).reshape(-1)
    return ious


@dataclass
class Matches:
    """Per area range a, IoU threshold t and kept detection d."""

    gt: np.ndarray  # A x T x D: matched ground-truth index, -1 for none
    iou: np.ndarray  # A x T x D
    ignored: np.ndarray  # A x T x D: matched an ignored ground truth, or unmatched and off-range
    gt_det: np.ndarray  # A x T x G: detection that matched each ground truth, -1 for none


def match_all(pairs: Pairs, n_det: int, n_gt: int, gt_regular: np.ndarray,
              gt_crowd: np.ndarray, det_outside: np.ndarray, thresholds: np.ndarray) -> Matches:
    """Greedy matching for all groups, area ranges (rows of gt_regular) and thresholds."""
    n_a, n_t = gt_regular.shape[0], len(thresholds)
    limits = np.minimum(thresholds, 1 - 1e-10)[None, :, None]
    taken = np.zeros((n_a, n_t, n_gt), dtype=bool)
    matched = np.full((n_a, n_t, n_det), -1, dtype=np.int64)
    matched_iou = np.zeros((n_a, n_t, n_det))
    for r in range(len(pairs.rank_starts) - 1):
        lo, hi = pairs.rank_starts[r], pairs.rank_starts[r + 1]
        if lo == hi:
            continue
        det, gt, iou = pairs.det[lo:hi], pairs.gt[lo:hi], pairs.iou[lo:hi]
        starts = np.flatnonzero(np.r_[True, det[1:] != det[:-1]])
        eligible = (iou[None, None, :] >= limits) & (~taken[:, :, gt] | gt_crowd[gt])
        # Regular ground truth outranks ignored whatever the IoU (iou <= 1 < 2).
        key = np.where(eligible, gt_regular[:, None, gt] * 2.0 + iou, -1.0)
        best = np.maximum.reduceat(key, starts, axis=2)
        segment = np.cumsum(np.r_[False, det[1:] != det[:-1]])
        winner_pos = np.where(eligible & (key == best[:, :, segment]), np.arange(hi - lo), -1)
        winner = np.maximum.reduceat(winner_pos, starts, axis=2)
        found = best >= 0
        step_dets = det[starts]
        winner_gt = np.where(found, gt[np.maximum(winner, 0)], -1)
        matched[:, :, step_dets] = winner_gt
        matched_iou[:, :, step_dets] = np.where(found, iou[np.maximum(winner, 0)], 0.0)
        a_idx, t_idx, d_idx = np.nonzero(found)
        taken[a_idx, t_idx, winner_gt[a_idx, t_idx, d_idx]] = True
    hit = matched >= 0
    on_ignored = np.zeros_like(hit)
    if n_gt:
        regular = np.take_along_axis(gt_regular[:, None, :].repeat(n_t, axis=1),
                                     np.maximum(matched, 0), axis=2)
        on_ignored = hit & ~regular
    ignored = on_ignored | (~hit & det_outside[:, None, :])
    gt_det = np.full((n_a, n_t, n_gt), -1, dtype=np.int64)
    a_idx, t_idx, d_idx = np.nonzero(hit)
    # Crowd ground truth can be hit many times; any matching detection is a fine witness.
    gt_det[a_idx, t_idx, matched[a_idx, t_idx, d_idx]] = d_idx
    return Matches(gt=matched, iou=matched_iou, ignored=ignored, gt_det=gt_det)
