/**
 * The dashboard's pure part: normalise REST rows and event payloads into one shape, keep the
 * stores, format values, build sparklines. No DOM; tests/js/dashboard-model.test.mjs covers it.
 *
 * The normalisers read exactly the wire's field names (docs/protocol.md; slurm_monitor/events.py
 * builders, hub/notify/notifications.py to_dict): tests/js feeds them the fixtures the Python suite
 * generates from those builders (tests/js/fixtures/events), so a renamed field fails a test
 * instead of being guessed at.
 */

export const HOUR_MS = 60 * 60 * 1000;

function num(value) {
  if (value === undefined || value === null || value === "") return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}

function sumOf(...values) {
  const known = values.filter((v) => v !== undefined);
  return known.length ? known.reduce((a, b) => a + b, 0) : undefined;
}

/** A state name, upper-case; Slurm gives "RUNNING", ["RUNNING"] or "mixed+drain". */
export function normState(value) {
  if (Array.isArray(value)) value = value[0];
  if (value === undefined || value === null || value === "") return "UNKNOWN";
  return String(value).trim().toUpperCase();
}

/** Milliseconds since the epoch from ISO text, seconds or milliseconds; undefined if unknown. */
export function toMillis(value) {
  if (value === undefined || value === null || value === "") return undefined;
  const n = num(value);
  if (n !== undefined && typeof value !== "string") {
    if (n <= 0) return undefined;
    return n < 1e12 ? n * 1000 : n;
  }
  if (typeof value === "string" && /^\d+(\.\d+)?$/.test(value)) return toMillis(Number(value));
  const parsed = Date.parse(value);
  return Number.isFinite(parsed) ? parsed : undefined;
}

/** The rows of a REST list answer (`{"count", "results", ...}`, docs/protocol.md section 6). */
export function resultsOf(body) {
  return body && Array.isArray(body.results) ? body.results : [];
}

// --- jobs --------------------------------------------------------------------------------

export const JOB_STATES = [
  "PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "COMPLETED", "FAILED",
  "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE",
];

/** Colour family of a job state: pending | running | done | failed | cancelled | other. */
export function jobTone(state) {
  const s = normState(state);
  if (s === "PENDING" || s === "CONFIGURING" || s === "REQUEUED" || s === "RESIZING") return "pending";
  if (s === "RUNNING" || s === "COMPLETING") return "running";
  if (s === "COMPLETED") return "done";
  if (s === "CANCELLED" || s.startsWith("CANCELLED") || s === "PREEMPTED" || s === "SUSPENDED") return "cancelled";
  if (["FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE"].includes(s)) return "failed";
  return "other";
}

/**
 * A job record (GET /api/cluster/jobs row, or a job event's data: slurm_monitor/events.py
 * job_fields, build_job_state_changed, build_job_removed) in the page's shape. Exactly the
 * wire's field names (tests/js/fixtures/events: one fixture per builder); a field the payload
 * does not carry is left out, so merging a partial event keeps what is known.
 */
export function normJob(raw) {
  if (!raw || typeof raw !== "object" || raw.job_id === undefined || raw.job_id === null) return null;
  const job = { id: String(raw.job_id) };
  for (const [wire, key, conv] of JOB_FIELDS) if (wire in raw) job[key] = conv(raw[wire]);
  if ("state" in raw) job.state = normState(raw.state);
  if ("previous_state" in raw) job.previousState = normState(raw.previous_state);
  return job;
}

