"""No job the API accepts outlives the broker's consumer_timeout.

A job holds its RabbitMQ message unacked while it runs; past consumer_timeout RabbitMQ closes the
worker's channel and delivers the message again, so a long training run or service would be
started twice. The API refuses any duration the deployment's broker would cut (400 naming the
field, nothing created), and every actor's own time limit stays under it.
"""

import dramatiq
import pytest

from billing import wallet
from serving.models import Service
from tasks.models import Task
from tests.datasets.zips import folders_files, make_zip, upload, validate
from tests.evaluation_runs.conftest import classifier_artifact  # noqa: F401  (fixture)
from tests.platform.broker_timeout import consumer_timeout_s
from tests.serving.conftest import classifier  # noqa: F401  (fixture)
from tests.tasks.conftest import cpu_spec, funded, task_payload  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db


def test_every_actor_ends_before_the_broker_would_redeliver():
    from core.actors import discover

    discover()
    broker = dramatiq.get_broker()
    limits = {name: broker.get_actor(name).options.get("time_limit") for name in broker.actors}
    long_ones = {name: ms for name, ms in limits.items() if ms and ms > 3600 * 1000}
    assert {"train_task", "run_service_instance"} <= set(long_ones), limits
    for name, ms in long_ones.items():
        assert ms // 1000 < consumer_timeout_s(), f"{name}: {ms} ms"


def test_a_task_as_long_as_the_broker_timeout_is_400(api, funded, project_of_a,  # noqa: F811
                                                     cpu_spec):  # noqa: F811
    dataset = upload(api.as_(funded), project_of_a["id"], make_zip(folders_files())).json()
    validate(dataset["id"])
    body = task_payload(project_of_a["id"], dataset["id"], cpu_spec,
                        max_duration_s=consumer_timeout_s())
    response = api.as_(funded).post("/api/v1/tasks/", body, format="json")
    assert response.status_code == 400, response.content
    assert "max_duration_s" in response.json()["error"]["fields"]
    assert not Task.objects.for_tenant(funded.tenant_id).exists()
    assert wallet.view(funded.tenant_id).frozen == 0


def test_a_service_as_long_as_the_broker_timeout_is_400(api, funded, classifier,  # noqa: F811
                                                        cpu_spec):  # noqa: F811
    response = api.as_(funded).post("/api/v1/services/", {
        "model": str(classifier.id), "name": "digits", "spec": str(cpu_spec.id),
        "max_runtime_s": consumer_timeout_s()}, format="json")
    assert response.status_code == 400, response.content
    assert "max_runtime_s" in response.json()["error"]["fields"]
    assert not Service.objects.unscoped().exists()
