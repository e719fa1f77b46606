(function () {
  "use strict";
  const { api, all, upload, $, el, fill, fmt, setText, showError, live, throttle, pages, stateBadge } = window.Console;

  pages.services = async function () {
    async function render() {
      const list = await all("/api/v1/services/");
      fill($("#services-body"), list.map((s) => el("tr", { id: `service-${s.id}` },
        el("th", { scope: "row" }, el("a", { href: `/console/services/${s.id}/` }, s.name)),
        el("td", {}, stateBadge(s.state)), el("td", {}, s.model), el("td", {}, s.spec_name || s.spec),
        el("td", {}, fmt.date(s.created_at)))), "No services yet.", 5);
    }
    const form = $("#service-form");
    if (Console.may("service.create")) {
      const [models, specs] = await Promise.all([all("/api/v1/models/"), all("/api/v1/billing/specs/")]);
      form.model.replaceChildren(...models.map((m) => el("option", { value: m.id }, `${m.version} ${m.algorithm} (${m.scenario}) ${m.id.slice(0, 8)}`)));
      form.spec.replaceChildren(...specs.map((s) => el("option", { value: s.id }, `${s.name} (${fmt.money(s.price_per_hour, s.currency)}/h)`)));
      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        const body = Object.fromEntries(new FormData(form).entries());
        body.instances = Number(body.instances);
        try {
          const service = await api("POST", "/api/v1/services/", body);
          const key = $("#service-key");
          key.hidden = false;
          key.textContent = service.key ? `Prediction key (shown once, copy it now): ${service.key}` : "Published.";
          await render();
        } catch (err) { showError(err, form); }
      });
    }
    const refresh = throttle(() => render().catch(() => {}), 300);
    live.on((event) => { if (event.stream_type === "service") refresh(); });
    live.onReconnect(refresh);
    await render();
  };

  pages.service = async function (id) {
    async function render() {
      const s = await api("GET", `/api/v1/services/${id}/`);
      setText("#service-title", s.name);
      $("#service-state").replaceChildren(stateBadge(s.state));
      setText("#service-model", s.model);
      setText("#service-spec", `${s.spec_name || s.spec} · ${s.billing_mode || ""}`);
      setText("#service-instances", (s.instance_states || []).map((i) => `#${i.number} ${i.state}`).join(", "));
      setText("#service-stops", fmt.date(s.stops_at));
      $("#service-stop").disabled = ["stopping", "stopped", "failed"].includes(s.state);
    }
    async function monitoring() {
      const minutes = $("#mon-minutes").value;
      const body = await api("GET", `/api/v1/services/${id}/monitoring/?minutes=${minutes}`);
      const rows = body.minutes || [];
      const t = (r) => new Date(r.minute).getTime() / 60000;
      const now = Date.now() / 60000;
      const x = (r) => Math.round(t(r) - now); // minutes ago, as negative numbers
      const axis = { xLabel: "minutes from now", xMin: -Number(minutes), xMax: 0, integerX: true };
      Charts.line($("#chart-requests"), ["requests", "errors", "throttled"].map((k) => ({
        name: k, points: rows.map((r) => [x(r), r[k] ?? 0]) })), { ...axis, yLabel: "count", yMin: 0, empty: "No requests in this window." });
      Charts.line($("#chart-latency"), ["mean", "p50", "p95", "p99"].map((k) => ({
        name: k, points: rows.map((r) => [x(r), (r.latency_ms || {})[k] ?? null]) })),
        { ...axis, yLabel: "ms", yMin: 0, empty: "No latency measured in this window." });
      const totals = body.totals || {};
      setText("#mon-totals", Object.entries(totals).map(([k, v]) => `${k}: ${typeof v === "number" ? Number(v.toFixed(2)) : v}`).join(" · "));
    }
    $("#mon-minutes").addEventListener("change", () => monitoring().catch(showError));
    $("#service-stop").addEventListener("click", async () => {
      try { await api("POST", `/api/v1/services/${id}/stop/`); await render(); } catch (err) { showError(err); }
    });
    const min = $("#p-min");
    min.addEventListener("input", () => setText("#p-min-value", Number(min.value).toFixed(2)));
    $("#predict-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const form = new FormData(e.target);
      const out = $("#predictions");
      out.textContent = "Predicting…";
      try {
        const body = await upload(`/api/v1/services/${id}/predict/`, form, () => {});
        const list = body.predictions || [];
        out.replaceChildren(list.length ? el("table", { class: "data", id: "prediction-table" },
          el("thead", {}, el("tr", {}, ...["Label", "Score", "Box"].map((h) => el("th", { scope: "col" }, h)))),
          el("tbody", {}, ...list.map((p) => el("tr", {}, el("td", {}, p.label), el("td", {}, fmt.num(p.score)),
            el("td", {}, p.bbox ? p.bbox.map((v) => Math.round(v)).join(", ") : "—")))))
          : el("p", { class: "muted" }, "No prediction at or above this confidence."));
        monitoring().catch(() => {});
      } catch (err) { out.replaceChildren(el("p", { class: "error" }, err.message)); }
    });
    const refresh = throttle(() => render().catch(() => {}), 200);
    const refreshMonitoring = throttle(() => monitoring().catch(() => {}), 500);
    live.on((event) => {
      if (event.stream_type !== "service" || event.stream_id !== id) return;
      // Each closed minute of traffic is an event: the charts follow it live.
      if (event.type === "ServiceTrafficRecorded") refreshMonitoring();
      else refresh();
    });
    live.onReconnect(() => { refresh(); refreshMonitoring(); });
    await render();
    await monitoring();
  };
})();
