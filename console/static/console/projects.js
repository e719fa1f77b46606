(function () {
  "use strict";
  const { api, all, $, el, fill, fmt, showError, live, throttle, pages } = window.Console;

  async function render() {
    const projects = await all("/api/v1/projects/");
    fill($("#projects-body"), projects.map((p) => el("tr", {},
      el("td", {}, p.name), el("td", {}, p.description || ""), el("td", {}, fmt.date(p.created_at)),
      el("td", {}, el("a", { href: `/console/tasks/?project=${p.id}` }, "Tasks"), " · ",
        el("a", { href: `/console/datasets/?project=${p.id}` }, "Datasets")))), "No projects yet.", 4);
  }

  pages.projects = async function () {
    const form = $("#project-form");
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        await api("POST", "/api/v1/projects/", { name: form.name.value, description: form.description.value });
        form.reset();
        await render();
      } catch (err) { showError(err, form); }
    });
    const refresh = throttle(render, 300);
    live.on((event) => { if (event.stream_type === "project") refresh(); });
    live.onReconnect(() => refresh());
    await render();
  };
})();
