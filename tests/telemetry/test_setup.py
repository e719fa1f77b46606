"""Nothing of tracing or Sentry is on unless its variable is set; the job middleware always is."""

import dramatiq
import sentry_sdk

from core.telemetry import setup, tracing
from core.telemetry.jobs import JobTelemetry


def test_off_by_default():
    assert not tracing.active()
    assert not sentry_sdk.get_client().is_active()
    assert setup.setup_sentry("", "", 0.0) is False
    assert tracing.setup("", "automl") is False


def test_jobs_are_instrumented_on_the_broker():
    assert any(isinstance(m, JobTelemetry) for m in dramatiq.get_broker().middleware)
