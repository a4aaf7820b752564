/**
 * The dashboard page's entry point: the only module with side effects. It reads the page
 * config, builds the views (jobs-table.js, nodes-view.js, metrics-view.js,
 * notifications-view.js, announcements.js, connection-view.js, alerts.js) and joins each
 * REST snapshot to the hub's stream without a gap (docs/protocol.md section 6):
 *
 * 1. jobs (first page), nodes, metrics and alerts load over REST; each answer carries the
 *    `position` of the channel its rows mirror;
 * 2. each channel is then subscribed `since` that offset (and epoch), so the hub replays what
 *    was published after the snapshot and nothing before it (Feed / JobIndex skip what a
 *    snapshot already includes); without a position, the page subscribes, then loads again;
 * 3. a "reset" (history lost, new epoch) loads that feed again. Notifications are keyed by
 *    id and load once their channels are subscribed; `all` is replayed from its history for
 *    the announcement banner. Rendering is batched per animation frame.
 *
 * Several clusters (slurm_monitor.clusters): the page shows one (cluster-switch.js: the URL's
 * `?cluster=NAME`, else the one remembered, else the primary), its channels taken from the
 * clusters list in the config (GET /api/cluster/clusters's answer), its REST calls asking
 * `?cluster=NAME`. Switching (`switchCluster`) unsubscribes the old cluster's channels, forgets
 * its state, reloads the new one's snapshots and subscribes its channels from their positions,
 * as a first load does; notifications stay. Events on shared channels (user:<me>, alerts) are
 * applied only when they name the shown cluster.
 */
import { connect } from "../hub/hub-client.js";
import * as M from "./model.js";
import * as A from "./alerts.js";
import { JobIndex } from "./jobs-model.js";
import { Feed } from "./feeds.js";
import { createApi } from "./rest.js";
import { toaster } from "./dom.js";
import { createJobsTable } from "./jobs-table.js";
import { createHistoryView } from "./history-view.js";
import { createNodesView } from "./nodes-view.js";
import { createMetricsView, historyKey, loadHistory } from "./metrics-view.js";
import { createNotificationsView } from "./notifications-view.js";
import { createAnnouncements, fromBroadcast } from "./announcements.js";
import { createConnectionView } from "./connection-view.js";
import { setupBrowserNotifications } from "./notify.js";
import { createClusterSwitch } from "./cluster-switch.js";

const config = JSON.parse(document.getElementById("dashboard-config").textContent);
const $ = (id) => document.getElementById(id);
const clusterSwitch = createClusterSwitch({ config, onSwitch: (cluster) => switchCluster(cluster) });
const CLUSTER_API = ["jobs", "nodes", "metrics", "alerts"]; // the REST reads asking ?cluster=
const BASE_API = { ...config.api };
let SHOWN = clusterSwitch.shown;
config.clusterPrimary = config.clusters?.primary;
config.severalClusters = clusterSwitch.several;
showCluster(SHOWN);
const api = createApi(config);
const toast = toaster($("toast"));
const JOB_PAGE = 5000;
const SAMPLE_EVERY_MS = 30_000;

const index = new JobIndex();
const store = {
  nodes: new Map(), metricsRaw: null, historyKey: historyKey(SHOWN), notifications: new Map(), alerts: new Map(),
  broadcasts: new Map(), lastEventAt: undefined, lastMetricsEventAt: 0, streams: {}, clockOffset: 0, source: "",
  get jobCounts() { return index.counts(); },
};
store.history = loadHistory(globalThis.sessionStorage, store.historyKey);
let PLAN, FEED_CHANNELS, JOBS_CHANNEL;
planChannels();
const browserNotify = setupBrowserNotifications({ button: $("browser-notify"), loadRules: () => api(`${config.api.notifications}/rules`) });

// --- the shown cluster ------------------------------------------------------------------------

/** `cluster` becomes the one whose REST state the page reads (links and history view too). */
function showCluster(cluster) {
  config.cluster = cluster;
  for (const name of CLUSTER_API) if (BASE_API[name]) config.api[name] = M.withCluster(BASE_API[name], cluster);
}

/** Which channel serves which feed, for the shown cluster (channel names from the config). */
function planChannels() {
  PLAN = M.channelPlan({ ...config, channels: SHOWN.channels });
  FEED_CHANNELS = M.feedChannels(PLAN);
  JOBS_CHANNEL = FEED_CHANNELS.jobs[0];
}

let generation = 0; // bumped by a switch: a snapshot of the cluster left is dropped on arrival

/**
 * Show another cluster: leave the channels only the old one used, forget its rows, nodes,
 * metrics and alerts, then load the new one's snapshots and follow its channels `since` their
 * positions (the first load's road). Shared channels (user:<me>, notifications) stay.
 */
