"""Finding every app's dramatiq actors (modules named `actors`) once the broker is set up."""

from importlib import import_module
from importlib.util import find_spec

from django.apps import apps


def discover() -> list[str]:
    """Import `<app>.actors` for each installed app that has one; returns the module names."""
    found = []
    for config in apps.get_app_configs():
        name = f"{config.name}.actors"
        if find_spec(name) is not None:
            import_module(name)
            found.append(name)
    return found
