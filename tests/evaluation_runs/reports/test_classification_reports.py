"""Interactive reports of a classification evaluation (one-vs-rest curves, confusion views,
label detail, instances, previews, heatmaps). Expectations come from
tests/evaluation_runs/reports/conftest.py."""

import io
import zipfile
from types import SimpleNamespace

import numpy as np
import pytest
from django.core import signing
from django.core.files.storage import default_storage
from django.test import override_settings

from evaluation import heatmaps
from evaluation.models import Evaluation
from tests.conftest import Api
from tests.evaluation_runs.reports.conftest import Classified, best_of, invalid, url

pytestmark = pytest.mark.django_db  # each test: a savepoint inside the module's transaction


# --- classification -------------------------------------------------------------------------------


def test_classification_curves_are_one_vs_rest_of_the_scores(api, world, cls):
    from sklearn.metrics import average_precision_score

    body = api.as_(world.a).get(url(cls.body, "curves/")).json()
    assert body["iou"] is None and "overall" not in body
    assert [row["label"] for row in body["labels"]] == cls.labels
    for k, row in enumerate(body["labels"]):
        positive, scores = cls.y == k, cls.scores[:, k]
        assert row["count"] == int(positive.sum()) == 12
        assert row["ap"] == pytest.approx(average_precision_score(positive, scores))

        def figures(t, positive=positive, scores=scores):
            chosen = scores >= t
            tp = int((chosen & positive).sum())
            precision = tp / chosen.sum() if chosen.any() else 0.0
            recall = tp / positive.sum()
            f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
            return precision, recall, f1

        threshold, f1 = best_of({t: figures(t)[2] for t in set(scores.tolist())})
        assert (row["best"]["threshold"], row["best"]["f1"]) == pytest.approx((threshold, f1))
        for r in row["table"]:
            assert (r["precision"], r["recall"], r["f1"]) == pytest.approx(
                figures(r["threshold"])), (row["label"], r)
        assert "interpolated" not in row
    one = api.as_(world.a).get(url(cls.body, "curves/"), {"label": "digit-7"}).json()
    assert [row["label"] for row in one["labels"]] == ["digit-7"]
    invalid(api.as_(world.a).get(url(cls.body, "curves/"), {"label": "digit-3"}), "label")


def predicted(cls: Classified) -> np.ndarray:
    return np.argmax(cls.scores, axis=1)


def test_classification_confusion_views_and_cells(api, world, cls):
    guess = predicted(cls)
    counts = np.zeros((3, 3), dtype=int)
    np.add.at(counts, (cls.y, guess), 1)
    full = api.as_(world.a).get(url(cls.body, "confusion/")).json()
    assert full["matrix"] == counts.tolist()
    view = api.as_(world.a).get(url(cls.body, "confusion/"), {"labels": "digit-7,digit-0"}
                                ).json()
    assert view["labels"] == ["digit-7", "digit-0"]
    assert view["matrix"] == counts[np.ix_([2, 0], [2, 0])].tolist()
    assert view["image_count"] == [12, 12]
    page = api.as_(world.a).get(url(cls.body, "confusion/"), {
        "per_side": 15, "row_page": 0, "column_page": 0}).json()
    assert page["matrix"] == counts.tolist() and page["page"]["row_pages"] == 1
    confusion = url(cls.body, "confusion/")
    invalid(api.as_(world.a).get(confusion, {"per_side": 10, "row_page": 0, "column_page": 1}),
            "row_page")
    invalid(api.as_(world.a).get(confusion, {"per_side": 10, "row_page": 1, "column_page": 1}),
            "row_page")
    invalid(api.as_(world.a).get(confusion, {"per_side": 5}), "per_side")
    for t, truth in enumerate(cls.labels):
        for p, guessed in enumerate(cls.labels):
            got = api.as_(world.a).get(url(cls.body, "confusion/cell/"), {
                "true_label": truth, "predicted_label": guessed, "limit": 500}).json()
            want = [(i, f) for i, f, y, g in zip(cls.ids, cls.files, cls.y, guess, strict=True)
                    if (y, g) == (t, p)]
            assert [(r["image_id"], r["file_name"]) for r in got["results"]] == want
    invalid(api.as_(world.a).get(url(cls.body, "confusion/cell/"), {
        "true_label": "digit-0", "predicted_label": "missed"}), "predicted_label")


