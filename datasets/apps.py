from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "datasets"
    verbose_name = "Datasets: uploads, validation, versions and built-in samples"

    def ready(self) -> None:
        from datasets import events, projections  # noqa: F401  (registers them)
