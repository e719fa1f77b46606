"""Throttling per API token (each token its own budget) and per address for anonymous calls."""

from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle


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

    def get_cache_key(self, request: Request, view: object) -> str | None:
        if request.user is not None and getattr(request.user, "is_authenticated", False):
            return None
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
