"""Classification metrics: the figures equal scikit-learn's, on hand-made and generated cases."""

import subprocess
import sys
import warnings
from pathlib import Path

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_curve,
    precision_recall_fscore_support,
    top_k_accuracy_score,
)

from metrics.classification import evaluate, evaluate_multilabel

ROOT = Path(__file__).resolve().parents[2]

# Scores from a small set give ties between labels and between samples; floats give the rest.
score = st.one_of(st.sampled_from([0.0, 0.25, 0.5, 1.0]), st.floats(-4, 4, width=32))


@st.composite
def single_label_cases(draw):
    n, n_labels = draw(st.integers(1, 30)), draw(st.integers(1, 7))
    # Truths from a prefix of the labels, so some labels are never true.
    seen = draw(st.integers(1, n_labels))
    y_true = draw(hnp.arrays(np.int64, n, elements=st.integers(0, seen - 1)))
    scores = draw(hnp.arrays(np.float64, (n, n_labels), elements=score))
    return y_true, scores


@st.composite
def multilabel_cases(draw):
    n, n_labels = draw(st.integers(1, 25)), draw(st.integers(2, 6))
    y_true = draw(hnp.arrays(np.int64, (n, n_labels), elements=st.integers(0, 1)))
    scores = draw(hnp.arrays(np.float64, (n, n_labels), elements=score))
    thresholds = draw(st.one_of(
        st.none(), st.sampled_from([0.0, 0.25, 0.5]),
        hnp.arrays(np.float64, n_labels, elements=st.sampled_from([0.0, 0.3, 0.5, 1.0]))))
    return y_true, scores, thresholds