const asText = (v) => (v === null || v === undefined ? undefined : String(v));
const asNum = (v) => (v === null || v === undefined || !Number.isFinite(Number(v)) ? undefined : Number(v));
const asTime = (v) => toMillis(v);
const asAny = (v) => (v === null ? undefined : v);
const JOB_FIELDS = [
  ["name", "name", asText], ["user", "user", asText], ["partition", "partition", asText],
  ["reason", "reason", (v) => asText(v) ?? ""], ["reason_text", "reasonText", asText], ["reason_hint", "reasonHint", asText],
  ["nodes", "nodes", asText], ["node_count", "nodeCount", asNum], ["cpus", "cpus", asNum], ["gpus", "gpus", asNum],
  ["memory_mb", "memory", asNum], ["submit_time", "submitTime", asTime], ["start_time", "startTime", asTime],
  ["end_time", "endTime", asTime], ["time_limit_minutes", "timeLimit", asNum], ["exit_code", "exitCode", asAny],
  ["signal", "signal", asAny], ["state_flags", "stateFlags", (v) => (Array.isArray(v) ? v.map(String) : [])],
  ["display_id", "displayId", asText], ["array_job_id", "arrayJobId", asText], ["array_task_id", "arrayTaskId", asNum],
  ["in_queue", "inQueue", Boolean], ["ended_at", "endedAt", asTime], ["cluster", "cluster", asText],
];

/** Where a job's page is: /jobs/<display id> (an array task: /jobs/10_1), on the `shown`
 * cluster (`pickCluster`; another than the primary adds `?cluster=NAME`). */
export function jobHref(job, shown) {
  const id = job.displayId && !job.displayId.includes("[") ? job.displayId : job.id;
  return `/jobs/${encodeURIComponent(id)}${clusterSuffix(shown)}`;
}

// --- clusters (slurm_monitor.clusters): which one the page shows ----------------------------

/**
 * The cluster to show, from `answer` (GET /api/cluster/clusters: {primary, clusters: [{name,
 * primary, channels}]}): `wanted` (the URL's ?cluster=) if known, else `remembered` if known,
 * else the primary. Channel names come from the answer, never built here.
 */
export function pickCluster(answer, wanted, remembered) {
  const list = Array.isArray(answer && answer.clusters) ? answer.clusters : [];
  const primary = list.find((c) => c.primary) || { name: (answer && answer.primary) || "default", primary: true,
    channels: { jobs: "jobs", nodes: "nodes", metrics: "metrics" } };
  return list.find((c) => c.name === wanted) || list.find((c) => c.name === remembered) || primary;
}

/** "" on the primary cluster, else "?cluster=NAME" (job page links). */
export function clusterSuffix(shown) {
  return shown && !shown.primary ? `?cluster=${encodeURIComponent(shown.name)}` : "";
}

/** `url` asking for the `shown` cluster: unchanged on the primary (the REST default). */
export function withCluster(url, shown) {
  if (!shown || shown.primary) return url;
  return `${url}${url.includes("?") ? "&" : "?"}cluster=${encodeURIComponent(shown.name)}`;
}

/** This page's URL showing cluster `name` (other query parameters kept). */
export function clusterPageUrl(location, name) {
  const params = new URLSearchParams(location.search);
  params.set("cluster", name);
  return `${location.pathname}?${params}${location.hash || ""}`;
}

/**
 * Whether an event belongs to the `shown` cluster: its data's `cluster` (events on shared
 * channels, user:<me>, alerts, notifications, name it); one without is the primary's (a monitor
 * from before clusters).
 */
export function isShownCluster(msg, shown) {
  if (!shown) return true;
  const named = msg && msg.data && typeof msg.data === "object" ? msg.data.cluster : undefined;
  return named === undefined || named === null || named === "" ? Boolean(shown.primary) : named === shown.name;
}

/** A notification's title, naming its cluster when the hub has several. */
export function notificationTitle(n, severalClusters) {
  const cluster = n && n.data && n.data.cluster;
  return severalClusters && cluster ? `${n.title} · ${cluster}` : n.title;
}

/** Distinct values of `field` over jobs, sorted; partitions split on commas. */
export function distinct(items, field) {
  const seen = new Set();
  for (const item of items) {
    const value = item[field];
    if (!value) continue;
    for (const part of String(value).split(",")) if (part) seen.add(part);
  }
  return [...seen].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
}

// --- nodes -------------------------------------------------------------------------------

