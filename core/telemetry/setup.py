"""Switch on what the environment asks for, once per process (CoreConfig.ready)."""

import logging

from django.conf import settings

from core.telemetry import tracing

logger = logging.getLogger(__name__)


def setup_sentry(dsn: str, environment: str, traces_sample_rate: float) -> bool:
    """Report errors to Sentry when a DSN is set (its Django and logging integrations)."""
    if not dsn:
        return False
    try:
        import sentry_sdk
    except ImportError:
        logger.warning("SENTRY_DSN is set but sentry-sdk is missing (make install): no reports")
        return False
    sentry_sdk.init(dsn=dsn, environment=environment or None,
                    traces_sample_rate=traces_sample_rate, send_default_pii=False)
    return True


def setup() -> None:
    """Traces when OTEL_EXPORTER_OTLP_ENDPOINT is set, Sentry when SENTRY_DSN is set."""
    tracing.setup(settings.OTEL_EXPORTER_OTLP_ENDPOINT, settings.OTEL_SERVICE_NAME)
    setup_sentry(settings.SENTRY_DSN, settings.SENTRY_ENVIRONMENT,
                 settings.SENTRY_TRACES_SAMPLE_RATE)
