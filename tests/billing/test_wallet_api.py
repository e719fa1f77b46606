"""The wallet, prepaid hours, meters and specs through the public API; billing_adjust."""

import io

import pytest
from django.core.management import CommandError, call_command

from accounts.commands import issue_token
from accounts.models import User
from billing import api as billing
from billing import wallet
from billing.models import LedgerEntry, Meter
from eventlog.models import Event
from tests.conftest import Account, add_member

from .conftest import at, fund


def test_a_new_tenant_has_an_empty_wallet(api, tenant_a):
    body = api.as_(tenant_a).get("/api/v1/billing/wallet/").json()
    assert body == {"currency": "USD", "balance": 0, "frozen": 0, "available": 0,
                    "prepaid_fallback_to_postpaid": False, "prepaid": []}


def test_wallet_shows_frozen_and_available_while_a_resource_runs(api, tenant_a, gpu):
    fund(tenant_a.tenant_id, 10_000)
    billing.start(tenant_a.tenant_id, resource_type="task", resource_id="t1", spec=gpu,
                  mode="postpaid")
    body = api.as_(tenant_a).get("/api/v1/billing/wallet/").json()
    assert (body["balance"], body["frozen"], body["available"]) == (10_000, 7_200, 2_800)
    meters = api.as_(tenant_a).get("/api/v1/billing/meters/?state=running").json()["results"]
    assert [(m["resource_id"], m["frozen"], m["spec"]) for m in meters] == [
        ("t1", 7_200, "test-gpu")]


