/**
 * The dashboard's pure part: normalise REST rows and event payloads into one shape, keep the
 * stores, format values, build sparklines. No DOM; tests/js/dashboard-model.test.mjs covers it.
 *
 * Every normaliser tolerates missing fields and the common Slurm spellings (job_state as a
 * list, alloc_cpus vs cpus_allocated, ...), so the page keeps working while payloads evolve.
 */

export const HOUR_MS = 60 * 60 * 1000;

const first = (...values) => values.find((v) => v !== undefined && v !== null && v !== "");

function num(value) {
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value === "object" && "number" in value) {
    // Slurm >= 23 wraps numbers: {set: true, infinite: false, number: 4}
    return value.set === false ? undefined : num(value.number);
  }
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}

function sumOf(...values) {
  const known = values.filter((v) => v !== undefined);
  return known.length ? known.reduce((a, b) => a + b, 0) : undefined;
}

function text(value) {
  if (value === undefined || value === null) return undefined;
  if (Array.isArray(value)) return value.length ? value.map(String).join(",") : undefined;
  return String(value);
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

/** REST list bodies come as a list, or {results|jobs|nodes|items|data: [...]}. */
export function extractList(body, ...keys) {
  if (Array.isArray(body)) return body;
  if (!body || typeof body !== "object") return [];
  for (const key of [...keys, "results", "items", "data"]) {
    if (Array.isArray(body[key])) return body[key];
  }
  return [];
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

export function normJob(raw) {
  if (!raw || typeof raw !== "object") return null;
  const id = text(first(raw.job_id, raw.id, raw.jobid, raw.job));
  if (id === undefined) return null;
  const job = {
    id,
    name: text(first(raw.name, raw.job_name)),
    user: text(first(raw.user, raw.user_name, raw.username, raw.owner)),
    partition: text(first(raw.partition, raw.queue)),
    state: normState(first(raw.state, raw.job_state, raw.status)),
    previousState: raw.previous_state !== undefined ? normState(raw.previous_state) : undefined,
    nodes: text(first(raw.nodes, raw.node_list, raw.nodelist, raw.batch_host)),
    reason: "reason" in raw ? (text(raw.reason) ?? "") : text(first(raw.state_reason, raw.pending_reason)),
    cpus: num(first(raw.cpus, raw.num_cpus, raw.cpus_requested, raw.ncpus)),
    gpus: num(first(raw.gpus, raw.num_gpus, raw.gpus_requested)),
    memory: num(first(raw.memory_mb, raw.memory, raw.mem)),
    submitTime: toMillis(first(raw.submit_time, raw.submitted_at, raw.submitted)),
    startTime: toMillis(first(raw.start_time, raw.started_at, raw.started)),
    endTime: toMillis(first(raw.end_time, raw.ended_at, raw.finished_at)),
    timeLimit: num(first(raw.time_limit_minutes, raw.time_limit)),
    exitCode: first(raw.exit_code, raw.exitcode),
  };
  for (const key of Object.keys(job)) if (job[key] === undefined) delete job[key];
  return job;
}

/** Merge a partial job (from an event) over what we know: missing fields keep their value. */
export function mergeJob(known, update) {
  return known ? { ...known, ...update } : update;
}

/**
 * Apply one `jobs`-channel publication to `jobs` (a Map id -> job); returns the affected id
 * and what happened ("upsert" | "remove"), or null when the event is not about a job.
 */
export function applyJobEvent(jobs, msg, now = Date.now()) {
  const data = msg && msg.data;
  const job = normJob(data && typeof data === "object" && data.job ? { ...data.job, ...data, job: undefined } : data);
  if (!job) return null;
  if (msg.type === "job_removed") {
    jobs.delete(job.id);
    return { id: job.id, change: "remove" };
  }
  const known = jobs.get(job.id);
  if (msg.type === "job_state_changed" && isStale(known, job)) return null;
  const merged = mergeJob(known, job);
  merged.updatedAt = toMillis(msg.timestamp) ?? now;
  if (msg.type === "job_state_changed" && job.previousState === undefined && jobs.get(job.id)) {
    merged.previousState = jobs.get(job.id).state;
  }
  jobs.set(job.id, merged);
  return { id: job.id, change: "upsert" };
}

const FINAL_TONES = new Set(["done", "failed", "cancelled"]);

/**
 * A state change that would take a finished job back to an earlier state, from a state other
 * than the one we know (e.g. a RUNNING event replayed after a snapshot that already says
 * COMPLETED). A real requeue names the finished state as its previous_state and passes.
 */
function isStale(known, update) {
  if (!known || !FINAL_TONES.has(jobTone(known.state)) || FINAL_TONES.has(jobTone(update.state))) return false;
  return update.previousState !== undefined && update.previousState !== known.state;
}

/** Jobs matching the filters, newest first (by numeric id, so rows keep their places). */
export function filterJobs(jobs, { user = "", partition = "", state = "", q = "" } = {}) {
  const query = q.trim().toLowerCase();
  const rows = [];
  for (const job of jobs.values()) {
    if (user && job.user !== user) continue;
    if (partition && !(job.partition || "").split(",").includes(partition)) continue;
    if (state === "ACTIVE" && !["pending", "running"].includes(jobTone(job.state))) continue;
    if (state && state !== "ACTIVE" && job.state !== state) continue;
    if (query && !job.id.toLowerCase().includes(query) && !(job.name || "").toLowerCase().includes(query)) continue;
    rows.push(job);
  }
  return rows.sort(compareJobIds);
}

export function compareJobIds(a, b) {
  const [ma, mb] = [parseFloat(a.id), parseFloat(b.id)];
  if (Number.isFinite(ma) && Number.isFinite(mb) && ma !== mb) return mb - ma;
  return b.id.localeCompare(a.id, undefined, { numeric: true });
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

export function normNode(raw) {
  if (!raw || typeof raw !== "object") return null;
  const name = text(first(raw.name, raw.node_name, raw.hostname, raw.node));
  if (name === undefined) return null;
  const node = {
    name,
    state: normState(first(raw.state, raw.node_state, raw.status)),
    flags: Array.isArray(raw.flags) ? raw.flags.map(String) : undefined,
    partitions: text(first(raw.partitions, raw.partition)),
    cpusTotal: num(first(raw.cpus_total, raw.cpus, raw.cpu_total, raw.total_cpus)),
    cpusAlloc: num(first(raw.cpus_allocated, raw.cpus_alloc, raw.alloc_cpus, raw.cpu_alloc)),
    cpuLoad: num(first(raw.cpu_load, raw.load)),
    cpuLoadPercent: num(raw.cpu_load_percent),
    memTotal: num(first(raw.real_memory_mb, raw.memory_mb, raw.memory_total_mb, raw.memory_total, raw.real_memory, raw.memory)),
    memAlloc: num(first(raw.alloc_memory_mb, raw.memory_allocated_mb, raw.memory_allocated, raw.memory_alloc, raw.alloc_memory, raw.alloc_mem)),
    gpusTotal: num(first(raw.gpus_total, raw.gpus, raw.gpu_total)),
    gpusAlloc: num(first(raw.gpus_allocated, raw.gpus_alloc, raw.alloc_gpus, raw.gpus_used)),
    reason: "reason" in raw ? (text(raw.reason) ?? "") : text(raw.state_reason),
  };
  for (const key of Object.keys(node)) if (node[key] === undefined) delete node[key];
  return node;
}

/** Apply one `nodes`-channel publication to `nodes` (Map name -> node). */
export function applyNodeEvent(nodes, msg, now = Date.now()) {
  const data = msg && msg.data;
  const node = normNode(data && typeof data === "object" && data.node && typeof data.node === "object"
    ? { ...data.node, ...data, node: undefined } : data);
  if (!node) return null;
  if (msg.type === "node_removed") {
    nodes.delete(node.name);
    return { name: node.name, change: "remove" };
  }
  const merged = { ...(nodes.get(node.name) || {}), ...node, updatedAt: toMillis(msg.timestamp) ?? now };
  nodes.set(node.name, merged);
  return { name: node.name, change: "upsert" };
}

export function compareNodes(a, b) {
  return a.name.localeCompare(b.name, undefined, { numeric: true });
}

// --- metrics -----------------------------------------------------------------------------

/**
 * The figures the metric cards show, from a metrics payload; derived from the node and job
 * stores when the payload lacks them. Percentages are 0-100, or undefined when unknown.
 */
export function normMetrics(raw = {}, { nodes, jobs } = {}) {
  const r = raw && typeof raw === "object" ? raw : {};
  const pick = (...keys) => num(first(...keys.map((k) => k.split(".").reduce((o, p) => (o == null ? undefined : o[p]), r))));
  const m = {
    jobsRunning: pick("jobs.running", "jobs_running", "running_jobs"),
    jobsPending: pick("jobs.pending", "jobs_pending", "pending_jobs"),
    jobsTotal: pick("jobs.total", "jobs_total", "total_jobs"),
    nodesTotal: pick("nodes.total", "nodes_total", "total_nodes"),
    nodesDown: sumOf(pick("nodes.down", "nodes_down", "down_nodes"), pick("nodes.drained", "nodes_drained")),
    nodesIdle: pick("nodes.idle", "nodes_idle", "idle_nodes"),
    cpusTotal: pick("cpu.total", "cpus.total", "cpus_total", "total_cpus"),
    cpusAlloc: pick("cpu.allocated", "cpus.allocated", "cpus_allocated", "cpus_alloc", "allocated_cpus"),
    memTotal: pick("memory.total_mb", "memory.total", "memory_total_mb", "memory_total"),
    memAlloc: pick("memory.allocated_mb", "memory.allocated", "memory_allocated_mb", "memory_allocated"),
    gpusTotal: pick("gpu.total", "gpus.total", "gpus_total", "total_gpus"),
    gpusAlloc: pick("gpu.allocated", "gpus.allocated", "gpus_allocated", "gpus_alloc", "allocated_gpus"),
    cpuUtil: pick("cpu.usage_percent", "cpu_usage_percent", "cpu_utilization"),
    memUtil: pick("memory.usage_percent", "memory_usage_percent", "memory_utilization"),
    gpuUtil: pick("gpu.usage_percent", "gpu_usage_percent", "gpu_utilization"),
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
  if (jobs && jobs.size) {
    const all = [...jobs.values()];
    m.jobsRunning ??= all.filter((j) => jobTone(j.state) === "running").length;
    m.jobsPending ??= all.filter((j) => jobTone(j.state) === "pending").length;
    m.jobsTotal ??= all.length;
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
    user: text(first(raw.user, raw.username)),
    type: text(raw.type) || "notification",
    title: text(first(raw.title, raw.subject)) || "Notification",
    message: text(first(raw.message, raw.body)) || "",
    severity: text(raw.severity) || "info",
    read: Boolean(raw.read),
    created: toMillis(first(raw.created, raw.created_at, raw.timestamp)),
    data: raw.data && typeof raw.data === "object" ? raw.data : {},
  };
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
 * `jobs` is staff-only and not subscribed). Alerts are for staff.
 */
export function channelPlan({ user, isStaff = false, privateJobs = false }) {
  const own = `user:${user}`;
  const jobsOnOwn = Boolean(privateJobs) && !isStaff;
  const plan = {};
  if (!jobsOnOwn) plan.jobs = ["jobs"];
  plan.nodes = ["nodes"];
  plan.metrics = ["metrics"];
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
 * decides (a notification, or a job event when the plan takes jobs from there); anything
 * else on it is ignored (jobs then come on `jobs`).
 */
export function feedFor(plan, channel, msg) {
  const feeds = plan[channel] || [];
  if (feeds.length <= 1 && !channel.startsWith("user:")) return feeds[0] ?? null;
  const type = msg && msg.type;
  if (type === "notification") return feeds.includes("notifications") ? "notifications" : null;
  if (JOB_EVENTS.has(type)) return feeds.includes("jobs") ? "jobs" : null;
  return null;
}

// --- alerts ------------------------------------------------------------------------------

/** "cluster_cpu_high" -> "Cluster cpu high" */
export function humanize(id) {
  const words = String(id).replace(/[_-]+/g, " ").trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

export function normAlert(raw, timestamp) {
  if (!raw || typeof raw !== "object") return null;
  const id = text(first(raw.alert_id, raw.id, raw.key, raw.name, raw.title));
  if (id === undefined) return null;
  return {
    id,
    severity: (text(first(raw.severity, raw.level)) || "warning").toLowerCase(),
    title: text(first(raw.title, raw.name, raw.summary)) || humanize(id),
    message: text(first(raw.message, raw.description, raw.detail)) || "",
    since: toMillis(first(raw.raised_at, raw.since, raw.started_at, raw.created, raw.timestamp)) ?? toMillis(timestamp),
  };
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
