// kvmux dashboard: plain JS against the admin API of the same origin. Every value from the
// server is inserted as text (textContent), never as HTML, so stored data cannot script the page.
"use strict";

const state = { container: null, prefix: "", next: null, requests: [] };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(child == null ? "" : String(child)));
  }
  return node;
}

// The admin token, when the gateway needs one, lives in this tab's sessionStorage only: it is
// gone when the tab closes and is never sent anywhere but this origin.
const TOKEN_KEY = "kvmux-admin-token";

// Every call carries the token (if any) as a Bearer header, and every state-changing call says
// it is JSON: the gateway refuses admin writes without that type (cross-site forms cannot send it).
async function api(path, options) {
  const opts = Object.assign({}, options);
  const headers = new Headers(opts.headers || {});
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.set("Authorization", `Bearer ${token}`);
  const method = (opts.method || "GET").toUpperCase();
  if (method !== "GET" && method !== "HEAD") headers.set("Content-Type", "application/json");
  opts.headers = headers;
  const resp = await fetch(path, opts);
  const body = await resp.json().catch(() => ({}));
  if (resp.status === 401) askForToken();
  if (!resp.ok) throw new Error(body.error || `${resp.status} ${resp.statusText}`);
  return body;
}

function askForToken() {
  const form = document.getElementById("token-form");
  if (!form.hidden) return;
  form.hidden = false;
  document.getElementById("admin-token").focus();
}

function status(text) { document.getElementById("status").textContent = text; }

function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function ttl(secs) { return secs == null ? "none" : `${secs} s`; }

// ------------------------------------------------------------------ data

async function loadContainers() {
  const box = document.getElementById("containers");
  const { containers } = await api("/_kvmux/api/containers");
  box.replaceChildren();
  if (containers.length === 0) box.append(el("p", { class: "muted" }, "No data yet: write something through any SDK."));
  const byAccount = new Map();
  for (const c of containers) {
    if (c.scope.startsWith("huawei-stores")) continue; // a store is shown through its tables
    if (!byAccount.has(c.account)) byAccount.set(c.account, []);
    byAccount.get(c.account).push(c);
  }
  for (const [account, list] of byAccount) {
    box.append(el("div", { class: "account" }, `account ${account}`));
    for (const c of list) {
      const label = c.scope.startsWith("huawei-index/") ? `index ${c.name}` : c.name;
      const row = el("div", {
        class: "container-row", "data-id": c.id, "data-name": c.name, "data-vendor": c.vendor,
        onclick: () => openContainer(c, row),
      },
        el("span", {}, el("span", { class: `badge ${c.vendor}` }, c.vendor), label,
          el("span", { class: "muted" }, ` ${c.scope}`)),
        el("span", { class: "muted" }, `${c.items} · ${bytes(c.bytes)}`));
      box.append(row);
    }
  }
}

function openContainer(c, row) {
  document.querySelectorAll(".container-row.selected").forEach((r) => r.classList.remove("selected"));
  row.classList.add("selected");
  state.container = c;
  state.prefix = "";
  document.getElementById("prefix").value = "";
  document.getElementById("keys-title").textContent = `Keys of ${c.name} (${c.kind})`;
  loadKeys(false).catch((e) => status(e.message));
}

async function loadKeys(more) {
  const tbody = document.querySelector("#keys tbody");
  if (!more) { tbody.replaceChildren(); state.next = null; }
  const params = new URLSearchParams({ container: state.container.id, limit: "50" });
  if (state.prefix) params.set("prefix", state.prefix);
  if (more && state.next) params.set("after", state.next);
  const page = await api(`/_kvmux/api/items?${params}`);
  for (const item of page.items) {
    const row = el("tr", { class: "key-row", "data-key": item.key, onclick: () => openItem(item, row) },
      el("td", {}, item.key), el("td", {}, bytes(item.size)), el("td", {}, ttl(item.ttl_secs)));
    tbody.append(row);
  }
  if (tbody.children.length === 0) tbody.append(el("tr", {}, el("td", { colspan: "3", class: "muted" }, "no keys")));
  state.next = page.next;
  document.getElementById("keys-more").hidden = !page.next;
}

async function openItem(item, row) {
  document.querySelectorAll(".key-row.selected").forEach((r) => r.classList.remove("selected"));
  row.classList.add("selected");
  const params = new URLSearchParams({ container: state.container.id, key_hex: item.key_hex });
  const v = await api(`/_kvmux/api/item?${params}`);
  document.getElementById("value-key").textContent = v.key;
  document.getElementById("value-format").textContent = v.format + (v.truncated ? " (truncated)" : "");
  document.getElementById("value-size").textContent = `${bytes(v.size)} (value ${bytes(v.value_bytes)})`;
  document.getElementById("value-ttl").textContent =
    v.expires_at == null ? "none" : `${v.ttl_secs} s (expires at ${new Date(v.expires_at * 1000).toISOString()})`;
  document.getElementById("value").textContent = v.value;
}

// ------------------------------------------------------------------ requests

async function loadRequests() {
  const params = new URLSearchParams({ limit: "200" });
  if (document.getElementById("errors-only").checked) params.set("errors_only", "true");
  const { requests } = await api(`/_kvmux/requests?${params}`);
  state.requests = requests;
  const tbody = document.querySelector("#requests tbody");
  tbody.replaceChildren();
  for (const r of requests) {
    const failed = r.status >= 400 || r.code;
    const row = el("tr", { class: "request-row" + (failed ? " status-error" : ""), "data-seq": r.seq, onclick: () => showRequest(r, row) },
      el("td", {}, r.seq), el("td", {}, new Date(r.time_ms).toLocaleTimeString()), el("td", {}, r.dialect),
      el("td", {}, r.operation), el("td", {}, r.account || "-"), el("td", {}, r.status),
      el("td", {}, (r.code || "") + (r.fault ? ` (fault ${r.fault})` : "")), el("td", {}, `${r.latency_ms.toFixed(1)} ms`));
    tbody.append(row);
  }
}

