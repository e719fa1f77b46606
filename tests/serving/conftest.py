"""A funded tenant, a CPU spec, a stored classifier and an in-process worker that serves."""

import io

import numpy as np
import pytest
from PIL import Image

from serving import commands
from serving.models import Service
from tests.evaluation_runs.conftest import (  # noqa: F401  (fixtures)
    DIGIT_LABELS,
    classifier_artifact,
    stored_model,
)
from tests.tasks.conftest import cpu_spec, funded, wait_for  # noqa: F401  (fixtures, helper)
from tests.workers import stub_worker


@pytest.fixture
def classifier(funded, project_of_a, classifier_artifact):  # noqa: F811
    return stored_model(funded.tenant_id, project_of_a["id"], classifier_artifact,
                        "classification", "small_cnn", DIGIT_LABELS)


@pytest.fixture
def serving_worker(settings):
    """The stub broker's worker, as `make run` has in-process; every service still up at the
    end is stopped first, so that the instances release their threads."""
    settings.SERVING_MONITOR_FLUSH_S = 3600.0  # tests flush by hand
    with stub_worker(threads=3) as broker:
        yield broker
        for row in Service.objects.unscoped().exclude(state__in=("stopped", "failed")):
            commands.request_stop(row.tenant_id, row.id, "user", "system:test")


def png(seed: int, size: tuple[int, int] = (28, 28)) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(*size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def service_state(api, account, service_id) -> dict:
    return api.as_(account).get(f"/api/v1/services/{service_id}/").json()


def wait_state(api, account, service_id, *states, timeout=60.0) -> dict:
    return wait_for(lambda: (lambda b: b if b["state"] in states else None)(
        service_state(api, account, service_id)), timeout=timeout, every=0.05,
        what=f"service {service_id} to be {'/'.join(states)}")
