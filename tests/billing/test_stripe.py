"""Top-ups through Stripe Checkout and the Stripe webhook, against a local fake of Stripe.

The fake answers the one Stripe call the platform makes (create a Checkout Session) on
127.0.0.1 and records it; webhooks are signed here exactly as Stripe signs them. Nothing
leaves the machine.
"""

import hashlib
import hmac
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import pytest
from django.db import connection

from billing import wallet
from billing.models import LedgerEntry, StripeEvent, Topup
from tests.conftest import Api, add_member

from .conftest import fund

WEBHOOK_SECRET = "whsec_test_secret"
TOPUPS = "/api/v1/billing/topups/"
WEBHOOK = "/api/v1/billing/stripe/webhook/"


# --- a fake Stripe -------------------------------------------------------------------------------


def unflatten(pairs: list[tuple[str, str]]) -> dict:
    """Stripe's form encoding (`a[b][0][c]=v`) back into nested dicts (lists keep their index)."""
    out: dict = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


class FakeStripe:
    """Records each request; answers Checkout Sessions, replaying per Idempotency-Key as Stripe."""

    def __init__(self):
        self.requests: list[dict] = []
        self.by_key: dict[str, dict] = {}
        self.fail_with: int | None = None
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                form = self.rfile.read(length).decode()
                status, body = fake.answer(self.path, dict(self.headers.items()), form)
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                if status >= 400:
                    self.send_header("Stripe-Should-Retry", "false")
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, path: str, headers: dict, form: str) -> tuple[int, dict]:
        params = unflatten(parse_qsl(form))
        key = headers.get("Idempotency-Key")
        with self.lock:
            self.requests.append({"path": path, "headers": headers, "params": params})
            if self.fail_with:
                return self.fail_with, {"error": {"type": "api_error",
                                                  "message": "Stripe is having a bad day."}}
            if path != "/v1/checkout/sessions":
                return 404, {"error": {"type": "invalid_request_error",
                                       "message": f"Unrecognized request URL (POST: {path})"}}
            if key in self.by_key:
                return 200, self.by_key[key]
            item = params["line_items"]["0"]
            session_id = f"cs_test_{uuid.uuid4().hex}"
            session = {
                "id": session_id, "object": "checkout.session", "mode": params["mode"],
                "url": f"https://checkout.stripe.com/c/pay/{session_id}",
                "amount_total": int(item["price_data"]["unit_amount"]) * int(item["quantity"]),
                "currency": item["price_data"]["currency"], "payment_status": "unpaid",
                "status": "open", "payment_intent": None,
                "client_reference_id": params.get("client_reference_id"),
                "metadata": params.get("metadata", {}), "success_url": params["success_url"],
                "cancel_url": params["cancel_url"], "livemode": False,
            }
            if key:
                self.by_key[key] = session
            return 200, session

    def sessions(self) -> list[dict]:
        return [r for r in self.requests if r["path"] == "/v1/checkout/sessions"]

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.by_key.clear()
            self.fail_with = None


@pytest.fixture(scope="module")
def stripe_server():
    fake = FakeStripe()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture(autouse=True)
def fake_stripe(stripe_server, settings, monkeypatch):
    """Stripe is the local fake for every test here; a proxy in the environment is bypassed."""
    stripe_server.reset()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    settings.STRIPE_SECRET_KEY = "sk_test_fake"
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_API_BASE = stripe_server.url
    settings.BILLING_MIN_TOPUP = 500
    settings.BILLING_MAX_TOPUP = 1_000_000
    return stripe_server


# --- helpers -------------------------------------------------------------------------------------


