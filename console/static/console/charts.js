/* Hand-written SVG charts: lines (training curves, PR curves, monitoring) and horizontal bars
   (label distribution, usage). Each chart carries a text summary for screen readers. */
(function () {
  "use strict";
  const NS = "http://www.w3.org/2000/svg";
  const COLORS = ["#1f5fbf", "#c2410c", "#15803d", "#7e22ce", "#b91c1c", "#0e7490"];

  function svg(tag, attrs, text) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function ticks(min, max, count = 4) {
    if (max === min) return [min];
    const step = (max - min) / count;
    return Array.from({ length: count + 1 }, (_, i) => min + step * i);
  }

  const short = (v) => (Math.abs(v) >= 1000 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1)
    : Number(v.toFixed(3)).toString());

  /** series: [{name, points: [[x, y], ...]}]; opts: {xLabel, yLabel, yMin, yMax, xMin, xMax} */
  function line(container, series, opts = {}) {
    container.replaceChildren();
    const width = 520, height = 240, left = 48, right = 12, top = 12, bottom = 40;
    const all = series.flatMap((s) => s.points).filter((p) => p[1] !== null && p[1] !== undefined);
    if (!all.length) {
      container.append(Object.assign(document.createElement("p"),
        { className: "muted", textContent: opts.empty || "No data yet." }));
      return;
    }
    let xMin = opts.xMin ?? Math.min(...all.map((p) => p[0]));
    let xMax = opts.xMax ?? Math.max(...all.map((p) => p[0]));
    let yMin = opts.yMin ?? Math.min(...all.map((p) => p[1]));
    let yMax = opts.yMax ?? Math.max(...all.map((p) => p[1]));
    if (xMax === xMin) { xMin -= 1; xMax += 1; }
    if (yMax === yMin) { yMin -= 0.5; yMax += 0.5; }
    const x = (v) => left + ((v - xMin) / (xMax - xMin)) * (width - left - right);
    const y = (v) => top + (1 - (v - yMin) / (yMax - yMin)) * (height - top - bottom);
    const summary = series.map((s) => {
      const lastPoint = s.points[s.points.length - 1];
      return `${s.name}: ${s.points.length} points${lastPoint ? `, last ${short(lastPoint[1])} at ${short(lastPoint[0])}` : ""}`;
    }).join("; ");
    const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img",
      "aria-label": `${opts.yLabel || "value"} by ${opts.xLabel || "x"}. ${summary}` });
    root.append(svg("title", {}, `${opts.yLabel || ""} by ${opts.xLabel || ""}`));
    for (const t of ticks(yMin, yMax)) {
      root.append(svg("line", { x1: left, x2: width - right, y1: y(t), y2: y(t), class: "grid" }));
      root.append(svg("text", { x: left - 6, y: y(t) + 4, "text-anchor": "end", class: "tick" }, short(t)));
    }
    const xTicks = opts.integerX ? [...new Set(ticks(xMin, xMax).map(Math.round))] : ticks(xMin, xMax);
    for (const t of xTicks) {
      root.append(svg("text", { x: x(t), y: height - bottom + 16, "text-anchor": "middle", class: "tick" }, short(t)));
    }
    root.append(svg("line", { x1: left, x2: width - right, y1: height - bottom, y2: height - bottom, class: "axis" }));
    root.append(svg("line", { x1: left, x2: left, y1: top, y2: height - bottom, class: "axis" }));
    if (opts.xLabel) root.append(svg("text", { x: (left + width) / 2, y: height - 4, "text-anchor": "middle", class: "label" }, opts.xLabel));
    series.forEach((s, i) => {
      const color = s.color || COLORS[i % COLORS.length];
      const pts = s.points.filter((p) => p[1] !== null && p[1] !== undefined);
      if (!pts.length) return;
      const d = pts.map((p, j) => `${j ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ");
      root.append(svg("path", { d, fill: "none", stroke: color, "stroke-width": 2,
        "stroke-dasharray": s.dashed ? "5 4" : "none" }));
      if (pts.length < 60) {
        for (const p of pts) {
          const dot = svg("circle", { cx: x(p[0]), cy: y(p[1]), r: 3, fill: color });
          dot.append(svg("title", {}, `${s.name}: ${short(p[1])} at ${short(p[0])}`));
          root.append(dot);
        }
      }
    });
    if (opts.marker !== undefined && opts.marker !== null) {
      root.append(svg("line", { x1: left, x2: width - right, y1: y(opts.marker), y2: y(opts.marker), class: "target" }));
    }
    container.append(root);
    const legend = document.createElement("ul");
    legend.className = "legend";
    series.forEach((s, i) => {
      const item = document.createElement("li");
      item.innerHTML = `<span class="swatch" style="background:${s.color || COLORS[i % COLORS.length]}"></span>`;
      item.append(s.name);
      legend.append(item);
    });
    container.append(legend);
  }

  /** rows: [{label, value, text?}] as horizontal bars. */
  function bars(container, rows, opts = {}) {
    container.replaceChildren();
    if (!rows.length) {
      container.append(Object.assign(document.createElement("p"),
        { className: "muted", textContent: opts.empty || "No data." }));
      return;
    }
    const max = Math.max(...rows.map((r) => r.value), 1e-9);
    const rowH = 24, labelW = 150, width = 520, height = rows.length * rowH + 8;
    const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img",
      "aria-label": (opts.title || "Bar chart") + ": " + rows.map((r) => `${r.label} ${r.text ?? r.value}`).join(", ") });
    rows.forEach((r, i) => {
      const yTop = 4 + i * rowH;
      const w = Math.max(1, (r.value / max) * (width - labelW - 90));
      root.append(svg("text", { x: labelW - 6, y: yTop + 16, "text-anchor": "end", class: "tick" }, r.label));
      root.append(svg("rect", { x: labelW, y: yTop + 3, width: w, height: rowH - 8, fill: COLORS[0], rx: 2 }));
      root.append(svg("text", { x: labelW + w + 6, y: yTop + 16, class: "tick" }, r.text ?? String(r.value)));
    });
    container.append(root);
  }

  window.Charts = { line, bars, COLORS };
})();