def test_buying_prepaid_hours_spends_the_balance(api, tenant_a, gpu):
    fund(tenant_a.tenant_id, 10_000)
    response = api.as_(tenant_a).post("/api/v1/billing/prepaid/",
                                      {"spec": str(gpu.id), "hours": 2}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["seconds"] == 7_200 and response.json()["value"] == 7_200
    body = api.as_(tenant_a).get("/api/v1/billing/wallet/").json()
    assert body["balance"] == 2_800 and body["prepaid"][0]["hours"] == 2


def test_prepaid_hours_beyond_the_balance_are_402_and_change_nothing(api, tenant_a, gpu):
    fund(tenant_a.tenant_id, 3_000)
    before = Event.objects.filter(tenant_id=tenant_a.tenant_id).count()
    response = api.as_(tenant_a).post("/api/v1/billing/prepaid/",
                                      {"spec": "test-gpu", "hours": 1}, format="json")
    assert response.status_code == 402
    error = response.json()["error"]
    assert error["code"] == "insufficient_funds" and "short by 6.00 USD" in error["message"]
    assert Event.objects.filter(tenant_id=tenant_a.tenant_id).count() == before


@pytest.mark.parametrize("payload, field", [
    ({"spec": "no-such-spec", "hours": 1}, "spec"),
    ({"spec": "test-gpu", "hours": 0}, "hours"),
    ({"spec": "test-gpu", "hours": "many"}, "hours"),
])
def test_bad_prepaid_input_names_the_field(api, tenant_a, gpu, payload, field):
    fund(tenant_a.tenant_id, 100_000)
    response = api.as_(tenant_a).post("/api/v1/billing/prepaid/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert wallet.view(tenant_a.tenant_id).available == 100_000


def test_the_prepaid_fallback_setting_is_patched(api, tenant_a):
    response = api.as_(tenant_a).patch("/api/v1/billing/wallet/",
                                       {"prepaid_fallback_to_postpaid": True}, format="json")
    assert response.status_code == 200 and response.json()["prepaid_fallback_to_postpaid"]
    assert wallet.view(tenant_a.tenant_id).prepaid_fallback_to_postpaid


@pytest.mark.parametrize("role, allowed", [("finance", True), ("admin", True),
                                           ("developer", False), ("viewer", False)])
def test_only_money_roles_see_the_wallet(api, tenant_a, role, allowed):
    member = add_member(api, tenant_a, role)
    for path in ("/api/v1/billing/wallet/", "/api/v1/billing/meters/"):
        assert api.as_(member).get(path).status_code == (200 if allowed else 403)
    buy = api.as_(member).post("/api/v1/billing/prepaid/", {"spec": "x", "hours": 1},
                               format="json")
    assert buy.status_code == (400 if allowed else 403)


def test_tenants_never_see_each_others_money(api, tenant_a, tenant_b, gpu):
    fund(tenant_a.tenant_id, 10_000)
    billing.start(tenant_a.tenant_id, resource_type="task", resource_id="t1", spec=gpu,
                  mode="postpaid")
    assert api.as_(tenant_b).get("/api/v1/billing/wallet/").json()["balance"] == 0
    assert api.as_(tenant_b).get("/api/v1/billing/meters/").json()["results"] == []
    with pytest.raises(Exception, match="Meter not found"):
        billing.settle(tenant_b.tenant_id, Meter.objects.for_tenant(tenant_a.tenant_id).get().id)


def staff_account(api, tenant: Account) -> Account:
    user = User.objects.create_superuser(email="ops@example.com", password="x" * 12)
    from accounts.models import Membership

    Membership.objects.create(tenant_id=tenant.tenant_id, user=user, role="viewer")
    return Account(issue_token(user, tenant.tenant_id).secret, str(user.id), tenant.tenant_id,
                   user.email, "x" * 12)


def test_staff_change_a_price_and_running_usage_keeps_the_old_one(api, tenant_a, gpu):
    fund(tenant_a.tenant_id, 100_000)
    meter = billing.start(tenant_a.tenant_id, resource_type="task", resource_id="t1", spec=gpu,
                          mode="postpaid", at=at(0))
    path = f"/api/v1/billing/specs/{gpu.id}/"
    assert api.as_(tenant_a).patch(path, {"price_per_hour": 1}, format="json"
                                   ).status_code == 403  # a tenant owner is not staff
    staff = staff_account(api, tenant_a)
    response = api.as_(staff).patch(path, {"price_per_hour": 7_200}, format="json")
    assert response.status_code == 200 and response.json()["price_per_hour"] == 7_200
    stopped = billing.stop(tenant_a.tenant_id, meter.id, at=at(100))
    assert stopped.charged == 100  # 3,600 an hour, the price at its start
    later = billing.start(tenant_a.tenant_id, resource_type="task", resource_id="t2",
                          spec=billing.spec(gpu.id), mode="postpaid", at=at(0))
    assert billing.stop(tenant_a.tenant_id, later.id, at=at(100)).charged == 200


def test_billing_adjust_credits_and_debits_with_an_audit_trail(tenant_a):
    out = io.StringIO()
    call_command("billing_adjust", tenant=tenant_a.tenant_id, amount=5_000,
                 reason="goodwill credit", actor="ops@example.com", stdout=out)
    assert "balance 50.00 USD" in out.getvalue()
    call_command("billing_adjust", tenant=tenant_a.tenant_id, amount=-1_500,
                 reason="manual correction", actor="ops@example.com", stdout=io.StringIO())
    assert wallet.view(tenant_a.tenant_id).balance == 3_500
    entries = LedgerEntry.objects.for_tenant(tenant_a.tenant_id).filter(
        event_type="BalanceAdjusted")
    assert [e.memo for e in entries] == [
        "Adjustment by staff:ops@example.com: goodwill credit",
        "Adjustment by staff:ops@example.com: manual correction"]
    events = Event.objects.filter(tenant_id=tenant_a.tenant_id, type="BalanceAdjusted")
    assert {e.metadata["actor"] for e in events} == {"staff:ops@example.com"}


@pytest.mark.parametrize("options, message", [
    ({"amount": -1}, "short by 0.01 USD"),
    ({"amount": 0}, "changes nothing"),
    ({"amount": 5, "reason": "  "}, "Say why"),
    ({"amount": 5, "tenant": "not-a-tenant"}, "No tenant"),
])
def test_billing_adjust_refuses_bad_entries_and_writes_nothing(tenant_a, options, message):
    values = {"tenant": tenant_a.tenant_id, "reason": "x", **options}
    with pytest.raises(CommandError, match=message):
        call_command("billing_adjust", stdout=io.StringIO(), **values)
    assert not LedgerEntry.objects.for_tenant(tenant_a.tenant_id).exists()
