"""Classification metrics: the single-label evaluation report and multi-label thresholds.

Every figure equals scikit-learn's (`zero_division=0`: a ratio with a zero denominator is 0), with
labels given by index `0 .. n_labels - 1` so that labels never seen still count in macro averages.
Where scikit-learn breaks ties differently, this module follows `numpy.argmax` (lowest index
wins) so that top-1 accuracy and the accuracy always agree; see `_true_label_ranks`.

Pure numpy: this module must not import Django, torch or scikit-learn (a test proves it).
"""

from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np

DEFAULT_TOP_K = (1, 2, 3, 4, 5)
CONFUSION_PAGE_SIDES = (10, 15, 20)
DEFAULT_THRESHOLD = 0.5

# Elements per temporary block: bounds the memory of the n × L comparisons and sorts to ~tens of
# MB even for 100k samples × 1000 labels.
_BLOCK_ELEMENTS = 1 << 22

LabelRef = str | int  # a label's name, or its index among the evaluated labels


# --- shared pieces ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Averages:
    """Precision, recall and F1 averaged over labels (or samples) one way."""

    precision: float
    recall: float
    f1: float


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.zeros(np.broadcast(numerator, denominator).shape)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def _average(values: np.ndarray, weights: np.ndarray | None = None) -> float:
    # np.average raises on zero total weight; scikit-learn reports 0 there with zero_division=0.
    if weights is not None and not weights.sum():
        return 0.0
    return float(np.average(values, weights=weights))


def _label_averages(tp: np.ndarray, support: np.ndarray, predicted: np.ndarray,
                    weights: np.ndarray | None = None) -> Averages:
    return Averages(precision=_average(_ratio(tp, predicted), weights),
                    recall=_average(_ratio(tp, support), weights),
                    f1=_average(_ratio(2 * tp, support + predicted), weights))


def _scores_matrix(scores: np.ndarray) -> np.ndarray:
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be 2-D (samples × labels), got shape {scores.shape}")
    if scores.shape[0] == 0:
        raise ValueError("There are no samples to evaluate; pass at least one row of scores.")
    if scores.shape[1] == 0:
        raise ValueError("scores has no columns; pass one column per label.")
    if not (np.issubdtype(scores.dtype, np.integer) or np.issubdtype(scores.dtype, np.floating)):
        raise ValueError(f"scores must be real numbers, got dtype {scores.dtype}")
    # min() propagates NaN without allocating an n × L mask.
    if np.isnan(scores.min()):
        row, column = np.argwhere(np.isnan(scores))[0]
        raise ValueError(f"scores contain NaN (first at sample {row}, label {column}); "
                         "replace it with a real score.")
    return scores


def _label_names(labels: Sequence[str] | None, n_labels: int) -> tuple[str, ...]:
    if labels is None:
        return tuple(str(i) for i in range(n_labels))
    names = tuple(labels)
    if len(names) != n_labels:
        raise ValueError(f"labels has {len(names)} names but scores have {n_labels} columns; "
                         "give one name per column.")
    if not all(isinstance(name, str) for name in names):
        raise ValueError("labels must be strings (the labels' names).")
    if len(set(names)) != len(names):
        duplicates = sorted({name for name in names if names.count(name) > 1})
        raise ValueError(f"labels must be unique; repeated: {duplicates}")
    return names


def _position(names: tuple[str, ...], label: LabelRef) -> int:
    if isinstance(label, str):
        try:
            return names.index(label)
        except ValueError:
            raise ValueError(f"Unknown label {label!r}.") from None
    is_index = isinstance(label, int | np.integer) and not isinstance(label, bool)
    if is_index and 0 <= label < len(names):
        return int(label)
    raise ValueError(f"Unknown label {label!r}: give a name or an index below {len(names)}.")


def _image_ids(image_ids: Sequence[Hashable] | None, n: int) -> tuple[Hashable, ...] | None:
    if image_ids is None:
        return None
    ids = tuple(image_ids)
    if len(ids) != n:
        raise ValueError(f"image_ids has {len(ids)} entries but there are {n} samples.")
    return ids


