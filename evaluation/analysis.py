"""The interactive parts of a report: curves, confusion views and cells, label detail, error
taxonomy, single images and instances, all computed from the stored results.

    curves(results, iou, label=None)                 # PR curve, threshold table, best F1 (E4/E5)
    confusion_view(results, iou, score, labels=, per_side=, row_page=, column_page=)   (E7)
    cell_images(results, iou, score, true_label, predicted_label)                      (E7)
    label_detail(results, iou, score, label, sort=, q=, page=, per_page=)              (E8)
    error_taxonomy(results, iou)                     # TIDE per label, with ΔAP
    image_detail(results, iou, score, image_id)      # truth, predictions, errors (E9)
    instances(results, iou, score, label=, outcome=) # a validation task's instance details (E11)

Labels are names at this boundary; the metrics engine works with category ids. Bad arguments
raise ReportError with the query parameter they concern, which the views turn into 400s.
`score` is a float or an `operating_point.ScoreThresholds` (per-label confidences).
"""

from typing import Any

import numpy as np

from evaluation.results import Results, coco_for
from metrics import detection_confusion as det_confusion
from metrics.coco_data import image_sizes
from metrics.operating_point import (
    Score,
    ScoreThresholds,
    ThresholdTable,
    base_score,
    overall_threshold_table,
    pr_curves,
    table_from_scores,
    threshold_tables,
)
from metrics.tide import tide_from_result

CURVE_POINTS = 200  # raw curve points sent per label; the best-F1 point is always among them
TABLE_GRID = tuple(round(0.05 * i, 2) for i in range(20))  # thresholds 0.00 .. 0.95
BUCKETS = (det_confusion.MISSED, det_confusion.LOW_OVERLAP)
DEFAULT_LOW_IOU = 0.1


class ReportError(ValueError):
    """A report cannot be computed with these arguments; `field` names the query parameter."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def score_of(results: Results, base: float, per_label: dict[str, float]) -> Score:
    """The score threshold of reports: one number, or per-label confidences by category. A
    label's confidence is never below the base, also when a report moves the base above it."""
    if not per_label or results.is_classification:
        return base
    return ScoreThresholds(base, {results.category_of[name]: max(base, value)
                                  for name, value in per_label.items()
                                  if name in results.category_of})


def _category(results: Results, label: str, field: str = "label") -> Any:
    if label not in results.category_of:
        raise ReportError(field, f"The report has no label {label!r}.")
    return results.category_of[label]


def _class_position(results: Results, label: str, field: str = "label") -> int:
    labels = results.document["labels"]
    if label not in labels:
        raise ReportError(field, f"The report has no label {label!r}.")
    return labels.index(label)


def _detection_only(results: Results, what: str) -> None:
    if results.is_classification:
        raise ReportError("scenario", f"{what} exists for detection and segmentation reports.")


def _images(results: Results, image_ids: list[Any]) -> list[dict[str, Any]]:
    return [{"image_id": i, "file_name": results.file_names.get(i)} for i in image_ids]


# --- curves (E4, E5) ------------------------------------------------------------------------


def _thinned(count: int, best: int | None) -> np.ndarray:
    if count <= CURVE_POINTS:
        return np.arange(count)
    picks = np.linspace(0, count - 1, CURVE_POINTS).round().astype(int)
    return np.unique(np.r_[picks, [best] if best is not None else []].astype(int))


def _at(table: ThresholdTable, threshold: float) -> dict[str, float]:
    """The table's figures when everything scoring >= threshold is kept."""
    kept = int(np.searchsorted(-table.thresholds, -threshold, side="right"))
    if kept == 0:
        return {"threshold": threshold, "precision": 0.0, "recall": 0.0, "f1": 0.0}
    row = kept - 1
    return {"threshold": threshold, "precision": float(table.precision[row]),
            "recall": float(table.recall[row]), "f1": float(table.f1[row])}


def _average_precision(table: ThresholdTable) -> float:
    """Non-interpolated AP (area under the step PR curve); -1 without positives."""
    if table.gt_count == 0:
        return -1.0
    recall = np.r_[0.0, table.recall]
    return float(np.sum(np.diff(recall) * table.precision))


def _curve(label: str | None, table: ThresholdTable, ap: float) -> dict[str, Any]:
    best = table.best()
    best_row = int(np.argmax(table.f1)) if len(table.f1) else None
    rows = _thinned(len(table.thresholds), best_row)
    return {
        "label": label, "ap": ap, "count": table.gt_count, "best": best,
        "points": [{"threshold": float(table.thresholds[i]),
                    "precision": float(table.precision[i]), "recall": float(table.recall[i]),
                    "f1": float(table.f1[i])} for i in rows.tolist()],
        "table": [_at(table, t) for t in TABLE_GRID],
    }


