"""Detection confusion matrix and badcases at one operating point (IoU t of the grid, score s).

    confusion = detection_confusion(result, iou=0.5, score=0.5, low_iou=0.1)
    confusion.matrix        # rows truth, columns prediction, in row_labels / column_labels order
    confusion.missed        # per true label: ground truth nothing found
    confusion.low_overlap   # per true label: found only by its own label at low_iou <= IoU < t
    confusion.background    # per predicted label: false alarms
    confusion.cell_images(3, "missed")                    # sorted image ids of one cell
    confusion.subset([1, 3, 7]).page(0, 0, per_side=10).as_api()
    badcases(result, iou=0.5, score=0.5, true_label=3, kind="missed")

The assignment, image by image (each step only uses what the earlier steps left):
1. Kept detections are the rows of `result.matches` (the 100 best of their image and category,
   COCO's maxDets) with score >= s. A kept detection COCO matched to a crowd region of its own
   label at t is ignored, as COCO and `operating_point` ignore it. Crowd ground truth (anything
   COCO ignores at area "all") appears nowhere; a detection of another label lying on a crowd
   region is an ordinary detection.
2. Match: non-crowd ground truth of label l that a kept detection of label l matched at t
   (COCO's greedy matching, read from `result.matches`; greedy matching takes detections by
   descending score, so dropping those below s never changes the matches above) -> cell (l, l).
3. Confusion: the other kept detections (COCO's false positives), in descending score (ties:
   input order), each take the unmatched ground truth of another label with the highest
   IoU >= t (ties: the later ground truth in input order, as in COCO) -> cell (l, p).
4. Low overlap: the detections still free, in the same order, each take the unmatched ground
   truth of their own label with the highest IoU in [low_iou, t) -> low_overlap[l].
5. Ground truth still unmatched -> missed[l].
6. Detections still free -> background[p]: on nothing, or on an object another detection
   already took (duplicates): every false alarm counts once.
Each ground truth and each detection is used at most once, so for every label
    row(l) + missed[l] + low_overlap[l] == objects[l]          (non-crowd ground truth)
    column(p) + background[p] + low_overlap[p] == detections[p] (kept, not ignored)
and recall = diagonal / objects, precision = diagonal / detections are the operating point's.

Views (`subset`, `page`) re-count the same assignment: counts to or from labels outside the view
go to `other_predicted` (per row) and `other_true` (per column), so the identities hold in every
view. For "segm" results IoU is mask IoU; polygons are rasterised at the image sizes of the
ground truth (`image_sizes` overrides them).
"""

from dataclasses import dataclass
from typing import Any

import numpy as np

from metrics.coco import CocoResult
from metrics.coco_data import to_rles
from metrics.coco_match import box_iou_pairs, make_pairs, mask_iou_pairs
from metrics.operating_point import Score, base_score, iou_index, kept_by_score

PAGE_SIZES = (10, 15, 20)
MISSED, LOW_OVERLAP, BACKGROUND = "missed", "low_overlap", "background"
BADCASE_KINDS = ("false_positive", "missed")


@dataclass(frozen=True)
class _Assignment:
    """Every non-crowd ground truth and every counted detection, each as one event."""

    iou: float
    score: float
    low_iou: float
    labels: tuple[Any, ...]
    image_ids: np.ndarray  # sorted, object
    objects: np.ndarray  # per label: non-crowd ground truth
    image_counts: np.ndarray  # per label: images with non-crowd ground truth of it
    detections: np.ndarray  # per label: kept, not ignored
    true: np.ndarray  # label index, -1 for background
    pred: np.ndarray  # label index, -1 for missed
    low: np.ndarray  # bool: a low-overlap pair
    image: np.ndarray  # index into image_ids
    gt: np.ndarray  # input index of the ground truth, -1 for none
    det: np.ndarray  # input index of the detection, -1 for none
    pair_iou: np.ndarray  # IoU of the pair, 0 for none


