"""Throttling per API token (each token its own budget) and per address for anonymous calls."""

import functools

from django.conf import settings
from django.http import HttpRequest
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from core.client_address import Network, client_address, parse_networks


@functools.lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    return parse_networks(proxies)


def request_address(request: HttpRequest | Request) -> str:
    """The caller's address: X-Forwarded-For counts only when the peer is in TRUSTED_PROXIES."""
    meta = request.META
    return client_address(meta.get("REMOTE_ADDR", ""), meta.get("HTTP_X_FORWARDED_FOR", ""),
                          _networks(tuple(settings.TRUSTED_PROXIES)))


class TokenRateThrottle(SimpleRateThrottle):
    """One budget per token; session users are keyed by user and tenant."""

    scope = "token"

    def get_cache_key(self, request: Request, view: object) -> str | None:
        token = getattr(request, "auth", None)
        token_id = getattr(token, "token_id", None)
        if token_id:
            return self.cache_format % {"scope": self.scope, "ident": f"t{token_id}"}
        if request.user is not None and getattr(request.user, "is_authenticated", False):
            return self.cache_format % {"scope": self.scope, "ident": f"u{request.user.pk}"}
        return None


class AnonymousRateThrottle(SimpleRateThrottle):
    """Unauthenticated calls (signup, token, health) by client address."""

    scope = "anon"

    def get_ident(self, request: Request) -> str:
        # DRF's own get_ident believes X-Forwarded-For from anyone unless NUM_PROXIES is set.
        return request_address(request)

    def get_cache_key(self, request: Request, view: object) -> str | None:
        if request.user is not None and getattr(request.user, "is_authenticated", False):
            return None
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