def curves(results: Results, iou: float, label: str | None = None, iou_type: str = "bbox"
           ) -> dict[str, Any]:
    """Per label: PR points (with thresholds and F1), a threshold table on a 0.05 grid, AP and
    the best-F1 threshold; `overall` pools every label."""
    if results.is_classification:
        return _classification_curves(results, label)
    coco = coco_for(results, iou_type)
    wanted = None if label is None else _category(results, label)
    pr = pr_curves(coco, iou)
    per_label = []
    for cat, table in threshold_tables(coco, iou).items():
        if wanted is not None and cat != wanted:
            continue
        body = _curve(results.names[cat], table, pr[cat].ap)
        body["interpolated"] = [
            {"recall": float(r), "precision": float(p)}
            for r, p in zip(pr[cat].recall_grid, pr[cat].interpolated_precision, strict=True)]
        per_label.append(body)
    overall = _curve(None, overall_threshold_table(coco, iou), -1.0)
    overall.pop("ap")
    return {"iou": iou, "labels": per_label, "overall": overall}


def _classification_curves(results: Results, label: str | None) -> dict[str, Any]:
    labels = results.document["labels"]
    y_true = np.asarray(results.document["y_true"])
    positions = range(len(labels)) if label is None else [_class_position(results, label)]
    per_label = []
    for k in positions:
        positive = y_true == k
        table = table_from_scores(labels[k], results.scores[:, k], positive,
                                  int(positive.sum()))
        per_label.append(_curve(labels[k], table, _average_precision(table)))
    return {"iou": None, "labels": per_label}


# --- confusion views and cells (E7) ---------------------------------------------------------


def _detection_confusion(results: Results, iou: float, score: Score, low_iou: float,
                         iou_type: str) -> det_confusion.DetectionConfusion:
    return det_confusion.detection_confusion(coco_for(results, iou_type), iou, score, low_iou,
                                             names=results.names,
                                             image_sizes=_sizes(results, iou_type))


def _sizes(results: Results, iou_type: str) -> dict | None:
    if iou_type != "segm":
        return None
    return image_sizes(results.document["gt"])


def confusion_view(results: Results, iou: float, score: Score, *,
                   labels: list[str] | None = None, per_side: int | None = None,
                   row_page: int = 0, column_page: int = 0,
                   low_iou: float = DEFAULT_LOW_IOU, iou_type: str = "bbox") -> dict[str, Any]:
    """The confusion matrix, on a subset of labels and/or one page of `per_side` a side."""
    if per_side is not None and per_side not in det_confusion.PAGE_SIZES:
        raise ReportError("per_side", "per_side must be 10, 15 or 20.")
    if results.is_classification:
        return _classification_confusion(results, labels, per_side, row_page, column_page)
    view = _detection_confusion(results, iou, score, low_iou, iou_type)
    if labels:
        if len(set(labels)) != len(labels):
            raise ReportError("labels", "labels must not repeat.")
        view = view.subset([_category(results, name, "labels") for name in labels])
    if per_side is not None:
        try:
            view = view.page(row_page, column_page, per_side)
        except ValueError as exc:
            raise ReportError("row_page", str(exc)) from None
    return view.as_api()


def _classification_confusion(results: Results, labels: list[str] | None,
                              per_side: int | None, row_page: int, column_page: int
                              ) -> dict[str, Any]:
    matrix = results.classification.confusion
    if labels:
        if len(set(labels)) != len(labels):
            raise ReportError("labels", "labels must not repeat.")
        for name in labels:
            _class_position(results, name, "labels")
        matrix = matrix.subset(labels)
    page = None
    if per_side is not None:
        pages = max(1, matrix.page_count(per_side))
        if row_page != column_page or not 0 <= row_page < pages:
            raise ReportError("row_page", f"A classification matrix pages along its diagonal: "
                              f"row_page = column_page, 0 to {pages - 1}.")
        matrix = matrix.page(row_page, per_side)
        page = {"row_page": row_page, "column_page": column_page, "per_side": per_side,
                "row_pages": pages, "column_pages": pages}
    full = results.classification.confusion.counts
    names = list(results.document["labels"])
    positions = [names.index(name) for name in matrix.labels]
    support = full[positions].sum(axis=1)
    diagonal = full[positions, positions]
    recall = np.divide(diagonal, support, out=np.zeros(len(support)), where=support > 0)
    body: dict[str, Any] = {"labels": list(matrix.labels), "matrix": matrix.matrix,
                            "recall": recall.tolist(), "image_count": support.tolist()}
    if page is not None:
        body["page"] = page
    return body


