(function () {
  "use strict";
  const { api, all, upload, $, el, fill, fmt, setText, showError, live, throttle, pages, stateBadge } = window.Console;
  const filter = new URLSearchParams(location.search).get("project");

  async function renderList() {
    const datasets = (await all("/api/v1/datasets/")).filter((d) => !filter || d.project === filter);
    fill($("#datasets-body"), datasets.map((d) => el("tr", { id: `dataset-${d.id}`, "data-state": d.state },
      el("th", { scope: "row" }, el("a", { href: `/console/datasets/${d.id}/` }, d.name)),
      el("td", {}, d.kind), el("td", {}, d.format), el("td", {}, `v${d.version}`),
      el("td", {}, stateBadge(d.state)), el("td", {}, d.image_count),
      el("td", {}, d.errors.length ? `${d.errors.length} error(s)` : "none"))), "No datasets yet.", 7);
  }

  pages.datasets = async function () {
    const form = $("#upload-form");
    const progress = $("#upload-progress");
    const status = $("#upload-status");
    if (Console.may("dataset.create")) {
      const projects = await all("/api/v1/projects/");
      form.project.replaceChildren(...projects.map((p) => el("option", { value: p.id, selected: p.id === filter }, p.name)));
    }
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      progress.value = 0;
      status.textContent = "Uploading…";
      try {
        const dataset = await upload("/api/v1/datasets/", new FormData(form), (ratio) => {
          progress.value = ratio;
          status.textContent = `Uploading… ${Math.round(ratio * 100)}%`;
        });
        progress.value = 1;
        status.replaceChildren(`Uploaded; validation is ${dataset.state}. `,
          el("a", { href: `/console/datasets/${dataset.id}/` }, `Open ${dataset.name}`));
        await renderList();
      } catch (err) {
        status.textContent = `Upload failed: ${err.message}`;
        showError(err, form);
      }
    });
    const refresh = throttle(() => renderList().catch(() => {}), 300);
    live.on((event) => { if (event.stream_type === "dataset") refresh(); });
    live.onReconnect(refresh);
    await renderList();
  };

  pages.dataset = async function (id) {
    async function render() {
      const d = await api("GET", `/api/v1/datasets/${id}/`);
      setText("#dataset-title", `${d.name} v${d.version}`);
      $("#dataset-state").replaceChildren(stateBadge(d.state));
      setText("#dataset-kind", d.kind);
      setText("#dataset-format", d.format);
      setText("#dataset-version", d.version);
      setText("#dataset-images", d.image_count);
      setText("#dataset-size", fmt.bytes(d.size_bytes));
      Charts.bars($("#label-chart"), d.labels.map((l) => ({ label: l.name, value: l.count,
        text: `${l.count} (${fmt.pct(l.share)})` })), { title: "Objects per label",
        empty: d.state === "ready" ? "No labels." : `Labels appear once validation finishes (${d.state}).` });
      fill($("#dataset-errors"), d.errors.map((e) => el("tr", {}, el("td", {}, el("code", {}, e.file)),
        el("td", {}, e.message))), "No validation errors.", 2);
      $("#dataset-warnings").replaceChildren(...(d.warnings.length ? d.warnings : [{ message: "None." }])
        .map((w) => el("li", {}, w.file ? `${w.file}: ${w.message}` : w.message)));
      const versions = await api("GET", `/api/v1/datasets/${id}/versions/`);
      $("#dataset-versions").replaceChildren(...(versions.results || []).map((v) => el("li", {},
        el("a", { href: `/console/datasets/${v.id}/` }, `v${v.version}`), ` ${v.state}, ${v.image_count} images`)));
    }
    const refresh = throttle(() => render().catch(() => {}), 200);
    live.on((event) => { if (event.stream_type === "dataset" && event.stream_id === id) refresh(); });
    live.onReconnect(refresh);
    await render();
  };
})();
