(function () {
  "use strict";
  const { api, all, $, el, fill, fmt, setText, showError, live, throttle, pages, stateBadge } = window.Console;
  let currency = "USD";

  async function wallet() {
    const w = await api("GET", "/api/v1/billing/wallet/");
    currency = w.currency;
    document.querySelectorAll(".currency").forEach((n) => { n.textContent = w.currency; });
    setText("#wallet-balance", fmt.money(w.balance, w.currency));
    setText("#wallet-frozen", fmt.money(w.frozen, w.currency));
    setText("#wallet-available", fmt.money(w.available, w.currency));
    $("#wallet-available").dataset.minor = w.available;
    $("#wallet-balance").dataset.minor = w.balance;
  }

  async function topups() {
    const page = await api("GET", "/api/v1/billing/topups/");
    fill($("#topups-body"), page.results.slice(0, 10).map((t) => el("tr", {},
      el("td", {}, fmt.date(t.created_at)), el("td", {}, fmt.money(t.amount, t.currency)),
      el("td", {}, stateBadge(t.state), t.failure_reason ? ` ${t.failure_reason}` : ""))), "No top-ups yet.", 3);
  }

  function usageParams() {
    const form = $("#usage-form");
    const params = new URLSearchParams({ group_by: form.group_by.value });
    if (form.from.value) params.set("from", form.from.value);
    if (form.to.value) params.set("to", form.to.value);
    return params;
  }

  async function usage() {
    const params = usageParams();
    $("#usage-csv").href = `/api/v1/billing/usage/?${params}&format=csv`;
    const body = await api("GET", `/api/v1/billing/usage/?${params}`);
    const names = {};
    if (params.get("group_by") === "project") {
      (await all("/api/v1/projects/")).forEach((p) => { names[p.id] = p.name; });
    }
    const label = (key) => names[key] || key;
    Charts.bars($("#usage-chart"), body.results.map((r) => ({ label: String(label(r.key)).slice(0, 22),
      value: r.amount, text: fmt.money(r.amount, body.currency) })), { title: "Usage amount", empty: "No usage in this period." });
    fill($("#usage-body"), body.results.map((r) => el("tr", {}, el("th", { scope: "row" }, label(r.key)),
      el("td", {}, fmt.duration(r.seconds)), el("td", {}, fmt.money(r.amount, body.currency)))), "No usage in this period.", 3);
    $("#usage-total").replaceChildren(el("tr", {}, el("th", { scope: "row" }, "Total"),
      el("td", {}, fmt.duration(body.seconds)), el("td", { id: "usage-total-amount" }, fmt.money(body.total, body.currency))));
  }

  async function statement() {
    const month = $("#st-month").value;
    if (!month) return;
    $("#statement-csv").href = `/api/v1/billing/statements/?month=${month}&format=csv`;
    const body = await api("GET", `/api/v1/billing/statements/?month=${month}`);
    const skip = new Set(["tenant", "month", "currency", "reconciles"]);
    $("#statement").replaceChildren(el("table", { class: "data" },
      el("caption", {}, `Statement ${body.month} (${body.reconciles ? "reconciles" : "does NOT reconcile"})`),
      el("tbody", {}, ...Object.entries(body).filter(([k]) => !skip.has(k)).map(([k, v]) =>
        el("tr", {}, el("th", { scope: "row" }, k.replaceAll("_", " ")),
          el("td", {}, typeof v === "number" ? fmt.money(v, body.currency) : JSON.stringify(v)))))));
  }

  async function ledger() {
    const page = await api("GET", "/api/v1/billing/ledger/");
    fill($("#ledger-body"), page.results.slice(0, 25).map((e) => el("tr", {},
      el("td", {}, fmt.date(e.recorded_at)), el("td", {}, e.event_type), el("td", {}, e.memo || ""),
      el("td", {}, e.postings.map((p) => `${p.account} ${fmt.money(p.amount, currency)}`).join("; ")))),
      "No entries yet.", 4);
  }

  pages.billing = async function () {
    const back = new URLSearchParams(location.search).get("topup");
    if (back) {
      const note = $("#topup-return");
      note.hidden = false;
      note.textContent = back === "success"
        ? "Thank you: the payment is confirmed by Stripe shortly, and the balance updates here by itself."
        : "The top-up was cancelled; nothing was charged.";
    }
    const now = new Date();
    $("#st-month").value = `${now.getUTCFullYear()}-${String(now.getUTCMonth() + 1).padStart(2, "0")}`;
    $("#topup-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const amount = Math.round(Number(e.target.amount.value) * 100);
      try {
        const topup = await api("POST", "/api/v1/billing/topups/", { amount });
        window.location.assign(topup.checkout_url);
      } catch (err) { showError(err, e.target); }
    });
    $("#usage-form").addEventListener("submit", (e) => { e.preventDefault(); usage().catch((err) => showError(err, e.target)); });
    $("#statement-form").addEventListener("submit", (e) => { e.preventDefault(); statement().catch((err) => showError(err, e.target)); });
    const refresh = throttle(() => Promise.all([wallet(), topups(), ledger()]).catch(() => {}), 200);
    const refreshReports = throttle(() => Promise.all([usage(), statement()]).catch(() => {}), 1000);
    live.on((event) => {
      if (event.stream_type === "wallet") { refresh(); refreshReports(); }
    });
    live.onReconnect(() => { refresh(); refreshReports(); });
    await wallet();
    await Promise.all([topups(), usage(), statement(), ledger()]);
  };
})();