def cell_images(results: Results, iou: float, score: Score, true_label: str,
                predicted_label: str, low_iou: float = DEFAULT_LOW_IOU, iou_type: str = "bbox"
                ) -> list[dict[str, Any]]:
    """The images of one cell; detection also has the background row (true_label
    "background") and the missed / low_overlap columns (predicted_label)."""
    if results.is_classification:
        t = _class_position(results, true_label, "true_label")
        p = _class_position(results, predicted_label, "predicted_label")
        names = results.document["labels"]
        return _images(results, results.classification.confusion.cell_images(names[t],
                                                                              names[p]))
    if true_label == det_confusion.BACKGROUND:
        if predicted_label in (*BUCKETS, det_confusion.BACKGROUND):
            raise ReportError("predicted_label", "The background row has cells for predicted "
                                                 "labels only.")
        truth: Any = det_confusion.BACKGROUND
    else:
        truth = _category(results, true_label, "true_label")
    guess = (predicted_label if predicted_label in BUCKETS
             else _category(results, predicted_label, "predicted_label"))
    view = _detection_confusion(results, iou, score, low_iou, iou_type)
    return _images(results, view.cell_images(truth, guess))


# --- label detail (E8) ------------------------------------------------------------------------


def _predicted_as(rows: list[dict[str, Any]], sort: str, descending: bool, q: str | None
                  ) -> list[dict[str, Any]]:
    if q:
        rows = [r for r in rows if q.casefold() in r["label"].casefold()]
    rows.sort(key=lambda r: r["label"], reverse=sort == "label" and descending)
    if sort == "count":
        rows.sort(key=lambda r: r["count"], reverse=descending)
    return rows


def label_detail(results: Results, iou: float, score: Score, label: str, *,
                 sort: str = "count", descending: bool = True, q: str | None = None,
                 low_iou: float = DEFAULT_LOW_IOU, iou_type: str = "bbox") -> dict[str, Any]:
    """A label's figures, what its objects were predicted as, and the images wrongly predicted
    as it. `predicted_as` is the whole sorted, filtered list; the view pages it."""
    if sort not in ("count", "label"):
        raise ReportError("sort", "sort must be count or label.")
    if results.is_classification:
        k = _class_position(results, label)
        report = results.classification
        row = report.per_label[k]
        counts = report.confusion.counts[k]
        support = int(counts.sum())
        rows = [{"label": report.labels[p], "count": int(counts[p]),
                 "share": int(counts[p]) / support} for p in np.flatnonzero(counts).tolist()]
        figures = {"precision": row.precision, "recall": row.recall, "f1": row.f1,
                   "misrecognition_rate": row.misrecognition_rate,
                   "image_count": row.image_count, "count": row.support,
                   "predicted_count": row.predicted_count}
        wrong = report.wrongly_predicted_as(k)
    else:
        cat = _category(results, label)
        view = _detection_confusion(results, iou, score, low_iou, iou_type)
        k = view.labels.index(cat)
        objects = int(view.objects[k])
        counts = {results.names[c]: int(n) for c, n in zip(view.labels, view.matrix[k],
                                                            strict=True) if n}
        counts[det_confusion.MISSED] = int(view.missed[k])
        counts[det_confusion.LOW_OVERLAP] = int(view.low_overlap[k])
        rows = [{"label": name, "count": n, "share": n / objects if objects else 0.0}
                for name, n in counts.items() if n]
        detections = int(view.detections[k])
        correct = int(view.matrix[k, k])
        precision, recall = float(view.precision[k]), float(view.recall[k])
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        figures = {"precision": precision, "recall": recall, "f1": f1,
                   "misrecognition_rate": (detections - correct) / detections if detections
                   else 0.0,
                   "image_count": int(view.image_counts[k]), "count": objects,
                   "predicted_count": detections}
        wrong = view.wrongly_predicted_images(cat)
    return {"label": label, **figures,
            "predicted_as": _predicted_as(rows, sort, descending, q),
            "wrongly_predicted_as": _images(results, wrong)}


# --- error taxonomy ---------------------------------------------------------------------------


def error_taxonomy(results: Results, iou: float, low_iou: float = DEFAULT_LOW_IOU,
                   iou_type: str = "bbox") -> dict[str, Any]:
    """TIDE's error types (classification, localisation, both, duplicate, background, missed)
    with counts and the AP gained by fixing each, overall and per label."""
    _detection_only(results, "The error taxonomy")
    report = tide_from_result(coco_for(results, iou_type), iou_fg=iou, iou_bg=low_iou,
                              sizes=_sizes(results, iou_type))
    body = report.summary()
    for row in body["per_label"]:
        row["label"] = results.names[row.pop("category_id")]
    return body


# --- one image (E9) ---------------------------------------------------------------------------


def _image_id(results: Results, raw: str) -> Any:
    for image_id in results.file_names:
        if str(image_id) == raw:
            return image_id
    raise ReportError("image_id", f"The report has no image {raw!r}.")


