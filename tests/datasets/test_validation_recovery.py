"""Dataset validations found again after a crash (issue 16 item 8): one left `uploaded` or
`validating` with no live worker is sent again and finishes; a duplicate delivery while a live
worker validates does nothing."""

from datetime import timedelta

import dramatiq
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from core import leases, recovery
from core.models import WorkLease
from datasets import commands
from datasets.aggregates import DatasetAggregate
from datasets.events import DatasetValidationStarted
from datasets.models import Dataset
from datasets.recovery import recover_validations
from eventlog.models import Event
from tests.tasks.conftest import digits_zip

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def uploaded(api, tenant_a, project_of_a) -> Dataset:
    """A dataset whose validation message died with the broker."""
    response = api.as_(tenant_a).post("/api/v1/datasets/", {
        "project": project_of_a["id"], "name": "digits", "kind": "classification",
        "format": "folders", "file": SimpleUploadedFile("d.zip", digits_zip(per_label=4),
                                                        content_type="application/zip")},
        format="multipart")
    assert response.status_code == 201, response.content
    dramatiq.get_broker().flush_all()
    return Dataset.objects.unscoped().get(id=response.json()["id"])


def types_of(dataset_id) -> list[str]:
    return list(Event.objects.filter(stream_id=dataset_id).order_by("version")
                .values_list("type", flat=True))


def sent_again() -> list[tuple]:
    return [dramatiq.Message.decode(m).args for m in dramatiq.get_broker().queues["cpu"].queue]


def test_a_validation_whose_worker_died_is_sent_again_and_finishes(uploaded, settings):
    settings.WORK_LEASE_TIMEOUT_S = 5.0
    DatasetAggregate.load(uploaded.tenant_id, uploaded.id).append(DatasetValidationStarted())
    key = commands.validation_key(uploaded.id)
    leases.claim(key, "dead-host:1:x", stale_after_s=1)
    WorkLease.objects.filter(key=key).update(last_seen_at=timezone.now() - timedelta(seconds=9))

    assert recover_validations(recovery.Sweep()) == 1
    assert sent_again() == [(str(uploaded.tenant_id), str(uploaded.id))]
    commands.validate(uploaded.tenant_id, uploaded.id)  # the message sent again

    assert Dataset.objects.unscoped().get(id=uploaded.id).state == "ready"
    assert types_of(uploaded.id).count("DatasetValidationStarted") == 1
    assert not WorkLease.objects.filter(key=key).exists()


def test_a_duplicate_delivery_while_a_live_worker_validates_does_nothing(uploaded):
    key = commands.validation_key(uploaded.id)
    assert leases.claim(key, "live-host:1:x", stale_after_s=60)

    commands.validate(uploaded.tenant_id, uploaded.id)

    assert Dataset.objects.unscoped().get(id=uploaded.id).state == "uploaded"
    assert types_of(uploaded.id) == ["DatasetUploaded"]
    assert recover_validations(recovery.Sweep(lost_all=False)) == 0  # it is alive


def test_an_uploaded_dataset_is_sent_again_once_its_message_may_be_lost(uploaded, settings):
    settings.RECOVERY_REQUEUE_AFTER_S = 60.0
    assert recover_validations(recovery.Sweep()) == 0  # its message may still come
    later = recovery.Sweep(now=timezone.now() + timedelta(seconds=61))
    assert recover_validations(later) == 1
    assert recover_validations(later) == 0  # once per RECOVERY_REQUEUE_AFTER_S
    assert sent_again() == [(str(uploaded.tenant_id), str(uploaded.id))]