/** Colour family of a node state: idle | mixed | allocated | down | drain | reserved | other. */
export function nodeTone(state, extraFlags = []) {
  const s = normState(state);
  const flags = [...s.split(/[+,\s]+/), ...extraFlags.map((f) => normState(f))];
  if (flags.some((f) => ["DOWN", "FAIL", "FAILING", "NOT_RESPONDING", "NO_RESPOND", "POWERED_DOWN", "ERROR"].includes(f) || f.endsWith("*"))) return "down";
  if (flags.some((f) => f.startsWith("DRAIN"))) return "drain";
  if (flags.includes("RESERVED") || flags.includes("MAINT")) return "reserved";
  if (flags.includes("MIXED") || flags.includes("MIX")) return "mixed";
  if (flags.includes("ALLOCATED") || flags.includes("ALLOC") || flags.includes("COMPLETING")) return "allocated";
  if (flags.includes("IDLE")) return "idle";
  return "other";
}

/**
 * A node record (GET /api/cluster/nodes row; node_added, node_state_changed,
 * node_resource_change, node_removed data; a metrics_update per_node entry): exactly the
 * wire's names (slurm_monitor/events.py). Only the fields the payload carries are set, so a
 * node_resource_change (no state) leaves the node's state as it was.
 */
export function normNode(raw) {
  if (!raw || typeof raw !== "object" || typeof raw.node !== "string" || !raw.node) return null;
  const node = { name: raw.node };
  for (const [wire, key, conv] of NODE_FIELDS) if (wire in raw) node[key] = conv(raw[wire]);
  if ("state" in raw) node.state = normState(raw.state);
  return node;
}

const list = (v) => (Array.isArray(v) ? v.map(String) : []);
const NODE_FIELDS = [
  ["flags", "flags", list], ["reason", "reason", (v) => asText(v) ?? ""],
  ["partitions", "partitions", (v) => list(v).join(",")], ["cpus", "cpusTotal", asNum],
  ["alloc_cpus", "cpusAlloc", asNum], ["cpu_load", "cpuLoad", asNum], ["cpu_load_percent", "cpuLoadPercent", asNum],
  ["real_memory_mb", "memTotal", asNum], ["memory_mb", "memTotal", asNum], ["alloc_memory_mb", "memAlloc", asNum],
  ["gpus", "gpusTotal", asNum], ["alloc_gpus", "gpusAlloc", asNum],
];

export const NODE_EVENTS = new Set(["node_added", "node_state_changed", "node_resource_change", "node_removed"]);

/** Apply one `nodes`-channel publication to `nodes` (Map name -> node): what it carries, over what is known. */
export function applyNodeEvent(nodes, msg, now = Date.now()) {
  if (!msg || !NODE_EVENTS.has(msg.type)) return null;
  const node = normNode(msg.data);
  if (!node) return null;
  if (msg.type === "node_removed") {
    nodes.delete(node.name);
    return { name: node.name, change: "remove" };
  }
  const known = nodes.get(node.name) || { state: "UNKNOWN" };
  nodes.set(node.name, { ...known, ...node, updatedAt: toMillis(msg.timestamp) ?? now });
  return { name: node.name, change: "upsert" };
}

/** Node names of a Slurm host list: "n[01-03],gpu1" -> n01 n02 n03 gpu1. */
export function expandHostlist(text) {
  const out = [];
  for (const part of String(text || "").match(/[^,\[]+(\[[^\]]*\])?[^,]*/g) || []) {
    const m = /^(.*?)\[([^\]]*)\](.*)$/.exec(part);
    if (!m) { out.push(part); continue; }
    for (const piece of m[2].split(",")) {
      const r = /^(\d+)(?:-(\d+))?$/.exec(piece);
      if (!r) continue;
      const [lo, hi] = [Number(r[1]), Number(r[2] ?? r[1])];
      for (let i = lo; i <= hi && out.length < 100000; i += 1) out.push(`${m[1]}${String(i).padStart(r[1].length, "0")}${m[3]}`);
    }
  }
  return out;
}

export function compareNodes(a, b) {
  return a.name.localeCompare(b.name, undefined, { numeric: true });
}

// --- metrics -----------------------------------------------------------------------------

/**
 * The figures the metric cards show, from a metrics payload; derived from the node and job
 * stores when the payload lacks them. Percentages are 0-100, or undefined when unknown.
 */
