"""The serving app: trained models published as online prediction services."""

from django.apps import AppConfig


class ServingConfig(AppConfig):
    """Prediction services: publish, stop, update, predict, monitor."""

    name = "serving"
    verbose_name = "Prediction services"

    def ready(self) -> None:
        """Register the event types, projections and policies."""
        from serving import events, policies, projections  # noqa: F401  (registers them)
