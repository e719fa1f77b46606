"""The console in a real browser against a real server (`manage.py serve`: ASGI with websockets
and the in-process worker, as `make run` has it): sign in, upload, train with live progress,
read the automatic evaluation at other operating points, watch the wallet move, lose and regain
the websocket, and fit a phone. Screenshots go to var/test-artifacts/console/.
"""

import re
import time

import pytest
import requests

from tests.billing.test_stripe import (
    WEBHOOK,
    WEBHOOK_SECRET,
    FakeStripe,
    session_of,
    sign,
    stripe_event,
)
from tests.e2e.servers import (
    MANAGE,
    Client,
    Processes,
    clean_env,
    free_port,
    manage,
    wait_healthy,
)
from tests.tasks.conftest import digits_zip

FUNDS = 100_000  # minor units: 1,000.00 USD
PASSWORD = "a console password"
UNLABELLED = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
  .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
  .map((e) => e.id || e.name || e.outerHTML)"""


@pytest.fixture
def stripe():
    fake = FakeStripe()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture
def console_server(tmp_path, stripe, monkeypatch):
    """`make run`'s shape on a fresh data dir, with a funded tenant to sign in as, and a fake
    Stripe answering Checkout Sessions."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    env = clean_env(DATA_DIR=str(tmp_path / "data"), DJANGO_SETTINGS_MODULE="config.settings.local",
                    DEBUG="false", LOG_LEVEL="WARNING", TASK_DEVICE="cpu",
                    TASK_PROGRESS_INTERVAL_S="0", EVENTS_POLL_INTERVAL_S="0.3",
                    EVENTS_RESYNC_AFTER="40",
                    STRIPE_SECRET_KEY="sk_test_fake", STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
                    STRIPE_API_BASE=stripe.url, NO_PROXY="127.0.0.1,localhost",
                    STRIPE_SUCCESS_URL=f"{base}/console/billing/?topup=success",
                    STRIPE_CANCEL_URL=f"{base}/console/billing/?topup=cancelled")
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "seed_specs")
    processes = Processes(tmp_path)
    try:
        processes.start("serve", [*MANAGE, "serve", "--port", str(port)], env)
        wait_healthy(Client(base), processes)
        account = Client(base, processes=processes).ok("POST", "/api/v1/auth/signup/", {
            "email": "console@example.com", "password": PASSWORD, "tenant": "Console Co"},
            status=201)
        manage(env, "billing_adjust", "--tenant", account["tenant"]["id"], "--amount",
               str(FUNDS), "--reason", "console test funding")
        yield base, processes, account
    finally:
        processes.stop_all()


def watch(page, errors: list[str]):
    page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
    return page


