/**
 * The dashboard page: state over REST first, then live over the hub's WebSocket.
 *
 * Each data source is a Feed: it loads its REST snapshot, buffers live events that arrive
 * while the snapshot is in flight and replays them after it, and reloads when the client
 * reports a "reset" (the hub could not replay what was missed). Rendering is keyed and
 * batched per animation frame, so a state change updates one row in place.
 */
import { connect } from "../hub/hub-client.js";
import * as M from "./model.js";
import * as A from "./alerts.js";
import { setupBrowserNotifications } from "./notify.js";

const config = JSON.parse(document.getElementById("dashboard-config").textContent);
const $ = (id) => document.getElementById(id);
// Desktop notifications: permission asked only from the button's click (notify.js).
const browserNotify = setupBrowserNotifications({
  button: $("browser-notify"), loadRules: () => api(`${config.api.notifications}/rules`) });
const MAX_JOB_ROWS = 400;
const SAMPLE_EVERY_MS = 30_000;
const HISTORY_KEY = "dashboard.metrics.v1";

const store = {
  jobs: new Map(),
  nodes: new Map(),
  metricsRaw: null,
  history: loadHistory(),
  notifications: new Map(),
  alerts: new Map(),
  lastEventAt: undefined,
  lastMetricsEventAt: 0,
  streams: {}, // monitor stream -> {updatedAt, interval}: what says the data is current
  clockOffset: 0, // ms the page's clock is ahead of the hub's
};

// --- small DOM helpers -----------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) if (child != null) node.append(child);
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

function setText(node, value) {
  const textValue = value == null ? "" : String(value);
  if (node.textContent !== textValue) node.textContent = textValue;
}

function flash(node) {
  node.classList.remove("flash");
  void node.offsetWidth; // restart the animation
  node.classList.add("flash");
}

let toastTimer = null;
function toast(message, tone = "info") {
  const box = $("toast");
  box.textContent = message;
  box.dataset.tone = tone;
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, 4000);
}

// --- REST --------------------------------------------------------------------------------