export function normMetrics(raw = {}, { nodes, jobCounts } = {}) {
  const r = raw && typeof raw === "object" ? raw : {};
  const at = (group, key) => asNum(r[group] && typeof r[group] === "object" ? r[group][key] : undefined);
  const m = {
    jobsRunning: at("jobs", "running"), jobsPending: at("jobs", "pending"), jobsTotal: at("jobs", "total"),
    nodesTotal: at("nodes", "total"), nodesDown: sumOf(at("nodes", "down"), at("nodes", "drained")),
    nodesIdle: at("nodes", "idle"),
    cpusTotal: at("cpu", "total"), cpusAlloc: at("cpu", "allocated"), cpuUtil: at("cpu", "usage_percent"),
    memTotal: at("memory", "total_mb"), memAlloc: at("memory", "allocated_mb"), memUtil: at("memory", "usage_percent"),
    gpusTotal: at("gpu", "total"), gpusAlloc: at("gpu", "allocated"), gpuUtil: at("gpu", "usage_percent"),
  };
  if (nodes && nodes.size) {
    const all = [...nodes.values()];
    const sum = (key) => all.reduce((acc, n) => acc + (n[key] || 0), 0);
    m.nodesTotal ??= all.length;
    m.nodesDown ??= all.filter((n) => ["down", "drain"].includes(nodeTone(n.state, n.flags))).length;
    m.nodesIdle ??= all.filter((n) => nodeTone(n.state, n.flags) === "idle").length;
    m.cpusTotal ??= sum("cpusTotal") || undefined;
    m.cpusAlloc ??= m.cpusTotal !== undefined ? sum("cpusAlloc") : undefined;
    m.memTotal ??= sum("memTotal") || undefined;
    m.memAlloc ??= m.memTotal !== undefined ? sum("memAlloc") : undefined;
    m.gpusTotal ??= sum("gpusTotal") || undefined;
    m.gpusAlloc ??= m.gpusTotal !== undefined ? sum("gpusAlloc") : undefined;
  }
  if (jobCounts && jobCounts.total) {
    // The job cards count what the table holds, live, so the two never disagree.
    m.jobsRunning = jobCounts.running;
    m.jobsPending = jobCounts.pending;
    m.jobsTotal = jobCounts.total;
  }
  const pct = (used, total) => (total ? Math.min(100, Math.max(0, (100 * (used || 0)) / total)) : undefined);
  // Percentages are 0-100 on the wire; without a total there is nothing to be a share of.
  m.cpuUtil = m.cpusTotal === 0 ? undefined : m.cpuUtil ?? pct(m.cpusAlloc, m.cpusTotal);
  m.memUtil = m.memTotal === 0 ? undefined : m.memUtil ?? pct(m.memAlloc, m.memTotal);
  m.gpuUtil = m.gpusTotal === 0 ? undefined : m.gpuUtil ?? pct(m.gpusAlloc, m.gpusTotal);
  return m;
}

/** Keep `history` (a list of {t, ...figures}) to the last hour, in time order. */
export function pushSample(history, sample, now = Date.now(), windowMs = HOUR_MS) {
  const t = sample.t ?? now;
  if (history.length && history[history.length - 1].t > t) {
    history.push({ ...sample, t });
    history.sort((a, b) => a.t - b.t);
  } else {
    history.push({ ...sample, t });
  }
  const cutoff = now - windowMs;
  while (history.length && history[0].t < cutoff) history.shift();
  return history;
}

/**
 * SVG path data for a sparkline of `points` ([{t, v}]) over [now - window, now], in a
 * width x height box: {line, area, last: {x, y}} or null with fewer than one value.
 */
