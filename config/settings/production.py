"""Production: every external part must be configured; nothing falls back silently, and nothing
unsafe starts (a weak or template secret, any-host, links from the request's Host)."""

import re
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from core.telemetry.logs import logging_config

from .base import *  # noqa: F403
from .base import DATABASES, DRAMATIQ_BROKER_URL, LOG_LEVEL, REDIS_URL, SECRET_KEY, env

DEBUG = False

# platform/env.template ships placeholders, never working passwords (platform/make_env.py fills
# them in); a deployment that kept one refuses to start rather than run with a known secret.
_placeholder = re.compile(r"change[-_]?me", re.IGNORECASE)
_secrets = ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "DRAMATIQ_BROKER_URL",
            "AWS_SECRET_ACCESS_KEY", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET",
            "POSTGRES_PASSWORD", "RABBITMQ_DEFAULT_PASS", "S3_ADMIN_SECRET_KEY")
for _name in _secrets:
    if _placeholder.search(env.str(_name, default="")):
        raise ImproperlyConfigured(
            f"{_name} still holds the env template's placeholder: generate the secrets "
            "(python3 platform/make_env.py > platform/.env) or set your own.")
if SECRET_KEY.startswith("dev-insecure") or len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
    raise ImproperlyConfigured(
        "SECRET_KEY must be at least 50 random characters in production, e.g. "
        "python -c 'import secrets; print(secrets.token_urlsafe(50))'.")
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL in production.")
if not REDIS_URL:
    raise ImproperlyConfigured("REDIS_URL must be set in production (channel layer).")
if not DRAMATIQ_BROKER_URL:
    raise ImproperlyConfigured("DRAMATIQ_BROKER_URL must be set in production.")

ALLOWED_HOSTS = [host for host in env.list("ALLOWED_HOSTS", default=[]) if host]
if not ALLOWED_HOSTS or "*" in ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "ALLOWED_HOSTS must name the hosts clients use (comma-separated, no *) in production; "
        "keep localhost for the container's health check.")
# Checked on the variable itself: base.py's default (localhost) is for `make run` only.
_public = urlsplit(env.str("PUBLIC_URL", default="").rstrip("/"))
if _public.scheme not in ("http", "https") or not _public.netloc or _public.path or (
        _public.query or _public.fragment):
    raise ImproperlyConfigured(
        "PUBLIC_URL must be set in production to where clients reach the platform, scheme and "
        "host only (e.g. https://automl.example.com): links in API answers are built on it.")

# The console posts forms from PUBLIC_URL; that origin is trusted unless the list is given.
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[]) or [
    f"{_public.scheme}://{_public.netloc}"]

WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=False)  # collectstatic ran
# HTTPS: secure defaults. Whether a request came over HTTPS is the scheme uvicorn saw, or the
# X-Forwarded-Proto of a TRUSTED_PROXIES peer (`manage.py serve`): Django's own
# SECURE_PROXY_SSL_HEADER would believe that header from any client, so it is not set. A trial
# over plain HTTP turns SECURE_SSL_REDIRECT and SESSION_COOKIE_SECURE off (check --deploy warns).
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
# One JSON object a log line, with the request, tenant and job ids, unless told otherwise.
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
LOGGING = logging_config(LOG_FORMAT, LOG_LEVEL)