@pytest.mark.slow
def test_console_end_to_end(chromium_path, console_server, stripe, browser_context, shoot,
                            tmp_path):
    from playwright.sync_api import expect

    base, processes, account = console_server
    errors: list[str] = []
    unlabelled: dict[str, list[str]] = {}

    def check_labels(page):
        missing = page.evaluate(UNLABELLED)
        if missing:
            unlabelled[page.url] = missing

    # Sign in: the session lands on the tasks page, and the websocket goes live.
    page = watch(browser_context.new_page(), errors)
    page.goto(base + "/console/")
    expect(page).to_have_url(re.compile(r"/console/signin/"))
    page.fill("#email", "console@example.com")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/console/tasks/$"))
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    shoot(page, "01-tasks-empty")

    # The wallet, in a second tab that is never reloaded.
    wallet = watch(browser_context.new_page(), errors)
    wallet.goto(base + "/console/billing/")
    expect(wallet.locator("#wallet-balance")).to_have_text("1,000.00 USD")
    expect(wallet.locator("#wallet-frozen")).to_have_text("0.00 USD")
    wallet.evaluate("window.__notReloaded = true")
    check_labels(wallet)
    shoot(wallet, "02-wallet-before")

    # A top-up: Stripe Checkout (the fake's page), back to the console, then Stripe's webhook
    # credits the wallet and the open page shows it without a reload.
    wallet.route("https://checkout.stripe.com/**", lambda route: route.fulfill(
        status=200, content_type="text/html", body="<title>Checkout</title><h1>Fake Checkout</h1>"))
    wallet.fill("#topup-amount", "25")
    wallet.click("#topup-form button[type=submit]")
    expect(wallet).to_have_url(re.compile(r"^https://checkout\.stripe\.com/c/pay/cs_test_"))
    returns_to = stripe.sessions()[-1]["params"]["success_url"]
    assert returns_to == f"{base}/console/billing/?topup=success"
    wallet.goto(base + "/console/billing/?topup=success")
    expect(wallet.locator("#topup-return")).to_contain_text("Thank you")
    expect(wallet.locator("#topups-body")).to_contain_text("25.00 USD")
    topup = requests.get(f"{base}/api/v1/billing/topups/", timeout=10, headers={
        "Authorization": f"Bearer {account['token']}"}).json()["results"][0]
    payload = stripe_event("checkout.session.completed",
                           session_of({**topup, "tenant_id": account["tenant"]["id"]}))
    delivered = requests.post(base + WEBHOOK, data=payload, timeout=10, headers={
        "Content-Type": "application/json", "Stripe-Signature": sign(payload)})
    assert delivered.status_code == 200, delivered.text
    expect(wallet.locator("#wallet-balance")).to_have_text("1,025.00 USD")
    wallet.evaluate("window.__notReloaded = true")
    shoot(wallet, "02b-wallet-topped-up")

    # Losing the socket says so, and the client comes back by itself (resuming with after=).
    expect(wallet.locator("#live-status")).to_have_attribute("data-state", "live")
    wallet.evaluate("consoleLive.ws.close()")
    expect(wallet.locator("#live-status")).to_have_text(re.compile("Reconnecting"))
    expect(wallet.locator("#live-status")).to_have_attribute("data-state", "live",
                                                              timeout=10_000)

    # A project, then the digits dataset through the upload form; validation shows up live.
    page.goto(base + "/console/projects/")
    page.fill("#project-name", "Digits")
    page.click("#project-form button[type=submit]")
    expect(page.locator("#projects-body")).to_contain_text("Digits")
    check_labels(page)

    archive = tmp_path / "digits.zip"
    archive.write_bytes(digits_zip())
    page.goto(base + "/console/datasets/")
    page.fill("#d-name", "digits")
    page.set_input_files("#d-file", str(archive))
    page.click("#upload-form button[type=submit]")
    expect(page.locator("#upload-status")).to_contain_text("Uploaded")
    expect(page.locator("#upload-progress")).to_have_attribute("value", "1")
    expect(page.locator("#datasets-body tr[data-state=ready]")).to_have_count(1)
    check_labels(page)
    shoot(page, "03-dataset-ready")
    page.click("#datasets-body a")
    expect(page.locator("#label-chart svg")).to_be_visible()
    expect(page.locator("#label-chart")).to_contain_text("digit-7")
    shoot(page, "04-dataset-detail")

    # Start a task from the form; its row's progress moves with no reload.
    page.goto(base + "/console/tasks/")
    page.click("#new-task summary")
    page.fill("#t-name", "digits-cnn")
    page.fill("#t-model", "small_cnn")
    page.fill("#t-epochs", "10")  # long enough to watch it move on a busy machine
    cheapest = page.locator("#t-spec option", has_text="cpu-2c-8g").get_attribute("value")
    page.select_option("#t-spec", value=cheapest)
    check_labels(page)
    with page.expect_response(lambda r: r.url.endswith("/api/v1/tasks/")
                              and r.request.method == "POST") as created:
        page.click("#task-form button[type=submit]")
    assert created.value.status == 201, created.value.text()
    page.evaluate("window.__notReloaded = true")
    row = page.locator("#tasks-body tr[id^=task-]").first
    expect(row).to_be_visible()
    seen: list[float] = []
    deadline = time.monotonic() + 90
    shot_running = False
    while time.monotonic() < deadline:
        # State and bar in one read: the row is replaced whole, and two reads can straddle it.
        state, value = row.evaluate(
            "r => [r.dataset.state, Number(r.querySelector('progress').value)]")
        if not seen or seen[-1] != value:
            seen.append(value)
        if 0 < value < 1 and not shot_running:
            shoot(page, "05-task-running")
            shot_running = True
        if state in ("succeeded", "failed", "stopped"):
            break
        time.sleep(0.05)
    assert row.get_attribute("data-state") == "succeeded", processes.tails()
    assert page.evaluate("window.__notReloaded") is True
    between = [v for v in seen if 0 < v < 1]
    assert between and seen[-1] == 1.0, f"progress seen on the page: {seen}"
    assert seen == sorted(seen), f"progress went backwards: {seen}"
    shoot(page, "06-task-succeeded")

    # The task's page: curves, logs, lineage and the automatic evaluation.
    row.locator("a").click()
    expect(page.locator("#task-state")).to_have_attribute("data-state", "succeeded")
    expect(page.locator("#chart-loss svg path")).to_have_count(1)
    expect(page.locator("#log-lines")).to_contain_text("started on")
    expect(page.locator("#lineage svg")).to_be_visible()
    expect(page.locator(".eval-link")).to_contain_text("succeeded", timeout=30_000)
    check_labels(page)
    shoot(page, "07-task-detail")
    page.click(".eval-link")

    # The report at other operating points: the numbers follow the sliders.
    at_threshold = page.locator("#metric-threshold-f1")
    expect(at_threshold).not_to_have_text("—")
    expect(page.locator("#confusion-table")).to_be_visible()
    expect(page.locator("#pr-chart svg")).to_be_visible()
    before = at_threshold.inner_text()
    page.focus("#score-slider")
    page.keyboard.press("Home")  # threshold 0: every label's score counts
    expect(page.locator("#score-value")).to_have_text("0.00")
    expect(at_threshold).not_to_have_text(before)
    with page.expect_response(lambda r: "/metrics/?iou=0.55" in r.url):
        page.focus("#iou-slider")
        page.keyboard.press("ArrowRight")
    expect(page.locator("#iou-value")).to_have_text("0.55")
    check_labels(page)
    shoot(page, "08-evaluation")

    # The wallet tab moved by itself: the freeze, then the charge.
    expect(wallet.locator("#wallet-balance")).not_to_have_text("1,025.00 USD", timeout=15_000)
    expect(wallet.locator("#wallet-frozen")).to_have_text("0.00 USD")
    assert wallet.evaluate("window.__notReloaded") is True
    shoot(wallet, "09-wallet-after")

    # Far behind (here: resuming from position 0 of a log longer than EVENTS_RESYNC_AFTER), the
    # server answers "resync"; the client reads the REST feed up to the head, then goes live.
    head = requests.get(f"{base}/api/v1/events/?after=0&limit=1000", timeout=10, headers={
        "Authorization": f"Bearer {account['token']}"}).json()["next_after"]
    assert head > 40
    wallet.evaluate("consoleLive.last = 0; consoleLive.ws.close()")
    expect(wallet.locator("#live-status")).to_have_attribute("data-state", "live",
                                                              timeout=15_000)
    wallet.wait_for_function(f"consoleLive.resyncs >= 1 && consoleLive.last >= {head}")
    expect(wallet.locator("#live-status")).to_have_attribute("data-state", "live",
                                                              timeout=15_000)
    assert wallet.evaluate("window.__notReloaded") is True

    # A phone: no sideways scrolling of the page itself.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(base + "/console/tasks/")
    expect(page.locator("#tasks-body tr[id^=task-]")).to_have_count(1)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    shoot(page, "10-phone-tasks")
    assert overflow <= 1, f"the tasks page is {overflow}px wider than a phone"

    assert not errors, errors
    assert not unlabelled, f"form controls without a label: {unlabelled}"