export function sparklinePaths(points, { width = 120, height = 32, now = Date.now(), windowMs = HOUR_MS,
  min, max, pad = 2, minSpanMs = 60_000 } = {}) {
  const values = points.filter((p) => Number.isFinite(p.v));
  if (!values.length) return null;
  const lo = min ?? Math.min(...values.map((p) => p.v));
  let hi = max ?? Math.max(...values.map((p) => p.v));
  if (hi === lo) hi = lo + 1;
  // The x axis covers the last `windowMs`, or less while there is less history, so a page
  // open for five minutes draws five minutes across the whole width.
  const oldest = Math.min(...values.map((p) => p.t));
  const span = Math.max(minSpanMs, Math.min(windowMs, now - oldest));
  const start = now - span;
  const x = (t) => Math.max(0, Math.min(width, ((t - start) / span) * width));
  const y = (v) => pad + (height - 2 * pad) * (1 - (v - lo) / (hi - lo));
  const coords = values.map((p) => [x(p.t), y(p.v)]);
  if (coords.length === 1) coords.unshift([Math.max(0, coords[0][0] - 1), coords[0][1]]);
  const fmt = (n) => Math.round(n * 10) / 10;
  const line = coords.map(([cx, cy], i) => `${i ? "L" : "M"}${fmt(cx)} ${fmt(cy)}`).join(" ");
  const area = `${line} L${fmt(coords[coords.length - 1][0])} ${height} L${fmt(coords[0][0])} ${height} Z`;
  const [lx, ly] = coords[coords.length - 1];
  return { line, area, last: { x: fmt(lx), y: fmt(ly) } };
}

// --- notifications -----------------------------------------------------------------------

let liveNotificationCount = 0;

/**
 * A notification from REST or an event. One without an `id` (the monitor running without the
 * hub's notification service) gets a local one and `local: true`: it cannot be marked on the server.
 */
export function normNotification(raw) {
  if (!raw || typeof raw !== "object") return null;
  const local = raw.id === undefined || raw.id === null;
  if (local && !raw.title && !raw.message) return null;
  return {
    id: local ? `local-${++liveNotificationCount}` : raw.id,
    local,
    user: asText(raw.user),
    type: asText(raw.type) || "notification",
    title: asText(raw.title) || "Notification",
    message: asText(raw.message) || "",
    severity: asText(raw.severity) || "info",
    read: Boolean(raw.read),
    created: toMillis(raw.created ?? raw.timestamp),
    data: raw.data && typeof raw.data === "object" ? raw.data : {},
  };
}

/** The job page a notification is about (its data names the job, and its cluster unless it
 * is the `primary` one), or null. */
export function notificationJobHref(n, primary) {
  const id = n && n.data && (n.data.display_id ?? n.data.job_id);
  if (id === undefined || id === null || id === "") return null;
  const cluster = n.data.cluster;
  const suffix = cluster && primary !== undefined && cluster !== primary ? `?cluster=${encodeURIComponent(cluster)}` : "";
  return `/jobs/${encodeURIComponent(String(id))}${suffix}`;
}

/** A maintenance announcement: a cluster-wide notification of type `maintenance`, or a
 * broadcast on `all` (shown as the banner until dismissed). */
export function isAnnouncement(n) {
  return Boolean(n) && (n.type === "maintenance" || n.type === "announcement");
}

/** Unread first, then newest first (the REST order). */
export function sortNotifications(list) {
  return [...list].sort((a, b) => (a.read - b.read) || ((b.created || 0) - (a.created || 0))
    || String(b.id).localeCompare(String(a.id), undefined, { numeric: true }));
}

/** A cluster-wide notification (a node down, maintenance): it has an id but no user. */
export function isClusterWide(n) {
  return Boolean(n) && !n.local && n.user === undefined;
}

// --- channels: which the page follows, and which feed each message goes to ----------------

export const JOB_EVENTS = new Set(["job_submitted", "job_state_changed", "job_removed"]);

/**
 * channel -> the feeds it serves, for this page (PROTOCOL.md section 4). `notifications`
 * carries cluster-wide notifications only; the user's own come on `user:<name>`, and so do
 * their jobs' events when jobs are private (HUB_PRIVATE_JOBS) and the user is not staff (then
 * `jobs` is staff-only and not subscribed). Alerts are for staff. `channels`: the shown
 * cluster's (`pickCluster(...).channels`: `jobs.b`... for cluster b); default the primary's.
 */
