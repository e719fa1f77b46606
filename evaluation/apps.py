"""The evaluation app: event-sourced evaluation runs and their reports (the top-level
`metrics` package is the pure numpy engine underneath and imports nothing of Django)."""

from django.apps import AppConfig


class EvaluationConfig(AppConfig):
    """Evaluation runs of trained models on test datasets."""

    name = "evaluation"
    verbose_name = "Evaluations"

    def ready(self) -> None:
        """Register the event types, projections and policies."""
        from evaluation import events, policies, projections  # noqa: F401  (registers them)
