"""Production: every external part must be configured; nothing falls back silently."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import DATABASES, DRAMATIQ_BROKER_URL, REDIS_URL, SECRET_KEY, env

DEBUG = False
if SECRET_KEY.startswith("dev-insecure"):
    raise ImproperlyConfigured("SECRET_KEY must be set in production.")
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL in production.")
if not REDIS_URL:
    raise ImproperlyConfigured("REDIS_URL must be set in production (channel layer).")
if not DRAMATIQ_BROKER_URL:
    raise ImproperlyConfigured("DRAMATIQ_BROKER_URL must be set in production.")

WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=False)  # collectstatic ran
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
