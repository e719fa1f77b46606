"""Failed sign-ins are limited per account, whatever address they come from.

After SIGNIN_FAILURE_LIMIT wrong passwords within SIGNIN_LOCKOUT_S the email is refused with
429 `throttled` and Retry-After, even with the right password; a success before that resets the
count. Unknown emails are counted the same way, so the answers say nothing about which exist.
"""

import uuid

from django.core.cache import cache

TOKEN = "/api/v1/auth/token/"


def sign_in(api, email: str, password: str, address: str):
    return api.post(TOKEN, {"email": email, "password": password}, format="json",
                    REMOTE_ADDR=address)


def test_wrong_passwords_from_rotating_addresses_lock_the_account(api, tenant_a, limit_of_three):
    for n in range(3):
        assert sign_in(api, tenant_a.email, f"guess {n}", f"203.0.113.{n}").status_code == 401
    locked = sign_in(api, tenant_a.email, tenant_a.password, "198.51.100.77")
    assert locked.status_code == 429
    error = locked.json()["error"]
    assert error["code"] == "throttled" and error["fields"] == {}
    assert 0 < int(locked["Retry-After"]) <= 600
    assert f"{int(locked['Retry-After'])} s" in error["message"]


def test_the_lock_is_per_account_and_keyed_on_the_normalised_email(api, tenant_a, tenant_b,
                                                                   limit_of_three):
    for n in range(3):
        sign_in(api, f"  {tenant_a.email.upper()} ", "guess", f"203.0.113.{n}")
    assert sign_in(api, tenant_a.email, tenant_a.password, "203.0.113.50").status_code == 429
    assert sign_in(api, tenant_b.email, tenant_b.password, "203.0.113.50").status_code == 200


def test_a_success_resets_the_count(api, tenant_a, limit_of_three):
    for _ in range(2):
        assert sign_in(api, tenant_a.email, "guess", "203.0.113.1").status_code == 401
    assert sign_in(api, tenant_a.email, tenant_a.password, "203.0.113.1").status_code == 200
    for _ in range(2):
        assert sign_in(api, tenant_a.email, "guess", "203.0.113.1").status_code == 401
    assert sign_in(api, tenant_a.email, tenant_a.password, "203.0.113.1").status_code == 200


def test_unknown_emails_are_answered_exactly_like_known_ones(api, tenant_a, limit_of_three):
    known = [sign_in(api, tenant_a.email, "guess", "203.0.113.1") for _ in range(4)]
    unknown = [sign_in(api, "nobody@example.com", "guess", "203.0.113.1") for _ in range(4)]
    assert [r.status_code for r in known] == [r.status_code for r in unknown] == [401] * 3 + [429]
    assert [r.json() for r in known] == [r.json() for r in unknown]


def test_the_cache_key_does_not_hold_the_email(api, tenant_a, limit_of_three):
    sign_in(api, tenant_a.email, "guess", "203.0.113.1")
    keys = list(getattr(cache, "_cache", {}))  # LocMemCache in tests
    assert keys and not any(tenant_a.email.split("@")[0] in str(key) for key in keys)


def test_the_lock_holds_on_redis_as_in_production(api, tenant_a, settings, redis_url):
    """Production's cache is Redis, shared by every web process: the counters work there too."""
    settings.SIGNIN_FAILURE_LIMIT = 2
    settings.CACHES = {"default": {  # a prefix of its own: Redis is shared, never flushed here
        "BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url,
        "KEY_PREFIX": f"test-signin-{uuid.uuid4().hex}"}}
    for n in range(2):
        assert sign_in(api, tenant_a.email, "guess", f"203.0.113.{n}").status_code == 401
    locked = sign_in(api, tenant_a.email, tenant_a.password, "198.51.100.1")
    assert locked.status_code == 429 and int(locked["Retry-After"]) > 0