def prfs(y_true, y_pred, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        return precision_recall_fscore_support(y_true, y_pred, zero_division=0, **kwargs)


def close(value):
    return pytest.approx(value, abs=1e-12)


# --- a 3-label report worked out by hand ------------------------------------------------------

LABELS = ["cat", "dog", "bird"]
IMAGES = [f"img{i}" for i in range(1, 9)]
Y_TRUE = [0, 0, 0, 1, 1, 1, 2, 2]
SCORES = np.array([
    [0.7, 0.2, 0.1],  # cat, right
    [0.6, 0.3, 0.1],  # cat, right
    [0.2, 0.5, 0.3],  # cat as dog; cat ranks third
    [0.1, 0.8, 0.1],  # dog, right
    [0.5, 0.4, 0.1],  # dog as cat; dog ranks second
    [0.2, 0.6, 0.2],  # dog, right
    [0.1, 0.5, 0.4],  # bird as dog; bird ranks second
    [0.2, 0.2, 0.6],  # bird, right
])


@pytest.fixture
def pets():
    return evaluate(Y_TRUE, SCORES, labels=LABELS, image_ids=IMAGES)


def test_hand_computed_report_has_the_exact_figures(pets):
    # Confusion rows (truth) cat [2 1 0], dog [1 2 0], bird [0 1 1].
    assert pets.confusion.matrix == [[2, 1, 0], [1, 2, 0], [0, 1, 1]]
    assert pets.accuracy == 5 / 8
    assert pets.top_k == {1: 5 / 8, 2: 7 / 8, 3: 1.0, 4: 1.0, 5: 1.0}
    cat, dog, bird = pets.per_label
    assert (cat.precision, cat.recall, cat.f1) == (close(2 / 3), close(2 / 3), close(2 / 3))
    assert (dog.precision, dog.recall, dog.f1) == (close(1 / 2), close(2 / 3), close(4 / 7))
    assert (bird.precision, bird.recall, bird.f1) == (close(1.0), close(1 / 2), close(2 / 3))
    assert [r.support for r in pets.per_label] == [3, 3, 2]
    assert [r.image_count for r in pets.per_label] == [3, 3, 2]
    assert [r.predicted_count for r in pets.per_label] == [3, 4, 1]
    assert [r.misrecognition_rate for r in pets.per_label] == [close(1 / 3), close(1 / 2), 0.0]
    assert pets.macro_precision == close(13 / 18)
    assert pets.macro_recall == close(11 / 18)
    assert pets.macro_f1 == pets.mean_f1 == close(40 / 63)
    assert pets.weighted_f1 == close(53 / 84)
    assert pets.label("dog") is pets.label(1) is dog


def test_hand_computed_cells_list_their_images_in_input_order(pets):
    assert pets.confusion.cell_images("cat", "cat") == ["img1", "img2"]
    assert pets.confusion.cell_images("cat", "dog") == ["img3"]
    assert pets.confusion.cell_images(1, 0) == ["img5"]
    assert pets.confusion.cell_images("bird", "cat") == []
    assert pets.wrongly_predicted_as("dog") == ["img3", "img7"]
    assert pets.wrongly_predicted_as("bird") == []


def test_without_image_ids_cells_list_sample_positions():
    report = evaluate(Y_TRUE, SCORES, labels=LABELS)

    assert report.confusion.cell_images("dog", "dog") == [3, 5]
    assert report.wrongly_predicted_as("cat") == [4]


def test_what_a_label_was_predicted_as_sorts_searches_and_pages(pets):
    page = pets.predicted_as("dog")
    assert [(r.label, r.count, r.share) for r in page.rows] == [("dog", 2, 2 / 3),
                                                                 ("cat", 1, 1 / 3)]
    assert page.total == 2
    by_name = pets.predicted_as("dog", sort="label", descending=False)
    assert [r.label for r in by_name.rows] == ["cat", "dog"]
    assert [r.label for r in pets.predicted_as("dog", query="DO").rows] == ["dog"]
    second = pets.predicted_as("dog", page=1, per_page=1)
    assert ([r.label for r in second.rows], second.total) == (["cat"], 2)
    assert pets.predicted_as("dog", page=5).rows == ()


def test_equal_counts_keep_label_order_when_sorting_by_count():
    scores = np.eye(4)[[1, 2, 3, 0]]  # truth 0 predicted once each as 1, 2, 3, then right
    report = evaluate([0, 0, 0, 0], scores, labels=["a", "d", "c", "b"])

    rows = report.predicted_as("a").rows
    assert [r.label for r in rows] == ["a", "b", "c", "d"]
    assert [r.share for r in rows] == [0.25] * 4


def test_tied_scores_predict_the_lowest_index_and_top_1_agrees():
    # scikit-learn's top_k_accuracy_score ranks a tie towards the higher index instead.
    report = evaluate([0], np.array([[0.5, 0.5, 0.0]]))

    assert report.accuracy == report.top_k[1] == 1.0
    assert top_k_accuracy_score([0], [[0.5, 0.5, 0.0]], k=1, labels=range(3)) == 0.0


def test_labels_never_true_or_predicted_count_in_macro_but_not_weighted():
    report = evaluate([0, 0, 1], np.array([[1.0, 0, 0, 0]] * 3), labels=["a", "b", "c", "d"])

    assert [r.f1 for r in report.per_label] == [close(0.8), 0.0, 0.0, 0.0]
    assert report.macro_f1 == close(0.2)
    assert report.weighted_f1 == close(0.8 * 2 / 3)
    assert report.label("c").misrecognition_rate == 0.0  # nothing predicted as c: 0 / 0 is 0


# --- confusion matrix views -------------------------------------------------------------------


def test_pages_are_diagonal_blocks_of_the_full_matrix():
    rng = np.random.default_rng(7)
    n_labels = 23
    y_true = rng.integers(0, n_labels, 400)
    full = evaluate(y_true, rng.random((400, n_labels))).confusion

    assert full.page_count(10) == 3 and full.page_count(20) == 2
    last = full.page(2, per_side=10)
    assert last.labels == ("20", "21", "22")
    assert last.matrix == full.counts[20:, 20:].tolist()
    assert full.page(1, per_side=15).matrix == full.counts[15:, 15:].tolist()
    assert full.page(3, per_side=10).labels == ()


def test_a_subset_keeps_its_labels_order_and_cells():
    pets_view = evaluate(Y_TRUE, SCORES, labels=LABELS, image_ids=IMAGES).confusion.subset(
        ["dog", "cat"])

    assert pets_view.labels == ("dog", "cat")
    assert pets_view.matrix == [[2, 1], [1, 2]]
    assert pets_view.cell_images("dog", "cat") == ["img5"]
    assert pets_view.subset(["cat"]).matrix == [[2]]
    with pytest.raises(ValueError, match="not in this view"):
        pets_view.cell_images("bird", "dog")


# --- parity with scikit-learn on generated cases ----------------------------------------------


@settings(max_examples=120, deadline=None)
@given(case=single_label_cases())
def test_single_label_figures_equal_scikit_learn(case):
    y_true, scores = case
    n_labels = scores.shape[1]
    labels = list(range(n_labels))
    y_pred = scores.argmax(axis=1)

    report = evaluate(y_true, scores, image_ids=[f"i{k}" for k in range(len(y_true))])

    assert report.accuracy == close(accuracy_score(y_true, y_pred))
    precision, recall, f1, support = prfs(y_true, y_pred, labels=labels, average=None)
    assert [r.precision for r in report.per_label] == close(list(precision))
    assert [r.recall for r in report.per_label] == close(list(recall))
    assert [r.f1 for r in report.per_label] == close(list(f1))
    assert [r.support for r in report.per_label] == support.tolist()
    assert [r.predicted_count for r in report.per_label] == np.bincount(
        y_pred, minlength=n_labels).tolist()
    for average in ("macro", "weighted"):
        p, r, f, _ = prfs(y_true, y_pred, labels=labels, average=average)
        assert (getattr(report, average).precision, getattr(report, average).recall,
                getattr(report, average).f1) == (close(p), close(r), close(f))
    assert report.macro_f1 == close(f1_score(y_true, y_pred, labels=labels, average="macro",
                                             zero_division=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # one label only: "pass labels" (we do)
        expected = confusion_matrix(y_true, y_pred, labels=labels)
    assert report.confusion.matrix == expected.tolist()


@settings(max_examples=60, deadline=None)
@given(case=single_label_cases())
def test_misrecognition_is_the_wrong_share_of_what_was_predicted(case):
    y_true, scores = case
    report = evaluate(y_true, scores)

    for row in report.per_label:
        expected = 1 - row.precision if row.predicted_count else 0.0
        assert row.misrecognition_rate == close(expected)


@settings(max_examples=60, deadline=None)
@given(case=single_label_cases())
def test_every_cell_lists_exactly_its_images(case):
    y_true, scores = case
    ids = [f"i{k}" for k in range(len(y_true))]
    y_pred = scores.argmax(axis=1)
    report = evaluate(y_true, scores, image_ids=ids)

    n_labels = scores.shape[1]
    for t in range(n_labels):
        for p in range(n_labels):
            expected = [ids[k] for k in np.flatnonzero((y_true == t) & (y_pred == p))]
            assert report.confusion.cell_images(t, p) == expected
            assert len(expected) == report.confusion.matrix[t][p]
        wrong = [ids[k] for k in np.flatnonzero((y_pred == t) & (y_true != t))]
        assert report.wrongly_predicted_as(t) == wrong
        rows = report.predicted_as(t, per_page=n_labels).rows
        assert sum(r.count for r in rows) == report.per_label[t].support
        assert [r.count for r in rows] == sorted((r.count for r in rows), reverse=True)


@settings(max_examples=120, deadline=None)
@given(case=single_label_cases())
def test_top_k_equals_scikit_learn_with_lowest_index_first_on_ties(case):
    y_true, scores = case
    n_labels = scores.shape[1]
    report = evaluate(y_true, scores, top_k=range(1, 8))

    assert report.top_k[1] == report.accuracy
    for k in range(1, 8):
        if k >= n_labels:
            assert report.top_k[k] == 1.0
        elif n_labels >= 3:  # scikit-learn wants 1-D scores for two labels
            # Reversing the labels turns scikit-learn's "higher index first" into ours.
            expected = top_k_accuracy_score(n_labels - 1 - y_true, scores[:, ::-1], k=k,
                                            labels=range(n_labels))
            assert report.top_k[k] == close(expected)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 30), n_labels=st.integers(3, 8), seed=st.integers(0, 2**32 - 1))
def test_top_k_equals_scikit_learn_as_is_without_ties(n, n_labels, seed):
    rng = np.random.default_rng(seed)
    y_true, scores = rng.integers(0, n_labels, n), rng.random((n, n_labels))

    report = evaluate(y_true, scores, top_k=range(1, n_labels))

    for k in range(1, n_labels):
        assert report.top_k[k] == close(top_k_accuracy_score(y_true, scores, k=k,
                                                             labels=range(n_labels)))


@settings(max_examples=120, deadline=None)
@given(case=multilabel_cases())
def test_multilabel_figures_equal_scikit_learn(case):
    y_true, scores, thresholds = case
    y_pred = (scores >= (0.5 if thresholds is None else thresholds)).astype(int)

    report = evaluate_multilabel(y_true, scores, thresholds=thresholds)

    precision, recall, f1, support = prfs(y_true, y_pred, average=None)
    assert [r.precision for r in report.per_label] == close(list(precision))
    assert [r.recall for r in report.per_label] == close(list(recall))
    assert [r.f1 for r in report.per_label] == close(list(f1))
    assert [r.support for r in report.per_label] == support.tolist()
    for average in ("micro", "macro", "weighted", "samples"):
        p, r, f, _ = prfs(y_true, y_pred, average=average)
        figures = getattr(report, average)
        assert (figures.precision, figures.recall, figures.f1) == (close(p), close(r), close(f))
        assert getattr(report, f"{average}_f1") == close(
            f1_score(y_true, y_pred, average=average, zero_division=0))
    assert report.subset_accuracy == close(accuracy_score(y_true, y_pred))


@settings(max_examples=120, deadline=None)
@given(case=multilabel_cases())
def test_best_threshold_maximises_f1_over_scikit_learns_curve(case):
    y_true, scores, _ = case
    report = evaluate_multilabel(y_true, scores)

    for j, best in enumerate(report.best_threshold_per_label()):
        column, truth = scores[:, j], y_true[:, j]
        predicted = (column >= best.threshold).astype(int)
        p, r, f, _ = prfs(truth, predicted, average="binary")
        assert (best.precision, best.recall, best.f1) == (close(p), close(r), close(f))
        assert best.predicted_count == predicted.sum()
        if not truth.any():
            # scikit-learn sets recall to 1 here; with zero_division=0 every F1 is 0.
            assert (best.f1, best.threshold) == (0.0, column.max())
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            curve_p, curve_r, curve_t = precision_recall_curve(truth, column)
        curve_f = np.where(curve_p + curve_r > 0,
                           2 * curve_p * curve_r / np.maximum(curve_p + curve_r, 1e-300), 0.0)
        curve_f = curve_f[:-1]  # the last point is scikit-learn's (recall 0, precision 1) end
        assert best.f1 == close(curve_f.max())
        assert best.threshold == curve_t[curve_f >= curve_f.max() - 1e-12].max()


@settings(max_examples=80, deadline=None)
@given(case=multilabel_cases())
def test_threshold_table_is_scikit_learns_precision_recall_curve(case):
    y_true, scores, _ = case
    report = evaluate_multilabel(y_true, scores)

    for j in range(scores.shape[1]):
        table = report.threshold_table(j)
        if not y_true[:, j].any():
            assert all(point.recall == point.f1 == 0.0 for point in table)
            continue
        curve_p, curve_r, curve_t = precision_recall_curve(y_true[:, j], scores[:, j])
        assert [point.threshold for point in table] == curve_t.tolist()
        assert [point.precision for point in table] == close(curve_p[:-1].tolist())
        assert [point.recall for point in table] == close(curve_r[:-1].tolist())


# --- multi-label worked out by hand -----------------------------------------------------------

ML_TRUE = np.array([[1, 1], [0, 0], [1, 0], [0, 1]])
ML_SCORES = np.array([[0.9, 0.9], [0.8, 0.7], [0.4, 0.5], [0.1, 0.3]])


def test_hand_computed_multilabel_report():
    report = evaluate_multilabel(ML_TRUE, ML_SCORES, labels=["rust", "dent"])

    rust, dent = report.per_label
    # At 0.5: rust predicted for samples 1, 2; dent for samples 1, 2, 3.
    assert (rust.precision, rust.recall, rust.f1) == (close(1 / 2), close(1 / 2), close(1 / 2))
    assert (dent.precision, dent.recall, dent.f1) == (close(1 / 3), close(1 / 2), close(2 / 5))
    assert (report.micro.precision, report.micro.recall) == (close(2 / 5), close(1 / 2))
    assert report.micro_f1 == close(4 / 9)
    assert report.macro_f1 == close(9 / 20)
    assert report.samples_f1 == close(1 / 4)
    assert report.subset_accuracy == 1 / 4


def test_hand_computed_best_thresholds_break_ties_towards_the_higher_threshold():
    report = evaluate_multilabel(ML_TRUE, ML_SCORES, labels=["rust", "dent"])

    rust, dent = report.best_threshold_per_label()
    # rust: F1 is 2/3, 1/2, 4/5, 2/3 at 0.9, 0.8, 0.4, 0.1.
    assert (rust.threshold, rust.precision, rust.recall, rust.f1) == (
        0.4, close(2 / 3), 1.0, close(4 / 5))
    # dent: F1 is 2/3 at both 0.9 and 0.3; the higher threshold wins.
    assert (dent.threshold, dent.precision, dent.recall, dent.f1) == (
        0.9, 1.0, close(1 / 2), close(2 / 3))
    assert [p.threshold for p in report.threshold_table("dent")] == [0.3, 0.5, 0.7, 0.9]


def test_moving_one_labels_threshold_changes_only_its_row():
    report = evaluate_multilabel(ML_TRUE, ML_SCORES, labels=["rust", "dent"])

    moved = report.with_thresholds([0.4, 0.5])

    assert moved.label("rust").f1 == close(4 / 5)
    assert moved.label("dent") == report.label("dent")


def test_one_label_multilabel_matches_binary_scikit_learn():
    truth, scores = np.array([[1], [0], [1]]), np.array([[0.7], [0.6], [0.2]])

    report = evaluate_multilabel(truth, scores)

    p, r, f, _ = prfs(truth.ravel(), (scores.ravel() >= 0.5).astype(int), average="binary")
    assert (report.macro.precision, report.macro.recall, report.macro.f1) == (p, r, f)
    assert report.micro == report.macro


# --- input validation -------------------------------------------------------------------------


@pytest.mark.parametrize(("y_true", "scores", "kwargs", "message"), [
    ([0, 1], np.array([0.2, 0.8]), {}, "must be 2-D"),
    ([], np.zeros((0, 3)), {}, "no samples"),
    ([0], np.zeros((1, 0)), {}, "no columns"),
    ([0, 1], np.zeros((3, 2)), {}, "2 samples but scores have 3 rows"),
    ([[0], [1]], np.zeros((2, 2)), {}, "1-D"),
    ([0, 2], np.zeros((2, 2)), {}, r"y_true\[1\] = 2 is not a label index"),
    ([-1, 0], np.zeros((2, 2)), {}, r"y_true\[0\] = -1"),
    ([0.0, 1.0], np.zeros((2, 2)), {}, "integer label indices"),
    ([0, 1], np.array([[0.1, np.nan], [0.2, 0.3]]), {}, "NaN .*sample 0, label 1"),
    ([0, 1], np.array([["a", "b"], ["c", "d"]]), {}, "real numbers"),
    ([0, 1], np.zeros((2, 2)), {"labels": ["a"]}, "1 names but scores have 2 columns"),
    ([0, 1], np.zeros((2, 2)), {"labels": ["a", "a"]}, "unique"),
    ([0, 1], np.zeros((2, 2)), {"labels": [1, 2]}, "strings"),
    ([0, 1], np.zeros((2, 2)), {"image_ids": ["x"]}, "image_ids has 1 entries"),
    ([0, 1], np.zeros((2, 2)), {"top_k": [0]}, "top_k"),
    ([0, 1], np.zeros((2, 2)), {"top_k": [1.5]}, "top_k"),
])
def test_evaluate_refuses_bad_input(y_true, scores, kwargs, message):
    with pytest.raises(ValueError, match=message):
        evaluate(y_true, scores, **kwargs)


def test_report_queries_refuse_unknown_labels_and_bad_pages(pets):
    with pytest.raises(ValueError, match="Unknown label 'cow'"):
        pets.confusion.cell_images("cow", "cat")
    with pytest.raises(ValueError, match="Unknown label 3"):
        pets.wrongly_predicted_as(3)
    with pytest.raises(ValueError, match="per_side must be one of"):
        pets.confusion.page(0, per_side=12)
    with pytest.raises(ValueError, match="page_index"):
        pets.confusion.page(-1)
    with pytest.raises(ValueError, match="sort must be"):
        pets.predicted_as("cat", sort="share")
    with pytest.raises(ValueError, match="per_page"):
        pets.predicted_as("cat", per_page=0)


@pytest.mark.parametrize(("y_true", "scores", "thresholds", "message"), [
    (np.ones((2, 3)), np.zeros((2, 2)), None, "shape"),
    (np.array([[0, 2], [1, 0]]), np.zeros((2, 2)), None, "only 0 and 1"),
    (np.ones((2, 2)), np.zeros((2, 2)), [0.5, 0.5, 0.5], "one per label"),
    (np.ones((2, 2)), np.zeros((2, 2)), [0.5, np.nan], "NaN"),
    (np.ones((2, 2)), np.array([[np.nan, 0], [0, 0]]), None, "NaN"),
])
def test_evaluate_multilabel_refuses_bad_input(y_true, scores, thresholds, message):
    with pytest.raises(ValueError, match=message):
        evaluate_multilabel(y_true, scores, thresholds=thresholds)


# --- purity -----------------------------------------------------------------------------------


def test_the_module_imports_no_django_torch_or_sklearn():
    check = ("import sys, metrics.classification as m; bad = [k for k in sys.modules "
             "if k.split('.')[0] in {'django', 'torch', 'sklearn', 'rest_framework'}]; "
             "assert not bad, bad")

    result = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, check=False)

    assert result.returncode == 0, result.stderr