def image_detail(results: Results, iou: float, score: Score, raw_image_id: str,
                 low_iou: float = DEFAULT_LOW_IOU, iou_type: str = "bbox") -> dict[str, Any]:
    """One image: its truth, every prediction with its confidence (kept or not at the
    threshold), and its errors at the operating point."""
    image_id = _image_id(results, raw_image_id)
    body: dict[str, Any] = {"image_id": image_id, "file_name": results.file_names[image_id]}
    if results.is_classification:
        row = next(i for i, image in enumerate(results.document["images"])
                   if image["id"] == image_id)
        labels, scores = results.document["labels"], results.scores[row]
        truth, guess = results.document["y_true"][row], int(np.argmax(scores))
        order = np.argsort(-scores, kind="stable")[:5].tolist()
        return {**body, "true_label": labels[truth], "predicted_label": labels[guess],
                "correct": truth == guess, "score": float(scores[guess]),
                "predictions": [{"label": labels[j], "score": float(scores[j])}
                                for j in order]}
    doc = results.document
    info = next(i for i in doc["gt"]["images"] if i["id"] == image_id)
    floors = (score.by_label(list(results.names)) if isinstance(score, ScoreThresholds)
              else None)
    floor_of = ({c: float(f) for c, f in zip(results.names, floors, strict=True)}
                if floors is not None else {})
    truth = [{"annotation_id": a["id"], "label": results.names[a["category_id"]],
              "bbox": a["bbox"], "iscrowd": bool(a.get("iscrowd", 0))}
             for a in doc["gt"]["annotations"] if a["image_id"] == image_id]
    predictions = sorted(
        ({"label": results.names[d["category_id"]], "score": d["score"], "bbox": d["bbox"],
          "kept": d["score"] >= floor_of.get(d["category_id"], base_score(score))}
         for d in doc["dt"] if d["image_id"] == image_id),
        key=lambda d: -d["score"])
    _count, errors = det_confusion.badcase_page(coco_for(results, iou_type), iou, score,
                                                low_iou=low_iou, image_id=image_id,
                                                image_sizes=_sizes(results, iou_type))
    false_positives, missed = (errors[0]["false_positives"], errors[0]["missed"]) if errors \
        else ([], [])
    for item in (*false_positives, *missed):
        item["label"] = results.names[item.pop("category_id")]
    return {**body, "width": info.get("width"), "height": info.get("height"), "truth": truth,
            "predictions": predictions, "false_positives": false_positives, "missed": missed}


# --- instances (E11) --------------------------------------------------------------------------


def instances(results: Results, iou: float, score: Score, *, label: str | None = None,
              outcome: str | None = None, low_iou: float = DEFAULT_LOW_IOU,
              iou_type: str = "bbox") -> list[dict[str, Any]]:
    """Every object and kept detection with its outcome; `label` keeps rows whose truth or
    prediction is that label, `outcome` one outcome."""
    if results.is_classification:
        outcomes = ("correct", "wrong")
        if outcome is not None and outcome not in outcomes:
            raise ReportError("outcome", "outcome must be correct or wrong.")
        labels, doc = results.document["labels"], results.document
        rows = []
        for n, (image, truth) in enumerate(zip(doc["images"], doc["y_true"], strict=True)):
            guess = int(np.argmax(results.scores[n]))
            row = {"image_id": image["id"], "file_name": image["file_name"],
                   "outcome": outcomes[guess != truth], "true_label": labels[truth],
                   "predicted_label": labels[guess], "score": float(results.scores[n, guess])}
            rows.append(row)
    else:
        if outcome is not None and outcome not in det_confusion.OUTCOMES:
            raise ReportError("outcome", "outcome must be one of "
                              + ", ".join(det_confusion.OUTCOMES) + ".")
        rows = []
        for row in det_confusion.instances(coco_for(results, iou_type), iou, score,
                                           low_iou=low_iou,
                                           image_sizes=_sizes(results, iou_type)):
            true_cat, pred_cat = row.pop("true_category_id"), row.pop("predicted_category_id")
            rows.append({"image_id": row["image_id"],
                         "file_name": results.file_names.get(row["image_id"]),
                         "outcome": row["outcome"],
                         "true_label": results.names[true_cat] if true_cat is not None
                         else None,
                         "predicted_label": results.names[pred_cat] if pred_cat is not None
                         else None,
                         **{k: v for k, v in row.items() if k not in ("image_id", "outcome")}})
    if label is not None:
        if results.is_classification:
            _class_position(results, label)
        else:
            _category(results, label)
        rows = [r for r in rows if label in (r["true_label"], r["predicted_label"])]
    if outcome is not None:
        rows = [r for r in rows if r["outcome"] == outcome]
    return rows
