from django.apps import AppConfig


class ModelRegistryConfig(AppConfig):
    name = "modelregistry"
    verbose_name = "Model registry: trained models, their artifacts and lineage"

    def ready(self) -> None:
        from modelregistry import events, projections  # noqa: F401  (registers them)