def _positions(values: np.ndarray, ids: tuple) -> np.ndarray:
    """Position of each value in `ids` (sorted, unique, all values present)."""
    keys, wanted = np.asarray(ids), np.asarray(values.tolist())
    if len(values) and keys.dtype.kind in "iuU" and wanted.dtype.kind == keys.dtype.kind:
        found = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
        if np.array_equal(keys[found], wanted):
            return found.astype(np.int64)
    lookup = {value: n for n, value in enumerate(ids)}
    return np.fromiter((lookup[v] for v in values.tolist()), dtype=np.int64, count=len(values))


def _rank_within(groups: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within each run of equal values of a sorted array."""
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    return np.arange(len(groups)) - np.repeat(starts, np.diff(np.r_[starts, len(groups)]))


def _image_pairs(det_image: np.ndarray, det_rank: np.ndarray, gt_image: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """All (detection, ground truth) pairs sharing an image, by detection rank, detection,
    then ground-truth position."""
    return make_pairs(det_image, det_rank, gt_image, np.arange(len(gt_image)))


def _pair_ious(result: CocoResult, det: np.ndarray, gt: np.ndarray,
               image_sizes: dict | None) -> np.ndarray:
    """IoU of (detection, ground truth) input-index pairs, contiguous per detection."""
    if result.params.iou_type == "bbox" or len(det) == 0:
        return box_iou_pairs(result.dt.boxes[det], result.gt.boxes[gt], np.zeros(len(det), bool))
    sizes = image_sizes or result.image_sizes
    return mask_iou_pairs(det, gt, to_rles(result.dt, sizes), to_rles(result.gt, sizes),
                          np.zeros(len(result.gt), bool))


def _all_image_pairs(result: CocoResult, det_img: np.ndarray, gt_img: np.ndarray,
                     image_sizes: dict | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(detection row, ground-truth row, IoU) of every kept detection and non-crowd ground truth
    sharing an image, computed once per result: thresholds only filter these pairs, so a
    slider move never recomputes an IoU."""
    cached = result.cache.get("image_pairs")
    if cached is None:
        tab = result.matches
        regular = np.flatnonzero(~tab.gt_ignored)
        pd, pg = _image_pairs(det_img, np.zeros(len(det_img), dtype=np.int64),
                              gt_img[regular])
        ious = _pair_ious(result, tab.det_index[pd], tab.gt_index[regular[pg]], image_sizes)
        cached = result.cache["image_pairs"] = (pd, regular[pg], ious)
    return cached


def _greedy(det: np.ndarray, gt: np.ndarray, iou: np.ndarray, image: np.ndarray,
            rank: np.ndarray, n_gt: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-to-one assignment of eligible pairs: per image, detections by rank each take the
    free ground truth with the highest IoU (ties: the later). Returns (det, gt, iou) taken."""
    if len(det) == 0:
        return det, gt, iou
    dets = np.unique(det)
    ordered = dets[np.lexsort((rank[dets], image[dets]))]
    new_rank = np.zeros(len(rank), dtype=np.int64)
    new_rank[ordered] = _rank_within(image[ordered])
    order = np.lexsort((gt, det, new_rank[det]))
    det, gt, iou = det[order], gt[order], iou[order]
    bounds = np.searchsorted(new_rank[det], np.arange(int(new_rank.max()) + 2))
    taken = np.zeros(n_gt, dtype=bool)
    out: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        d, g, v = det[lo:hi], gt[lo:hi], iou[lo:hi]
        change = np.r_[False, d[1:] != d[:-1]]
        seg_starts = np.flatnonzero(np.r_[True, change[1:]])
        key = np.where(taken[g], -1.0, v)
        best = np.maximum.reduceat(key, seg_starts)
        at_best = (key >= 0) & (key == best[np.cumsum(change)])
        winner = np.maximum.reduceat(np.where(at_best, np.arange(hi - lo), -1), seg_starts)
        winner = winner[winner >= 0]
        taken[g[winner]] = True
        out.append((d[winner], g[winner], v[winner]))
    taken_det, taken_gt, taken_iou = (np.concatenate(parts) for parts in zip(*out, strict=True))
    return taken_det, taken_gt, taken_iou


def _assign(result: CocoResult, iou: float, score: Score, low_iou: float,
            image_sizes: dict | None) -> _Assignment:
    """The assignment of the module docstring, vectorised across images."""
    if not result.params.use_cats:
        raise ValueError("a confusion matrix needs per-category evaluation (use_cats=True)")
    t = iou_index(result, iou)
    if not 0 < low_iou <= iou:
        raise ValueError(f"low_iou must be in (0, iou]; got {low_iou} with iou {iou}")
    tab, labels = result.matches, tuple(result.cat_ids)
    n_k, limit = len(labels), min(float(tab.iou_thrs[t]), 1 - 1e-10)
    det_k, gt_k = _positions(tab.det_category, labels), _positions(tab.gt_category, labels)
    det_img = _positions(tab.det_image, result.params.img_ids)
    gt_img = _positions(tab.gt_image, result.params.img_ids)
    kept = kept_by_score(result, score, det_k) & ~tab.det_ignored[t]
    hit = tab.det_gt[t] >= 0
    regular = ~tab.gt_ignored
    row_of_gt = np.full(len(result.gt), -1, dtype=np.int64)
    row_of_gt[tab.gt_index] = np.arange(len(tab.gt_index))
    tp = np.flatnonzero(kept & hit)
    matched = np.zeros(len(tab.gt_index), dtype=bool)
    matched[row_of_gt[tab.det_gt[t][tp]]] = True

    free = np.flatnonzero(kept & ~hit)  # table rows of COCO's false positives
    open_gt = np.flatnonzero(regular & ~matched)
    open_gt = open_gt[np.argsort(tab.gt_index[open_gt], kind="stable")]  # input order
    order = np.lexsort((tab.det_index[free], -tab.det_score[free], det_img[free]))
    rank = np.empty(len(free), dtype=np.int64)
    rank[order] = _rank_within(det_img[free][order])
    all_det, all_gt, all_iou = _all_image_pairs(result, det_img, gt_img, image_sizes)
    in_free = np.full(len(tab.det_index), -1, dtype=np.int64)
    in_free[free] = np.arange(len(free))
    in_open = np.full(len(tab.gt_index), -1, dtype=np.int64)
    in_open[open_gt] = np.arange(len(open_gt))
    wanted = (in_free[all_det] >= 0) & (in_open[all_gt] >= 0)
    pd, pg, pair_iou = in_free[all_det[wanted]], in_open[all_gt[wanted]], all_iou[wanted]
    same = det_k[free[pd]] == gt_k[open_gt[pg]]
    free_img = det_img[free]
    cross = (~same) & (pair_iou >= limit)
    c_det, c_gt, c_iou = _greedy(pd[cross], pg[cross], pair_iou[cross], free_img, rank,
                                 len(open_gt))
    det_used = np.zeros(len(free), dtype=bool)
    gt_used = np.zeros(len(open_gt), dtype=bool)
    det_used[c_det], gt_used[c_gt] = True, True
    near = same & (pair_iou >= low_iou) & (pair_iou < limit) & ~det_used[pd] & ~gt_used[pg]
    l_det, l_gt, l_iou = _greedy(pd[near], pg[near], pair_iou[near], free_img, rank,
                                 len(open_gt))
    det_used[l_det], gt_used[l_gt] = True, True
    missed, background = np.flatnonzero(~gt_used), np.flatnonzero(~det_used)

    none = np.full(len(missed) + len(background), -1, dtype=np.int64)
    n_m = len(missed)
    true = np.concatenate([det_k[tp], gt_k[open_gt[c_gt]], gt_k[open_gt[l_gt]],
                           gt_k[open_gt[missed]], none[n_m:]])
    pred = np.concatenate([det_k[tp], det_k[free[c_det]], det_k[free[l_det]], none[:n_m],
                           det_k[free[background]]])
    low = np.zeros(len(true), dtype=bool)
    low[len(tp) + len(c_det):len(tp) + len(c_det) + len(l_det)] = True
    image = np.concatenate([det_img[tp], free_img[c_det], free_img[l_det],
                            gt_img[open_gt[missed]], free_img[background]])
    gt = np.concatenate([tab.det_gt[t][tp], tab.gt_index[open_gt[c_gt]],
                         tab.gt_index[open_gt[l_gt]], tab.gt_index[open_gt[missed]],
                         none[n_m:]])
    det = np.concatenate([tab.det_index[tp], tab.det_index[free[c_det]],
                          tab.det_index[free[l_det]], none[:n_m], tab.det_index[free[background]]])
    ious = np.concatenate([tab.det_iou[t][tp], c_iou, l_iou, np.zeros(len(none))])
    pairs = np.unique(gt_img[regular] * n_k + gt_k[regular])
    return _Assignment(
        iou=float(iou), score=base_score(score), low_iou=float(low_iou), labels=labels,
        image_ids=np.asarray(result.params.img_ids, dtype=object),
        objects=np.bincount(gt_k[regular], minlength=n_k),
        image_counts=np.bincount(pairs % n_k, minlength=n_k) if n_k else np.zeros(0, int),
        detections=np.bincount(det_k[kept], minlength=n_k),
        true=true, pred=pred, low=low, image=image, gt=gt, det=det, pair_iou=ious)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return np.divide(numerator, denominator, out=np.zeros(len(numerator)),
                     where=denominator > 0)


class DetectionConfusion:
    """A detection confusion matrix at one operating point, or a view of one (subset, page)."""

    def __init__(self, assignment: _Assignment, names: dict | None = None,
                 rows: np.ndarray | None = None, columns: np.ndarray | None = None,
                 page_info: dict | None = None) -> None:
        a = self._a = assignment
        self.names = dict(names or {})
        self.iou, self.score, self.low_iou, self.labels = a.iou, a.score, a.low_iou, a.labels
        everything = np.arange(len(a.labels))
        self._rows = everything if rows is None else np.asarray(rows, dtype=np.int64)
        self._cols = everything if columns is None else np.asarray(columns, dtype=np.int64)
        self.page_info = page_info
        self.row_labels = [a.labels[k] for k in self._rows.tolist()]
        self.column_labels = [a.labels[k] for k in self._cols.tolist()]
        n_r, n_c = len(self._rows), len(self._cols)
        row_of = np.full(len(a.labels) + 1, n_r)  # index -1 (background) set below
        row_of[self._rows] = np.arange(n_r)
        row_of[-1] = n_r + 1
        col_of = np.full(len(a.labels) + 1, n_c)
        col_of[self._cols] = np.arange(n_c)
        col_of[-1] = n_c + 1
        row = row_of[a.true]
        col = np.where(a.low, n_c + 2, col_of[a.pred])
        ext = np.bincount(row * (n_c + 3) + col, minlength=(n_r + 2) * (n_c + 3))
        ext = ext.reshape(n_r + 2, n_c + 3)
        self.matrix = ext[:n_r, :n_c]
        self.other_predicted = ext[:n_r, n_c]  # per row: predicted as a label outside the view
        self.missed = ext[:n_r, n_c + 1]
        self.low_overlap = ext[:n_r, n_c + 2]
        self.other_true = ext[n_r, :n_c]  # per column: truth of a label outside the view
        self.background = ext[n_r + 1, :n_c]
        low_by_label = np.bincount(a.pred[a.low], minlength=len(a.labels))
        self.low_overlap_detections = low_by_label[self._cols]
        diagonal = np.bincount(a.true[(a.true == a.pred) & ~a.low], minlength=len(a.labels))
        self.objects = a.objects[self._rows]
        self.image_counts = a.image_counts[self._rows]
        self.detections = a.detections[self._cols]
        self.recall = _ratio(diagonal[self._rows], self.objects)
        self.precision = _ratio(diagonal[self._cols], self.detections)

    def _label_position(self, label: Any) -> int:
        try:
            return self.labels.index(label)
        except ValueError:
            raise ValueError(f"label {label!r} is not among the evaluated categories") from None

    def cell_images(self, true_label: Any, predicted_label: Any) -> list[Any]:
        """Sorted image ids of one cell; "background" as truth, "missed"/"low_overlap" as
        prediction name the buckets."""
        a = self._a
        if true_label == BACKGROUND:
            if predicted_label in (MISSED, LOW_OVERLAP, BACKGROUND):
                raise ValueError("the background row has cells for predicted labels only")
            mask = (a.true == -1) & (a.pred == self._label_position(predicted_label))
        else:
            k = self._label_position(true_label)
            if predicted_label == MISSED:
                mask = (a.true == k) & (a.pred == -1)
            elif predicted_label == LOW_OVERLAP:
                mask = (a.true == k) & a.low
            elif predicted_label == BACKGROUND:
                raise ValueError("background is a row (truth side); use cell_images("
                                 "'background', predicted_label)")
            else:
                mask = (a.true == k) & (a.pred == self._label_position(predicted_label)) & ~a.low
        return a.image_ids[np.unique(a.image[mask])].tolist()

    def wrongly_predicted_images(self, predicted_label: Any) -> list[Any]:
        """Sorted image ids where a kept detection of this label is not a match of its label:
        another label's object, a low-overlap find or a false alarm."""
        a, k = self._a, self._label_position(predicted_label)
        mask = (a.pred == k) & ((a.true != k) | a.low)
        return a.image_ids[np.unique(a.image[mask])].tolist()

    def subset(self, labels: list[Any]) -> "DetectionConfusion":
        """A view on these labels (in this order) as rows and columns; the rest counts as other."""
        positions = [self._label_position(label) for label in labels]
        if len(set(positions)) != len(positions):
            raise ValueError("subset labels must not repeat")
        return DetectionConfusion(self._a, self.names, np.array(positions, dtype=np.int64),
                                  np.array(positions, dtype=np.int64))

    def page_counts(self, per_side: int = 10) -> tuple[int, int]:
        """Number of row pages and column pages of this view at `per_side` labels a side."""
        _check_per_side(per_side)
        return (max(1, -(-len(self._rows) // per_side)), max(1, -(-len(self._cols) // per_side)))

    def page(self, row_page: int, col_page: int, per_side: int = 10) -> "DetectionConfusion":
        """One block of this view: rows row_page and columns col_page, per_side labels a side."""
        row_pages, col_pages = self.page_counts(per_side)
        if not (0 <= row_page < row_pages and 0 <= col_page < col_pages):
            raise ValueError(f"page ({row_page}, {col_page}) is outside the {row_pages} x "
                             f"{col_pages} pages of {per_side} labels a side")
        rows = self._rows[row_page * per_side:(row_page + 1) * per_side]
        cols = self._cols[col_page * per_side:(col_page + 1) * per_side]
        info = {"row_page": row_page, "column_page": col_page, "per_side": per_side,
                "row_pages": row_pages, "column_pages": col_pages}
        return DetectionConfusion(self._a, self.names, rows, cols, info)

    def _shown(self, labels: list[Any]) -> list[Any]:
        return [self.names.get(label, label) for label in labels]

    def as_api(self) -> dict[str, Any]:
        """The confusion endpoint's body, plus recall, counts and view details."""
        body: dict[str, Any] = {}
        if self.row_labels == self.column_labels:
            body["labels"] = self._shown(self.row_labels)
        else:
            body["row_labels"] = self._shown(self.row_labels)
            body["column_labels"] = self._shown(self.column_labels)
        body.update({
            "matrix": self.matrix.tolist(), "missed": self.missed.tolist(),
            "background": self.background.tolist(), "low_overlap": self.low_overlap.tolist(),
            "recall": self.recall.tolist(), "object_count": self.objects.tolist(),
            "image_count": self.image_counts.tolist(), "precision": self.precision.tolist(),
            "detection_count": self.detections.tolist(),
            "iou": self.iou, "score_threshold": self.score, "low_iou": self.low_iou,
        })
        if len(self._rows) < len(self.labels) or len(self._cols) < len(self.labels):
            body["other_predicted"] = self.other_predicted.tolist()
            body["other_true"] = self.other_true.tolist()
        if self.page_info is not None:
            body["page"] = dict(self.page_info)
        return body


def _check_per_side(per_side: int) -> None:
    if per_side not in PAGE_SIZES:
        raise ValueError(f"per_side must be one of {', '.join(map(str, PAGE_SIZES))}")


def detection_confusion(result: CocoResult, iou: float = 0.5, score: Score = 0.5,
                        low_iou: float = 0.1, *, names: dict | None = None,
                        image_sizes: dict | None = None) -> DetectionConfusion:
    """The detection confusion matrix at IoU `iou` (of the grid) and score threshold `score`."""
    return DetectionConfusion(_assign(result, iou, score, low_iou, image_sizes), names)


def _best_overlaps(result: CocoResult, det: np.ndarray, low_iou: float,
                   image_sizes: dict | None) -> tuple[np.ndarray, np.ndarray]:
    """For detections (input indices): the non-crowd ground truth (input index, -1 for none)
    they overlap most with IoU >= low_iou (ties: the later), and that IoU."""
    tab = result.matches
    regular = np.flatnonzero(~tab.gt_ignored)
    regular = regular[np.argsort(tab.gt_index[regular], kind="stable")]
    ids = result.params.img_ids
    det_img = _positions(result.dt.image_ids[det], ids)
    pd, pg = _image_pairs(det_img, np.zeros(len(det), dtype=np.int64),
                          _positions(tab.gt_image[regular], ids))
    ious = _pair_ious(result, det[pd], tab.gt_index[regular[pg]], image_sizes)
    best_gt, best_iou = np.full(len(det), -1, dtype=np.int64), np.zeros(len(det))
    near = ious >= low_iou
    pd, pg, ious = pd[near], pg[near], ious[near]
    if len(pd):
        starts = np.flatnonzero(np.r_[True, pd[1:] != pd[:-1]])
        best = np.maximum.reduceat(ious, starts)
        at_best = ious == best[np.cumsum(np.r_[0, pd[1:] != pd[:-1]])]
        winner = np.maximum.reduceat(np.where(at_best, np.arange(len(pd)), -1), starts)
        best_gt[pd[starts]] = tab.gt_index[regular[pg[winner]]]
        best_iou[pd[starts]] = ious[winner]
    return best_gt, best_iou


def _equal(values: list, wanted: Any) -> np.ndarray:
    return np.array([value == wanted for value in values], dtype=bool).reshape(-1)


def _box(boxes: np.ndarray, n: int) -> list[float]:
    return [float(v) for v in boxes[n]]


def _column(values: np.ndarray, rows: np.ndarray) -> list:
    """values[rows] as Python values (rows -1: any value, for the caller to ignore)."""
    if len(values) == 0:
        return [None] * len(rows)
    return values[np.maximum(rows, 0)].tolist()


def _fill_overlaps(result: CocoResult, a: _Assignment, fp: np.ndarray, fp_gt: np.ndarray,
                   fp_iou: np.ndarray, low_iou: float, image_sizes: dict | None) -> None:
    """False positives on the background (fp_gt -1): the ground truth they overlap most."""
    on_bg = fp_gt < 0
    if on_bg.any():
        fp_gt[on_bg], fp_iou[on_bg] = _best_overlaps(result, a.det[fp][on_bg], low_iou,
                                                     image_sizes)


def badcases(result: CocoResult, iou: float = 0.5, score: Score = 0.5, *,
             true_label: Any = None, predicted_label: Any = None, kind: str | None = None,
             low_iou: float = 0.1, file_names: dict | None = None,
             image_sizes: dict | None = None) -> list[dict[str, Any]]:
    """Images with errors at the operating point, by image id: false positives and missed objects.

    A false positive is a kept detection that matched no ground truth of its label (nor crowd);
    its true label is the ground truth it was confused with or overlaps most (IoU >= low_iou),
    if any. A missed object is non-crowd ground truth no kept detection of its label matched;
    its predicted label is that of the detection it was confused with or found at low overlap,
    if any. `true_label`, `predicted_label` and `kind` keep the entries that match.
    """
    return badcase_page(result, iou, score, true_label=true_label,
                        predicted_label=predicted_label, kind=kind, low_iou=low_iou,
                        file_names=file_names, image_sizes=image_sizes)[1]


def badcase_page(result: CocoResult, iou: float = 0.5, score: Score = 0.5, *,
                 true_label: Any = None, predicted_label: Any = None, kind: str | None = None,
                 low_iou: float = 0.1, file_names: dict | None = None,
                 image_sizes: dict | None = None, offset: int = 0, limit: int | None = None,
                 image_id: Any = None) -> tuple[int, list[dict[str, Any]]]:
    """How many images `badcases` lists, and its entries offset .. offset + limit (all when
    limit is None); `image_id` keeps one image. Only the page's entries are built: the count is
    a few array operations."""
    if kind is not None and kind not in BADCASE_KINDS:
        raise ValueError(f"kind must be one of {', '.join(BADCASE_KINDS)}")
    a = _assign(result, iou, score, low_iou, image_sizes)
    errors = ~((a.true == a.pred) & ~a.low)
    bucket = np.where(a.low, 1, np.where(a.pred == -1, 2, np.where(a.true == -1, 3, 0)))
    names = ("confusion", LOW_OVERLAP, MISSED, BACKGROUND)
    fp = np.flatnonzero(errors & (a.det >= 0))
    fp = fp[np.lexsort((a.det[fp], -result.dt.scores[a.det[fp]]))]  # best score first
    fp_gt, fp_iou = a.gt[fp].copy(), a.pair_iou[fp].copy()
    if true_label is not None:  # the filter needs every false positive's true label
        _fill_overlaps(result, a, fp, fp_gt, fp_iou, low_iou, image_sizes)
    gt_cats, dt_cats = result.gt.category_ids, result.dt.category_ids
    mi = np.flatnonzero(errors & (a.gt >= 0))
    mi = mi[np.argsort(a.gt[mi], kind="stable")]  # annotation input order
    keep_fp = np.full(len(fp), kind != "missed")
    keep_mi = np.full(len(mi), kind != "false_positive")
    if true_label is not None:
        fp_true = [gt_cats[g] if g >= 0 else None for g in fp_gt.tolist()]
        keep_fp &= _equal(fp_true, true_label)
        keep_mi &= _equal(gt_cats[a.gt[mi]].tolist(), true_label)
    if predicted_label is not None:
        mi_pred = [dt_cats[d] if d >= 0 else None for d in a.det[mi].tolist()]
        keep_fp &= _equal(dt_cats[a.det[fp]].tolist(), predicted_label)
        keep_mi &= _equal(mi_pred, predicted_label)
    if image_id is not None:
        position = list(result.params.img_ids).index(image_id)
        keep_fp &= a.image[fp] == position
        keep_mi &= a.image[mi] == position
    fp, fp_gt, fp_iou, mi = fp[keep_fp], fp_gt[keep_fp], fp_iou[keep_fp], mi[keep_mi]
    images = np.unique(np.concatenate([a.image[fp], a.image[mi]]))
    shown = images[offset:None if limit is None else offset + limit]
    if len(shown) < len(images):  # only the rows of the page's images
        on_page = np.zeros(len(a.image_ids), dtype=bool)
        on_page[shown] = True
        rows = on_page[a.image[fp]]
        fp, fp_gt, fp_iou, mi = fp[rows], fp_gt[rows], fp_iou[rows], mi[on_page[a.image[mi]]]
    if true_label is None:
        _fill_overlaps(result, a, fp, fp_gt, fp_iou, low_iou, image_sizes)
    out: dict[int, dict[str, Any]] = {}
    for image, image_id in zip(shown.tolist(), a.image_ids[shown].tolist(), strict=True):
        out[image] = {"image_id": image_id, "false_positives": [], "missed": []}
        if file_names is not None:
            out[image]["file_name"] = file_names.get(image_id)
    # Python values column by column (tolist), not numpy scalars field by field
    gt_ids, scores = result.gt.ids, result.dt.scores
    det = a.det[fp]
    for image, g, v, b, cat, box, s, ann, true_cat in zip(
            a.image[fp].tolist(), fp_gt.tolist(), fp_iou.tolist(), bucket[fp].tolist(),
            dt_cats[det].tolist(), result.dt.boxes[det].tolist(), scores[det].tolist(),
            _column(gt_ids, fp_gt), _column(gt_cats, fp_gt), strict=True):
        overlaps = None if g < 0 else {"annotation_id": ann, "category_id": true_cat, "iou": v}
        out[image]["false_positives"].append({"category_id": cat, "bbox": box, "score": s,
                                              "bucket": names[b], "overlaps": overlaps})
    gt, det = a.gt[mi], a.det[mi]
    for image, d, v, b, ann, cat, box, p_cat, p_box, p_score in zip(
            a.image[mi].tolist(), det.tolist(), a.pair_iou[mi].tolist(), bucket[mi].tolist(),
            gt_ids[gt].tolist(), gt_cats[gt].tolist(), result.gt.boxes[gt].tolist(),
            _column(dt_cats, det), _column(result.dt.boxes, det), _column(scores, det),
            strict=True):
        found = None if d < 0 else {"category_id": p_cat, "bbox": p_box, "score": p_score,
                                    "iou": v}
        out[image]["missed"].append({"annotation_id": ann, "category_id": cat, "bbox": box,
                                     "bucket": names[b], "predicted": found})
    return len(images), [out[image] for image in shown.tolist()]


OUTCOMES = ("matched", "confused", LOW_OVERLAP, MISSED, "false_alarm")


def instances(result: CocoResult, iou: float = 0.5, score: Score = 0.5, *,
              low_iou: float = 0.1, image_sizes: dict | None = None) -> list[dict[str, Any]]:
    """Every object and every kept detection once, with its outcome at the operating point.

    One row per assignment event of the module docstring, in image order: "matched" (truth and
    a detection of its label at IoU >= t), "confused" (truth taken by another label's
    detection), "low_overlap", "missed" (truth only) and "false_alarm" (detection only).
    """
    a = _assign(result, iou, score, low_iou, image_sizes)
    outcome = np.select([a.low, a.pred == -1, a.true == -1, a.true == a.pred], [2, 3, 4, 0],
                        default=1)
    order = np.lexsort((np.where(a.gt >= 0, a.gt, len(result.gt) + a.det), a.image))
    gt_cats, dt_cats = result.gt.category_ids, result.dt.category_ids
    rows = []
    for n in order.tolist():
        g, d = int(a.gt[n]), int(a.det[n])
        rows.append({
            "image_id": a.image_ids[a.image[n]], "outcome": OUTCOMES[outcome[n]],
            "true_category_id": gt_cats[g] if g >= 0 else None,
            "annotation_id": result.gt.ids[g] if g >= 0 else None,
            "true_bbox": _box(result.gt.boxes, g) if g >= 0 else None,
            "predicted_category_id": dt_cats[d] if d >= 0 else None,
            "score": float(result.dt.scores[d]) if d >= 0 else None,
            "predicted_bbox": _box(result.dt.boxes, d) if d >= 0 else None,
            "iou": float(a.pair_iou[n]) if g >= 0 and d >= 0 else None})
    return rows
