"""Evaluating a classifier through the API: the report equals metrics on the same
predictions, reports answer from stored results, tenants stay apart, billing refuses when short."""

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from billing.models import Meter
from evaluation.actors import run_evaluation
from evaluation.models import Evaluation
from metrics import classification
from tests.evaluation_runs.conftest import DIGIT_LABELS

REPORT_ROUTES = ("", "metrics/", "predictions/", "badcases/", "confusion/")


def direct_predictions(artifact, digits_bytes):
    """file name -> (true label index, probability row), predicted here without the platform."""
    from training_runtime.predict import Predictor

    predictor = Predictor.load(artifact, "cpu")
    rows = {}
    with zipfile.ZipFile(io.BytesIO(digits_bytes)) as archive:
        for name in sorted(archive.namelist()):
            image = Image.open(io.BytesIO(archive.read(name))).convert("RGB")
            (items,) = predictor.predict([image], top_k=3, min_score=0.0)
            scores = np.zeros(3)
            for item in items:
                scores[DIGIT_LABELS.index(item["label"])] = item["score"]
            rows[name] = (DIGIT_LABELS.index(name.split("/")[0]), scores)
    return rows


@pytest.fixture
def evaluated(api, funded, classifier, digits_dataset, cpu_spec):
    response = api.as_(funded).post("/api/v1/evaluations/", {
        "model": str(classifier.id), "dataset": digits_dataset["id"]}, format="json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["state"] == "queued"
    assert (created["iou"], created["score_threshold"]) == (0.5, 0.5)
    run_evaluation.fn(created["id"])
    return api.as_(funded).get(f"/api/v1/evaluations/{created['id']}/").json()


def test_report_equals_the_metrics_engine_on_the_same_predictions(
        evaluated, classifier_artifact, digits_bytes):
    assert evaluated["state"] == "succeeded", evaluated
    rows = direct_predictions(classifier_artifact, digits_bytes)
    names = sorted(rows)
    y_true = [rows[n][0] for n in names]
    scores = np.stack([rows[n][1] for n in names])
    expected = classification.evaluate(y_true, scores, DIGIT_LABELS)
    metrics, summary = evaluated["metrics"], evaluated["summary"]

    assert metrics["accuracy"] == pytest.approx(expected.accuracy)
    assert metrics["top_k"] == pytest.approx({str(k): v for k, v in expected.top_k.items()})
    assert metrics["mean_f1"] == pytest.approx(expected.mean_f1)
    assert [row["label"] for row in metrics["per_label"]] == DIGIT_LABELS
    for row, want in zip(metrics["per_label"], expected.per_label, strict=True):
        assert (row["precision"], row["recall"], row["f1"], row["count"]) == pytest.approx(
            (want.precision, want.recall, want.f1, want.support))
    wrong = int(np.count_nonzero(np.argmax(scores, axis=1) != np.array(y_true)))
    assert summary["image_count"] == 36 and summary["badcase_count"] == wrong
    assert "for reference only" in summary["warning"]
    assert summary["duration_s"] >= 0


def test_the_meter_is_stopped_when_the_run_ends(evaluated):
    meters = Meter.objects.unscoped().filter(resource_type="evaluation",
                                             resource_id=evaluated["id"])
    assert [m.state for m in meters] == [Meter.STOPPED]


def test_predictions_are_the_top_labels_of_every_image(api, funded, evaluated,
                                                       classifier_artifact, digits_bytes):
    rows = direct_predictions(classifier_artifact, digits_bytes)
    got = api.as_(funded).get(f"/api/v1/evaluations/{evaluated['id']}/predictions/").json()

    assert {p["file_name"] for p in got} == set(rows)
    assert len(got) == 3 * len(rows)
    for p in got:
        assert p["score"] == pytest.approx(rows[p["file_name"]][1][DIGIT_LABELS.index(
            p["label"])], abs=1e-6)


def test_badcase_filters_list_exactly_the_wrong_images(api, funded, evaluated,
                                                       classifier_artifact, digits_bytes):
    rows = direct_predictions(classifier_artifact, digits_bytes)
    predicted = {n: int(np.argmax(s)) for n, (_, s) in rows.items()}
    url = f"/api/v1/evaluations/{evaluated['id']}/badcases/"
    as_a = api.as_(funded)

    everything = as_a.get(url + "?limit=500").json()
    assert {b["file_name"] for b in everything["results"]} == {
        n for n, (t, _) in rows.items() if predicted[n] != t}
    for label in DIGIT_LABELS:
        k = DIGIT_LABELS.index(label)
        by_truth = as_a.get(url, {"true_label": label, "limit": 500}).json()["results"]
        assert {b["file_name"] for b in by_truth} == {
            n for n, (t, _) in rows.items() if t == k and predicted[n] != k}
        by_guess = as_a.get(url, {"predicted_label": label, "kind": "false_positive",
                                  "limit": 500}).json()["results"]
        assert {b["file_name"] for b in by_guess} == {
            n for n, (t, _) in rows.items() if predicted[n] == k and t != k}
        assert all(b["missed"] == [] and b["false_positives"][0]["label"] == label
                   for b in by_guess)
    if len(everything["results"]) > 1:
        first = as_a.get(url, {"limit": 1}).json()
        assert first["next"] and len(first["results"]) == 1
    assert as_a.get(url, {"kind": "nonsense"}).status_code == 400


def test_confusion_matrix_is_the_engines(api, funded, evaluated, classifier_artifact,
                                         digits_bytes):
    rows = direct_predictions(classifier_artifact, digits_bytes)
    names = sorted(rows)
    expected = classification.evaluate([rows[n][0] for n in names],
                                       np.stack([rows[n][1] for n in names]), DIGIT_LABELS)
    got = api.as_(funded).get(f"/api/v1/evaluations/{evaluated['id']}/confusion/").json()

    assert got["labels"] == DIGIT_LABELS
    assert got["matrix"] == expected.confusion.matrix
    assert got["image_count"] == [12, 12, 12]


def test_metrics_route_validates_the_operating_point(api, funded, evaluated):
    url = f"/api/v1/evaluations/{evaluated['id']}/metrics/"
    assert api.as_(funded).get(url).json()["accuracy"] == evaluated["metrics"]["accuracy"]
    bad = api.as_(funded).get(url, {"iou": 0.52})
    assert bad.status_code == 400 and "iou" in bad.json()["error"]["fields"]


def test_another_tenant_gets_404_on_every_route(api, evaluated, tenant_b):
    for route in REPORT_ROUTES:
        response = api.as_(tenant_b).get(f"/api/v1/evaluations/{evaluated['id']}/{route}")
        assert response.status_code == 404, route
        assert response.json()["error"]["code"] == "not_found"
    listed = api.as_(tenant_b).get("/api/v1/evaluations/").json()
    assert listed["results"] == []


def test_reports_wait_for_success(api, funded, classifier, digits_dataset, cpu_spec):
    created = api.as_(funded).post("/api/v1/evaluations/", {
        "model": str(classifier.id), "dataset": digits_dataset["id"]}, format="json").json()
    response = api.as_(funded).get(f"/api/v1/evaluations/{created['id']}/badcases/")
    assert response.status_code == 409


def test_402_when_short_and_nothing_is_created(api, tenant_a, project_of_a, cpu_spec,
                                               classifier_artifact, digits_bytes):
    from tests.evaluation_runs.conftest import stored_model, upload_ready

    dataset = upload_ready(api, tenant_a, project_of_a["id"], digits_bytes)
    model = stored_model(tenant_a.tenant_id, project_of_a["id"], classifier_artifact,
                         "classification", "small_cnn", DIGIT_LABELS)
    response = api.as_(tenant_a).post("/api/v1/evaluations/", {
        "model": str(model.id), "dataset": dataset["id"]}, format="json")

    assert response.status_code == 402, response.content
    assert not Evaluation.objects.for_tenant(tenant_a.tenant_id).exists()
    assert not Meter.objects.for_tenant(tenant_a.tenant_id).exists()


def test_model_and_dataset_must_be_the_tenants_and_match(api, funded, tenant_b, classifier,
                                                         digits_dataset, cpu_spec):
    url = "/api/v1/evaluations/"
    as_b = api.as_(tenant_b)
    foreign = as_b.post(url, {"model": str(classifier.id), "dataset": digits_dataset["id"]},
                        format="json")
    assert foreign.status_code == 400 and "model" in foreign.json()["error"]["fields"]
    from tests.datasets.zips import coco_files, make_zip
    from tests.evaluation_runs.conftest import upload_ready

    project = api.as_(funded).post("/api/v1/projects/", {"name": "boxes"}, format="json").json()
    boxes = upload_ready(api, funded, project["id"], make_zip(coco_files()),
                         kind="detection", fmt="coco")
    wrong_kind = api.as_(funded).post(url, {"model": str(classifier.id),
                                            "dataset": boxes["id"]}, format="json")
    assert wrong_kind.status_code == 400 and "dataset" in wrong_kind.json()["error"]["fields"]
    off_grid = api.as_(funded).post(url, {"model": str(classifier.id),
                                          "dataset": digits_dataset["id"], "iou": 0.33},
                                    format="json")
    assert off_grid.status_code == 400