# --- single-label -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelMetrics:
    """One label's row of the evaluation report."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int  # samples whose true label is this one
    predicted_count: int  # samples predicted as this label
    misrecognition_rate: float  # share of the samples predicted as this label that are wrong
    image_count: int  # images whose true label is this one: one sample is one image


@dataclass(frozen=True)
class PredictedAs:
    """How many samples of a true label were predicted as `label`."""

    label: str
    count: int
    share: float  # of the true label's samples


@dataclass(frozen=True)
class PredictedAsPage:
    """One page of "what it was predicted as" for a true label."""

    true_label: str
    rows: tuple[PredictedAs, ...]
    total: int  # rows matching the query, over all pages
    page: int
    per_page: int


@dataclass(frozen=True, eq=False)
class _Samples:
    names: tuple[str, ...]
    y_true: np.ndarray
    y_pred: np.ndarray
    image_ids: tuple[Hashable, ...] | None

    def images(self, mask: np.ndarray) -> list[Hashable]:
        # A boolean scan is O(n) per query, under a millisecond for 100k samples: no index needed.
        positions = np.flatnonzero(mask)
        if self.image_ids is None:
            return positions.tolist()
        return [self.image_ids[i] for i in positions]


@dataclass(frozen=True, eq=False)
class ConfusionMatrix:
    """Counts with rows = true label and columns = predicted label, over `labels`.

    A view (`subset`, `page`) keeps only its labels' rows and columns: samples whose truth or
    prediction lies outside the view are not in its counts. Labels are named, or given by their
    index among all evaluated labels.
    """

    labels: tuple[str, ...]
    counts: np.ndarray = field(repr=False)
    _samples: _Samples = field(repr=False)
    _positions: np.ndarray = field(repr=False)

    @property
    def matrix(self) -> list[list[int]]:
        """The counts as lists of ints, rows = truth, columns = prediction."""
        return self.counts.tolist()

    def _view_position(self, label: LabelRef) -> int:
        position = _position(self._samples.names, label)
        if not np.any(self._positions == position):
            raise ValueError(f"Label {label!r} is not in this view of the confusion matrix.")
        return position

    def cell_images(self, true_label: LabelRef, predicted_label: LabelRef) -> list[Hashable]:
        """Image ids (input order) of the cell at (true label, predicted label)."""
        t, p = self._view_position(true_label), self._view_position(predicted_label)
        return self._samples.images((self._samples.y_true == t) & (self._samples.y_pred == p))

    def subset(self, labels: Sequence[LabelRef]) -> "ConfusionMatrix":
        """The matrix over `labels` only, in the order given."""
        positions = [self._view_position(label) for label in labels]
        if len(set(positions)) != len(positions):
            raise ValueError("subset labels must be unique.")
        row_of = {p: i for i, p in enumerate(self._positions.tolist())}
        within = [row_of[p] for p in positions]
        return ConfusionMatrix(labels=tuple(self._samples.names[p] for p in positions),
                               counts=self.counts[np.ix_(within, within)],
                               _samples=self._samples,
                               _positions=np.array(positions, dtype=np.int64))

    def page_count(self, per_side: int = 10) -> int:
        """How many pages `page` has at this size."""
        _check_page_side(per_side)
        return -(-len(self.labels) // per_side)

    def page(self, page_index: int, per_side: int = 10) -> "ConfusionMatrix":
        """The block of labels `page_index * per_side ..` on both axes; past the end it is empty."""
        _check_page_side(per_side)
        if page_index < 0:
            raise ValueError(f"page_index must be 0 or more, got {page_index}")
        start = page_index * per_side
        return self.subset(self._positions[start:start + per_side].tolist())


def _check_page_side(per_side: int) -> None:
    if per_side not in CONFUSION_PAGE_SIDES:
        raise ValueError(f"per_side must be one of {CONFUSION_PAGE_SIDES}, got {per_side}")


@dataclass(frozen=True, eq=False)
class ClassificationReport:
    """Single-label evaluation: overall figures, one row per label, the confusion matrix."""

    labels: tuple[str, ...]
    sample_count: int
    accuracy: float
    top_k: dict[int, float]
    per_label: tuple[LabelMetrics, ...]
    macro: Averages
    weighted: Averages  # weighted by each label's support
    confusion: ConfusionMatrix = field(repr=False)

    @property
    def macro_precision(self) -> float:
        """Precision averaged over labels, each label counting once."""
        return self.macro.precision

    @property
    def macro_recall(self) -> float:
        """Recall averaged over labels, each label counting once."""
        return self.macro.recall

    @property
    def macro_f1(self) -> float:
        """F1 averaged over labels, each label counting once."""
        return self.macro.f1

    @property
    def mean_f1(self) -> float:
        """The report's "mean F1": the macro F1."""
        return self.macro.f1

    @property
    def weighted_f1(self) -> float:
        """F1 averaged over labels weighted by support."""
        return self.weighted.f1

    def label(self, label: LabelRef) -> LabelMetrics:
        """One label's row, by name or index."""
        return self.per_label[_position(self.labels, label)]

    def predicted_as(self, true_label: LabelRef, *, sort: Literal["count", "label"] = "count",
                     descending: bool = True, query: str | None = None, page: int = 0,
                     per_page: int = 20) -> PredictedAsPage:
        """The labels a true label's samples were predicted as (non-zero counts), paged."""
        if sort not in ("count", "label"):
            raise ValueError(f"sort must be 'count' or 'label', got {sort!r}")
        if page < 0 or per_page < 1:
            raise ValueError(f"page must be 0 or more and per_page 1 or more, got {page}, "
                             f"{per_page}")
        t = _position(self.labels, true_label)
        row = self.confusion.counts[t]
        support = int(row.sum())
        rows = [PredictedAs(self.labels[p], int(row[p]), int(row[p]) / support)
                for p in np.flatnonzero(row)]
        if query:
            wanted = query.casefold()
            rows = [r for r in rows if wanted in r.label.casefold()]
        rows.sort(key=lambda r: r.label, reverse=sort == "label" and descending)
        if sort == "count":
            # A stable sort: equal counts stay in label order.
            rows.sort(key=lambda r: r.count, reverse=descending)
        start = page * per_page
        return PredictedAsPage(true_label=self.labels[t], rows=tuple(rows[start:start + per_page]),
                               total=len(rows), page=page, per_page=per_page)

    def wrongly_predicted_as(self, label: LabelRef) -> list[Hashable]:
        """Image ids (input order) predicted as `label` whose true label is another."""
        p = _position(self.labels, label)
        samples = self.confusion._samples
        return samples.images((samples.y_pred == p) & (samples.y_true != p))


