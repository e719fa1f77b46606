"""Classification metrics: the single-label evaluation report (multi-label: `multilabel.py`).

Every figure equals scikit-learn's (`zero_division=0`: a ratio with a zero denominator is 0), with
labels given by index `0 .. n_labels - 1` so that labels never seen still count in macro averages.
Where scikit-learn breaks ties differently, this module follows `numpy.argmax` (lowest index
wins) so that top-1 accuracy and the accuracy always agree; see `_true_label_ranks`.

Pure numpy: this module must not import Django, torch or scikit-learn (a test proves it).
"""

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from metrics.classification_common import (
    BLOCK_ELEMENTS,
    Averages,
    LabelRef,
    image_id_tuple,
    label_averages,
    label_names,
    label_position,
    ratio,
    scores_matrix,
)

DEFAULT_TOP_K = (1, 2, 3, 4, 5)
CONFUSION_PAGE_SIDES = (10, 15, 20)


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
        position = label_position(self._samples.names, label)
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
        return self.per_label[label_position(self.labels, label)]

    def predicted_as(self, true_label: LabelRef, *, sort: Literal["count", "label"] = "count",
                     descending: bool = True, query: str | None = None, page: int = 0,
                     per_page: int = 20) -> PredictedAsPage:
        """The labels a true label's samples were predicted as (non-zero counts), paged."""
        if sort not in ("count", "label"):
            raise ValueError(f"sort must be 'count' or 'label', got {sort!r}")
        if page < 0 or per_page < 1:
            raise ValueError(f"page must be 0 or more and per_page 1 or more, got {page}, "
                             f"{per_page}")
        t = label_position(self.labels, true_label)
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
        p = label_position(self.labels, label)
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
    step = max(1, BLOCK_ELEMENTS // n_labels)
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
    scores = scores_matrix(scores)
    n, n_labels = scores.shape
    names = label_names(labels, n_labels)
    y_true = _class_indices(y_true, n, n_labels)
    ids = image_id_tuple(image_ids, n)
    if not all(isinstance(k, int | np.integer) and k >= 1 for k in top_k):
        raise ValueError(f"top_k values must be whole numbers of 1 or more, got {list(top_k)}")
    ks = sorted({int(k) for k in top_k})

    y_pred = np.argmax(scores, axis=1)
    counts = np.bincount(y_true * n_labels + y_pred,
                         minlength=n_labels * n_labels).reshape(n_labels, n_labels)
    tp = np.diagonal(counts).copy()
    support, predicted = counts.sum(axis=1), counts.sum(axis=0)
    precision, recall = ratio(tp, predicted), ratio(tp, support)
    f1 = ratio(2 * tp, support + predicted)
    misrecognition = ratio(predicted - tp, predicted)
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
        macro=label_averages(tp, support, predicted),
        weighted=label_averages(tp, support, predicted, weights=support),
        confusion=ConfusionMatrix(labels=names, counts=counts, _samples=samples,
                                  _positions=np.arange(n_labels)))




# The multi-label report lives in its own module; importable from here as well.
from metrics.multilabel import (  # noqa: E402
    MultilabelLabelMetrics,
    MultilabelReport,
    ThresholdPoint,
    evaluate_multilabel,
)

__all__ = ["Averages", "ClassificationReport", "ConfusionMatrix", "LabelMetrics",
           "MultilabelLabelMetrics", "MultilabelReport", "ThresholdPoint", "evaluate",
           "evaluate_multilabel"]
