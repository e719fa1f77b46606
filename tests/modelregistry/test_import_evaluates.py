"""An exported artifact imported into another tenant evaluates to the original's metrics on the
same dataset: the import keeps the model, whatever tenant it lands in."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from billing import wallet
from modelregistry.models import TrainedModel
from tests.evaluation_runs.conftest import (  # noqa: F401
    classifier,
    classifier_artifact,
    cpu_spec,
    funded,
    zip_folder,
)
from tests.tasks.conftest import upload_digits, wait_for, worker  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def evaluated(api, account, model_id, dataset_id) -> dict:
    """An evaluation through the API, run by the in-process worker to its end."""
    client = api.as_(account)
    created = client.post("/api/v1/evaluations/", {"model": str(model_id),
                                                   "dataset": dataset_id}, format="json")
    assert created.status_code == 201, created.content

    def done():
        body = client.get(f"/api/v1/evaluations/{created.json()['id']}/").json()
        return body if body["state"] in ("succeeded", "failed") else None
    body = wait_for(done, timeout=120, what="the evaluation")
    assert body["state"] == "succeeded", body
    return body


def test_an_imported_copy_evaluates_to_the_same_metrics(api, funded, tenant_b, project_of_a,  # noqa: F811
                                                        classifier, classifier_artifact,  # noqa: F811
                                                        cpu_spec, worker):  # noqa: F811
    mine = upload_digits(api, funded, project_of_a["id"])
    original = evaluated(api, funded, classifier.id, mine["id"])
    wallet.adjust(tenant_b.tenant_id, 100_000, "test funding", "staff:test")
    project = api.as_(tenant_b).post("/api/v1/projects/", {"name": "B"}, format="json").json()
    theirs = upload_digits(api, tenant_b, project["id"])

    created = api.as_(tenant_b).post("/api/v1/models/", {
        "project": project["id"], "file": SimpleUploadedFile(
            "model.zip", zip_folder(classifier_artifact))}, format="multipart")

    assert created.status_code == 201, created.content
    imported = TrainedModel.objects.for_tenant(tenant_b.tenant_id).get(id=created.json()["id"])
    copy = evaluated(api, tenant_b, imported.id, theirs["id"])
    assert copy["metrics"] == original["metrics"] and copy["metrics"]
