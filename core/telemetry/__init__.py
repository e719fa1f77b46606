"""Telemetry: probes, Prometheus metrics, structured logs, traces and error reports.

Every library behind it (prometheus_client, python-json-logger, OpenTelemetry, sentry-sdk) is
optional at runtime: without one, its part does nothing and the rest runs as before.
"""