def sign(payload: str, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """The Stripe-Signature header as Stripe computes it."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def stripe_event(event_type: str, obj: dict, event_id: str | None = None) -> str:
    return json.dumps({
        "id": event_id or f"evt_{uuid.uuid4().hex}", "object": "event",
        "api_version": "2024-06-20", "created": int(time.time()), "livemode": False,
        "pending_webhooks": 1, "type": event_type, "data": {"object": obj},
    })


def deliver(client: Api, payload: str, signature: str | None = None):
    """POST a webhook as Stripe does: raw JSON body and a Stripe-Signature header."""
    extra = {"HTTP_STRIPE_SIGNATURE": sign(payload) if signature is None else signature}
    return client.generic("POST", WEBHOOK, payload, content_type="application/json", **extra)


def session_of(topup: dict, *, payment_status: str = "paid", amount: int | None = None,
               payment_intent: str = "pi_test_1") -> dict:
    """The Checkout Session object of `topup` as a webhook carries it."""
    return {
        "id": topup["session_id"], "object": "checkout.session", "mode": "payment",
        "amount_total": topup["amount"] if amount is None else amount,
        "currency": topup["currency"].lower(), "payment_status": payment_status,
        "status": "complete", "payment_intent": payment_intent,
        "client_reference_id": topup["id"],
        "metadata": {"tenant_id": topup["tenant_id"], "topup_id": topup["id"]},
    }


def charge_of(topup: dict, amount_refunded: int, payment_intent: str = "pi_test_1") -> dict:
    return {"id": "ch_test_1", "object": "charge", "amount": topup["amount"],
            "amount_refunded": amount_refunded, "currency": topup["currency"].lower(),
            "payment_intent": payment_intent, "refunded": amount_refunded == topup["amount"],
            "metadata": {}}


def top_up(api: Api, who, amount: int = 2_000, key: str | None = None) -> dict:
    extra = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    response = api.as_(who).post(TOPUPS, {"amount": amount}, format="json", **extra)
    assert response.status_code == 201, response.content
    return {**response.json(), "tenant_id": who.tenant_id}


def balance(api: Api, who) -> dict:
    response = api.as_(who).get("/api/v1/billing/wallet/")
    assert response.status_code == 200, response.content
    return response.json()


def topup_state(topup: dict) -> str:
    return Topup.objects.for_tenant(topup["tenant_id"]).get(id=topup["id"]).state


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.content
    return response.json()["error"]


# --- creating top-ups ----------------------------------------------------------------------------


def test_top_up_creates_a_checkout_session_for_the_amount(api, tenant_a, fake_stripe):
    topup = top_up(api, tenant_a, 2_500)

    assert topup["amount"] == 2_500 and topup["currency"] == "USD"
    assert topup["state"] == "pending" and topup["session_id"].startswith("cs_test_")
    assert topup["checkout_url"] == f"https://checkout.stripe.com/c/pay/{topup['session_id']}"
    [call] = fake_stripe.sessions()
    assert call["headers"]["Idempotency-Key"] == f"topup-{topup['id']}"
    assert call["headers"]["Authorization"] == "Bearer sk_test_fake"
    params = call["params"]
    assert params["mode"] == "payment"
    assert params["line_items"]["0"] == {"quantity": "1", "price_data": {
        "currency": "usd", "unit_amount": "2500", "product_data": {"name": "Compute credit"}}}
    metadata = {"tenant_id": tenant_a.tenant_id, "topup_id": topup["id"]}
    assert params["metadata"] == metadata
    assert params["payment_intent_data"] == {"metadata": metadata}
    assert params["client_reference_id"] == topup["id"]
    assert params["success_url"] and params["cancel_url"]
    assert balance(api, tenant_a)["balance"] == 0  # nothing until Stripe says it is paid


def test_a_retry_with_the_same_idempotency_key_returns_the_same_top_up(api, tenant_a,
                                                                       fake_stripe):
    first = top_up(api, tenant_a, 2_000, key="order-42")
    again = top_up(api, tenant_a, 2_000, key="order-42")

    assert again == first
    assert len(fake_stripe.sessions()) == 1
    assert Topup.objects.for_tenant(tenant_a.tenant_id).count() == 1
    other = top_up(api, tenant_a, 2_000, key="order-43")
    assert other["id"] != first["id"] and len(fake_stripe.sessions()) == 2


def test_the_same_key_with_another_amount_is_a_conflict(api, tenant_a, fake_stripe):
    top_up(api, tenant_a, 2_000, key="order-42")

    response = api.as_(tenant_a).post(TOPUPS, {"amount": 3_000}, format="json",
                                      HTTP_IDEMPOTENCY_KEY="order-42")

    assert error_of(response, 409)["code"] == "idempotency_key_reused"
    assert len(fake_stripe.sessions()) == 1


def test_idempotency_keys_are_per_tenant(api, tenant_a, tenant_b, fake_stripe):
    mine = top_up(api, tenant_a, 2_000, key="order-1")
    theirs = top_up(api, tenant_b, 2_000, key="order-1")

    assert mine["id"] != theirs["id"] and len(fake_stripe.sessions()) == 2


@pytest.mark.parametrize("amount", [499, 1_000_001, 0, -500, 1500.5, "1500", True, None])
def test_an_amount_out_of_bounds_or_not_an_integer_is_400_and_writes_nothing(
        api, tenant_a, fake_stripe, amount):
    events = LedgerEntry.objects.for_tenant(tenant_a.tenant_id).count()

    response = api.as_(tenant_a).post(TOPUPS, {"amount": amount}, format="json")

    error = error_of(response, 400)
    assert error["code"] == "invalid" and error["fields"]["amount"]
    assert fake_stripe.sessions() == []
    assert not Topup.objects.for_tenant(tenant_a.tenant_id).exists()
    assert LedgerEntry.objects.for_tenant(tenant_a.tenant_id).count() == events


@pytest.mark.parametrize("role", ["viewer", "developer"])
def test_roles_without_money_rights_cannot_top_up_or_list(api, tenant_a, fake_stripe, role):
    member = add_member(api, tenant_a, role)

    create = api.as_(member).post(TOPUPS, {"amount": 2_000}, format="json")
    listing = api.as_(member).get(TOPUPS)

    assert error_of(create, 403)["code"] == "permission_denied"
    assert error_of(listing, 403)["code"] == "permission_denied"
    assert fake_stripe.sessions() == []


def test_finance_can_top_up(api, tenant_a):
    finance = add_member(api, tenant_a, "finance")

    assert top_up(api, finance, 2_000)["state"] == "pending"


def test_stripe_failing_is_502_and_records_nothing(api, tenant_a, fake_stripe):
    fake_stripe.fail_with = 500

    response = api.as_(tenant_a).post(TOPUPS, {"amount": 2_000}, format="json")

    assert error_of(response, 502)["code"] == "payment_provider_unavailable"
    assert not Topup.objects.for_tenant(tenant_a.tenant_id).exists()


def test_without_a_stripe_key_top_ups_are_503(api, tenant_a, fake_stripe, settings):
    settings.STRIPE_SECRET_KEY = ""

    response = api.as_(tenant_a).post(TOPUPS, {"amount": 2_000}, format="json")

    assert error_of(response, 503)["code"] == "payments_not_configured"
    assert fake_stripe.requests == []


def test_a_tenant_lists_only_its_own_top_ups(api, tenant_a, tenant_b):
    ids = [top_up(api, tenant_a, 1_000 + n)["id"] for n in range(3)]

    mine = api.as_(tenant_a).get(TOPUPS).json()
    theirs = api.as_(tenant_b).get(TOPUPS).json()

    assert [t["id"] for t in mine["results"]] == ids[::-1] and mine["next"] is None
    assert theirs == {"results": [], "next": None}


# --- the webhook ---------------------------------------------------------------------------------


def test_a_paid_session_deposits_once_and_the_wallet_shows_it(api, tenant_a):
    topup = top_up(api, tenant_a, 2_500)

    response = deliver(api, stripe_event("checkout.session.completed", session_of(topup)))

    assert response.status_code == 200, response.content
    assert response.json() == {"received": True, "result": "deposited"}
    assert balance(api, tenant_a) == {**balance(api, tenant_a), "balance": 2_500,
                                      "available": 2_500, "frozen": 0}
    listed = api.as_(tenant_a).get(TOPUPS).json()["results"][0]
    assert listed["state"] == "paid"
    assert Topup.objects.for_tenant(tenant_a.tenant_id).get().payment_intent == "pi_test_1"


def test_a_completed_but_unpaid_session_waits_for_the_async_payment(api, tenant_a):
    topup = top_up(api, tenant_a, 2_500)

    first = deliver(api, stripe_event("checkout.session.completed",
                                      session_of(topup, payment_status="unpaid")))
    assert first.json()["result"] == "awaiting_payment"
    assert balance(api, tenant_a)["balance"] == 0 and topup_state(topup) == "pending"

    later = deliver(api, stripe_event("checkout.session.async_payment_succeeded",
                                      session_of(topup)))

    assert later.json()["result"] == "deposited"
    assert balance(api, tenant_a)["balance"] == 2_500 and topup_state(topup) == "paid"


def test_a_failed_async_payment_marks_the_top_up_failed(api, tenant_a):
    topup = top_up(api, tenant_a, 2_500)
    deliver(api, stripe_event("checkout.session.completed",
                              session_of(topup, payment_status="unpaid")))

    response = deliver(api, stripe_event("checkout.session.async_payment_failed",
                                         session_of(topup, payment_status="unpaid")))

    assert response.json()["result"] == "failed"
    assert topup_state(topup) == "failed" and balance(api, tenant_a)["balance"] == 0


def test_an_expired_session_marks_the_top_up_failed(api, tenant_a):
    topup = top_up(api, tenant_a, 2_500)

    response = deliver(api, stripe_event("checkout.session.expired",
                                         session_of(topup, payment_status="unpaid")))

    assert response.json()["result"] == "failed" and topup_state(topup) == "failed"


def test_the_same_event_delivered_ten_times_is_applied_once(api, tenant_a):
    topup = top_up(api, tenant_a, 2_500)
    payload = stripe_event("checkout.session.completed", session_of(topup))

    results = [deliver(api, payload).json()["result"] for _ in range(10)]

    assert results == ["deposited"] + ["duplicate"] * 9
    assert balance(api, tenant_a)["balance"] == 2_500
    assert LedgerEntry.objects.for_tenant(tenant_a.tenant_id).filter(
        event_type="FundsDeposited").count() == 1


def test_completed_and_async_succeeded_for_one_session_deposit_once(api, tenant_a):
    topup = top_up(api, tenant_a, 2_500)

    first = deliver(api, stripe_event("checkout.session.completed", session_of(topup)))
    second = deliver(api, stripe_event("checkout.session.async_payment_succeeded",
                                       session_of(topup)))

    assert [first.json()["result"], second.json()["result"]] == ["deposited", "already_paid"]
    assert balance(api, tenant_a)["balance"] == 2_500
    assert StripeEvent.objects.count() == 2


def test_a_session_paying_another_amount_deposits_nothing(api, tenant_a):
    topup = top_up(api, tenant_a, 2_500)

    response = deliver(api, stripe_event("checkout.session.completed",
                                         session_of(topup, amount=250_000)))

    assert response.json()["result"] == "amount_mismatch"
    assert balance(api, tenant_a)["balance"] == 0 and topup_state(topup) == "pending"


@pytest.mark.parametrize("signature", [
    "", "t=1,v1=00", "garbage", sign("{}"), sign("x", secret="whsec_other")])
def test_a_bad_signature_is_400_and_changes_nothing(api, tenant_a, signature):
    topup = top_up(api, tenant_a, 2_500)
    payload = stripe_event("checkout.session.completed", session_of(topup))

    response = deliver(api, payload, signature=signature)

    assert error_of(response, 400)["code"] == "invalid_signature"
    assert balance(api, tenant_a)["balance"] == 0 and topup_state(topup) == "pending"
    assert not StripeEvent.objects.exists()


def test_a_payload_signed_by_the_wrong_secret_is_refused(api, tenant_a):
    topup = top_up(api, tenant_a, 2_500)
    payload = stripe_event("checkout.session.completed", session_of(topup))

    response = deliver(api, payload, signature=sign(payload, secret="whsec_other"))

    assert error_of(response, 400)["code"] == "invalid_signature"
    assert balance(api, tenant_a)["balance"] == 0


def test_a_signature_older_than_five_minutes_is_refused(api, tenant_a):
    topup = top_up(api, tenant_a, 2_500)
    payload = stripe_event("checkout.session.completed", session_of(topup))

    stale = deliver(api, payload, signature=sign(payload, timestamp=int(time.time()) - 301))

    assert error_of(stale, 400)["code"] == "invalid_signature"
    assert balance(api, tenant_a)["balance"] == 0 and not StripeEvent.objects.exists()
    assert deliver(api, payload).json()["result"] == "deposited"  # a fresh delivery still works


@pytest.mark.parametrize("payload", ["not json", "[]", '{"id": "evt_1"}'])
def test_a_signed_payload_that_is_not_an_event_is_400(api, db, payload):
    response = deliver(api, payload)

    assert error_of(response, 400)["code"] == "invalid_signature"
    assert not StripeEvent.objects.exists()


def test_unknown_event_types_are_acknowledged_and_recorded(api, db):
    payload = stripe_event("customer.created", {"id": "cus_1", "object": "customer"},
                           event_id="evt_unknown")

    response = deliver(api, payload)

    assert response.json() == {"received": True, "result": "ignored"}
    assert StripeEvent.objects.filter(id="evt_unknown", type="customer.created").exists()


def test_an_event_for_an_unknown_session_is_acknowledged_and_changes_nothing(api, tenant_a):
    topup = top_up(api, tenant_a, 2_500)
    stranger = {**session_of(topup), "id": "cs_test_not_ours",
                "metadata": {"tenant_id": str(uuid.uuid4()), "topup_id": str(uuid.uuid4())}}

    response = deliver(api, stripe_event("checkout.session.completed", stranger))

    assert response.json()["result"] == "unknown_topup"
    assert balance(api, tenant_a)["balance"] == 0 and topup_state(topup) == "pending"


def test_metadata_naming_another_tenant_changes_nothing(api, tenant_a, tenant_b):
    topup = top_up(api, tenant_a, 2_500)
    forged = {**session_of(topup), "metadata": {"tenant_id": tenant_b.tenant_id,
                                                "topup_id": topup["id"]}}

    response = deliver(api, stripe_event("checkout.session.completed", forged))

    assert response.json()["result"] == "unknown_topup"
    assert balance(api, tenant_a)["balance"] == 0 and balance(api, tenant_b)["balance"] == 0


def test_without_a_webhook_secret_webhooks_are_503(api, db, settings):
    settings.STRIPE_WEBHOOK_SECRET = ""
    payload = stripe_event("customer.created", {"id": "cus_1"})

    response = deliver(api, payload, signature=sign(payload, secret="whsec_any"))

    assert error_of(response, 503)["code"] == "payments_not_configured"


# --- refunds -------------------------------------------------------------------------------------


def paid_topup(api: Api, who, amount: int = 2_500) -> dict:
    topup = top_up(api, who, amount)
    response = deliver(api, stripe_event("checkout.session.completed", session_of(topup)))
    assert response.json()["result"] == "deposited"
    return topup


def test_refunds_debit_exactly_the_refunded_difference(api, tenant_a):
    topup = paid_topup(api, tenant_a, 2_500)

    partial = deliver(api, stripe_event("charge.refunded", charge_of(topup, 1_000)))
    assert partial.json()["result"] == "refunded"
    assert balance(api, tenant_a)["balance"] == 1_500

    full = deliver(api, stripe_event("charge.refunded", charge_of(topup, 2_500)))
    assert full.json()["result"] == "refunded"
    assert balance(api, tenant_a)["balance"] == 0
    assert Topup.objects.for_tenant(tenant_a.tenant_id).get().refunded == 2_500

    # The partial refund's event again under a new id (Stripe resends state, not deltas).
    again = deliver(api, stripe_event("charge.refunded", charge_of(topup, 1_000)))
    assert again.json()["result"] == "already_refunded"
    assert balance(api, tenant_a)["balance"] == 0


def test_a_refund_may_take_the_balance_below_zero_once_the_money_was_spent(api, tenant_a):
    topup = paid_topup(api, tenant_a, 2_500)
    wallet.adjust(tenant_a.tenant_id, -2_000, "spent", "staff:test")

    deliver(api, stripe_event("charge.refunded", charge_of(topup, 2_500)))

    assert balance(api, tenant_a)["balance"] == -2_000


def test_a_refund_found_by_charge_metadata(api, tenant_a):
    topup = paid_topup(api, tenant_a, 2_500)
    charge = {**charge_of(topup, 500, payment_intent="pi_test_1"),
              "metadata": {"tenant_id": tenant_a.tenant_id, "topup_id": topup["id"]}}

    assert deliver(api, stripe_event("charge.refunded", charge)).json()["result"] == "refunded"
    assert balance(api, tenant_a)["balance"] == 2_000


def test_a_refund_before_the_deposit_is_refused_so_stripe_delivers_it_again(api, tenant_a):
    topup = top_up(api, tenant_a, 2_500)
    charge = {**charge_of(topup, 2_500),
              "metadata": {"tenant_id": tenant_a.tenant_id, "topup_id": topup["id"]}}
    refund = stripe_event("charge.refunded", charge)

    early = deliver(api, refund)

    assert error_of(early, 409)["code"] == "topup_not_paid_yet"
    assert not StripeEvent.objects.exists()
    deliver(api, stripe_event("checkout.session.completed", session_of(topup)))
    assert deliver(api, refund).json()["result"] == "refunded"
    assert balance(api, tenant_a)["balance"] == 0


def test_a_refund_of_a_charge_that_is_no_top_up_is_ignored(api, tenant_a):
    fund(tenant_a.tenant_id, 1_000)
    charge = {"id": "ch_other", "object": "charge", "amount": 900, "amount_refunded": 900,
              "currency": "usd", "payment_intent": "pi_other", "metadata": {}}

    response = deliver(api, stripe_event("charge.refunded", charge))

    assert response.json()["result"] == "unknown_topup"
    assert balance(api, tenant_a)["balance"] == 1_000


# --- concurrency ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_five_concurrent_deliveries_of_one_event_apply_it_once(api, tenant_a):
    topup = top_up(api, tenant_a, 2_500)
    payload = stripe_event("checkout.session.completed", session_of(topup))
    signature = sign(payload)
    start = threading.Barrier(5)
    results: list = []

    def deliver_once():
        try:
            start.wait()
            response = deliver(Api(), payload, signature=signature)
            results.append((response.status_code, response.json().get("result")))
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver_once) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [(200, "deposited")] + [(200, "duplicate")] * 4
    assert balance(api, tenant_a)["balance"] == 2_500
    assert LedgerEntry.objects.for_tenant(tenant_a.tenant_id).filter(
        event_type="FundsDeposited").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_completed_and_async_succeeded_deposit_once(api, tenant_a):
    topup = top_up(api, tenant_a, 2_500)
    payloads = [stripe_event(kind, session_of(topup)) for kind in (
        "checkout.session.completed", "checkout.session.async_payment_succeeded") * 2]
    start = threading.Barrier(len(payloads))
    results: list = []

    def deliver_once(payload):
        try:
            start.wait()
            results.append(deliver(Api(), payload).json().get("result"))
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver_once, args=(p,)) for p in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == ["already_paid"] * 3 + ["deposited"]
    assert balance(api, tenant_a)["balance"] == 2_500


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_with_one_idempotency_key_make_one_top_up(api, tenant_a,
                                                                     fake_stripe):
    start = threading.Barrier(5)
    results: list = []

    def post_once():
        try:
            start.wait()
            response = Api().as_(tenant_a).post(TOPUPS, {"amount": 2_000}, format="json",
                                                HTTP_IDEMPOTENCY_KEY="order-7")
            results.append((response.status_code, response.json().get("id")))
        finally:
            connection.close()

    threads = [threading.Thread(target=post_once) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    [topup] = Topup.objects.for_tenant(tenant_a.tenant_id)
    assert results == [(201, str(topup.id))] * 5
    # Every call that reached Stripe carried the same key, so Stripe made one session.
    assert {c["headers"]["Idempotency-Key"] for c in fake_stripe.sessions()} == {
        f"topup-{topup.id}"}
    assert len(fake_stripe.by_key) == 1
