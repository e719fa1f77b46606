from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "API conventions and process plumbing"

    def ready(self) -> None:
        from core import broker, dbconnections
        from core.telemetry import setup

        setup.setup()  # traces and Sentry when configured: before the middleware is loaded
        broker.setup()
        dbconnections.install()
