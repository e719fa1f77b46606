"""Dataset validations found again after a crash: an uploaded or validating dataset that no
live worker validates is sent to the validation queue again."""

from django.conf import settings

from core import leases, recovery
from datasets.aggregates import UPLOADED, VALIDATING
from datasets.commands import VALIDATE, validation_key
from datasets.models import Dataset


@recovery.recoverer("datasets")
def recover_validations(sweep: recovery.Sweep) -> int:
    """Send again the validations whose message may be lost or whose worker died; how many."""
    waiting = list(Dataset.objects.unscoped().filter(
        state__in=(UPLOADED, VALIDATING), archived_at__isnull=True).values_list(
        "id", "tenant_id", "updated_at"))
    seen = leases.last_seen(validation_key(row[0]) for row in waiting)
    stale = sweep.stale_before(settings.WORK_LEASE_TIMEOUT_S)
    sent = 0
    for dataset_id, tenant_id, since in waiting:
        key = validation_key(dataset_id)
        beat = seen.get(key)
        if beat is not None and beat >= stale:
            continue  # a live worker validates it
        if sweep.due(key, None if beat is not None else since):
            VALIDATE.send(str(tenant_id), str(dataset_id))
            sent += 1
    return sent
