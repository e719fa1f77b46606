"""How many bytes a request body may have, by route: one rule for the ASGI guard
(core.asgi_limits, before any byte is read) and for the Django middleware (the test client's
and WSGI's path).

    body_limit(path_info, content_type, credentials=True)   # bytes
    TakesUploads                                             # a view mixin: this route's uploads

Every body gets MAX_REQUEST_BYTES, except a multipart body that presents credentials (an
Authorization header or the session cookie) on a route whose view takes uploads: that gets the
view's `upload_limit()` plus MAX_REQUEST_BYTES for the form's other fields and its framing.
Anyone else's multipart body is a small form like any other, so an anonymous caller cannot make
the server spool an upload's worth of bytes before authentication answers 401.
"""

import functools
from collections.abc import Callable, Iterable

from django.conf import settings
from django.urls import Resolver404, resolve

MULTIPART = "multipart/form-data"
# Paths longer than this are resolved on every request instead of cached: the cache must not be
# a place where a client can park memory.
_CACHED_PATH_CHARS = 512


class TakesUploads:
    """A view whose route takes multipart uploads up to `upload_limit()` bytes (the file)."""

    @staticmethod
    def upload_limit() -> int:
        """The file's limit: MAX_UPLOAD_BYTES unless the view says otherwise."""
        return settings.MAX_UPLOAD_BYTES


def body_limit(path_info: str, content_type: str, *, credentials: bool = True) -> int:
    """The most bytes a body for `path_info` with this content type may have."""
    if content_type != MULTIPART or not credentials:
        return settings.MAX_REQUEST_BYTES
    upload_limit = upload_limit_of(path_info)
    if upload_limit is None:
        return settings.MAX_REQUEST_BYTES
    return upload_limit() + settings.MAX_REQUEST_BYTES


def upload_limit_of(path_info: str) -> Callable[[], int] | None:
    """The route's `upload_limit` when its view takes uploads, else None."""
    if len(path_info) > _CACHED_PATH_CHARS:
        return _routed.__wrapped__(settings.ROOT_URLCONF, path_info)
    return _routed(settings.ROOT_URLCONF, path_info)


# Keyed by the URLconf too, so that override_settings(ROOT_URLCONF=...) is never answered stale;
# the limit itself is read from settings on each call (tests change it).
@functools.lru_cache(maxsize=1024)
def _routed(urlconf: str, path_info: str) -> Callable[[], int] | None:
    try:
        match = resolve(path_info, urlconf)
    except Resolver404:
        return None
    view_class = getattr(match.func, "view_class", None) or getattr(match.func, "cls", None)
    if isinstance(view_class, type) and issubclass(view_class, TakesUploads):
        return view_class.upload_limit
    return None


def declared_length(values: Iterable[str]) -> int | None:
    """The Content-Length the headers declare (None when absent); ValueError when it is not one
    non-negative number (repeated headers must agree)."""
    lengths = {value.strip() for value in values}
    if not lengths:
        return None
    if len(lengths) > 1 or not all(value.isascii() and value.isdigit() for value in lengths):
        raise ValueError("Content-Length is not a number.")
    return int(lengths.pop())


def too_large_message(size: int | None, limit: int) -> str:
    """What a 413 says: the size when known, and the limit."""
    if size is None:
        return f"The request body is over {limit} bytes, the most accepted here."
    return f"The request body has {size} bytes; at most {limit} are accepted here."
