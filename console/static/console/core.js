/* The console's shared client: the REST API with the session cookie and CSRF header, the
   tenant's websocket (reconnecting, resuming with after=), small DOM and format helpers.
   No dependencies, no build step. */
(function () {
  "use strict";

  const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  class ApiError extends Error {
    constructor(status, body) {
      const error = (body && body.error) || {};
      super(error.message || `The server answered ${status}.`);
      this.status = status;
      this.code = error.code || "http_" + status;
      this.fields = error.fields || {};
    }
  }

  /** Call the public API: JSON in and out (FormData passes through as multipart). */
  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    const init = { method, headers, credentials: "same-origin" };
    if (method !== "GET" && method !== "HEAD") headers["X-CSRFToken"] = csrf();
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    let payload = null;
    const type = response.headers.get("content-type") || "";
    if (type.includes("json")) payload = await response.json();
    else payload = await response.text();
    if (!response.ok) throw new ApiError(response.status, payload);
    return payload;
  }

  /** Every page of a paginated list ({"results", "next"}), up to `max` items. */
  async function all(path, max = 1000) {
    const items = [];
    let next = path;
    while (next && items.length < max) {
      const page = await api("GET", next);
      items.push(...page.results);
      next = page.next;
    }
    return items;
  }

  /** Upload multipart with progress (fetch has no upload progress; XHR does). */
  function upload(path, form, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", path);
      xhr.setRequestHeader("X-CSRFToken", csrf());
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
      xhr.onload = () => {
        let body = null;
        try { body = JSON.parse(xhr.responseText); } catch (_) { body = null; }
        if (xhr.status >= 200 && xhr.status < 300) resolve(body);
        else reject(new ApiError(xhr.status, body));
      };
      xhr.onerror = () => reject(new ApiError(0, { error: { message: "The upload failed: the network dropped." } }));
      xhr.send(form);
    });
  }

  // --- DOM --------------------------------------------------------------------------------

  const $ = (selector, root = document) => root.querySelector(selector);

  /** el("a", {href: "/x", class: "y"}, "text", child...) */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function setText(selector, text) {
    const node = typeof selector === "string" ? $(selector) : selector;
    if (node) node.textContent = text === null || text === undefined || text === "" ? "—" : text;
  }

  function fill(tbody, rows, emptyText, columns) {
    tbody.replaceChildren();
    if (!rows.length) {
      tbody.append(el("tr", {}, el("td", { colspan: columns || 1, class: "muted" }, emptyText)));
      return;
    }
    tbody.append(...rows);
  }

  let toastTimer = null;
  function toast(message, kind = "error") {
    const node = $("#toast");
    if (!node) return;
    node.textContent = message;
    node.dataset.kind = kind;
    node.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { node.hidden = true; }, 8000);
  }

  /** Show an API error beside a form (field messages) and as a toast. */
  function showError(error, form) {
    if (form) {
      form.querySelectorAll(".field-error").forEach((n) => n.remove());
      for (const [field, messages] of Object.entries((error && error.fields) || {})) {
        const input = form.querySelector(`[name="${field}"]`);
        if (input) {
          const id = input.id + "-error";
          input.setAttribute("aria-describedby", id);
          input.setAttribute("aria-invalid", "true");
          input.after(el("span", { class: "field-error", id }, messages.join(" ")));
        }
      }
    }
    toast(error && error.message ? error.message : String(error));
  }

  const may = (action) => (document.body.dataset.actions || "").split(" ").includes(action);

  // --- formats ----------------------------------------------------------------------------

  const fmt = {
    money(minor, currency = "USD") {
      if (minor === null || minor === undefined) return "—";
      const sign = minor < 0 ? "-" : "";
      const abs = Math.abs(minor);
      return `${sign}${Math.floor(abs / 100).toLocaleString("en-US")}.${String(abs % 100).padStart(2, "0")} ${currency}`;
    },
    duration(seconds) {
      if (seconds === null || seconds === undefined) return "—";
      const s = Math.round(seconds);
      const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
      return h ? `${h}h ${m}m ${r}s` : m ? `${m}m ${r}s` : `${r}s`;
    },
    pct(ratio) { return ratio === null || ratio === undefined ? "—" : `${(ratio * 100).toFixed(1)}%`; },
    num(value, digits = 3) {
      return value === null || value === undefined ? "—" : Number(value).toFixed(digits);
    },
    date(iso) { return iso ? new Date(iso).toLocaleString() : "—"; },
    bytes(n) {
      if (!n && n !== 0) return "—";
      const units = ["B", "KiB", "MiB", "GiB"];
      let i = 0;
      while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
      return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
    },
  };

  function stateBadge(state) {
    return el("span", { class: `badge state-${state || "none"}` }, state || "—");
  }

  function progressBar(ratio, label) {
    const value = Math.max(0, Math.min(1, ratio || 0));
    return el("span", { class: "progress-line" },
      el("progress", { max: "1", value: String(value), "aria-label": label }),
      el("span", { class: "pct" }, `${Math.round(value * 100)}%`));
  }

  // --- the live stream --------------------------------------------------------------------

  /** The tenant's events over WS /ws/v1/events/. Opens live-only, remembers the last position
      it saw, and on every reconnect resumes with ?after= that position, so nothing is missed
      or repeated. A `resync` (too far behind) is caught up over GET /api/v1/events/ first.
      The status line says what is true: live, reconnecting (with the next try), or offline. */
  const live = {
    ws: null,
    last: null, // position of the newest event seen; null until one arrives
    attempts: 0,
    handlers: [],
    reconnectHandlers: [],
    resyncFrom: null,
    resyncs: 0, // how many times the server said "resync" (caught up over REST each time)
    timer: null,
    state: "connecting",

    on(handler) { this.handlers.push(handler); },
    onReconnect(handler) { this.reconnectHandlers.push(handler); },

    status(state, text) {
      this.state = state;
      const node = $("#live-status");
      if (!node) return;
      node.dataset.state = state;
      node.textContent = text;
    },

    dispatch(event) {
      if (this.last !== null && event.position <= this.last) return;
      this.last = event.position;
      for (const handler of this.handlers) {
        try { handler(event); } catch (err) { console.error(err); }
      }
    },

    async catchUp(after) {
      // Too far behind for the socket: read the REST feed from `after` to its end.
      let position = after;
      for (;;) {
        const page = await api("GET", `/api/v1/events/?after=${position}&limit=1000`);
        page.results.forEach((event) => this.dispatch(event));
        if (!page.results.length) break;
        position = page.next_after;
      }
      this.last = Math.max(this.last || 0, position);
    },

    url() {
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      const after = this.last === null ? "" : `?after=${this.last}`;
      return `${scheme}://${location.host}/ws/v1/events/${after}`;
    },

    async connect() {
      clearTimeout(this.timer);
      if (this.resyncFrom !== null) {
        this.status("reconnecting", "Catching up on missed events…");
        try {
          await this.catchUp(this.resyncFrom);
          this.resyncFrom = null;
        } catch (err) {
          return this.retry();
        }
      }
      const reconnecting = this.attempts > 0;
      let ws;
      try {
        ws = new WebSocket(this.url());
      } catch (err) {
        return this.retry();
      }
      this.ws = ws;
      ws.onopen = () => {
        this.attempts = 0;
        this.status("live", "Live");
        if (reconnecting) {
          // Events since `last` arrive through after=; with no position yet, reload views.
          for (const handler of this.reconnectHandlers) handler(this.last === null);
        }
      };
      ws.onmessage = (message) => {
        let data;
        try { data = JSON.parse(message.data); } catch (_) { return; }
        if (data.type === "event") this.dispatch(data.event);
        else if (data.type === "resync") { this.resyncFrom = data.after; this.resyncs += 1; }
      };
      ws.onclose = (event) => {
        if (this.ws !== ws) return;
        this.ws = null;
        // 4401: the session ended; 4403: no longer a member. Reconnecting would be refused.
        if (event.code === 4401) {
          this.status("offline", "Signed out: sign in again to see live updates.");
          return;
        }
        if (event.code === 4403) {
          this.status("offline", "You are no longer a member of this tenant.");
          return;
        }
        this.retry();
      };
    },

    async signedOut() {
      // A refused handshake looks like any drop; the REST API says whether the session ended.
      try { await api("GET", "/api/v1/me/"); return false; } catch (err) { return err.status === 401 || err.status === 403; }
    },

    async retry() {
      this.attempts += 1;
      if (this.attempts >= 3 && await this.signedOut()) {
        this.status("offline", "Signed out: sign in again to see live updates.");
        return;
      }
      const delay = Math.min(30, 2 ** Math.min(this.attempts - 1, 5));
      let left = delay;
      const tick = () => {
        this.status("reconnecting", `Reconnecting… (attempt ${this.attempts}, next try in ${left}s)`);
        if (left <= 0) { this.connect(); return; }
        left -= 1;
        this.timer = setTimeout(tick, 1000);
      };
      if (!navigator.onLine) this.status("offline", "Offline: waiting for the network…");
      tick();
    },

    start() {
      window.addEventListener("online", () => { if (!this.ws) { this.attempts = 0; this.connect(); } });
      this.connect();
    },
  };

  /** Run `fn` at most once per `ms` for bursts (many progress events → one refetch). */
  // For input (a slider): run once the input has rested for `ms`.
  function debounce(fn, ms = 250) {
    let timer = null;
    return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
  }

  // For live events: run at most once every `ms`, and once more after the last call. A
  // debounce would never run while events keep coming (a training task's progress ticks).
  function throttle(fn, ms = 250) {
    let last = 0;
    let timer = null;
    return (...args) => {
      const wait = last + ms - Date.now();
      if (wait <= 0) {
        last = Date.now();
        fn(...args);
      } else if (!timer) {
        timer = setTimeout(() => { timer = null; last = Date.now(); fn(...args); }, wait);
      }
    };
  }

  const pages = {};

  function boot() {
    document.querySelectorAll("[data-needs]").forEach((node) => {
      if (!may(node.dataset.needs)) node.hidden = true;
    });
    const tenant = $("#tenant-select");
    if (tenant) tenant.addEventListener("change", () => tenant.form.submit());
    live.start();
    const name = document.body.dataset.page;
    if (pages[name]) {
      pages[name](document.body.dataset.objectId).catch((err) => showError(err));
    }
  }

  window.Console = { api, all, upload, $, el, setText, fill, toast, showError, may, fmt,
                     stateBadge, progressBar, live, debounce, throttle, pages, ApiError };
  window.consoleLive = live; // for people and tests poking at the connection
  document.addEventListener("DOMContentLoaded", boot);
})();