def test_classification_label_detail(api, world, cls):
    guess = predicted(cls)
    confusion = api.as_(world.a).get(url(cls.body, "confusion/")).json()["matrix"]
    for k, name in enumerate(cls.labels):
        body = api.as_(world.a).get(url(cls.body, "label/"), {"label": name}).json()
        row = confusion[k]
        rows = body["predicted_as"]["results"]
        assert {r["label"]: r["count"] for r in rows} == {
            cls.labels[p]: n for p, n in enumerate(row) if n}
        assert [(r["count"], r["label"]) for r in rows] == sorted(
            ((r["count"], r["label"]) for r in rows), key=lambda x: (-x[0], x[1]))
        assert all(r["share"] == pytest.approx(r["count"] / 12) for r in rows)
        correct = int(((guess == k) & (cls.y == k)).sum())
        as_k = int((guess == k).sum())
        assert (body["count"], body["image_count"], body["predicted_count"]) == (12, 12, as_k)
        assert body["recall"] == pytest.approx(correct / 12)
        assert body["precision"] == pytest.approx(correct / as_k if as_k else 0.0)
        assert [(i["image_id"], i["file_name"]) for i in body["wrongly_predicted_as"]] == [
            (i, f) for i, f, y, g in zip(cls.ids, cls.files, cls.y, guess, strict=True)
            if g == k and y != k]
    widest = max(range(3), key=lambda k: sum(1 for n in confusion[k] if n))
    name = cls.labels[widest]
    label = url(cls.body, "label/")
    by_name = api.as_(world.a).get(label, {"label": name, "sort": "label", "order": "asc"}
                                   ).json()["predicted_as"]["results"]
    assert [r["label"] for r in by_name] == sorted(r["label"] for r in by_name)
    by_count = api.as_(world.a).get(label, {"label": name, "sort": "count", "order": "asc"}
                                    ).json()["predicted_as"]["results"]
    assert [r["count"] for r in by_count] == sorted(r["count"] for r in by_count)
    found = api.as_(world.a).get(label, {"label": name, "q": name.upper()}).json()
    if confusion[widest][widest]:
        assert [r["label"] for r in found["predicted_as"]["results"]] == [name]
    if len(by_name) > 1:
        first = api.as_(world.a).get(label, {"label": name, "sort": "label", "order": "asc",
                                             "limit": 1}).json()["predicted_as"]
        assert first["count"] == len(by_name) and first["results"] == by_name[:1]
        second = api.as_(world.a).get(first["next"]).json()["predicted_as"]
        assert second["results"] == by_name[1:2]
    invalid(api.as_(world.a).get(label, {"label": name, "sort": "share"}), "sort")
    invalid(api.as_(world.a).get(label, {"label": name, "order": "up"}), "order")
    invalid(api.as_(world.a).get(label), "label")


def test_classification_instances_errors_and_image_detail(api, world, cls, digits_bytes):
    guess = predicted(cls)
    wrong = api.as_(world.a).get(url(cls.body, "instances/"), {"outcome": "wrong",
                                                                "limit": 500}).json()
    badcases = api.as_(world.a).get(url(cls.body, "badcases/"), {"limit": 500}).json()
    assert [r["image_id"] for r in wrong["results"]] == [
        b["image_id"] for b in badcases["results"]] == [
        i for i, y, g in zip(cls.ids, cls.y, guess, strict=True) if y != g]
    right = api.as_(world.a).get(url(cls.body, "instances/"), {"outcome": "correct",
                                                                "limit": 500}).json()
    assert right["count"] + wrong["count"] == 36
    sevens = api.as_(world.a).get(url(cls.body, "instances/"), {"label": "digit-7",
                                                                 "limit": 500}).json()
    assert sevens["count"] == int(((cls.y == 2) | (guess == 2)).sum())
    invalid(api.as_(world.a).get(url(cls.body, "instances/"), {"outcome": "missed"}), "outcome")
    invalid(api.as_(world.a).get(url(cls.body, "errors/")), "scenario")

    n = int(np.flatnonzero(cls.y != guess)[0]) if (cls.y != guess).any() else 0
    body = api.as_(world.a).get(url(cls.body, "image/"), {"image_id": cls.ids[n],
                                                           "preview": "true"}).json()
    order = np.argsort(-cls.scores[n], kind="stable")
    assert (body["true_label"], body["predicted_label"], body["correct"]) == (
        cls.labels[cls.y[n]], cls.labels[guess[n]], bool(cls.y[n] == guess[n]))
    assert [(p["label"], p["score"]) for p in body["predictions"]] == [
        (cls.labels[j], pytest.approx(cls.scores[n, j])) for j in order]
    served = Api().get(body["preview_url"])
    assert served.status_code == 200
    with zipfile.ZipFile(io.BytesIO(digits_bytes)) as archive:
        assert served.content == archive.read(cls.files[n])
        plain = api.as_(world.a).get(url(cls.body, "badcases/")).json()["results"]
        assert plain and all("preview_url" not in entry for entry in plain)
        shown = api.as_(world.a).get(url(cls.body, "badcases/"), {"preview": "true"}).json()
        for entry in shown["results"]:
            image = Api().get(entry["preview_url"])
            assert image.content == archive.read(entry["file_name"])


