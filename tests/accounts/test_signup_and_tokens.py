from accounts.models import ApiToken
from tests.conftest import sign_up


def test_signup_returns_token_user_and_tenant(api, db):
    response = api.post("/api/v1/auth/signup/", {"email": "Ann@Example.com", "password":
                        "a long enough password", "tenant": "Acme"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"token", "user", "tenant"}
    assert body["user"]["email"] == "ann@example.com"
    assert body["tenant"]["name"] == "Acme"
    me = api.as_(body["token"]).get("/api/v1/me/")
    assert me.status_code == 200
    assert me.json() == {"user": body["user"], "tenant": body["tenant"], "role": "owner"}


def test_registered_email_is_refused_on_its_field(api, tenant_a):
    response = api.post("/api/v1/auth/signup/", {"email": tenant_a.email.upper(),
                        "password": "another long password", "tenant": "Again"}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert "email" in error["fields"]


def test_token_for_good_credentials_and_401_for_bad(api, tenant_a):
    good = api.post("/api/v1/auth/token/", {"email": tenant_a.email, "password":
                    tenant_a.password}, format="json")
    assert good.status_code == 200
    assert api.as_(good.json()["token"]).get("/api/v1/me/").status_code == 200
    bad = api.post("/api/v1/auth/token/", {"email": tenant_a.email, "password": "wrong"},
                   format="json")
    assert bad.status_code == 401
    assert bad.json()["error"]["code"] == "invalid_credentials"


def test_tokens_are_stored_hashed_and_listed_without_secret(api, tenant_a):
    stored = list(ApiToken.objects.unscoped().values_list("digest", "prefix"))
    assert all(tenant_a.token not in digest for digest, _ in stored)
    listed = api.as_(tenant_a).get("/api/v1/tokens/").json()["results"]
    assert listed and all("token" not in item for item in listed)
    assert tenant_a.token not in str(listed)


def test_revoked_token_no_longer_authenticates(api, tenant_a):
    created = api.as_(tenant_a).post("/api/v1/tokens/", {"name": "ci"}, format="json").json()
    assert api.as_(created["token"]).get("/api/v1/me/").status_code == 200
    assert api.as_(tenant_a).delete(f"/api/v1/tokens/{created['id']}/").status_code == 204
    response = api.as_(created["token"]).get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_token_records_last_use(api, tenant_a):
    api.as_(tenant_a).get("/api/v1/me/")
    assert ApiToken.objects.for_tenant(tenant_a.tenant_id).filter(
        last_used_at__isnull=False).exists()


def test_second_tenant_token_by_tenant_id(api, tenant_a, tenant_b):
    other = sign_up(api, tenant="Other")
    response = api.post("/api/v1/auth/token/", {"email": other.email, "password": other.password,
                        "tenant": tenant_a.tenant_id}, format="json")
    assert response.status_code == 401
