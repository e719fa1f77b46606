from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Tenants, users, roles, tokens and projects"

    def ready(self) -> None:
        from accounts import live_access, projections, schema  # noqa: F401  (registers them)
