"""IoU and the reference's greedy matching, for one image and category at a time.

The box IoU reproduces pycocotools' C code operation for operation, so that an IoU lying
exactly on a threshold decides the same way. Matching follows COCOeval.evaluateImg: detections
by descending score (stable), each takes the best remaining ground truth with IoU >= t; on
equal IoU the later ground truth wins; non-ignored ground truth is tried before ignored
(crowd or out-of-range) and a detection already matched to a regular one stops at the first
ignored one; crowd ground truth may be matched many times.
"""

import numpy as np


def box_iou(dt: np.ndarray, gt: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """IoU of each detection box (rows) with each ground-truth box (columns), as bbIou computes.

    For a crowd ground truth the union is the detection's area alone.
    """
    if len(dt) == 0 or len(gt) == 0:
        return np.zeros((len(dt), len(gt)))
    d = dt[:, None, :]
    g = gt[None, :, :]
    w = np.minimum(d[..., 2] + d[..., 0], g[..., 2] + g[..., 0]) - np.maximum(d[..., 0],
                                                                          g[..., 0])
    h = np.minimum(d[..., 3] + d[..., 1], g[..., 3] + g[..., 1]) - np.maximum(d[..., 1],
                                                                          g[..., 1])
    inter = w * h
    dt_area = d[..., 2] * d[..., 3]
    gt_area = g[..., 2] * g[..., 3]
    union = np.where(crowd[None, :], dt_area, dt_area + gt_area - inter)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / union
    return np.where((w > 0) & (h > 0), iou, 0.0)


def mask_iou(dt_rles: list, gt_rles: list, crowd: np.ndarray) -> np.ndarray:
    """IoU of RLE masks (pycocotools' RLE arithmetic), crowd handled as for boxes."""
    if len(dt_rles) == 0 or len(gt_rles) == 0:
        return np.zeros((len(dt_rles), len(gt_rles)))
    from pycocotools import mask as mask_utils

    return np.asarray(mask_utils.iou(dt_rles, gt_rles, [int(c) for c in crowd]),
                      dtype=np.float64).reshape(len(dt_rles), len(gt_rles))


def greedy_match(ious: np.ndarray, gt_ignore: np.ndarray, gt_crowd: np.ndarray,
                 thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Match detections (rows, best score first) to ground truth (columns, ignored last).

    Returns, per threshold and detection, the matched ground-truth column (-1 for none) and
    whether the detection is ignored because its match is an ignored ground truth.
    """
    n_t, (n_d, n_g) = len(thresholds), ious.shape
    matched = np.full((n_t, n_d), -1, dtype=np.int64)
    ignored = np.zeros((n_t, n_d), dtype=bool)
    if n_d == 0 or n_g == 0:
        return matched, ignored
    taken = np.zeros((n_t, n_g), dtype=bool)
    ious_list = ious.tolist()  # plain floats: the loop below is scalar by nature
    ignore_list = gt_ignore.tolist()
    crowd_list = gt_crowd.tolist()
    for t, threshold in enumerate(thresholds.tolist()):
        taken_t = taken[t]
        for d in range(n_d):
            best = min(threshold, 1 - 1e-10)
            m = -1
            row = ious_list[d]
            for g in range(n_g):
                if taken_t[g] and not crowd_list[g]:
                    continue
                if m > -1 and not ignore_list[m] and ignore_list[g]:
                    break
                if row[g] < best:
                    continue
                best = row[g]
                m = g
            if m == -1:
                continue
            matched[t, d] = m
            ignored[t, d] = ignore_list[m]
            taken_t[m] = True
    return matched, ignored