def _class_indices(y_true: Sequence[int], n: int, n_labels: int) -> np.ndarray:
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise ValueError(f"y_true must be 1-D (one label index per sample), got shape {y.shape}")
    if len(y) != n:
        raise ValueError(f"y_true has {len(y)} samples but scores have {n} rows.")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y_true must hold integer label indices, got dtype {y.dtype}")
    outside = np.flatnonzero((y < 0) | (y >= n_labels))
    if len(outside):
        raise ValueError(f"y_true[{outside[0]}] = {y[outside[0]]} is not a label index; "
                         f"indices run 0 .. {n_labels - 1}.")
    return y.astype(np.int64, copy=False)


def _true_label_ranks(scores: np.ndarray, y_true: np.ndarray) -> np.ndarray:
    """How many labels rank ahead of each sample's true label.

    A label ranks ahead when it scores higher, or the same with a lower index: the order of
    `numpy.argmax`, so rank 0 is exactly "predicted correctly". scikit-learn's
    `top_k_accuracy_score` breaks ties towards the higher index instead.
    """
    n, n_labels = scores.shape
    ranks = np.empty(n, dtype=np.int64)
    columns = np.arange(n_labels)
    step = max(1, _BLOCK_ELEMENTS // n_labels)
    for start in range(0, n, step):
        block, truth = scores[start:start + step], y_true[start:start + step]
        own = block[np.arange(len(truth)), truth][:, None]
        ahead = (block > own) | ((block == own) & (columns < truth[:, None]))
        ranks[start:start + step] = np.count_nonzero(ahead, axis=1)
    return ranks


def evaluate(y_true: Sequence[int], scores: np.ndarray, labels: Sequence[str] | None = None,
             image_ids: Sequence[Hashable] | None = None,
             top_k: Sequence[int] = DEFAULT_TOP_K) -> ClassificationReport:
    """Evaluate single-label predictions: the predicted label is each row's argmax."""
    scores = _scores_matrix(scores)
    n, n_labels = scores.shape
    names = _label_names(labels, n_labels)
    y_true = _class_indices(y_true, n, n_labels)
    ids = _image_ids(image_ids, n)
    if not all(isinstance(k, int | np.integer) and k >= 1 for k in top_k):
        raise ValueError(f"top_k values must be whole numbers of 1 or more, got {list(top_k)}")
    ks = sorted({int(k) for k in top_k})

    y_pred = np.argmax(scores, axis=1)
    counts = np.bincount(y_true * n_labels + y_pred,
                         minlength=n_labels * n_labels).reshape(n_labels, n_labels)
    tp = np.diagonal(counts).copy()
    support, predicted = counts.sum(axis=1), counts.sum(axis=0)
    precision, recall = _ratio(tp, predicted), _ratio(tp, support)
    f1 = _ratio(2 * tp, support + predicted)
    misrecognition = _ratio(predicted - tp, predicted)
    per_label = tuple(
        LabelMetrics(label=names[i], precision=float(precision[i]), recall=float(recall[i]),
                     f1=float(f1[i]), support=int(support[i]), predicted_count=int(predicted[i]),
                     misrecognition_rate=float(misrecognition[i]), image_count=int(support[i]))
        for i in range(n_labels))
    # k at or above the number of labels always hits, as in scikit-learn.
    ranks = _true_label_ranks(scores, y_true)
    samples = _Samples(names=names, y_true=y_true, y_pred=y_pred, image_ids=ids)
    return ClassificationReport(
        labels=names, sample_count=n, accuracy=int(tp.sum()) / n,
        top_k={k: int(np.count_nonzero(ranks < k)) / n for k in ks}, per_label=per_label,
        macro=_label_averages(tp, support, predicted),
        weighted=_label_averages(tp, support, predicted, weights=support),
        confusion=ConfusionMatrix(labels=names, counts=counts, _samples=samples,
                                  _positions=np.arange(n_labels)))


# --- multi-label ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MultilabelLabelMetrics:
    """One label's figures at its threshold."""

    label: str
    threshold: float
    precision: float
    recall: float
    f1: float
    support: int  # samples that truly carry the label
    predicted_count: int  # samples whose score is >= the threshold


@dataclass(frozen=True)
class ThresholdPoint:
    """A label's figures when samples scoring >= `threshold` are predicted positive."""

    threshold: float
    precision: float
    recall: float
    f1: float
    predicted_count: int


@dataclass(frozen=True, eq=False)
class MultilabelReport:
    """Multi-label evaluation at given thresholds, plus each label's threshold curve."""

    labels: tuple[str, ...]
    sample_count: int
    per_label: tuple[MultilabelLabelMetrics, ...]
    micro: Averages  # every (sample, label) decision pooled
    macro: Averages
    weighted: Averages  # weighted by each label's support
    samples: Averages  # per sample over its labels, then averaged over samples
    subset_accuracy: float  # samples whose predicted label set is exactly the true one
    _y_true: np.ndarray = field(repr=False)
    _scores: np.ndarray = field(repr=False)

    @property
    def micro_f1(self) -> float:
        """F1 over all (sample, label) decisions pooled."""
        return self.micro.f1

    @property
    def macro_f1(self) -> float:
        """F1 averaged over labels, each label counting once."""
        return self.macro.f1

    @property
    def weighted_f1(self) -> float:
        """F1 averaged over labels weighted by support."""
        return self.weighted.f1

    @property
    def samples_f1(self) -> float:
        """F1 of each sample's label set, averaged over samples."""
        return self.samples.f1

    def label(self, label: LabelRef) -> MultilabelLabelMetrics:
        """One label's row, by name or index."""
        return self.per_label[_position(self.labels, label)]

    def with_thresholds(self, thresholds: float | Sequence[float] | np.ndarray
                        ) -> "MultilabelReport":
        """The same data evaluated at other thresholds (a moved slider)."""
        return evaluate_multilabel(self._y_true, self._scores, self.labels, thresholds)

    def threshold_table(self, label: LabelRef) -> tuple[ThresholdPoint, ...]:
        """The label's figures with each of its distinct scores as threshold, ascending."""
        j = _position(self.labels, label)
        [(thresholds, tp, predicted)] = _curves(self._y_true[:, j:j + 1], self._scores[:, j:j + 1])
        return tuple(_points(thresholds, tp, predicted, int(np.count_nonzero(self._y_true[:, j]))))

    def best_threshold_per_label(self) -> tuple[ThresholdPoint, ...]:
        """Each label's F1-maximising threshold (ties: the higher threshold), in label order.

        Candidates are the label's distinct scores. A label no sample carries has F1 0 at every
        threshold, so its best threshold is its highest score.
        """
        return self._best_thresholds

    @cached_property
    def _best_thresholds(self) -> tuple[ThresholdPoint, ...]:
        best = []
        support = np.count_nonzero(self._y_true, axis=0)
        for j, (thresholds, tp, predicted) in enumerate(_curves(self._y_true, self._scores)):
            # Thresholds ascend, and argmax keeps the first maximum: searching the reversed
            # array sends ties to the higher threshold. Equal F1 values are equal floats, each
            # being one correctly rounded division of exact integers.
            f1 = _ratio(2 * tp, support[j] + predicted)
            i = len(f1) - 1 - int(np.argmax(f1[::-1]))
            best.append(_points(thresholds[i:i + 1], tp[i:i + 1], predicted[i:i + 1],
                                int(support[j]))[0])
        return tuple(best)


def _curves(y_true: np.ndarray, scores: np.ndarray) -> Iterator[tuple[np.ndarray, ...]]:
    """Per label: its distinct scores ascending, with true positives and predicted count at each.

    `np.sort` is several times faster than `argsort` plus gathering, so true positives come from
    a search among the positives' sorted scores rather than from the samples' sorted order.
    """
    n, n_labels = scores.shape
    step = max(1, _BLOCK_ELEMENTS // n)
    for start in range(0, n_labels, step):
        # Label-major blocks keep each label's column contiguous for the sorts.
        block = np.ascontiguousarray(scores[:, start:start + step].T)
        truth = np.ascontiguousarray(y_true[:, start:start + step].T)
        ranked = np.sort(block, axis=1)
        first = np.ones(ranked.shape, dtype=bool)
        first[:, 1:] = ranked[:, 1:] != ranked[:, :-1]
        for c in range(block.shape[0]):
            at = np.flatnonzero(first[c])
            thresholds = ranked[c, at]
            positives = np.sort(block[c, truth[c]])
            tp = len(positives) - np.searchsorted(positives, thresholds, side="left")
            yield thresholds, tp, n - at


def _points(thresholds: np.ndarray, tp: np.ndarray, predicted: np.ndarray,
            support: int) -> list[ThresholdPoint]:
    precision, recall = _ratio(tp, predicted), _ratio(tp, support)
    f1 = _ratio(2 * tp, support + predicted)
    return [ThresholdPoint(threshold=float(thresholds[i]), precision=float(precision[i]),
                           recall=float(recall[i]), f1=float(f1[i]),
                           predicted_count=int(predicted[i]))
            for i in range(len(thresholds))]


def _indicator_matrix(y_true: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    y = np.asarray(y_true)
    if y.shape != shape:
        raise ValueError(f"y_true has shape {y.shape} but scores have shape {shape}; "
                         "give one 0/1 column per label.")
    if y.dtype != bool and not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must hold only 0 and 1 (label absent / present).")
    return y.astype(bool)


def _threshold_vector(thresholds: float | Sequence[float] | np.ndarray | None,
                      n_labels: int) -> np.ndarray:
    if thresholds is None:
        thresholds = DEFAULT_THRESHOLD
    vector = np.asarray(thresholds, dtype=np.float64)
    if vector.ndim == 0:
        vector = np.full(n_labels, float(vector))
    if vector.shape != (n_labels,):
        raise ValueError(f"thresholds must be one number or one per label ({n_labels}), "
                         f"got shape {vector.shape}")
    if np.isnan(vector).any():
        raise ValueError("thresholds must not be NaN.")
    return vector


def evaluate_multilabel(y_true: np.ndarray, scores: np.ndarray,
                        labels: Sequence[str] | None = None,
                        thresholds: float | Sequence[float] | np.ndarray | None = None
                        ) -> MultilabelReport:
    """Evaluate multi-label predictions: a label is predicted when its score >= its threshold."""
    scores = _scores_matrix(scores)
    n, n_labels = scores.shape
    names = _label_names(labels, n_labels)
    truth = _indicator_matrix(y_true, scores.shape)
    cutoffs = _threshold_vector(thresholds, n_labels)

    predicted_mask = scores >= cutoffs
    hits = truth & predicted_mask
    tp = np.count_nonzero(hits, axis=0)
    support, predicted = np.count_nonzero(truth, axis=0), np.count_nonzero(predicted_mask, axis=0)
    precision, recall = _ratio(tp, predicted), _ratio(tp, support)
    f1 = _ratio(2 * tp, support + predicted)
    per_label = tuple(
        MultilabelLabelMetrics(label=names[j], threshold=float(cutoffs[j]),
                               precision=float(precision[j]), recall=float(recall[j]),
                               f1=float(f1[j]), support=int(support[j]),
                               predicted_count=int(predicted[j]))
        for j in range(n_labels))
    sample_tp = np.count_nonzero(hits, axis=1)
    sample_true, sample_predicted = truth.sum(axis=1), predicted_mask.sum(axis=1)
    return MultilabelReport(
        labels=names, sample_count=n, per_label=per_label,
        micro=_label_averages(tp.sum(), support.sum(), predicted.sum()),
        macro=_label_averages(tp, support, predicted),
        weighted=_label_averages(tp, support, predicted, weights=support),
        samples=_label_averages(sample_tp, sample_true, sample_predicted),
        subset_accuracy=int(np.count_nonzero((truth == predicted_mask).all(axis=1))) / n,
        _y_true=truth, _scores=scores)
