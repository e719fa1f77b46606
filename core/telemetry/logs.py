"""LOGGING for settings: plain text (`make run`) or one JSON object a line (LOG_FORMAT=json)."""

from typing import Any

from django.core.exceptions import ImproperlyConfigured

# Record attributes every JSON line keeps under these names.
JSON_FIELDS = "%(levelname)s %(name)s %(message)s"
RENAME = {"levelname": "level", "name": "logger"}


def logging_config(log_format: str, level: str) -> dict[str, Any]:
    """The LOGGING dict: a console handler in `log_format` ("text" or "json") at `level`."""
    if log_format not in ("text", "json"):
        raise ImproperlyConfigured(f"LOG_FORMAT must be text or json, not {log_format!r}.")
    formatters: dict[str, Any] = {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}}
    if log_format == "json":
        try:
            import pythonjsonlogger.json  # noqa: F401
        except ImportError as exc:
            raise ImproperlyConfigured(
                "LOG_FORMAT=json needs python-json-logger (pip install python-json-logger, or "
                "make install).") from exc
        formatters["json"] = {"()": "pythonjsonlogger.json.JsonFormatter",
                              "fmt": JSON_FIELDS, "rename_fields": RENAME,
                              "timestamp": "time"}  # ISO 8601, UTC
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": formatters,
        "filters": {"context": {"()": "core.telemetry.logcontext.ContextFilter"}},
        # The console shows LOG_LEVEL and up; records are made from INFO, because task log
        # capture (tasklogs.capture) keeps a task's INFO lines whatever the console shows.
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": log_format,
                                 "filters": ["context"], "level": level}},
        "root": {"handlers": ["console"], "level": "INFO" if level != "DEBUG" else "DEBUG"},
        "loggers": {"django.db.backends": {"level": "WARNING"},
                    # One access line a request: ours in JSON (it has the ids), else uvicorn's.
                    "core.access": {"level": "INFO" if log_format == "json" else "WARNING"},
                    "uvicorn.access": {"level": "WARNING" if log_format == "json" else "INFO"}},
    }
