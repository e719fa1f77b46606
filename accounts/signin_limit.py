"""Failed sign-ins limited per account, whatever address they come from.

SIGNIN_FAILURE_LIMIT wrong passwords within SIGNIN_LOCKOUT_S lock the email for SIGNIN_LOCKOUT_S:
every attempt meanwhile is refused with 429 and Retry-After before the password is checked, so
a guess during the lock learns nothing. The per-address throttle stops one address; this stops
a botnet or rotated addresses aiming at one account. Counters live in Django's cache (Redis in
production, shared by every web process), keyed by an HMAC of the normalised email, so the
cache holds no address book. Unknown emails count exactly like known ones: the answers never
tell which accounts exist.
"""

import math
import time

from django.conf import settings
from django.contrib.auth import authenticate
from django.core.cache import cache
from django.http import HttpRequest
from django.utils.crypto import salted_hmac

from accounts.models import User
from core.errors import InvalidCredentials, Throttled


def _key(email: str, part: str) -> str:
    digest = salted_hmac("accounts.signin_limit", email.strip().lower()).hexdigest()
    return f"signin:{part}:{digest}"


def locked_for(email: str) -> int:
    """Seconds until this email may try to sign in again; 0 when it is not locked."""
    until = cache.get(_key(email, "locked"))
    return 0 if until is None else max(1, math.ceil(until - time.time()))


def record_failure(email: str) -> None:
    """Count one failed sign-in; the SIGNIN_FAILURE_LIMIT-th in a window locks the email."""
    window = settings.SIGNIN_LOCKOUT_S
    count_key = _key(email, "failures")
    cache.add(count_key, 0, timeout=window)  # the window starts at the first failure
    try:
        failures = cache.incr(count_key)
    except ValueError:  # expired between add and incr: this failure opens a new window
        cache.add(count_key, 1, timeout=window)
        failures = 1
    if failures >= settings.SIGNIN_FAILURE_LIMIT:
        cache.add(_key(email, "locked"), time.time() + window, timeout=window)
        cache.delete(count_key)


def record_success(email: str) -> None:
    """A correct password clears the failures counted so far."""
    cache.delete(_key(email, "failures"))


def verify(email: str, password: str, request: HttpRequest | None = None) -> User:
    """The active user these credentials name; 401 when wrong, 429 while the email is locked."""
    wait = locked_for(email)
    if wait:
        raise Throttled(f"Too many failed sign-ins for this email; try again in {wait} s.",
                        headers={"Retry-After": str(wait)})
    user = authenticate(request, email=email.strip().lower(), password=password)
    if user is None or not user.is_active:
        record_failure(email)
        raise InvalidCredentials()
    record_success(email)
    return user
