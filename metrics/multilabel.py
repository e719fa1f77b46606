"""Multi-label classification: per-label figures at thresholds, averages, best thresholds.

Equal to scikit-learn's figures (`zero_division=0`). Pure numpy (a test proves it).
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from metrics.classification_common import (
    BLOCK_ELEMENTS,
    Averages,
    LabelRef,
    label_averages,
    label_names,
    label_position,
    ratio,
    scores_matrix,
)

DEFAULT_THRESHOLD = 0.5

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
        return self.per_label[label_position(self.labels, label)]

    def with_thresholds(self, thresholds: float | Sequence[float] | np.ndarray
                        ) -> "MultilabelReport":
        """The same data evaluated at other thresholds (a moved slider)."""
        return evaluate_multilabel(self._y_true, self._scores, self.labels, thresholds)

    def threshold_table(self, label: LabelRef) -> tuple[ThresholdPoint, ...]:
        """The label's figures with each of its distinct scores as threshold, ascending."""
        j = label_position(self.labels, label)
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
            f1 = ratio(2 * tp, support[j] + predicted)
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
    step = max(1, BLOCK_ELEMENTS // n)
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
    precision, recall = ratio(tp, predicted), ratio(tp, support)
    f1 = ratio(2 * tp, support + predicted)
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
    scores = scores_matrix(scores)
    n, n_labels = scores.shape
    names = label_names(labels, n_labels)
    truth = _indicator_matrix(y_true, scores.shape)
    cutoffs = _threshold_vector(thresholds, n_labels)

    predicted_mask = scores >= cutoffs
    hits = truth & predicted_mask
    tp = np.count_nonzero(hits, axis=0)
    support, predicted = np.count_nonzero(truth, axis=0), np.count_nonzero(predicted_mask, axis=0)
    precision, recall = ratio(tp, predicted), ratio(tp, support)
    f1 = ratio(2 * tp, support + predicted)
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
        micro=label_averages(tp.sum(), support.sum(), predicted.sum()),
        macro=label_averages(tp, support, predicted),
        weighted=label_averages(tp, support, predicted, weights=support),
        samples=label_averages(sample_tp, sample_true, sample_predicted),
        subset_accuracy=int(np.count_nonzero((truth == predicted_mask).all(axis=1))) / n,
        _y_true=truth, _scores=scores)

