from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "API conventions and process plumbing"

    def ready(self) -> None:
        from core import broker, dbconnections

        broker.setup()
        dbconnections.install()
