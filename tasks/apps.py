from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "tasks"
    verbose_name = "Training tasks"

    def ready(self) -> None:
        from tasks import events, policies, projections  # noqa: F401  (registers them)
