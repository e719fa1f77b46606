(function () {
  "use strict";
  const { api, all, $, el, fill, fmt, showError, live, throttle, pages, stateBadge, progressBar } = window.Console;
  const rows = new Map(); // task id -> <tr>
  let nextPage = null;
  const filter = new URLSearchParams(location.search).get("project");

  function row(task) {
    return el("tr", { id: `task-${task.id}`, "data-state": task.state },
      el("th", { scope: "row" }, el("a", { href: `/console/tasks/${task.id}/` }, task.name)),
      el("td", {}, task.version),
      el("td", { class: "state" }, stateBadge(task.state), task.stage ? ` ${task.stage}` : ""),
      el("td", {}, progressBar(task.progress, `Progress of ${task.name}`)),
      el("td", {}, task.best_metric === null ? "—" : `${task.metric_name} ${fmt.num(task.best_metric)}`),
      el("td", {}, fmt.duration(task.elapsed_s)),
      el("td", {}, fmt.duration(task.eta_s)));
  }

  function put(task) {
    if (filter && task.project !== filter) return;
    const fresh = row(task);
    const old = rows.get(task.id);
    if (old) old.replaceWith(fresh);
    else {
      const body = $("#tasks-body");
      if (!rows.size) body.replaceChildren();
      body.prepend(fresh);
    }
    rows.set(task.id, fresh);
  }

  async function load(path) {
    const page = await api("GET", path);
    const body = $("#tasks-body");
    if (path.endsWith("/api/v1/tasks/") || path.includes("?project=")) { body.replaceChildren(); rows.clear(); }
    for (const task of page.results) {
      if (filter && task.project !== filter) continue;
      const r = row(task);
      body.append(r);
      rows.set(task.id, r);
    }
    if (!rows.size) fill(body, [], "No tasks yet.", 7);
    nextPage = page.next;
    $("#tasks-more").hidden = !nextPage;
  }

  const pending = new Map();
  const refetch = (id) => {
    if (!pending.has(id)) {
      pending.set(id, throttle(async () => {
        try { put(await api("GET", `/api/v1/tasks/${id}/`)); } catch (err) { /* gone: ignore */ }
      }, 200));
    }
    pending.get(id)();
  };

  async function fillForm() {
    const [projects, datasets, specs] = await Promise.all([
      all("/api/v1/projects/"), all("/api/v1/datasets/"), all("/api/v1/billing/specs/")]);
    const form = $("#task-form");
    form.project.replaceChildren(...projects.map((p) => el("option", { value: p.id, selected: p.id === filter }, p.name)));
    const ready = datasets.filter((d) => d.state === "ready");
    const label = (d) => `${d.name} v${d.version} (${d.kind}, ${d.image_count} images)`;
    form.train_dataset.replaceChildren(...ready.map((d) => el("option", { value: d.id }, label(d))));
    form.test_dataset.replaceChildren(el("option", { value: "" }, "— hold-out split —"),
      ...ready.map((d) => el("option", { value: d.id }, label(d))));
    form.spec.replaceChildren(...specs.map((s) => el("option", { value: s.id },
      `${s.name} (${s.kind}, ${fmt.money(s.price_per_hour, s.currency)}/h)`)));
  }

  pages.tasks = async function () {
    const form = $("#task-form");
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const body = {};
      for (const [key, value] of new FormData(form).entries()) {
        if (value === "") continue;
        body[key] = ["epochs", "batch_size", "max_duration_s"].includes(key) ? Number(value)
          : ["learning_rate", "target_metric"].includes(key) ? Number(value) : value;
      }
      try {
        const task = await api("POST", "/api/v1/tasks/", body);
        put(task);
        Console.toast(`Task ${task.name} ${task.version} is ${task.state}.`, "info");
      } catch (err) { showError(err, form); }
    });
    $("#tasks-more").addEventListener("click", () => nextPage && load(nextPage).catch(showError));
    live.on((event) => { if (event.stream_type === "task") refetch(event.stream_id); });
    live.onReconnect(() => load("/api/v1/tasks/").catch(showError));
    await load("/api/v1/tasks/");
    if (Console.may("task.create")) await fillForm();
  };
})();
