"""A task's architecture is `algorithm` on create, as tasks answer it; `model` stays a
deprecated alias (it trained ResNet-18 silently when a client sent `algorithm` before)."""

import pytest

from tasks.models import Task
from tests.datasets.zips import folders_files, make_zip, upload, validate

from .conftest import task_payload


@pytest.fixture
def payload(funded, project_of_a, cpu_spec):
    created = upload(api_of(funded), project_of_a["id"], make_zip(folders_files()))
    validate(created.json()["id"])
    body = task_payload(project_of_a["id"], created.json()["id"], cpu_spec)
    del body["model"]
    return body


def api_of(account):
    from tests.conftest import Api

    return Api().as_(account)


def test_algorithm_names_the_architecture(funded, payload):
    task = api_of(funded).post("/api/v1/tasks/", {**payload, "algorithm": "small_cnn"},
                               format="json")
    assert task.status_code == 201, task.content
    assert task.json()["algorithm"] == "small_cnn"


def test_model_is_still_read_as_its_deprecated_alias(funded, payload):
    task = api_of(funded).post("/api/v1/tasks/", {**payload, "model": "small_cnn"},
                               format="json")
    assert task.status_code == 201, task.content
    assert task.json()["algorithm"] == "small_cnn"


def test_algorithm_and_model_that_differ_are_a_400_naming_both(funded, payload):
    answer = api_of(funded).post("/api/v1/tasks/", {**payload, "algorithm": "small_cnn",
                                                    "model": "resnet18"}, format="json")
    assert answer.status_code == 400, answer.content
    assert set(answer.json()["error"]["fields"]) == {"algorithm", "model"}
    assert not Task.objects.for_tenant(funded.tenant_id).exists()


def test_an_unknown_algorithm_is_a_400_naming_the_field_sent(funded, payload):
    for field in ("algorithm", "model"):
        answer = api_of(funded).post("/api/v1/tasks/", {**payload, field: "resnet9000"},
                                     format="json")
        assert answer.status_code == 400, answer.content
        assert set(answer.json()["error"]["fields"]) == {field}