export function channelPlan({ user, isStaff = false, privateJobs = false, channels = {} }) {
  const own = `user:${user}`;
  const jobsOnOwn = Boolean(privateJobs) && !isStaff;
  const plan = {};
  if (!jobsOnOwn) plan[channels.jobs || "jobs"] = ["jobs"];
  plan[channels.nodes || "nodes"] = ["nodes"];
  plan[channels.metrics || "metrics"] = ["metrics"];
  plan.notifications = ["notifications"];
  if (isStaff) plan.alerts = ["alerts"];
  plan[own] = jobsOnOwn ? ["notifications", "jobs"] : ["notifications"];
  return plan;
}

/** feed -> the channels that serve it (a feed is live once all of them are subscribed). */
export function feedChannels(plan) {
  const out = {};
  for (const [channel, feeds] of Object.entries(plan)) for (const feed of feeds) (out[feed] ||= []).push(channel);
  return out;
}

/**
 * The feed a message on `channel` belongs to, or null. On a `user:` channel the event type
 * decides (a notification, or a job event when the plan takes jobs from there, and only one
 * of the `shown` cluster: that channel is shared by every cluster); anything else on it is
 * ignored (jobs then come on the cluster's jobs channel).
 */
export function feedFor(plan, channel, msg, shown) {
  const feeds = plan[channel] || [];
  if (feeds.length <= 1 && !channel.startsWith("user:")) return feeds[0] ?? null;
  const type = msg && msg.type;
  if (type === "notification") return feeds.includes("notifications") ? "notifications" : null;
  if (JOB_EVENTS.has(type)) return feeds.includes("jobs") && isShownCluster(msg, shown) ? "jobs" : null;
  return null;
}

// --- freshness: is what the page shows current? -----------------------------------------

export const STALE_AFTER_INTERVALS = 3; // as /api/health's "degraded" (PROTOCOL.md section 6)
export const MIN_STALE_MS = 10_000;
export const MONITOR_STREAMS = ["jobs", "nodes", "metrics"];

/**
 * Note in `streams` ({name: {updatedAt: ms, interval: s}}) that stream `name` was current at
 * `updatedAt` (ISO text, seconds or ms) and polls every `interval` seconds. Keeps the newest
 * time (a replayed event is older) and the last known interval. Returns `streams`.
 */
export function noteStream(streams, name, { updatedAt, interval } = {}) {
  const known = streams[name] || {};
  const t = toMillis(updatedAt);
  const every = num(interval);
  streams[name] = {
    updatedAt: t !== undefined && !(known.updatedAt >= t) ? t : known.updatedAt,
    interval: every !== undefined && every > 0 ? every : known.interval,
  };
  return streams;
}

/** A metrics_update payload (REST or live) names every stream's last poll and interval. */
export function noteMetricsStreams(streams, metrics) {
  const reported = metrics && typeof metrics === "object" ? metrics.streams : null;
  if (!reported || typeof reported !== "object") return streams;
  for (const [name, s] of Object.entries(reported)) {
    if (s && typeof s === "object") noteStream(streams, name, { updatedAt: s.updated_at, interval: s.interval });
  }
  return streams;
}

/**
 * Whether the page's data is stale although the socket may be up. A stream is late once
 * its last update is older than STALE_AFTER_INTERVALS of its interval, plus, for streams the
 * page hears about through `carrier` (jobs and nodes are reported in each metrics_update;
 * their own events come only on changes), the carrier's interval; never sooner than
 * `minStaleMs`. Streams without a known time or interval are not judged, so a hub without a
 * monitor is never stale. `now`: ms on the server's clock.
 *
 * Returns {state: "unknown" | "fresh" | "stale", late: [names], age: seconds since the oldest
 * judged stream's update (undefined when none is judged)}.
 */
export function dataFreshness(streams, now, { carrier = "metrics", factor = STALE_AFTER_INTERVALS,
  minStaleMs = MIN_STALE_MS } = {}) {
  const carrierMs = (streams[carrier]?.interval ?? 0) * 1000;
  const late = [];
  let oldest;
  for (const [name, s] of Object.entries(streams)) {
    if (!s || s.updatedAt === undefined || !(s.interval > 0)) continue;
    const age = now - s.updatedAt;
    oldest = oldest === undefined ? age : Math.max(oldest, age);
    const allowance = Math.max(minStaleMs, factor * s.interval * 1000 + (name === carrier ? 0 : carrierMs));
    if (age > allowance) late.push(name);
  }
  if (oldest === undefined) return { state: "unknown", late, age: undefined };
  return { state: late.length ? "stale" : "fresh", late: late.sort(), age: Math.max(0, oldest) / 1000 };
}

