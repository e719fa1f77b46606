"""Pieces the single-label and multi-label classification reports share."""

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

# Elements per temporary block: bounds the memory of the n × L comparisons and sorts to ~tens of
# MB even for 100k samples × 1000 labels.
BLOCK_ELEMENTS = 1 << 22

LabelRef = str | int  # a label's name, or its index among the evaluated labels



@dataclass(frozen=True)
class Averages:
    """Precision, recall and F1 averaged over labels (or samples) one way."""

    precision: float
    recall: float
    f1: float


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.zeros(np.broadcast(numerator, denominator).shape)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def average(values: np.ndarray, weights: np.ndarray | None = None) -> float:
    # np.average raises on zero total weight; scikit-learn reports 0 there with zero_division=0.
    if weights is not None and not weights.sum():
        return 0.0
    return float(np.average(values, weights=weights))


def label_averages(tp: np.ndarray, support: np.ndarray, predicted: np.ndarray,
                    weights: np.ndarray | None = None) -> Averages:
    return Averages(precision=average(ratio(tp, predicted), weights),
                    recall=average(ratio(tp, support), weights),
                    f1=average(ratio(2 * tp, support + predicted), weights))


def scores_matrix(scores: np.ndarray) -> np.ndarray:
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


def label_names(labels: Sequence[str] | None, n_labels: int) -> tuple[str, ...]:
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


def label_position(names: tuple[str, ...], label: LabelRef) -> int:
    if isinstance(label, str):
        try:
            return names.index(label)
        except ValueError:
            raise ValueError(f"Unknown label {label!r}.") from None
    is_index = isinstance(label, int | np.integer) and not isinstance(label, bool)
    if is_index and 0 <= label < len(names):
        return int(label)
    raise ValueError(f"Unknown label {label!r}: give a name or an index below {len(names)}.")


def image_id_tuple(image_ids: Sequence[Hashable] | None, n: int) -> tuple[Hashable, ...] | None:
    if image_ids is None:
        return None
    ids = tuple(image_ids)
    if len(ids) != n:
        raise ValueError(f"image_ids has {len(ids)} entries but there are {n} samples.")
    return ids


