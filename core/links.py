"""Absolute links in API answers, built on PUBLIC_URL, never on the request's Host header.

A Host header is whatever the client sent (a proxy may pass it through unchecked): a link built
on it can point a victim's client, or a cached answer, at an attacker's host.
"""

from urllib.parse import urlsplit, urlunsplit

from django.conf import settings


def public_url(path: str) -> str:
    """An absolute link to `path` (absolute path, with its query) on PUBLIC_URL."""
    return f"{settings.PUBLIC_URL.rstrip('/')}/{path.lstrip('/')}"


def on_public_url(url: str | None) -> str | None:
    """The same link with PUBLIC_URL's scheme and host in place of the request's."""
    if url is None:
        return None
    parts = urlsplit(url)
    return public_url(urlunsplit(("", "", parts.path, parts.query, parts.fragment)))
