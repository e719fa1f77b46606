"""POST /api/v1/models/: a model comes in as the platform's zip or a state dict with a manifest,
checked on a CPU worker; refusals are 400s naming the problem, and nothing is stored."""

import io
import json
import pickle
import zipfile

import pytest
import torch
from django.core.files.uploadedfile import SimpleUploadedFile

from eventlog.models import Event
from modelregistry.models import TrainedModel
from tests.datasets.conftest import private_storage, stored_files  # noqa: F401
from tests.tasks.conftest import worker  # noqa: F401
from training_runtime import models
from training_runtime.export import export_artifact
from training_runtime.predict import Predictor

pytestmark = pytest.mark.django_db(transaction=True)
LABELS = ["cat", "dog"]


@pytest.fixture(scope="module")
def classifier():
    torch.manual_seed(0)
    return models.build(models.get("classification", "small_cnn"), num_classes=2).eval()


@pytest.fixture(scope="module")
def artifact_zip(classifier, tmp_path_factory):
    folder = export_artifact(classifier, tmp_path_factory.mktemp("a") / "m",
                             scenario="classification", model_name="small_cnn", labels=LABELS,
                             input_size=32, normalization=None, metrics={})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(folder.iterdir()):
            zf.write(file, file.name)
    return buffer.getvalue()


def state_bytes(state) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def post(api, account, project, data: bytes, name="model.zip", manifest=None):
    body = {"project": project["id"], "file": SimpleUploadedFile(name, data)}
    if manifest is not None:
        body["manifest"] = json.dumps(manifest)
    return api.as_(account).post("/api/v1/models/", body, format="multipart")


def nothing_stored(media, tenant_id):
    assert not [f for f in stored_files(media) if str(tenant_id) in f]
    assert not TrainedModel.objects.for_tenant(tenant_id).exists()
    assert not Event.objects.filter(type="ModelImported").exists()


def test_an_exported_zip_is_imported_and_answers_as_the_original(
        api, tenant_b, private_storage, worker, artifact_zip, classifier, tmp_path):  # noqa: F811
    project = api.as_(tenant_b).post("/api/v1/projects/", {"name": "P"}, format="json").json()

    created = post(api, tenant_b, project, artifact_zip)

    assert created.status_code == 201, created.content
    body = created.json()
    assert body["origin"] == "imported" and body["labels"] == LABELS
    assert body["formats"]["onnx"]["available"]
    download = api.as_(tenant_b).get(f"/api/v1/models/{body['id']}/download/")
    zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content))).extractall(tmp_path / "x")
    images = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        expected = torch.softmax(classifier(images), 1)
    with torch.no_grad():
        got = Predictor.load(tmp_path / "x").eager_model()(images)
    assert torch.allclose(torch.softmax(got, 1), expected, atol=1e-5)
    assert not [f for f in stored_files(private_storage) if f.startswith("imports/")]


def test_a_state_dict_with_a_manifest_is_imported(api, tenant_a, project_of_a, private_storage,  # noqa: F811
                                                   worker, classifier):  # noqa: F811
    created = post(api, tenant_a, project_of_a, state_bytes(classifier.state_dict()), "w.pt",
                   manifest={"scenario": "classification", "algorithm": "small_cnn",
                             "labels": LABELS, "input_size": [32, 32]})

    assert created.status_code == 201, created.content
    assert created.json()["algorithm"] == "small_cnn"


@pytest.mark.parametrize("case", ["wrong_label_count", "other_architecture", "not_weights_only",
                                  "zip_bomb"])
def test_bad_uploads_are_400s_naming_the_problem_and_store_nothing(
        api, tenant_a, project_of_a, private_storage, worker, classifier, case):  # noqa: F811
    manifest = {"scenario": "classification", "algorithm": "small_cnn", "labels": LABELS,
                "input_size": [32, 32]}
    if case == "wrong_label_count":
        data, manifest["labels"] = state_bytes(classifier.state_dict()), ["a", "b", "c"]
        field, words = "labels", "3 labels"
    elif case == "other_architecture":
        other = models.build(models.get("classification", "resnet18"), num_classes=2)
        data, field, words = state_bytes(other.state_dict()), "file", "not those of small_cnn"
    elif case == "not_weights_only":
        class Payload:
            def __reduce__(self):
                return (print, ("this ran",))
        data = pickle.dumps({"w": Payload()})
        field, words = "file", "weights-only"
    else:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("weights.pt", b"\0" * (64 * 1024 * 1024))
        data, manifest, field, words = buffer.getvalue(), None, "file", "zip bomb"

    refused = post(api, tenant_a, project_of_a, data, "w.zip" if manifest is None else "w.pt",
                   manifest=manifest)

    assert refused.status_code == 400, refused.content
    error = refused.json()["error"]
    assert field in error["fields"] and words in error["fields"][field][0], error
    nothing_stored(private_storage, tenant_a.tenant_id)