function switchCluster(cluster) {
  generation += 1;
  const before = new Set(Object.keys(PLAN));
  SHOWN = cluster;
  showCluster(cluster);
  planChannels();
  for (const channel of before) {
    if (PLAN[channel]) continue;
    hub.unsubscribe(channel);
    following.delete(channel);
    subscribedOnce.delete(channel);
    reloadOnSubscribed.delete(channel);
  }
  for (const name of CLUSTER_API) feeds[name].buffer.length = 0; // events of the channels left
  index.clear();
  Object.assign(store, { nodes: new Map(), metricsRaw: null, alerts: new Map(), streams: {}, lastMetricsEventAt: 0,
    source: "", historyKey: historyKey(cluster) });
  store.history = loadHistory(globalThis.sessionStorage, store.historyKey);
  historyView.invalidate();
  startFeeds();
  schedule("jobs", "nodes", "metrics", "alerts", "tick");
}

// --- rendering, batched per frame ---------------------------------------------------------

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

const hub = connect(config.wsUrl);
window.dashboardHub = hub; // for the console and the browser tests
window.dashboardJobs = index;
const jobsTable = createJobsTable({
  index, config, isLoaded: () => feeds.jobs.loadedAt > 0, onFilters: () => historyView.filtersChanged(),
});
const historyView = createHistoryView({
  api, config, filters: () => jobsTable.filters, onView: (view) => { if (view === "active") jobsTable.refresh(); },
});
window.dashboardHistory = historyView;
const nodesView = createNodesView({ store, index, shown: () => config.cluster, isLoaded: () => feeds.nodes.loadedAt > 0 });
const metricsView = createMetricsView({ store });
const notificationsView = createNotificationsView({ store, api, config, schedule, toast, pendingFlash });
const announcements = createAnnouncements({ store, markRead: (ids) => notificationsView.markRead(ids) });
const connection = createConnectionView({ store, hub });
const alertActions = config.api.alerts ? A.alertActions({
  post: (url) => api(url, { method: "POST", body: {} }), listUrl: config.api.alerts,
  changed: () => schedule("alerts"), failed: (message) => toast(message, "error"),
}) : null;

function render() {
  const parts = new Set(dirty);
  dirty.clear();
  if (parts.has("jobs") || parts.has("tick")) jobsTable.render();
  if (parts.has("nodes") || (parts.has("jobs") && $("node-panel").open)) nodesView.render();
  if (parts.has("jobs") || parts.has("nodes") || parts.has("metrics")) metricsView.render();
  if (parts.has("notifications") || parts.has("tick")) { notificationsView.render(); announcements.render(); }
  if (parts.has("announcements")) announcements.render();
  if (parts.has("alerts")) A.renderAlerts($("alerts"), store.alerts, { actions: alertActions, canAcknowledge: !!config.isStaff, formatAgo: M.formatAgo });
  if (parts.has("tick")) connection.renderFooter();
  pendingFlash.clear();
}

// --- feeds --------------------------------------------------------------------------------

function failed(name) {
  return (err) => {
    if (name === "alerts" && err.status === 404) return;
    console.warn(`dashboard: loading ${name} failed`, err);
    setTimeout(() => feeds[name].reload(), 5000);
  };
}

/** `load` answering for the cluster shown when it returns: read again after a switch. */
function latest(load) {
  return async () => {
    for (;;) {
      const mine = generation;
      const body = await load();
      if (mine === generation) return body;
    }
  };
}

/**
 * All active jobs, in keyset pages by job id; each page's rows carry that page's position
 * (JobIndex keeps, per row, the newest of page and events). Jobs no page listed go at the end.
 */
async function loadJobs() {
  const seen = new Set();
  const mine = generation;
  const first = await api(`${config.api.jobs}&limit=${JOB_PAGE}`);
  if (mine !== generation) return { position: {} }; // another cluster since: its load follows
  index.loadRows(M.resultsOf(first), first.position?.[JOBS_CHANNEL]?.offset, { first: true, seen });
  store.source = first.source || store.source;
  M.noteStream(store.streams, "jobs", { updatedAt: first.updated_at });
  schedule("jobs");
  follow("jobs", first.position); // live from here: the rest of the pages merge by their own position
  let next = first.next;
  while (next) {
    const page = await api(`${config.api.jobs}&limit=${JOB_PAGE}&after=${encodeURIComponent(next)}`);
    if (mine !== generation) return { position: {} };
    index.loadRows(M.resultsOf(page), page.position?.[JOBS_CHANNEL]?.offset, { seen });
    schedule("jobs");
    next = page.next;
  }
  index.sweep(seen);
  return { position: {}, updated_at: first.updated_at }; // the index gates every row itself
}