def test_preview_links_expire_and_cannot_be_forged(api, world, cls, monkeypatch):
    image = url(cls.body, "image/")
    with override_settings(EVALUATION_PREVIEW_TTL_S=60):
        body = api.as_(world.a).get(image, {"image_id": cls.ids[0], "preview": "1"}).json()
        assert body["preview_expires_in_s"] == 60
        link = body["preview_url"]
        real = signing.time.time
        monkeypatch.setattr(signing, "time", SimpleNamespace(time=lambda: real() + 50))
        assert Api().get(link).status_code == 200
        monkeypatch.setattr(signing, "time", SimpleNamespace(time=lambda: real() + 70))
        expired = Api().get(link)
        assert expired.status_code == 404
        assert "expired" in expired.json()["error"]["message"]
        monkeypatch.undo()
        assert Api().get(link).status_code == 200
    token = link.rstrip("/").rsplit("/", 1)[1]
    value, signature = token.rsplit(":", 1)
    tampered = f"{value}:{signature[:-1]}{'A' if signature[-1] != 'A' else 'B'}"
    assert Api().get(f"/api/v1/evaluation-previews/{tampered}/").status_code == 404
    forged = signing.dumps({"e": cls.body["id"], "f": cls.files[0]}, salt="another salt",
                           compress=True)
    assert Api().get(f"/api/v1/evaluation-previews/{forged}/").status_code == 404
    escape = signing.dumps({"e": cls.body["id"], "f": "../../../../etc/passwd"},
                           salt="evaluation.preview", compress=True)
    assert Api().get(f"/api/v1/evaluation-previews/{escape}/").status_code == 404


def test_heatmap_is_computed_once_then_read_back(api, world, cls, monkeypatch):
    evaluation = Evaluation.objects.unscoped().get(id=cls.body["id"])
    guess = predicted(cls)
    key = heatmaps._key(evaluation, cls.ids[0], cls.labels[guess[0]])
    assert not default_storage.exists(key)
    first = api.as_(world.a).get(url(cls.body, "heatmap/"), {"image_id": cls.ids[0]})
    assert first.status_code == 200, first.content
    body = first.json()
    assert body["label"] == cls.labels[guess[0]]
    assert body["score"] == pytest.approx(cls.scores[0, guess[0]])
    grid = np.array(body["grid"])
    assert grid.shape == (min(64, body["height"]), min(64, body["width"]))
    assert grid.min() >= 0 and grid.max() <= 1
    assert default_storage.exists(key)

    def no_more(*args, **kwargs):
        raise AssertionError("the cached heatmap must be read back, not computed again")

    import training_runtime.predict

    monkeypatch.setattr(training_runtime.predict, "gradcam", no_more)
    again = api.as_(world.a).get(url(cls.body, "heatmap/"), {"image_id": cls.ids[0]})
    assert again.status_code == 200 and again.json() == body
    other = next(name for name in cls.labels if name != body["label"])
    with pytest.raises(AssertionError, match="read back"):
        api.as_(world.a).get(url(cls.body, "heatmap/"), {"image_id": cls.ids[0],
                                                          "label": other})
    invalid(api.as_(world.a).get(url(cls.body, "heatmap/"), {"image_id": cls.ids[0],
                                                              "label": "digit-3"}), "label")


