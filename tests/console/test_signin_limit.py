"""The console's sign-in shares the API's per-account limit on failed sign-ins."""

from django.test import Client


def post(email: str, password: str, address: str, forwarded: str = ""):
    client = Client(REMOTE_ADDR=address, HTTP_X_FORWARDED_FOR=forwarded)
    return client, client.post("/console/signin/", {"email": email, "password": password})


def test_guesses_from_rotating_addresses_lock_the_account_in_the_console(api, tenant_a,
                                                                         limit_of_three):
    for n in range(3):
        _, wrong = post(tenant_a.email, "guess", f"203.0.113.{n}", forwarded=f"192.0.2.{n}")
        assert wrong.status_code == 401
    client, locked = post(tenant_a.email, tenant_a.password, "198.51.100.9")
    assert locked.status_code == 429
    wait = int(locked["Retry-After"])
    assert 0 < wait <= 600
    assert f"try again in {wait} s" in locked.content.decode()
    assert "_auth_user_id" not in client.session


def test_console_and_api_failures_count_together(api, tenant_a, limit_of_three):
    for n in range(2):
        post(tenant_a.email, "guess", f"203.0.113.{n}")
    api.post("/api/v1/auth/token/", {"email": tenant_a.email, "password": "guess"},
             format="json", REMOTE_ADDR="203.0.113.9")
    _, locked = post(tenant_a.email, tenant_a.password, "198.51.100.9")
    assert locked.status_code == 429
    via_api = api.post("/api/v1/auth/token/", {"email": tenant_a.email,
                       "password": tenant_a.password}, format="json")
    assert via_api.status_code == 429
