"""Django project package: settings, urls, asgi and the dramatiq broker."""