const feeds = {
  jobs: new Feed("jobs", {
    gate: false, load: loadJobs, applySnapshot() {}, onError: failed("jobs"),
    applyEvent(msg) {
      const result = index.apply(msg);
      if (result && msg.type === "job_state_changed") jobsTable.flash(result.id);
      if (result) historyView.onJobEvent(msg);
    },
  }),
  nodes: new Feed("nodes", {
    load: latest(() => api(config.api.nodes)), onError: failed("nodes"),
    applySnapshot(body) {
      M.noteStream(store.streams, "nodes", { updatedAt: body.updated_at });
      const next = new Map();
      for (const raw of M.resultsOf(body)) {
        const node = M.normNode(raw);
        if (node) next.set(node.name, { ...(store.nodes.get(node.name) || {}), ...node });
      }
      store.nodes = next;
    },
    applyEvent(msg) { M.applyNodeEvent(store.nodes, msg); },
  }),
  metrics: new Feed("metrics", {
    load: latest(() => api(config.api.metrics)), onError: failed("metrics"),
    applySnapshot(body) {
      M.noteStream(store.streams, "metrics", { updatedAt: body.updated_at });
      if (body.metrics && typeof body.metrics === "object") takeMetrics(body.metrics, body.metrics.collected_at);
    },
    applyEvent(msg) {
      if (msg.type !== "metrics_update" || !msg.data || typeof msg.data !== "object") return;
      store.lastMetricsEventAt = Date.now();
      takeMetrics(msg.data, msg.data.collected_at ?? msg.timestamp);
    },
  }),
  notifications: new Feed("notifications", {
    gate: false, load: () => api(`${config.api.notifications}?limit=100`), onError: failed("notifications"),
    applySnapshot(body) {
      const next = new Map();
      for (const raw of M.resultsOf(body)) {
        const n = M.normNotification(raw);
        if (!n) continue;
        const known = store.notifications.get(String(n.id));
        next.set(String(n.id), known ? { ...n, read: known.read || n.read } : n);
      }
      // Live ones the snapshot predates stay (notifications are keyed by id: none twice).
      for (const [id, n] of store.notifications) if (!next.has(id) && !n.local) next.set(id, n);
      store.notifications = next;
    },
    applyEvent(msg) {
      if (msg.type !== "notification") return;
      const n = M.normNotification(msg.data);
      if (!n) return;
      const known = store.notifications.get(String(n.id));
      if (!known) { pendingFlash.add(`n:${n.id}`); browserNotify.notify({ ...n, title: M.notificationTitle(n, config.severalClusters) }); }
      // An event never turns a notification read on this page back to unread.
      store.notifications.set(String(n.id), known ? { ...n, read: known.read || n.read } : n);
    },
  }),
  alerts: new Feed("alerts", {
    load: latest(() => api(config.api.alerts)), onError: failed("alerts"),
    applySnapshot(body) { store.alerts = A.alertsFromSnapshot(body); },
    applyEvent(msg) {
      // `alerts` is shared by every cluster: apply the shown one's (an acknowledgement naming no
      // cluster is about an alert this page lists, whichever cluster the hub's code left unnamed).
      const unnamed = msg.type === "alert_acknowledged" && !msg.data?.cluster;
      if (unnamed || M.isShownCluster(msg, SHOWN)) A.applyAlertEvent(store.alerts, msg);
    },
  }),
};
window.dashboardFeeds = feeds; // for the console and the browser tests
for (const [name, feed] of Object.entries(feeds)) feed.onLoaded = () => { schedule(name); catchFirstSaves(); };

/**
 * A jobs or nodes snapshot read before the monitor first saved that stream (`updated_at` null)
 * misses the rows of that first poll, a baseline published as no event: once the page hears
 * the stream was saved, load that feed again. Heard from metrics_update's `streams` only (the
 * monitor reports a stream's poll there after saving it), never from an event of the stream:
 * events leave before their rows are saved, and a publisher other than the monitor sends
 * events backed by no row at all, which a reload would wipe. Its channel stays subscribed;
 * the feed skips what the new snapshot includes, as on a reset.
 */
const savedAt = {}; // stream -> its last save as metrics_update's `streams` reported it
function catchFirstSaves() {
  for (const name of ["jobs", "nodes"]) feeds[name].catchFirstSave(savedAt[name]);
}

/** Metrics carry per-node allocations (memory, GPUs) that node events do not: merge them. */
function takeMetrics(metrics, when) {
  store.metricsRaw = metrics;
  M.noteMetricsStreams(store.streams, metrics);
  for (const name of ["jobs", "nodes"]) {
    const saved = metrics && metrics.streams && metrics.streams[name] ? metrics.streams[name].updated_at : null;
    if (saved) savedAt[name] = saved;
  }
  catchFirstSaves();
  for (const raw of Array.isArray(metrics.per_node) ? metrics.per_node : []) {
    const figures = M.normNode(raw);
    if (figures) store.nodes.set(figures.name, { ...(store.nodes.get(figures.name) || { state: "UNKNOWN" }), ...figures });
  }
  schedule("nodes");
  metricsView.addSample(when);
}

