"""Secrets for API tokens and websocket tickets: random, shown once, stored as a digest."""

import hashlib
import secrets

TOKEN_PREFIX = "aml_"  # noqa: S105 - a public prefix, not a secret
TICKET_PREFIX = "wst_"


def new_secret(prefix: str) -> str:
    """A fresh random secret with a recognisable prefix (for secret scanners)."""
    return prefix + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """The stored form of a secret. Secrets have 256 random bits, so a plain SHA-256 suffices."""
    return hashlib.sha256(secret.encode()).hexdigest()