function sentText(req) {
  const lines = [`${req.method} ${req.target}`];
  for (const [name, value] of req.headers) lines.push(`${name}: ${value}`);
  lines.push("", `(${req.body_bytes} body bytes)`);
  return lines.join("\n");
}

function showRequest(r, row) {
  document.querySelectorAll(".request-row.selected").forEach((x) => x.classList.remove("selected"));
  row.classList.add("selected");
  document.getElementById("request-detail").hidden = false;
  document.getElementById("detail-id").textContent = `#${r.seq} ${r.request_id}`;
  document.getElementById("detail-summary").textContent =
    `${r.dialect} ${r.operation} for ${r.account || "unknown account"}: HTTP ${r.status}${r.code ? `, ${r.code}` : ""}, ${r.latency_ms.toFixed(1)} ms`;
  const sig = r.signature;
  document.getElementById("signature").hidden = !sig;
  document.getElementById("no-signature").hidden = !!sig;
  if (sig) {
    document.getElementById("sig-reason").textContent = sig.reason;
    document.getElementById("sig-canonical").textContent = sig.canonical_request;
    document.getElementById("sig-string-to-sign").textContent = sig.string_to_sign;
    document.getElementById("sig-algorithm").textContent = sig.algorithm;
    document.getElementById("sig-key-id").textContent = sig.access_key_id;
    document.getElementById("sig-client").textContent = sig.client_signature;
    document.getElementById("sent-request").textContent = sentText(r.request);
  } else {
    document.getElementById("sent-request-plain").textContent = sentText(r.request);
  }
}

// ------------------------------------------------------------------ faults

async function loadFaults() {
  const { faults } = await api("/_kvmux/faults");
  const tbody = document.querySelector("#faults tbody");
  tbody.replaceChildren();
  for (const f of faults) {
    tbody.append(el("tr", { class: "fault-row" },
      el("td", {}, f.id), el("td", {}, f.dialect || "any"), el("td", {}, f.operation || "any"),
      el("td", {}, f.account || "any"), el("td", {}, f.probability), el("td", {}, f.error || "-"),
      el("td", {}, f.latency_ms == null ? "-" : `${f.latency_ms} ms`), el("td", {}, f.fired),
      el("td", {}, el("button", { onclick: () => api(`/_kvmux/faults/${f.id}`, { method: "DELETE" }).then(loadFaults) }, "remove"))));
  }
}

async function addFault(event) {
  event.preventDefault();
  const rule = { probability: Number(document.getElementById("fault-probability").value || 1) };
  for (const [field, id] of [["dialect", "fault-dialect"], ["operation", "fault-operation"], ["account", "fault-account"], ["error", "fault-error"]]) {
    const value = document.getElementById(id).value.trim();
    if (value) rule[field] = value;
  }
  const latency = document.getElementById("fault-latency").value;
  if (latency) rule.latency_ms = Number(latency);
  const text = document.getElementById("fault-error-text");
  try {
    await api("/_kvmux/faults", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(rule) });
    text.textContent = "";
  } catch (e) {
    text.textContent = e.message;
  }
  await loadFaults();
}

// ------------------------------------------------------------------ wiring

function show(viewId) {
  for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.view === viewId);
  for (const view of document.querySelectorAll(".view")) view.hidden = view.id !== viewId;
  const load = { "view-data": loadContainers, "view-requests": loadRequests, "view-faults": loadFaults }[viewId];
  load().catch((e) => status(e.message));
}

document.addEventListener("DOMContentLoaded", () => {
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => show(tab.dataset.view));
  document.getElementById("refresh-containers").addEventListener("click", () => loadContainers().catch((e) => status(e.message)));
  document.getElementById("key-search").addEventListener("submit", (event) => {
    event.preventDefault();
    if (!state.container) return;
    state.prefix = document.getElementById("prefix").value;
    loadKeys(false).catch((e) => status(e.message));
  });
  document.getElementById("keys-more").addEventListener("click", () => loadKeys(true).catch((e) => status(e.message)));
  document.getElementById("refresh-requests").addEventListener("click", () => loadRequests().catch((e) => status(e.message)));
  document.getElementById("errors-only").addEventListener("change", () => loadRequests().catch((e) => status(e.message)));
  document.getElementById("clear-requests").addEventListener("click", () =>
    api("/_kvmux/requests", { method: "DELETE" }).then(loadRequests).catch((e) => status(e.message)));
  // Live mode re-reads the list every two seconds while the Requests tab is shown.
  setInterval(() => {
    const visible = !document.getElementById("view-requests").hidden;
    if (visible && document.getElementById("live").checked) loadRequests().catch((e) => status(e.message));
  }, 2000);
  document.getElementById("fault-form").addEventListener("submit", addFault);
  document.getElementById("clear-faults").addEventListener("click", () =>
    api("/_kvmux/faults", { method: "DELETE" }).then(loadFaults).catch((e) => status(e.message)));
  document.getElementById("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = document.getElementById("admin-token").value.trim();
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
    location.reload();
  });
  // Without the token, health says only "ok" (it is public for probes).
  api("/_kvmux/health").then((h) => status(h.version ? `v${h.version} · dialects: ${h.dialects.join(", ")}` : "admin token needed")).catch((e) => status(e.message));
  show("view-data");
});