async function api(url, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") {
    headers["X-CSRFToken"] = config.csrfToken;
    headers["Content-Type"] = "application/json";
  }
  const response = await fetch(url, {
    method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) {
    // The session ended: back to the login page, then here.
    window.location.assign(`/accounts/login/?next=${encodeURIComponent(location.pathname + location.search)}`);
  }
  if (!response.ok) {
    const error = new Error(`${method} ${url}: HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return response.status === 204 ? null : response.json();
}

// --- feeds: REST snapshot + live events ---------------------------------------------------

class Feed {
  constructor(name, { url, applySnapshot, applyEvent, optional = false }) {
    Object.assign(this, { name, url, applySnapshot, applyEvent, optional });
    this.loading = false;
    this.again = false;
    this.buffer = [];
    this.loadedAt = 0;
    this.loadStartedAt = 0;
    this.live = false; // one of its channels is subscribed, so events after now will come
    this.failed = false;
    this.retryTimer = null;
  }

  async reload() {
    if (!this.url) return;
    if (this.loading) { this.again = true; return; }
    this.loading = true;
    this.again = false;
    this.loadStartedAt = Date.now();
    clearTimeout(this.retryTimer);
    try {
      const body = await api(this.url);
      this.applySnapshot(body);
      this.loadedAt = Date.now();
      this.failed = false;
    } catch (err) {
      this.failed = true;
      if (!(this.optional && err.status === 404)) {
        console.warn(`dashboard: loading ${this.name} failed`, err);
        this.retryTimer = setTimeout(() => this.reload(), 5000);
      }
    } finally {
      this.loading = false;
      const buffered = this.buffer.splice(0);
      for (const msg of buffered) this.applyEvent(msg);
      schedule(this.name);
      if (this.again) this.reload();
    }
  }

  handle(msg) {
    store.lastEventAt = Date.now();
    if (M.MONITOR_STREAMS.includes(this.name)) M.noteStream(store.streams, this.name, { updatedAt: msg.timestamp });
    if (this.loading) this.buffer.push(msg);
    else { this.applyEvent(msg); schedule(this.name); }
  }
}

const feeds = {
  jobs: new Feed("jobs", {
    url: config.api.jobs,
    applySnapshot(body) {
      if (body && body.source) store.source = body.source;
      M.noteStream(store.streams, "jobs", { updatedAt: body?.updated_at });
      const next = new Map();
      for (const raw of M.extractList(body, "jobs")) {
        const job = M.normJob(raw);
        if (job) next.set(job.id, { ...(store.jobs.get(job.id) || {}), ...job });
      }
      store.jobs = next;
    },
    applyEvent(msg) {
      const result = M.applyJobEvent(store.jobs, msg);
      if (result && msg.type === "job_state_changed") pendingFlash.add(result.id);
    },
  }),
  nodes: new Feed("nodes", {
    url: config.api.nodes,
    applySnapshot(body) {
      M.noteStream(store.streams, "nodes", { updatedAt: body?.updated_at });
      const next = new Map();
      for (const raw of M.extractList(body, "nodes")) {
        const node = M.normNode(raw);
        if (node) next.set(node.name, node);
      }
      store.nodes = next;
    },
    applyEvent(msg) { M.applyNodeEvent(store.nodes, msg); },
  }),
  metrics: new Feed("metrics", {
    url: config.api.metrics,
    applySnapshot(body) {
      if (!body || typeof body !== "object") return;
      const series = M.extractList(body, "history", "samples", "series");
      for (const raw of series) addSample(raw, raw.timestamp ?? raw.time ?? raw.t);
      // GET /api/cluster/metrics: {metrics: <metrics_update data> | null, updated_at, source}
      const current = "metrics" in body ? body.metrics : (body.current ?? (Array.isArray(body) ? null : body));
      M.noteStream(store.streams, "metrics", { updatedAt: body.updated_at });
      if (current && typeof current === "object") {
        M.noteMetricsStreams(store.streams, current);
        store.metricsRaw = current;
        mergeNodeFigures(current);
        addSample(current, current.collected_at ?? current.timestamp ?? body.timestamp);
      }
    },
    applyEvent(msg) {
      if (msg.type !== "metrics_update") return;
      store.metricsRaw = msg.data || {};
      store.lastMetricsEventAt = Date.now();
      M.noteMetricsStreams(store.streams, store.metricsRaw);
      if (mergeNodeFigures(store.metricsRaw)) schedule("nodes");
      addSample(store.metricsRaw, msg.data?.collected_at ?? msg.timestamp);
    },
  }),
  notifications: new Feed("notifications", {
    url: `${config.api.notifications}?limit=100`,
    applySnapshot(body) {
      const next = new Map();
      for (const raw of M.extractList(body, "notifications")) {
        const n = M.normNotification(raw);
        if (n) next.set(String(n.id), n);
      }
      store.notifications = next;
    },
    applyEvent(msg) {
      // The hub sends only what this user may see: their own on user:<name>, cluster-wide
      // ones on `notifications` (nothing to filter here).
      if (msg.type !== "notification") return;
      const n = M.normNotification(msg.data);
      if (!n) return;
      const known = store.notifications.get(String(n.id));
      if (!known) { pendingFlash.add(`n:${n.id}`); browserNotify.notify(n); }
      // An event never turns a notification read on this page back to unread.
      store.notifications.set(String(n.id), known ? { ...n, read: known.read || n.read } : n);
    },
  }),
  alerts: new Feed("alerts", {
    url: config.isStaff ? config.api.alerts ?? null : null,
    optional: true,
    applySnapshot(body) { store.alerts = A.alertsFromSnapshot(body); },
    applyEvent(msg) { A.applyAlertEvent(store.alerts, msg); },
  }),
};

// channel -> feeds, and feed -> channels (with HUB_PRIVATE_JOBS a user's jobs come on user:<name>).
const PLAN = M.channelPlan(config);
const FEED_CHANNELS = M.feedChannels(PLAN);
const subscribedChannels = new Set();

// --- metrics history ---------------------------------------------------------------------

function loadHistory() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(HISTORY_KEY) || "[]");
    return Array.isArray(saved) ? saved.filter((s) => Date.now() - s.t < M.HOUR_MS) : [];
  } catch (_) {
    return [];
  }
}

function saveHistory() {
  try { sessionStorage.setItem(HISTORY_KEY, JSON.stringify(store.history)); } catch (_) { /* full or off */ }
}

/** Metrics carry per-node allocations (memory, GPUs) that node events do not: merge them. */
function mergeNodeFigures(metrics) {
  const perNode = Array.isArray(metrics.per_node) ? metrics.per_node : [];
  for (const raw of perNode) {
    const figures = M.normNode(raw);
    if (figures) store.nodes.set(figures.name, { ...(store.nodes.get(figures.name) || {}), ...figures });
  }
  return perNode.length > 0;
}

function addSample(raw, when) {
  const figures = M.normMetrics(raw, { nodes: store.nodes, jobs: store.jobs });
  M.pushSample(store.history, { ...figures, t: M.toMillis(when) ?? Date.now() });
  saveHistory();
}

// Without a metrics publisher, sample what the job and node stores say.
setInterval(() => {
  if (Date.now() - store.lastMetricsEventAt < SAMPLE_EVERY_MS) return;
  if (!store.jobs.size && !store.nodes.size) return;
  addSample(store.metricsRaw || {}, undefined);
  schedule("metrics");
}, SAMPLE_EVERY_MS);

// --- render scheduling --------------------------------------------------------------------

const dirty = new Set();
const pendingFlash = new Set();
let frame = null;

function schedule(...parts) {
  for (const part of parts) dirty.add(part);
  if (frame !== null) return;
  const run = () => { frame = null; render(); };
  // Hidden tabs get no animation frames; a timer keeps the page current for when it returns.
  frame = document.hidden ? setTimeout(run, 250) : requestAnimationFrame(run);
}

function render() {
  const parts = new Set(dirty);
  dirty.clear();
  if (parts.has("jobs")) { renderFilters(); renderJobs(); }
  if (parts.has("nodes")) renderNodes();
  if (parts.has("jobs") || parts.has("nodes") || parts.has("metrics")) renderMetrics();
  if (parts.has("notifications")) renderNotifications();
  if (parts.has("alerts")) renderAlerts();
  if (parts.has("tick")) { renderJobs(); renderNotifications(); renderFooter(); }
  pendingFlash.clear();
}

// --- jobs --------------------------------------------------------------------------------

const filters = readFilters();
const jobRows = new Map();

function readFilters() {
  const params = new URLSearchParams(location.search);
  return { user: params.get("user") || "", partition: params.get("partition") || "",
    state: params.get("state") || "", q: params.get("q") || "" };
}

function writeFilters() {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(filters)) if (value) params.set(key, value);
  const query = params.toString();
  history.replaceState(null, "", query ? `?${query}` : location.pathname);
}

function fillSelect(select, values, current, labels = {}) {
  const wanted = [...values];
  if (current && !wanted.includes(current)) wanted.push(current);
  const existing = [...select.options].slice(1 + (select.dataset.fixed ? Number(select.dataset.fixed) : 0)).map((o) => o.value);
  if (existing.join("\u0000") !== wanted.join("\u0000")) {
    const keep = 1 + (select.dataset.fixed ? Number(select.dataset.fixed) : 0);
    while (select.options.length > keep) select.remove(keep);
    for (const value of wanted) select.add(new Option(labels[value] || value, value));
  }
  if (select.value !== current) select.value = current;
}

function renderFilters() {
  const jobs = [...store.jobs.values()];
  const userSelect = $("filter-user");
  if (!userSelect.dataset.fixed) {
    userSelect.add(new Option(`Mine (${config.user})`, config.user), 1);
    userSelect.dataset.fixed = "1";
  }
  fillSelect(userSelect, M.distinct(jobs, "user").filter((u) => u !== config.user), filters.user === config.user ? "" : filters.user);
  if (filters.user === config.user) userSelect.value = config.user;
  fillSelect($("filter-partition"), M.distinct(jobs, "partition"), filters.partition);
  const stateSelect = $("filter-state");
  if (!stateSelect.dataset.fixed) {
    stateSelect.add(new Option("Active (pending + running)", "ACTIVE"), 1);
    stateSelect.dataset.fixed = "1";
  }
  const states = M.distinct(jobs, "state");
  states.sort((a, b) => (M.JOB_STATES.indexOf(a) + 1 || 99) - (M.JOB_STATES.indexOf(b) + 1 || 99));
  const counts = {};
  for (const job of jobs) counts[job.state] = (counts[job.state] || 0) + 1;
  const labels = Object.fromEntries(states.map((s) => [s, `${titleCase(s)} (${counts[s] || 0})`]));
  fillSelect(stateSelect, states, filters.state === "ACTIVE" ? "" : filters.state, labels);
  if (filters.state === "ACTIVE") stateSelect.value = "ACTIVE";
  for (const option of stateSelect.options) if (labels[option.value]) setText(option, labels[option.value]);
}

function titleCase(state) {
  return state.charAt(0) + state.slice(1).toLowerCase().replace(/_/g, " ");
}

function statePill(state, tone) {
  return el("span", { class: `pill tone-${tone}`, text: titleCase(state) });
}

function jobRow(job) {
  const tr = el("tr", { "data-job-id": job.id });
  for (const cls of ["col-id mono", "col-name", "col-user", "col-partition", "col-state", "col-nodes", "col-res num", "col-time num"]) {
    tr.append(el("td", { class: cls }));
  }
  return tr;
}

function fillJobRow(tr, job, now) {
  const tone = M.jobTone(job.state);
  const time = M.jobTime(job, now);
  const resources = [job.cpus !== undefined ? String(job.cpus) : "", job.gpus ? `${job.gpus} GPU` : ""].filter(Boolean).join(" · ");
  const where = tone === "pending" ? (job.reason && job.reason !== "None" ? job.reason : "") : (job.nodes || "");
  const sig = [job.state, job.name, job.user, job.partition, where, resources, time.label].join("|");
  if (tr.dataset.sig === sig) return false;
  const stateChanged = tr.dataset.state !== undefined && tr.dataset.state !== job.state;
  tr.dataset.sig = sig;
  tr.dataset.state = job.state;
  tr.dataset.tone = tone;
  const cells = tr.children;
  setText(cells[0], job.id);
  setText(cells[1], job.name || "—");
  cells[1].title = job.name || "";
  setText(cells[2], job.user || "");
  setText(cells[3], job.partition || "");
  if (!cells[4].firstChild || cells[4].firstChild.textContent !== titleCase(job.state)) {
    cells[4].replaceChildren(statePill(job.state, tone));
  }
  setText(cells[5], where);
  cells[5].classList.toggle("muted", tone === "pending");
  cells[5].title = where;
  setText(cells[6], resources);
  setText(cells[7], time.label);
  cells[7].title = time.hint;
  return stateChanged;
}

function renderJobs() {
  const now = Date.now();
  const rows = M.filterJobs(store.jobs, filters);
  const shown = rows.slice(0, MAX_JOB_ROWS);
  const body = $("jobs-body");
  const keep = new Set(shown.map((j) => j.id));
  for (const [id, tr] of jobRows) if (!keep.has(id)) { tr.remove(); jobRows.delete(id); }
  let previous = null;
  for (const job of shown) {
    let tr = jobRows.get(job.id);
    if (!tr) { tr = jobRow(job); jobRows.set(job.id, tr); }
    const changed = fillJobRow(tr, job, now);
    if (changed || pendingFlash.has(job.id)) flash(tr);
    const expected = previous ? previous.nextSibling : body.firstChild;
    if (expected !== tr) body.insertBefore(tr, expected);
    previous = tr;
  }
  const total = store.jobs.size;
  setText($("jobs-count"), rows.length === total ? `${total}` : `${rows.length} of ${total}`);
  $("jobs-empty").hidden = shown.length > 0 || !feeds.jobs.loadedAt;
  const more = $("jobs-more");
  more.hidden = rows.length <= MAX_JOB_ROWS;
  setText(more, `Showing the newest ${MAX_JOB_ROWS} of ${rows.length} jobs; filter to narrow down.`);
}

function onFilterChange(event) {
  const { name, value } = event.target;
  if (!(name in filters)) return;
  filters[name] = value;
  writeFilters();
  schedule("jobs");
}
$("job-filters").addEventListener("change", onFilterChange);
$("job-filters").addEventListener("input", (event) => { if (event.target.name === "q") onFilterChange(event); });
$("job-filters").addEventListener("submit", (event) => event.preventDefault());
$("filter-q").value = filters.q;

// --- nodes -------------------------------------------------------------------------------

const nodeTiles = new Map();
const NODE_TONES = ["idle", "mixed", "allocated", "drain", "down", "reserved", "other"];
const TONE_LABELS = { idle: "Idle", mixed: "Mixed", allocated: "Allocated", drain: "Draining", down: "Down", reserved: "Reserved", other: "Other" };

function bar(label) {
  const fill = el("span", { class: "bar-fill" });
  const value = el("span", { class: "bar-value" });
  const wrap = el("div", { class: "bar", "data-bar": label.toLowerCase() },
    el("span", { class: "bar-label", text: label }), el("span", { class: "bar-track" }, fill), value);
  return { wrap, fill, value };
}

function setBar(b, used, total, formatter = (u, t) => `${u} / ${t}`) {
  const known = total !== undefined && total > 0;
  b.wrap.hidden = !known;
  if (!known) return;
  const pct = Math.max(0, Math.min(100, (100 * (used || 0)) / total));
  b.fill.style.width = `${pct.toFixed(1)}%`;
  b.fill.dataset.level = pct >= 90 ? "high" : pct >= 60 ? "mid" : "low";
  setText(b.value, formatter(used || 0, total));
  b.wrap.title = `${Math.round(pct)}% allocated`;
}

function nodeTile(node) {
  const name = el("span", { class: "node-name mono" });
  const state = el("span", { class: "node-state" });
  const reason = el("p", { class: "node-reason" });
  const cpu = bar("CPU");
  const mem = bar("Mem");
  const gpu = bar("GPU");
  const tile = el("article", { class: "node", "data-node": node.name },
    el("header", {}, name, state), cpu.wrap, mem.wrap, gpu.wrap, reason);
  return { tile, name, state, reason, cpu, mem, gpu };
}

function renderNodes() {
  const grid = $("nodes-grid");
  const nodes = [...store.nodes.values()].sort(M.compareNodes);
  const keep = new Set(nodes.map((n) => n.name));
  for (const [name, t] of nodeTiles) if (!keep.has(name)) { t.tile.remove(); nodeTiles.delete(name); }
  const counts = {};
  let previous = null;
  for (const node of nodes) {
    let t = nodeTiles.get(node.name);
    if (!t) { t = nodeTile(node); nodeTiles.set(node.name, t); }
    const tone = M.nodeTone(node.state, node.flags);
    counts[tone] = (counts[tone] || 0) + 1;
    if (t.tile.dataset.state !== undefined && t.tile.dataset.state !== node.state) flash(t.tile);
    t.tile.dataset.state = node.state;
    t.tile.dataset.tone = tone;
    setText(t.name, node.name);
    const flags = (node.flags || []).filter((f) => f && !node.state.includes(f.toUpperCase()));
    setText(t.state, titleCase(node.state.split("+")[0]) + (node.state.includes("+") || flags.length ? "+" : ""));
    t.state.title = [node.state, ...flags].join("+");
    setBar(t.cpu, node.cpusAlloc, node.cpusTotal);
    setBar(t.mem, node.memAlloc, node.memTotal, M.formatMegabytesPair);
    setBar(t.gpu, node.gpusAlloc, node.gpusTotal);
    setText(t.reason, node.reason || "");
    t.reason.hidden = !node.reason;
    t.tile.title = [node.name, [node.state, ...flags].join("+"), node.partitions && `partitions: ${node.partitions}`,
      node.cpuLoadPercent !== undefined ? `load ${Math.round(node.cpuLoadPercent)}%` : node.cpuLoad !== undefined && `load ${node.cpuLoad}`]
      .filter(Boolean).join(" · ");
    const expected = previous ? previous.nextSibling : grid.firstChild;
    if (expected !== t.tile) grid.insertBefore(t.tile, expected);
    previous = t.tile;
  }
  setText($("nodes-count"), nodes.length ? String(nodes.length) : "");
  $("nodes-empty").hidden = nodes.length > 0 || !feeds.nodes.loadedAt;
  $("nodes-legend").replaceChildren(...NODE_TONES.filter((tone) => counts[tone]).map((tone) =>
    el("span", { class: `legend-item tone-${tone}` }, el("span", { class: "swatch" }), `${TONE_LABELS[tone]} ${counts[tone]}`)));
}

// --- metrics -----------------------------------------------------------------------------

const METRIC_CARDS = [
  { key: "jobsRunning", label: "Running jobs", tone: "running", format: (v) => (v ?? "–"), detail: (m) => (m.jobsTotal !== undefined ? `of ${m.jobsTotal} listed` : "") },
  { key: "jobsPending", label: "Pending jobs", tone: "pending", format: (v) => (v ?? "–"), detail: () => "waiting in queue" },
  { key: "cpuUtil", label: "CPU allocated", tone: "cpu", format: M.formatPercent, max: 100, detail: (m) => (m.cpusTotal ? `${m.cpusAlloc ?? 0} / ${m.cpusTotal} cores` : "") },
  { key: "memUtil", label: "Memory allocated", tone: "mem", format: M.formatPercent, max: 100, detail: (m) => (m.memTotal ? M.formatMegabytesPair(m.memAlloc, m.memTotal) : "") },
  { key: "gpuUtil", label: "GPU allocated", tone: "gpu", format: M.formatPercent, max: 100, optional: (m) => !m.gpusTotal && m.gpuUtil === undefined, detail: (m) => (m.gpusTotal ? `${m.gpusAlloc ?? 0} / ${m.gpusTotal} GPUs` : "") },
  { key: "nodesUp", label: "Nodes available", tone: "nodes", format: (v) => (v ?? "–"), detail: (m) => (m.nodesTotal !== undefined ? `of ${m.nodesTotal}${m.nodesDown ? ` · ${m.nodesDown} down/draining` : ""}` : "") },
];
const metricCards = new Map();

function metricCard(def) {
  const value = el("span", { class: "metric-value" });
  const detail = el("span", { class: "metric-detail" });
  const chart = svg("svg", { class: "spark", viewBox: "0 0 120 32", preserveAspectRatio: "none", "aria-hidden": "true" });
  const area = svg("path", { class: "spark-area" });
  const line = svg("path", { class: "spark-line", "vector-effect": "non-scaling-stroke" });
  chart.append(area, line);
  const card = el("div", { class: `metric tone-${def.tone}`, "data-metric": def.key },
    el("span", { class: "metric-label", text: def.label }), value, detail, chart);
  return { card, value, detail, area, line, chart };
}

function withNodesUp(m) {
  return { ...m, nodesUp: m.nodesTotal !== undefined ? m.nodesTotal - (m.nodesDown || 0) : undefined };
}

function renderMetrics() {
  const section = $("metrics");
  const now = Date.now();
  const current = withNodesUp(M.normMetrics(store.metricsRaw || {}, { nodes: store.nodes, jobs: store.jobs }));
  const history = store.history.map(withNodesUp);
  for (const def of METRIC_CARDS) {
    let c = metricCards.get(def.key);
    if (!c) { c = metricCard(def); metricCards.set(def.key, c); section.append(c.card); }
    c.card.hidden = Boolean(def.optional && def.optional(current));
    setText(c.value, def.format(current[def.key]));
    setText(c.detail, def.detail(current));
    const points = history.map((s) => ({ t: s.t, v: s[def.key] }));
    if (Number.isFinite(current[def.key])) points.push({ t: now, v: current[def.key] });
    const paths = M.sparklinePaths(points, { now, min: 0, max: def.max });
    c.line.setAttribute("d", paths ? paths.line : "");
    c.area.setAttribute("d", paths ? paths.area : "");
    c.chart.setAttribute("aria-label", `${def.label}, last hour`);
  }
}

// --- notifications -----------------------------------------------------------------------

const notificationItems = new Map();

function notificationItem(n) {
  const title = el("strong", { class: "n-title" });
  const message = el("p", { class: "n-message" });
  const time = el("time", { class: "n-time" });
  const button = el("button", { type: "button", class: "n-read link-button", text: "Mark read" });
  button.addEventListener("click", () => markRead([n.id]));
  const li = el("li", { class: "notification", "data-notification-id": String(n.id) },
    el("span", { class: "n-dot", "aria-hidden": "true" }),
    el("div", { class: "n-body" }, el("div", { class: "n-head" }, title, time), message, button));
  return { li, title, message, time, button };
}

function renderNotifications() {
  const list = $("notifications-list");
  const items = M.sortNotifications([...store.notifications.values()]);
  const keep = new Set(items.map((n) => String(n.id)));
  for (const [id, item] of notificationItems) if (!keep.has(id)) { item.li.remove(); notificationItems.delete(id); }
  let previous = null;
  for (const n of items.slice(0, 100)) {
    const id = String(n.id);
    let item = notificationItems.get(id);
    if (!item) { item = notificationItem(n); notificationItems.set(id, item); }
    item.li.dataset.read = String(n.read);
    item.li.dataset.severity = n.severity;
    item.li.dataset.scope = M.isClusterWide(n) ? "cluster" : "user";
    item.li.title = M.isClusterWide(n) ? "For everyone on the cluster" : "";
    item.li.classList.toggle("unread", !n.read);
    setText(item.title, n.title);
    setText(item.message, n.message);
    item.message.hidden = !n.message;
    setText(item.time, M.formatAgo(n.created));
    if (n.created) item.time.dateTime = new Date(n.created).toISOString();
    item.button.hidden = n.read;
    if (pendingFlash.has(`n:${id}`)) flash(item.li);
    const expected = previous ? previous.nextSibling : list.firstChild;
    if (expected !== item.li) list.insertBefore(item.li, expected);
    previous = item.li;
  }
  const unread = items.filter((n) => !n.read).length;
  const badge = $("unread-badge");
  badge.hidden = unread === 0;
  setText(badge, unread > 99 ? "99+" : String(unread));
  $("notifications-toggle").setAttribute("aria-label", `Notifications, ${unread} unread`);
  setText($("notifications-count"), unread ? `${unread} unread` : "");
  $("mark-all-read").hidden = unread === 0;
  $("notifications-empty").hidden = items.length > 0;
  document.title = unread ? `(${unread}) Cluster hub` : "Cluster hub";
}

async function markRead(ids, { all = false } = {}) {
  const targets = ids.map(String).filter((id) => store.notifications.get(id) && !store.notifications.get(id).read);
  for (const id of targets) store.notifications.get(id).read = true; // optimistic
  schedule("notifications");
  const remote = targets.filter((id) => !store.notifications.get(id).local);
  if (!remote.length) return;
  let failed = [];
  if (all) {
    try {
      await api(`${config.api.notifications}/read`, { method: "POST", body: {} });
    } catch (_) {
      failed = remote;
    }
  } else {
    const results = await Promise.allSettled(remote.map((id) =>
      api(`${config.api.notifications}/${encodeURIComponent(id)}/read`, { method: "POST", body: {} })));
    failed = remote.filter((_, i) => results[i].status === "rejected");
  }
  for (const id of failed) {
    const n = store.notifications.get(id);
    if (n) n.read = false;
  }
  if (failed.length) toast(`Could not mark ${failed.length} notification${failed.length > 1 ? "s" : ""} read`, "error");
  schedule("notifications");
}

$("mark-all-read").addEventListener("click", () =>
  markRead([...store.notifications.values()].filter((n) => !n.read).map((n) => n.id), { all: true }));
$("notifications-toggle").addEventListener("click", () => {
  const panel = $("notifications");
  panel.scrollIntoView({ behavior: "smooth", block: "start" });
  flash(panel);
});

// --- alerts ------------------------------------------------------------------------------

// dashboard/static/dashboard/alerts.js: acknowledged on every staff page when the stream says so.
const alertActions = config.api.alerts ? A.alertActions({
  post: (url) => api(url, { method: "POST", body: {} }), listUrl: config.api.alerts,
  changed: () => schedule("alerts"), failed: (message) => toast(message, "error"),
}) : null;

function renderAlerts() {
  A.renderAlerts($("alerts"), store.alerts, { actions: alertActions, canAcknowledge: !!config.isStaff, formatAgo: M.formatAgo });
}

// --- connection --------------------------------------------------------------------------

let countdownTimer = null;
let connectionState = "connecting";

function showConnection(state, detail = {}) {
  const box = $("connection");
  box.dataset.state = state;
  connectionState = state;
  clearInterval(countdownTimer);
  const label = $("connection-text");
  $("reconnect-now").hidden = state !== "reconnecting";
  box.title = detail.code ? `WebSocket closed (${detail.code}${detail.reason ? `: ${detail.reason}` : ""})` : "WebSocket connection";
  if (state === "connected") renderFreshness();
  else if (state === "reconnecting") {
    const until = Date.now() + (detail.delay || 0);
    const tick = () => {
      const left = Math.ceil((until - Date.now()) / 1000);
      setText(label, left > 0 ? `Reconnecting in ${left}s` : "Reconnecting…");
    };
    tick();
    countdownTimer = setInterval(tick, 500);
  } else if (state === "closed") setText(label, detail.authFailed ? "Signed out" : "Offline");
  else setText(label, "Connecting…");
}

/**
 * "Live" (green) only while the socket is up AND the monitor's streams are current; with the
 * socket up but the data old, amber and "data N s old" (M.dataFreshness decides).
 */
function renderFreshness() {
  const box = $("connection");
  const freshness = M.dataFreshness(store.streams, Date.now() - store.clockOffset);
  box.dataset.freshness = freshness.state;
  if (connectionState !== "connected") return;
  const stale = freshness.state === "stale";
  setText($("connection-text"), stale ? M.formatDataAge(freshness.age) : "Live");
  box.title = stale ? `Connected, but no update from the Slurm monitor for ${freshness.late.join(", ")}`
    : "WebSocket connection";
}

function noteServerClock(timestamp) {
  const offset = M.clockOffset(Date.now(), timestamp);
  if (offset !== undefined) store.clockOffset = offset;
}

$("reconnect-now").addEventListener("click", () => hub.reconnectNow());

function renderFooter() {
  const parts = [];
  if (hub.server) parts.push(`hub ${hub.server}`);
  if (hub.clientId) parts.push(`client ${hub.clientId}`);
  if (store.source) parts.push(`data from ${store.source === "mock" ? "the simulated cluster" : store.source}`);
  setText($("footer-server"), parts.join(" · "));
  setText($("footer-updated"), store.lastEventAt ? `last event ${M.formatAgo(store.lastEventAt)}` : "");
}

const hub = connect(config.wsUrl);
window.dashboardHub = hub; // for the console and the browser tests

let authFailed = false;
hub.on("state", (detail) => {
  if (detail.state === "connected") noteServerClock(detail.timestamp);
  showConnection(detail.state, { ...detail, authFailed });
  if (detail.state === "connected" && detail.reconnected) toast("Reconnected", "ok");
  renderFooter();
});
hub.on("heartbeat", (frame) => noteServerClock(frame.timestamp));
hub.on("auth_failed", () => {
  authFailed = true;
  toast("Your session has ended. Sign in again to continue.", "error");
});
hub.on("subscribed", ({ channel, initial }) => {
  // Load a feed's snapshot once its events flow (on every channel that serves it), so none
  // falls between the two; a snapshot taken earlier (the hub was slow) is taken again.
  if (!initial) return;
  subscribedChannels.add(channel);
  for (const name of PLAN[channel] || []) {
    const feed = feeds[name];
    if (!feed || feed.live || !FEED_CHANNELS[name].every((c) => subscribedChannels.has(c))) continue;
    feed.live = true;
    feed.reload();
  }
});
hub.on("reset", ({ channel }) => {
  for (const name of PLAN[channel] || []) if (feeds[name]) feeds[name].reload();
});
hub.on("recovered", ({ recovered, missed }) => {
  if (recovered && missed) toast(`Caught up on ${missed} missed update${missed > 1 ? "s" : ""}`, "ok");
});
hub.on("error", (frame) => {
  if (frame.code && frame.code !== "not_authenticated") console.warn("hub error", frame);
});

for (const channel of Object.keys(PLAN)) {
  hub.subscribe(channel, (msg) => {
    const name = M.feedFor(PLAN, channel, msg);
    if (name) feeds[name].handle(msg);
  });
}

// Normally each feed loads when its subscription starts; if the hub is slow or down, show
// what REST knows meanwhile (and load again once live).
setTimeout(() => { for (const feed of Object.values(feeds)) if (!feed.live && !feed.loadStartedAt) feed.reload(); }, 1500);
schedule("jobs", "nodes", "metrics", "notifications", "alerts");
setInterval(() => schedule("tick"), 5000);
setInterval(renderFreshness, 1000);
document.addEventListener("visibilitychange", () => { if (!document.hidden) schedule("jobs", "nodes", "metrics", "notifications", "tick"); });
