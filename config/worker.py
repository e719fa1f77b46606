"""Entry point for dramatiq worker processes: `dramatiq config.worker --queues gpu`."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
django.setup()

from core.actors import discover  # noqa: E402

discover()