// --- subscriptions --------------------------------------------------------------------------

const following = new Set();
const reloadOnSubscribed = new Set(); // channels subscribed without a position

function onPublication(channel) {
  return (msg) => {
    store.lastEventAt = Date.now();
    const name = M.feedFor(PLAN, channel, msg, SHOWN);
    if (!name) return;
    if (M.MONITOR_STREAMS.includes(name)) M.noteStream(store.streams, name, { updatedAt: msg.timestamp });
    feeds[name].handle(msg);
    schedule(name);
  };
}

/** Subscribe the channels of feed `name`, from the snapshot's `position` where it has one. */
function follow(name, position) {
  for (const channel of FEED_CHANNELS[name] || []) {
    if (following.has(channel)) continue;
    following.add(channel);
    const p = position && position[channel];
    if (p && Number.isInteger(p.offset)) hub.subscribe(channel, onPublication(channel), { since: p.offset, epoch: p.epoch });
    else {
      if (name !== "notifications") reloadOnSubscribed.add(channel);
      hub.subscribe(channel, onPublication(channel));
    }
  }
}

const subscribedOnce = new Set();
hub.on("subscribed", ({ channel }) => {
  if (subscribedOnce.has(channel)) return;
  subscribedOnce.add(channel);
  if (reloadOnSubscribed.delete(channel)) for (const name of PLAN[channel] || []) if (name !== "notifications") feeds[name]?.reload();
  // Notifications are keyed by id: loaded once their channels are live, none is missed or doubled.
  if ((FEED_CHANNELS.notifications || []).every((c) => subscribedOnce.has(c)) && !feeds.notifications.loadedAt
      && !feeds.notifications.loading) feeds.notifications.reload();
});
hub.on("reset", ({ channel }) => {
  for (const name of PLAN[channel] || []) {
    if (!feeds[name]) continue;
    feeds[name].forget(); // a new epoch: offsets count again
    if (name === "jobs") { index.clear(); historyView.invalidate(); }
    feeds[name].reload();
  }
});

hub.on("state", (detail) => {
  if (detail.state === "connected") noteServerClock(detail.timestamp);
  connection.show(detail.state, { ...detail, authFailed });
  if (detail.state === "connected" && detail.reconnected) toast("Reconnected", "ok");
  connection.renderFooter();
});
let authFailed = false;
hub.on("heartbeat", (f) => noteServerClock(f.timestamp));
hub.on("auth_failed", () => { authFailed = true; toast("Your session has ended. Sign in again to continue.", "error"); });
hub.on("recovered", ({ recovered, missed }) => {
  if (recovered && missed) toast(`Caught up on ${missed} missed update${missed > 1 ? "s" : ""}`, "ok");
});
hub.on("error", (f) => { if (f.code && f.code !== "not_authenticated") console.warn("hub error", f); });
function noteServerClock(timestamp) {
  const offset = M.clockOffset(Date.now(), timestamp);
  if (offset !== undefined) store.clockOffset = offset;
}

// Broadcasts to `all`, replayed from its history so an announcement survives a reload.
hub.subscribe("all", (msg) => {
  const a = fromBroadcast(msg);
  store.broadcasts.set(a.key, a);
  schedule("announcements");
}, { since: 0 });

// Start: notifications' own channels at once (a channel that also carries jobs, with
// HUB_PRIVATE_JOBS, waits for the jobs snapshot); the others once their snapshot says where.
for (const channel of FEED_CHANNELS.notifications || []) {
  if (channel === JOBS_CHANNEL || following.has(channel)) continue;
  following.add(channel);
  hub.subscribe(channel, onPublication(channel));
}
/** Load the shown cluster's snapshots; follow each feed's channels from its position. */
function startFeeds() {
  for (const name of ["jobs", "nodes", "metrics", "alerts"]) {
    if (!FEED_CHANNELS[name]) continue;
    if (name === "alerts" && !config.api.alerts) continue;
    feeds[name].forget();
    feeds[name].reload().then(() => { if (name !== "jobs") follow(name, feeds[name].position); });
  }
}
startFeeds();

// Without a metrics publisher, sample what the stores say.
setInterval(() => {
  if (Date.now() - store.lastMetricsEventAt < SAMPLE_EVERY_MS || (!index.size && !store.nodes.size)) return;
  metricsView.addSample(undefined);
  schedule("metrics");
}, SAMPLE_EVERY_MS);
historyView.start();
schedule("jobs", "nodes", "metrics", "notifications", "alerts");
setInterval(() => schedule("tick"), 5000);
setInterval(connection.renderFreshness, 1000);
document.addEventListener("visibilitychange", () => { if (!document.hidden) schedule("jobs", "nodes", "metrics", "notifications", "tick"); });
