(function () {
  "use strict";
  const { api, all, $, el, fill, fmt, setText, showError, live, debounce, throttle, pages, stateBadge } = window.Console;

  pages.evaluations = async function () {
    async function render() {
      const list = await all("/api/v1/evaluations/");
      fill($("#evaluations-body"), list.map((e) => el("tr", {},
        el("th", { scope: "row" }, el("a", { href: `/console/evaluations/${e.id}/` }, (e.summary && e.summary.dataset_name) || e.id.slice(0, 8))),
        el("td", {}, e.scenario), el("td", {}, stateBadge(e.state)),
        el("td", {}, (e.summary && e.summary.dataset_name) || e.dataset),
        el("td", {}, (e.summary && e.summary.image_count) ?? "—"),
        el("td", {}, e.task ? el("a", { href: `/console/tasks/${e.task}/` }, "task") : "—"))),
        "No evaluations yet.", 6);
    }
    const refresh = throttle(() => render().catch(() => {}), 300);
    live.on((event) => { if (event.stream_type === "evaluation") refresh(); });
    live.onReconnect(refresh);
    await render();
  };

  // --- the report -------------------------------------------------------------------------------

  let evaluation = null;
  let evalId = null;
  let curves = null;
  const point = () => ({ iou: $("#iou-slider").value, score: $("#score-slider").value });
  const pointQuery = () => { const p = point(); return `iou=${Number(p.iou).toFixed(2)}&score_threshold=${Number(p.score).toFixed(2)}`; };
  const isDetection = () => evaluation && evaluation.scenario !== "classification";

  function facts(node, entries) {
    node.replaceChildren(...entries.map(([k, v, id]) => el("div", {}, el("dt", {}, k), el("dd", id ? { id } : {}, v))));
  }

  function renderSummary() {
    const s = evaluation.summary || {};
    setText("#eval-title", `Evaluation of ${s.dataset_name || "dataset"} (${evaluation.scenario})`);
    facts($("#eval-summary"), [
      ["State", stateBadge(evaluation.state)], ["Images", s.image_count ?? "—"],
      ["Duration", fmt.duration(s.duration_s)], ["Badcases", s.badcase_count ?? "—"],
      ["Split", s.split || "—"], ["Spec", evaluation.spec_name || "—"],
      ["Task", evaluation.task ? el("a", { href: `/console/tasks/${evaluation.task}/` }, "open task") : "—"]]);
    const warning = $("#eval-warning");
    warning.hidden = !s.warning;
    warning.textContent = s.warning || "";
  }

  /** The row of a label's threshold table nearest the slider (the table is on a 0.05 grid). */
  function atThreshold(label, threshold) {
    const entry = curves && (curves.labels || []).find((l) => l.label === label);
    if (!entry || !entry.table) return null;
    let best = null;
    for (const row of entry.table) {
      if (best === null || Math.abs(row.threshold - threshold) < Math.abs(best.threshold - threshold)) best = row;
    }
    return best;
  }

  async function loadMetrics() {
    const query = pointQuery();
    const [metrics, curveBody] = await Promise.all([
      api("GET", `/api/v1/evaluations/${evalId}/metrics/?${query}`),
      api("GET", `/api/v1/evaluations/${evalId}/curves/?${query}`)]);
    curves = curveBody;
    const threshold = Number(point().score);
    const overall = [];
    for (const key of ["accuracy", "mean_f1", "map", "map50", "map75", "precision", "recall", "f1"]) {
      if (typeof metrics[key] === "number") overall.push([key, fmt.num(metrics[key]), `metric-${key}`]);
    }
    if (metrics.macro) overall.push(["macro F1", fmt.num(metrics.macro.f1), "metric-macro-f1"]);
    if (!isDetection()) {
      // Classification metrics are top-1; the threshold's effect reads from the threshold table.
      const rows = (metrics.per_label || []).map((l) => atThreshold(l.label, threshold)).filter(Boolean);
      const mean = (k) => rows.length ? rows.reduce((a, r) => a + r[k], 0) / rows.length : null;
      overall.push([`mean precision ≥ ${threshold.toFixed(2)}`, fmt.num(mean("precision")), "metric-threshold-precision"]);
      overall.push([`mean recall ≥ ${threshold.toFixed(2)}`, fmt.num(mean("recall")), "metric-threshold-recall"]);
      overall.push([`mean F1 ≥ ${threshold.toFixed(2)}`, fmt.num(mean("f1")), "metric-threshold-f1"]);
    }
    facts($("#eval-metrics"), overall);
    fill($("#per-label"), (metrics.per_label || []).map((l) => {
      const row = atThreshold(l.label, threshold);
      return el("tr", {}, el("th", { scope: "row" }, l.label), el("td", {}, l.count),
        el("td", {}, fmt.num(l.precision)), el("td", {}, fmt.num(l.recall)), el("td", {}, fmt.num(l.f1)),
        el("td", {}, row ? `${fmt.num(row.precision)} / ${fmt.num(row.recall)} / ${fmt.num(row.f1)}` : "—"));
    }), "No labels.", 6);
    renderCurve();
  }

  function renderCurve() {
    if (!curves) return;
    const select = $("#curve-label");
    const chosen = select.value;
    const entry = curves.labels.find((l) => l.label === chosen) || curves.labels[0];
    if (!entry) { Charts.line($("#pr-chart"), [], {}); return; }
    const series = [{ name: `${entry.label} (AP ${fmt.num(entry.ap)})`,
      points: (entry.points || []).map((p) => [p.recall, p.precision]) }];
    if (Array.isArray(entry.interpolated)) {
      series.push({ name: "COCO 101-point (interpolated)", dashed: true,
        points: entry.interpolated.map((p) => [p.recall, p.precision]) });
    }
    Charts.line($("#pr-chart"), series, { xLabel: "recall", yLabel: "precision", xMin: 0, xMax: 1, yMin: 0, yMax: 1 });
    const best = entry.best;
    setText("#curve-best", best ? `Best F1 ${fmt.num(best.f1)} at threshold ${fmt.num(best.threshold, 2)} (precision ${fmt.num(best.precision)}, recall ${fmt.num(best.recall)}).` : "");
  }

  async function loadConfusion() {
    const form = $("#confusion-form");
    const params = new URLSearchParams(pointQuery());
    if (form.labels.value.trim()) params.set("labels", form.labels.value.split(",").map((s) => s.trim()).filter(Boolean).join(","));
    params.set("per_side", form.per_side.value);
    params.set("row_page", form.row_page.value || "0");
    params.set("column_page", isDetection() ? (form.column_page.value || "0") : (form.row_page.value || "0"));
    const node = $("#confusion");
    let body;
    try {
      body = await api("GET", `/api/v1/evaluations/${evalId}/confusion/?${params}`);
    } catch (err) {
      node.replaceChildren(el("p", { class: "error" }, err.message));
      return;
    }
    const rowLabels = body.row_labels || body.labels;
    const colLabels = body.column_labels || body.labels;
    const extraCols = ["missed", "low_overlap", "other_predicted"].filter((k) => Array.isArray(body[k]));
    const max = Math.max(1, ...body.matrix.flat());
    const cell = (value, isDiagonal) => {
      const shade = value / max;
      const alpha = value ? 0.12 + shade * 0.78 : 0;
      const style = `background: rgba(${isDiagonal ? "21,128,61" : "185,28,28"},${alpha.toFixed(2)});` +
        (shade > 0.55 ? "color:#fff" : "");
      return el("td", { class: "heat", style }, value);
    };
    const head = el("tr", {}, el("th", { scope: "col" }, "truth ↓ / predicted →"),
      ...colLabels.map((l) => el("th", { scope: "col" }, l)), ...extraCols.map((k) => el("th", { scope: "col" }, k.replace("_", " "))));
    const rows = body.matrix.map((r, i) => el("tr", {}, el("th", { scope: "row" }, rowLabels[i]),
      ...r.map((v, j) => cell(v, rowLabels[i] === colLabels[j])),
      ...extraCols.map((k) => el("td", {}, body[k][i] ?? "—"))));
    const extraRows = ["background", "other_true"].filter((k) => Array.isArray(body[k])).map((k) =>
      el("tr", {}, el("th", { scope: "row" }, k.replace("_", " ")), ...body[k].map((v) => el("td", {}, v))));
    const page = body.page;
    const pagesNote = page ? `Page ${page.row_page + 1} of ${page.row_pages} (rows), ${page.column_page + 1} of ${page.column_pages} (columns), ${page.per_side} a side.` : "";
    node.replaceChildren(el("table", { class: "data heatmap", id: "confusion-table" },
      el("caption", {}, `Counts at IoU ${point().iou}, score ≥ ${point().score}. ${pagesNote}`),
      el("thead", {}, head), el("tbody", {}, ...rows, ...extraRows)));
  }

  async function loadBadcases() {
    const form = $("#badcase-form");
    const params = new URLSearchParams(pointQuery());
    if (form.true_label.value) params.set("true_label", form.true_label.value);
    if (form.predicted_label.value) params.set("predicted_label", form.predicted_label.value);
    const preview = $("#bc-preview").checked;
    if (preview) params.set("preview", "true");
    const node = $("#badcases");
    try {
      const page = await api("GET", `/api/v1/evaluations/${evalId}/badcases/?${params}`);
      if (!page.results.length) { node.replaceChildren(el("p", { class: "muted" }, "No badcases at this operating point.")); return; }
      node.replaceChildren(el("p", { class: "muted" }, `${page.count ?? page.results.length} image(s).`),
        el("ul", { class: "badcases" }, ...page.results.map((b) => el("li", {},
          preview && b.preview_url ? el("img", { src: b.preview_url, alt: `Preview of ${b.file_name}`, loading: "lazy" }) : null,
          el("div", {}, el("code", {}, b.file_name),
            el("p", {}, describeCase(b)))))));
    } catch (err) { node.replaceChildren(el("p", { class: "error" }, err.message)); }
  }

  function describeCase(b) {
    const parts = [];
    if (b.true_label !== undefined) parts.push(`truth ${b.true_label}`);
    if (b.predicted_label !== undefined) parts.push(`predicted ${b.predicted_label}${b.score !== undefined ? ` (${fmt.num(b.score, 2)})` : ""}`);
    const byLabel = (list) => {
      const counts = {};
      list.forEach((f) => { const k = f.label ?? "?"; counts[k] = (counts[k] || 0) + 1; });
      return Object.entries(counts).map(([k, n]) => `${k} ×${n}`).join(", ");
    };
    if (b.false_positives && b.false_positives.length) parts.push(`${b.false_positives.length} false positive(s): ${byLabel(b.false_positives)}`);
    if (b.missed && b.missed.length) parts.push(`${b.missed.length} missed: ${byLabel(b.missed)}`);
    return parts.join("; ") || "error";
  }

  async function loadLabel() {
    const label = $("#detail-label").value;
    const node = $("#label-detail");
    if (!label) { node.replaceChildren(); return; }
    try {
      const d = await api("GET", `/api/v1/evaluations/${evalId}/label/?label=${encodeURIComponent(label)}&${pointQuery()}`);
      const predictedAs = (d.predicted_as && d.predicted_as.results) || [];
      node.replaceChildren(
        el("dl", { class: "facts" }, ...[["Precision", fmt.num(d.precision)], ["Recall", fmt.num(d.recall)],
          ["F1", fmt.num(d.f1)], ["Misrecognition rate", fmt.pct(d.misrecognition_rate)],
          ["Images", d.image_count], ["Objects", d.count]].map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", {}, v)))),
        el("h3", {}, "Predicted as"),
        el("ul", {}, ...predictedAs.map((p) => el("li", {}, `${p.label}: ${p.count} (${fmt.pct(p.share)})`))),
        el("h3", {}, "Images wrongly predicted as this label"),
        el("ul", {}, ...(d.wrongly_predicted_as || []).map((w) => el("li", {}, w.file_name || w.label || JSON.stringify(w))),
          (d.wrongly_predicted_as || []).length ? null : el("li", { class: "muted" }, "None.")));
    } catch (err) { node.replaceChildren(el("p", { class: "error" }, err.message)); }
  }

  async function loadErrors() {
    const node = $("#error-taxonomy");
    if (!isDetection()) {
      node.replaceChildren(el("p", { class: "muted" }, "The error taxonomy (TIDE) exists for detection and segmentation reports."));
      return;
    }
    try {
      const body = await api("GET", `/api/v1/evaluations/${evalId}/errors/?${pointQuery()}`);
      const types = Object.keys(body.counts || {});
      node.replaceChildren(
        el("p", {}, `AP at IoU ${fmt.num(body.iou_fg, 2)}: ${fmt.num(body.baseline_ap)}.`),
        el("table", { class: "data", id: "errors-table" },
          el("thead", {}, el("tr", {}, ...["Error type", "Count", "AP gained by fixing", "AP once fixed"].map((h) => el("th", { scope: "col" }, h)))),
          el("tbody", {}, ...types.map((k) => el("tr", {}, el("th", { scope: "row" }, k),
            el("td", {}, body.counts[k]), el("td", {}, fmt.num((body.delta_ap || {})[k])),
            el("td", {}, fmt.num((body.fixed_ap || {})[k])))))),
        el("details", {}, el("summary", {}, "Per label (raw answer)"), el("pre", {}, JSON.stringify(body, null, 1))));
    } catch (err) {
      node.replaceChildren(el("p", { class: "muted" }, err.message));
    }
  }

  const refreshAll = () => Promise.all([loadMetrics(), loadConfusion(), loadBadcases(), loadLabel(), loadErrors()]);

  pages.evaluation = async function (id) {
    evalId = id;
    evaluation = await api("GET", `/api/v1/evaluations/${id}/`);
    renderSummary();
    $("#iou-slider").value = evaluation.iou ?? 0.5;
    $("#score-slider").value = evaluation.score_threshold ?? 0.5;
    $("#iou-slider").disabled = false;
    $("#iou-note").hidden = isDetection();
    const show = () => {
      setText("#iou-value", Number($("#iou-slider").value).toFixed(2));
      setText("#score-value", Number($("#score-slider").value).toFixed(2));
    };
    show();
    const labels = ((evaluation.metrics && evaluation.metrics.per_label) || []).map((l) => l.label);
    for (const select of [$("#curve-label"), $("#detail-label")]) {
      select.replaceChildren(...labels.map((l) => el("option", { value: l }, l)));
    }
    const moved = debounce(() => refreshAll().catch(showError), 200);
    for (const slider of [$("#iou-slider"), $("#score-slider")]) {
      slider.addEventListener("input", () => { show(); moved(); });
    }
    $("#curve-label").addEventListener("change", renderCurve);
    $("#detail-label").addEventListener("change", () => loadLabel());
    $("#confusion-form").addEventListener("submit", (e) => { e.preventDefault(); loadConfusion(); });
    $("#badcase-form").addEventListener("submit", (e) => { e.preventDefault(); loadBadcases(); });
    $("#bc-preview").addEventListener("change", () => loadBadcases());
    if (evaluation.state === "succeeded") await refreshAll();
    else setText("#eval-metrics", `The report appears when the evaluation succeeds (now ${evaluation.state}).`);
    live.on(async (event) => {
      if (event.stream_type === "evaluation" && event.stream_id === id) {
        evaluation = await api("GET", `/api/v1/evaluations/${id}/`);
        renderSummary();
        if (evaluation.state === "succeeded") refreshAll().catch(() => {});
      }
    });
  };
})();