/** ms to subtract from the page's clock to get the server's, from a frame the server just sent. */
export function clockOffset(localMs, serverTimestamp) {
  const server = toMillis(serverTimestamp);
  return server === undefined ? undefined : localMs - server;
}

/** "data 41 s old", "data 5 min old", "data 3 h old" */
export function formatDataAge(seconds) {
  if (seconds === undefined || !Number.isFinite(seconds)) return "";
  const s = Math.max(0, Math.round(seconds));
  if (s < 120) return `data ${s} s old`;
  if (s < 7200) return `data ${Math.floor(s / 60)} min old`;
  return `data ${Math.floor(s / 3600)} h old`;
}

// --- formatting --------------------------------------------------------------------------

export function formatDuration(ms) {
  if (ms === undefined || !Number.isFinite(ms)) return "";
  const s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${String(m).padStart(2, "0")}m`;
  if (m) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  return `${s}s`;
}

/** A time limit in minutes, short: 45m, 2h, 1h 30m, 3d, 1d 12h. */
export function formatLimit(minutes) {
  if (!Number.isFinite(minutes) || minutes <= 0) return "";
  const d = Math.floor(minutes / 1440);
  const h = Math.floor((minutes % 1440) / 60);
  const m = Math.round(minutes % 60);
  if (d) return h ? `${d}d ${h}h` : `${d}d`;
  if (h) return m ? `${h}h ${m}m` : `${h}h`;
  return `${m}m`;
}

export function formatAgo(millis, now = Date.now()) {
  if (millis === undefined) return "";
  const s = Math.round((now - millis) / 1000);
  if (s < 5) return "just now";
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

/** Megabytes as a short human size: 512 MB, 1.5 GB, 2 TB. */
export function formatMegabytes(mb) {
  if (mb === undefined || !Number.isFinite(mb)) return "";
  if (mb < 1024) return `${Math.round(mb)} MB`;
  const gb = mb / 1024;
  if (gb < 1024) return `${gb < 10 ? gb.toFixed(1) : Math.round(gb)} GB`;
  const tb = gb / 1024;
  return `${tb < 10 ? tb.toFixed(1) : Math.round(tb)} TB`;
}

/** "25 / 188 GB": both sides in the unit that suits the total. */
export function formatMegabytesPair(used, total) {
  if (total === undefined || !Number.isFinite(total)) return "";
  const u = Number.isFinite(used) ? used : 0;
  const [div, unit] = total >= 1024 * 1024 ? [1024 * 1024, "TB"] : total >= 1024 ? [1024, "GB"] : [1, "MB"];
  const fmt = (v) => { const x = v / div; return x === 0 ? "0" : x < 10 && !Number.isInteger(x) ? x.toFixed(1) : String(Math.round(x)); };
  return `${fmt(u)} / ${fmt(total)} ${unit}`;
}

export function formatPercent(value) {
  return value === undefined || !Number.isFinite(value) ? "–" : `${Math.round(value)}%`;
}

/** Elapsed time for a job row: running -> since start, finished -> start..end, pending -> waiting. */
export function jobTime(job, now = Date.now()) {
  const tone = jobTone(job.state);
  if (tone === "pending") return job.submitTime ? { label: formatDuration(now - job.submitTime), hint: "waiting" } : { label: "", hint: "" };
  if (!job.startTime) return { label: "", hint: "" };
  const end = tone === "running" ? now : (job.endTime ?? job.updatedAt ?? now);
  return { label: formatDuration(end - job.startTime), hint: tone === "running" ? "running" : "ran" };
}

/** "maintenance_window" -> "Maintenance window" */
export function titleOf(type) {
  const words = String(type || "").replace(/[_-]+/g, " ").trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}
