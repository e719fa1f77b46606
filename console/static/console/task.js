(function () {
  "use strict";
  const { api, all, $, el, fill, fmt, setText, showError, live, throttle, pages, stateBadge } = window.Console;
  const FINAL = ["succeeded", "failed", "stopped", "interrupted"];
  let task = null;
  let logAfter = 0;
  let logTimer = null;
  let taskId = null;

  function renderTask(t) {
    task = t;
    document.title = `${t.name} ${t.version} · AutoML console`;
    setText("#task-title", `${t.name} ${t.version}`);
    $("#task-state").replaceChildren(stateBadge(t.state));
    $("#task-state").dataset.state = t.state;
    setText("#task-stage", t.stage);
    setText("#task-epoch", t.epochs ? `${t.epoch} of ${t.epochs}` : t.epoch);
    setText("#task-elapsed", fmt.duration(t.elapsed_s));
    setText("#task-eta", FINAL.includes(t.state) ? "—" : fmt.duration(t.eta_s));
    const target = t.target_metric === null ? "no target" : `target ${fmt.num(t.target_metric)}`;
    setText("#task-best", `${t.metric_name} ${fmt.num(t.best_metric)} (${target})`);
    setText("#task-spec", `${t.spec_name} · ${t.billing_mode}`);
    setText("#task-stop-reason", t.stop_reason);
    $("#task-progress").value = t.progress || 0;
    setText("#task-progress-text", fmt.pct(t.progress));
    const failure = $("#task-failure");
    failure.hidden = !t.failure;
    if (t.failure) failure.textContent = t.failure.message || JSON.stringify(t.failure);
    setText("#task-warnings", (t.warnings || []).join(" "));
    $("#task-stop").disabled = !["queued", "running"].includes(t.state);
    $("#task-restart").disabled = !["failed", "stopped", "interrupted"].includes(t.state);
  }

  async function loadTask() { renderTask(await api("GET", `/api/v1/tasks/${taskId}/`)); }

  async function loadMetrics() {
    const { series } = await api("GET", `/api/v1/tasks/${taskId}/metrics/`);
    const points = (name) => (series[name] || []).map((p) => [p.epoch, p.value]);
    Charts.line($("#chart-loss"), [{ name: "loss", points: points("loss") }],
      { xLabel: "epoch", yLabel: "loss", integerX: true, empty: "No epoch finished yet." });
    const others = Object.keys(series).filter((n) => n !== "loss");
    setText("#chart-metric-caption", others.length ? others.join(", ") : "Metric");
    Charts.line($("#chart-metric"), others.map((n) => ({ name: n, points: points(n) })),
      { xLabel: "epoch", yLabel: others.join(", "), yMin: 0, yMax: 1, integerX: true,
        marker: task ? task.target_metric : null, empty: "No epoch finished yet." });
  }

  async function loadEvaluations() {
    const list = await all(`/api/v1/evaluations/?task=${taskId}`);
    const node = $("#task-evaluations");
    node.replaceChildren();
    if (list.length) {
      node.append("Evaluation: ", ...list.map((e, i) => [i ? ", " : "",
        el("a", { href: `/console/evaluations/${e.id}/`, class: "eval-link" }, `report (${e.state})`)]).flat());
    }
  }

  // --- logs: the `after` cursor tails new lines while the task runs ----------------------------

  function logQuery() {
    const form = $("#log-filters");
    const params = new URLSearchParams();
    for (const name of ["q", "node", "level"]) if (form[name].value) params.set(name, form[name].value);
    for (const name of ["since", "until"]) {
      if (form[name].value) params.set(name, new Date(form[name].value).toISOString());
    }
    return params;
  }

  function appendLines(lines) {
    const pre = $("#log-lines");
    const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    for (const line of lines) {
      pre.append(el("span", { class: `log-${(line.level || "").toLowerCase()}` },
        `${line.time} ${line.node} ${line.level} ${line.message}\n`));
    }
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  }

  async function readLogs(reset) {
    if (reset) { logAfter = 0; $("#log-lines").replaceChildren(); }
    for (let i = 0; i < 20; i += 1) {
      const params = logQuery();
      if (logAfter) params.set("after", logAfter);
      const page = await api("GET", `/api/v1/tasks/${taskId}/logs/?${params}`);
      appendLines(page.results);
      if (page.next_after !== null && page.next_after !== undefined) logAfter = page.next_after;
      if (!page.results.length || page.results.length < 100) break;
    }
    if (reset && !$("#log-lines").childNodes.length) $("#log-lines").textContent = "";
  }

  function scheduleTail() {
    clearTimeout(logTimer);
    const tail = $("#log-tail").checked && task && !FINAL.includes(task.state);
    if (!tail) return;
    logTimer = setTimeout(async () => {
      try { await readLogs(false); } catch (err) { /* next tick retries */ }
      scheduleTail();
    }, 2000);
  }

  // --- versions, comparison, lineage ----------------------------------------------------------

  async function loadVersions() {
    const { results } = await api("GET", `/api/v1/tasks/${taskId}/versions/`);
    fill($("#versions-body"), results.map((v) => el("tr", {},
      el("td", {}, v.id === taskId ? "this" : el("input", { type: "radio", name: "compare-with", value: v.id, "aria-label": `Compare with ${v.version}` })),
      el("th", { scope: "row" }, el("a", { href: `/console/tasks/${v.id}/` }, v.version)),
      el("td", {}, stateBadge(v.state)), el("td", {}, fmt.num(v.best_metric)),
      el("td", {}, v.epochs), el("td", {}, v.learning_rate), el("td", {}, fmt.date(v.created_at)))),
      "No versions.", 7);
  }

  async function compare() {
    const chosen = document.querySelector('input[name="compare-with"]:checked');
    const out = $("#compare-result");
    if (!chosen) { out.textContent = "Pick another version to compare with."; return; }
    const result = await api("GET", `/api/v1/tasks/${taskId}/compare/?with=${chosen.value}`);
    const [a, b] = result.versions;
    const rows = [
      ...Object.entries(result.config).map(([k, v]) => [k, v.a, v.b, ""]),
      ...Object.entries(result.metrics).map(([k, v]) => [k, fmt.num(v.a), fmt.num(v.b), fmt.num(v.difference)])];
    out.replaceChildren(el("table", { class: "data" },
      el("thead", {}, el("tr", {}, ...["", a, b, "difference"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, ...rows.map((r) => el("tr", {}, el("th", { scope: "row" }, r[0]),
        ...r.slice(1).map((c) => el("td", {}, c === null ? "—" : String(c))))))));
  }

  async function loadLineage() {
    const { nodes, edges } = await api("GET", `/api/v1/tasks/${taskId}/lineage/`);
    // Columns by depth from the sources, boxes within a column stacked.
    const depth = {};
    const incoming = (id) => edges.filter((e) => e.to === id).map((e) => e.from);
    const depthOf = (id, seen = new Set()) => {
      if (depth[id] !== undefined) return depth[id];
      if (seen.has(id)) return 0;
      seen.add(id);
      const parents = incoming(id);
      depth[id] = parents.length ? 1 + Math.max(...parents.map((p) => depthOf(p, seen))) : 0;
      return depth[id];
    };
    nodes.forEach((n) => depthOf(n.id));
    const columns = {};
    nodes.forEach((n) => { (columns[depth[n.id]] = columns[depth[n.id]] || []).push(n); });
    const W = 190, H = 44, GX = 40, GY = 16;
    const pos = {};
    Object.entries(columns).forEach(([d, list]) => list.forEach((n, i) => {
      pos[n.id] = { x: 10 + Number(d) * (W + GX), y: 10 + i * (H + GY) };
    }));
    const width = 20 + Object.keys(columns).length * (W + GX);
    const height = 20 + Math.max(...Object.values(columns).map((l) => l.length)) * (H + GY);
    const NS = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("role", "img");
    const describe = (n) => n.kind === "training" ? `training ${n.version} (${n.state})`
      : n.kind === "dataset" ? `dataset (${n.role})` : n.kind === "config" ? `config ${n.algorithm}`
      : n.kind === "evaluation" ? `evaluation (${n.state})`
      : n.kind === "service" ? `service ${n.name} (${n.state})`
      : n.kind === "model" ? `model ${n.version}` : n.kind;
    svg.setAttribute("aria-label", "Lineage: " + edges.map((e) => {
      const a = nodes.find((n) => n.id === e.from), b = nodes.find((n) => n.id === e.to);
      return `${a ? describe(a) : e.from} → ${b ? describe(b) : e.to}`;
    }).join("; "));
    for (const e of edges) {
      const a = pos[e.from], b = pos[e.to];
      if (!a || !b) continue;
      const path = document.createElementNS(NS, "path");
      path.setAttribute("d", `M${a.x + W},${a.y + H / 2} C${a.x + W + GX / 2},${a.y + H / 2} ${b.x - GX / 2},${b.y + H / 2} ${b.x},${b.y + H / 2}`);
      path.setAttribute("class", "edge");
      svg.append(path);
    }
    for (const n of nodes) {
      const p = pos[n.id];
      const pages = { dataset: "datasets", training: "tasks", evaluation: "evaluations",
                      service: "services" };
      const link = pages[n.kind] ? `/console/${pages[n.kind]}/${n.id}/` : null;
      const g = document.createElementNS(NS, link ? "a" : "g");
      if (link) g.setAttribute("href", link);
      const rect = document.createElementNS(NS, "rect");
      Object.entries({ x: p.x, y: p.y, width: W, height: H, rx: 6, class: `node node-${n.kind}` })
        .forEach(([k, v]) => rect.setAttribute(k, v));
      const text = document.createElementNS(NS, "text");
      text.setAttribute("x", p.x + 8); text.setAttribute("y", p.y + 26);
      text.textContent = describe(n);
      g.append(rect, text);
      svg.append(g);
    }
    $("#lineage").replaceChildren(svg);
  }

  pages.task = async function (id) {
    taskId = id;
    await loadTask();
    await Promise.all([loadMetrics(), readLogs(true), loadVersions(), loadLineage(), loadEvaluations()]);
    scheduleTail();

    $("#log-filters").addEventListener("submit", (e) => {
      e.preventDefault();
      readLogs(true).then(scheduleTail).catch((err) => showError(err, e.target));
    });
    $("#log-tail").addEventListener("change", scheduleTail);
    $("#compare-button").addEventListener("click", () => compare().catch(showError));
    $("#task-stop").addEventListener("click", async () => {
      try { renderTask(await api("POST", `/api/v1/tasks/${taskId}/stop/`)); } catch (err) { showError(err); }
    });
    $("#task-restart").addEventListener("click", async () => {
      try { renderTask(await api("POST", `/api/v1/tasks/${taskId}/restart/`)); scheduleTail(); } catch (err) { showError(err); }
    });

    const refreshTask = throttle(() => loadTask().then(scheduleTail).catch(() => {}), 150);
    const refreshMetrics = throttle(() => loadMetrics().catch(() => {}), 300);
    const refreshAll = throttle(() => Promise.all([loadVersions(), loadLineage(), loadEvaluations()]).catch(() => {}), 500);
    live.on((event) => {
      if (event.stream_type === "task" && event.stream_id === taskId) {
        if (event.type === "TaskProgressed" && task) {
          // Progress is in the event itself: show it at once, refetch the rest.
          const d = event.data;
          renderTask({ ...task, state: "running", progress: d.progress ?? task.progress,
            epoch: d.epoch ?? task.epoch, eta_s: d.eta_s ?? task.eta_s });
        }
        refreshTask();
        if (event.type === "TaskEpochCompleted") refreshMetrics();
        if (["TaskSucceeded", "TaskFailed", "TaskStopped", "TaskInterrupted"].includes(event.type)) {
          refreshMetrics(); refreshAll(); readLogs(false).catch(() => {});
        }
      } else if (event.stream_type === "evaluation" || (event.stream_type === "task" && event.type === "TaskCreated")) {
        refreshAll();
      }
    });
    live.onReconnect(() => { refreshTask(); refreshMetrics(); refreshAll(); });
  };
})();
