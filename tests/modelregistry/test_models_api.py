"""GET /api/v1/models/ and /models/{id}/ answer as they did from tasks; modelregistry.api hands
out frozen refs, the tenant's own only."""

import dataclasses
import uuid

import pytest
from django.utils import timezone

from core.errors import ValidationFailed
from modelregistry import api as modelregistry
from modelregistry.models import TrainedModel

pytestmark = pytest.mark.django_db


def a_model(tenant_id, project_id, **fields) -> TrainedModel:
    values = {"id": uuid.uuid4(), "tenant_id": tenant_id, "project_id": project_id,
              "task_id": uuid.uuid4(), "version": 3, "scenario": "classification",
              "model_name": "small_cnn", "labels": ["cat", "dog"],
              "metrics": {"accuracy": 0.9, "validation": "holdout"},
              "artifact_key": "models/x.zip", "input_size": [32, 32],
              "train_dataset_id": uuid.uuid4(), "created_at": timezone.now()}
    return TrainedModel.objects.create(**{**values, **fields})


def test_the_model_detail_answers_as_before(api, tenant_a, project_of_a):
    model = a_model(tenant_a.tenant_id, project_of_a["id"])

    body = api.as_(tenant_a).get(f"/api/v1/models/{model.id}/").json()

    assert body == {"id": str(model.id), "task": str(model.task_id),
                    "project": project_of_a["id"], "version": "V003",
                    "scenario": "classification", "algorithm": "small_cnn",
                    "labels": ["cat", "dog"], "metrics": {"accuracy": 0.9,
                                                          "validation": "holdout"},
                    "input_size": [32, 32],
                    "formats": {"artifact": {"available": False, "unavailable": "not exported"},
                                "onnx": {"available": False, "unavailable": "not exported"},
                                "torchscript": {"available": False,
                                                "unavailable": "not exported"}},
                    "origin": "trained",
                    "created_at": model.created_at.isoformat().replace("+00:00", "Z")}


def test_the_list_filters_by_project_and_shows_only_the_tenants_models(
        api, tenant_a, tenant_b, project_of_a):
    mine = a_model(tenant_a.tenant_id, project_of_a["id"])
    elsewhere = a_model(tenant_a.tenant_id, uuid.uuid4())
    theirs = a_model(tenant_b.tenant_id, uuid.uuid4())

    listed = api.as_(tenant_a).get("/api/v1/models/").json()["results"]
    of_project = api.as_(tenant_a).get(f"/api/v1/models/?project={project_of_a['id']}").json()

    assert {m["id"] for m in listed} == {str(mine.id), str(elsewhere.id)}
    assert [m["id"] for m in of_project["results"]] == [str(mine.id)]
    refused = api.as_(tenant_a).get(f"/api/v1/models/{theirs.id}/")
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found"


def test_get_is_the_tenants_model_as_a_frozen_ref_or_a_400_on_the_field(tenant_a, tenant_b,
                                                                        project_of_a):
    row = a_model(tenant_a.tenant_id, project_of_a["id"], split_seed=7,
                  validation_fraction=0.25, test_dataset_id=uuid.uuid4())

    ref = modelregistry.get(tenant_a.tenant_id, str(row.id))

    assert (ref.id, ref.version_label, ref.algorithm, ref.labels, ref.input_size) == (
        row.id, "V003", "small_cnn", ("cat", "dog"), (32, 32))
    assert (ref.split_seed, ref.validation_fraction) == (7, 0.25)
    assert ref.lineage.task_id == row.task_id
    assert ref.lineage.dataset_ids == (row.train_dataset_id, row.test_dataset_id)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.split_seed = 0
    with pytest.raises(TypeError):
        ref.metrics["accuracy"] = 1.0  # a read-only view: the row cannot change through it
    for wrong in (str(row.id), "not-an-id", str(uuid.uuid4())):
        tenant = tenant_b.tenant_id if wrong == str(row.id) else tenant_a.tenant_id
        with pytest.raises(ValidationFailed) as refused:
            modelregistry.get(tenant, wrong, field="base_model")
        assert list(refused.value.fields) == ["base_model"]
    assert modelregistry.get_unscoped(row.id) == ref
    assert modelregistry.get_unscoped(uuid.uuid4()) is None

