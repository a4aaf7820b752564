// Unit tests for dashboard/static/dashboard/model.js, the dashboard's pure part.
// Payloads mirror slurm_monitor/events.py (job_fields, node_fields, metrics_fields) and
// hub/notify/notifications.py (to_dict).
import { test, describe } from "node:test";
import assert from "node:assert/strict";

import { loadModule } from "./load.mjs";

const M = await loadModule("../../dashboard/static/dashboard/model.js");

const JOB = {
  job_id: "1001", name: "train", user: "alice", partition: "gpu", state: "PENDING", reason: "Priority",
  nodes: null, node_count: 1, cpus: 8, gpus: 2, memory_mb: 16000, submit_time: "2026-11-22T10:00:00.000Z",
  start_time: null, end_time: null, time_limit_minutes: 60, exit_code: null, signal: null,
};
const NODE = {
  node: "gpu01", state: "MIXED", flags: [], reason: null, partitions: ["gpu", "all"], cpus: 64, alloc_cpus: 16,
  cpu_load: 12.5, cpu_load_percent: 19.5, cpu_alloc_percent: 25, real_memory_mb: 256000,
  alloc_memory_mb: 64000, free_memory_mb: 100000, gpus: 4, alloc_gpus: 2,
};
const METRICS = {
  cpu: { total: 128, allocated: 32, usage_percent: 25 },
  memory: { total_mb: 512000, allocated_mb: 128000, usage_percent: 25 },
  gpu: { total: 8, allocated: 6, usage_percent: 75 },
  jobs: { running: 3, pending: 5, total: 9 },
  nodes: { idle: 1, down: 1, drained: 1, total: 4 },
  per_node: [],
  collected_at: "2026-11-22T10:00:05.000Z",
};
const T0 = Date.parse("2026-11-22T10:00:00.000Z");

describe("jobs", () => {
  test("normJob reads the monitor's job record", () => {
    const job = M.normJob(JOB);
    assert.equal(job.id, "1001");
    assert.equal(job.state, "PENDING");
    assert.equal(job.reason, "Priority");
    assert.equal(job.cpus, 8);
    assert.equal(job.gpus, 2);
    assert.equal(job.submitTime, T0);
    assert.equal(job.startTime, undefined, "null on the wire: unknown");
    assert.equal(job.timeLimit, 60);
  });

  test("normJob reads exactly the wire's names: no aliases are guessed", () => {
    assert.equal(M.normJob({ id: 7, job_state: ["RUNNING"] }), null, "no job_id: not a job");
    assert.equal(M.normJob({ job_id: 7, job_state: "RUNNING" }).state, undefined);
    assert.equal(M.normJob({ job_id: 7, state: "running" }).state, "RUNNING");
    assert.equal(M.normJob({ name: "no id" }), null);
    assert.equal(M.normJob(null), null);
    assert.equal(M.normJob({ job_id: 1, reason_text: "Waiting for resources", reason: "Resources" }).reasonText,
      "Waiting for resources");
  });

  test("jobTone groups states into colour families", () => {
    assert.equal(M.jobTone("PENDING"), "pending");
    assert.equal(M.jobTone("RUNNING"), "running");
    assert.equal(M.jobTone("COMPLETING"), "running");
    assert.equal(M.jobTone("COMPLETED"), "done");
    assert.equal(M.jobTone("FAILED"), "failed");
    assert.equal(M.jobTone("OUT_OF_MEMORY"), "failed");
    assert.equal(M.jobTone("TIMEOUT"), "failed");
    assert.equal(M.jobTone("CANCELLED"), "cancelled");
    assert.equal(M.jobTone("WHATEVER"), "other");
  });

});

describe("nodes", () => {
  test("normNode reads the monitor's node record", () => {
    const node = M.normNode(NODE);
    assert.equal(node.name, "gpu01");
    assert.equal(node.cpusTotal, 64);
    assert.equal(node.cpusAlloc, 16);
    assert.equal(node.memTotal, 256000);
    assert.equal(node.memAlloc, 64000);
    assert.equal(node.gpusTotal, 4);
    assert.equal(node.gpusAlloc, 2);
    assert.equal(node.partitions, "gpu,all");
    assert.equal(node.reason, "");
  });

  test("state and resource events merge into the known node", () => {
    const nodes = new Map();
    M.applyNodeEvent(nodes, { type: "node_added", data: NODE });
    M.applyNodeEvent(nodes, { type: "node_state_changed", data: { node: "gpu01", state: "DRAINING", previous_state: "MIXED",
      flags: ["DRAIN"], reason: "disk errors" } });
    assert.equal(nodes.get("gpu01").reason, "disk errors");
    assert.equal(M.nodeTone(nodes.get("gpu01").state, nodes.get("gpu01").flags), "drain");
    M.applyNodeEvent(nodes, { type: "node_resource_change", data: { node: "gpu01", cpus: 64, alloc_cpus: 48 } });
    assert.equal(nodes.get("gpu01").cpusAlloc, 48);
    assert.equal(nodes.get("gpu01").memAlloc, 64000);
    M.applyNodeEvent(nodes, { type: "node_state_changed", data: { node: "gpu01", state: "IDLE", flags: [], reason: null } });
    assert.equal(nodes.get("gpu01").reason, "", "the drain reason goes with the drain");
    M.applyNodeEvent(nodes, { type: "node_removed", data: { node: "gpu01", state: "IDLE" } });
    assert.equal(nodes.size, 0);
  });

  test("nodeTone maps Slurm states and flags", () => {
    assert.equal(M.nodeTone("IDLE"), "idle");
    assert.equal(M.nodeTone("MIXED"), "mixed");
    assert.equal(M.nodeTone("ALLOCATED"), "allocated");
    assert.equal(M.nodeTone("DOWN"), "down");
    assert.equal(M.nodeTone("idle*"), "down");
    assert.equal(M.nodeTone("DRAINED"), "drain");
    assert.equal(M.nodeTone("IDLE", ["DRAIN"]), "drain");
    assert.equal(M.nodeTone("MIXED+DRAIN"), "drain");
    assert.equal(M.nodeTone(["ALLOCATED", "DRAIN"]), "allocated");
    assert.equal(M.nodeTone("RESERVED"), "reserved");
    assert.equal(M.nodeTone(undefined), "other");
  });
});

describe("metrics", () => {
  test("normMetrics reads the nested metrics_update payload", () => {
    const m = M.normMetrics(METRICS);
    assert.equal(m.jobsRunning, 3);
    assert.equal(m.jobsPending, 5);
    assert.equal(m.cpuUtil, 25);
    assert.equal(m.memUtil, 25);
    assert.equal(m.gpuUtil, 75);
    assert.equal(m.nodesTotal, 4);
    assert.equal(m.nodesDown, 2, "down and drained nodes are both unavailable");
  });

  test("normMetrics derives what is missing from the stores", () => {
    const nodes = new Map([["a", M.normNode(NODE)], ["b", M.normNode({ ...NODE, node: "b", state: "DOWN", alloc_cpus: 0 })]]);
    const jobCounts = { running: 1, pending: 1, total: 2 };
    const m = M.normMetrics({ jobs: { running: 9, pending: 9, total: 99 } }, { nodes, jobCounts });
    assert.equal(m.nodesTotal, 2);
    assert.equal(m.nodesDown, 1);
    assert.equal(m.cpusTotal, 128);
    assert.equal(m.cpuUtil, 12.5);
    assert.equal(m.gpuUtil, 50);
    assert.equal(m.jobsRunning, 1);
    assert.equal(m.jobsPending, 1, "the job cards count what the table holds");
    assert.equal(m.jobsTotal, 2);
  });

  test("no GPUs means no GPU percentage", () => {
    const m = M.normMetrics({ gpu: { total: 0, allocated: 0, usage_percent: 0 } });
    assert.equal(m.gpuUtil, undefined);
  });

  test("pushSample keeps the last hour in time order", () => {
    const history = [];
    M.pushSample(history, { t: T0, v: 1 }, T0);
    M.pushSample(history, { t: T0 + 60_000, v: 2 }, T0 + 60_000);
    M.pushSample(history, { t: T0 + 30_000, v: 3 }, T0 + 60_000);
    assert.deepEqual(history.map((s) => s.v), [1, 3, 2]);
    M.pushSample(history, { t: T0 + M.HOUR_MS + 45_000, v: 4 }, T0 + M.HOUR_MS + 45_000);
    assert.deepEqual(history.map((s) => s.v), [2, 4]);
  });

  test("sparklinePaths spans the window and scales into the box", () => {
    const now = T0 + M.HOUR_MS;
    const paths = M.sparklinePaths([{ t: T0, v: 0 }, { t: T0 + M.HOUR_MS / 2, v: 50 }, { t: now, v: 100 }],
      { now, width: 120, height: 32, min: 0, max: 100, pad: 2 });
    assert.equal(paths.line, "M0 30 L60 16 L120 2");
    assert.ok(paths.area.endsWith("L120 32 L0 32 Z"));
    assert.deepEqual(paths.last, { x: 120, y: 2 });
    assert.equal(M.sparklinePaths([], { now }), null);
    assert.equal(M.sparklinePaths([{ t: now, v: undefined }], { now }), null);
    const single = M.sparklinePaths([{ t: now, v: 5 }], { now });
    assert.ok(single.line.startsWith("M119"), single.line);
  });

  test("sparklinePaths stretches a short history over the width", () => {
    const now = T0 + 10 * 60_000;
    const paths = M.sparklinePaths([{ t: T0, v: 0 }, { t: now, v: 10 }], { now, width: 100, height: 20, pad: 0 });
    assert.equal(paths.line, "M0 20 L100 0");
    const tiny = M.sparklinePaths([{ t: now - 1000, v: 1 }, { t: now, v: 2 }], { now, width: 60, height: 20, pad: 0 });
    assert.equal(tiny.line, "M59 20 L60 0", "at least a minute wide");
  });
});

describe("notifications and alerts", () => {
  test("normNotification reads the hub's notification", () => {
    const n = M.normNotification({ id: 3, user: "alice", type: "job_completed", title: "Job 1 completed",
      message: "ok", severity: "success", data: { job_id: "1" }, read: false, created: "2026-11-22T10:00:00Z" });
    assert.equal(n.id, 3);
    assert.equal(n.local, false);
    assert.equal(n.created, T0);
    assert.equal(n.read, false);
  });

  test("a notification without an id gets a local one", () => {
    const a = M.normNotification({ title: "Node down", severity: "error" });
    const b = M.normNotification({ title: "Node down", severity: "error" });
    assert.equal(a.local, true);
    assert.notEqual(a.id, b.id);
    assert.equal(M.normNotification({}), null);
  });

  test("sortNotifications: unread first, then newest", () => {
    const list = [
      { id: 1, read: true, created: 3 }, { id: 2, read: false, created: 1 }, { id: 3, read: false, created: 2 },
    ];
    assert.deepEqual(M.sortNotifications(list).map((n) => n.id), [3, 2, 1]);
  });

});

describe("formatting", () => {
  test("time limits, short", () => {
    assert.equal(M.formatLimit(45), "45m");
    assert.equal(M.formatLimit(120), "2h");
    assert.equal(M.formatLimit(90), "1h 30m");
    assert.equal(M.formatLimit(3 * 1440), "3d");
    assert.equal(M.formatLimit(1440 + 720), "1d 12h");
    assert.equal(M.formatLimit(undefined), "");
  });

  test("durations, ages, sizes, percentages", () => {
    assert.equal(M.formatDuration(0), "0s");
    assert.equal(M.formatDuration(59_000), "59s");
    assert.equal(M.formatDuration(61_000), "1m 01s");
    assert.equal(M.formatDuration(3_600_000 + 5 * 60_000), "1h 05m");
    assert.equal(M.formatDuration(2 * 86_400_000 + 3_600_000), "2d 1h");
    assert.equal(M.formatDuration(undefined), "");
    assert.equal(M.formatAgo(T0, T0 + 2000), "just now");
    assert.equal(M.formatAgo(T0, T0 + 90_000), "1m ago");
    assert.equal(M.formatAgo(T0, T0 + 7_200_000), "2h ago");
    assert.equal(M.formatMegabytes(512), "512 MB");
    assert.equal(M.formatMegabytes(1536), "1.5 GB");
    assert.equal(M.formatMegabytes(256000), "250 GB");
    assert.equal(M.formatMegabytes(3 * 1024 * 1024), "3.0 TB");
    assert.equal(M.formatPercent(42.4), "42%");
    assert.equal(M.formatMegabytesPair(0, 192000), "0 / 188 GB");
    assert.equal(M.formatMegabytesPair(25600, 192000), "25 / 188 GB");
    assert.equal(M.formatMegabytesPair(1536, 8192), "1.5 / 8 GB");
    assert.equal(M.formatMegabytesPair(100, 512), "100 / 512 MB");
    assert.equal(M.formatMegabytesPair(1, undefined), "");
    assert.equal(M.formatPercent(undefined), "–");
  });

  test("jobTime: waiting, running, ran", () => {
    const now = T0 + 600_000;
    assert.deepEqual(M.jobTime({ state: "PENDING", submitTime: T0 }, now), { label: "10m 00s", hint: "waiting" });
    assert.deepEqual(M.jobTime({ state: "RUNNING", startTime: T0 }, now), { label: "10m 00s", hint: "running" });
    assert.deepEqual(M.jobTime({ state: "FAILED", startTime: T0, endTime: T0 + 5000 }, now), { label: "5s", hint: "ran" });
    assert.deepEqual(M.jobTime({ state: "RUNNING" }, now), { label: "", hint: "" });
  });
});

describe("channels: what the page follows and where each message goes", () => {
  test("by default: jobs on `jobs`, own notifications on user:<name>, cluster-wide on `notifications`", () => {
    const plan = M.channelPlan({ user: "alice", isStaff: false });
    assert.deepEqual(Object.keys(plan).sort(), ["jobs", "metrics", "nodes", "notifications", "user:alice"]);
    assert.deepEqual(plan["user:alice"], ["notifications"]);
    assert.equal(M.feedFor(plan, "jobs", { type: "job_submitted", data: {} }), "jobs");
    assert.equal(M.feedFor(plan, "notifications", { type: "notification", data: { id: 1, user: null } }), "notifications");
    assert.equal(M.feedFor(plan, "user:alice", { type: "notification", data: { id: 2, user: "alice" } }), "notifications");
    // jobs also reach user:<name>, but come on `jobs` here: not applied twice
    assert.equal(M.feedFor(plan, "user:alice", { type: "job_submitted", data: { job_id: "1" } }), null);
    assert.deepEqual(M.feedChannels(plan).notifications, ["notifications", "user:alice"]);
  });

  test("HUB_PRIVATE_JOBS: a user's jobs come on user:<name> and `jobs` is not subscribed", () => {
    const plan = M.channelPlan({ user: "bob", isStaff: false, privateJobs: true });
    assert.equal("jobs" in plan, false);
    assert.equal("alerts" in plan, false);
    for (const type of ["job_submitted", "job_state_changed", "job_removed"]) {
      assert.equal(M.feedFor(plan, "user:bob", { type, data: { job_id: "7" } }), "jobs", type);
    }
    assert.equal(M.feedFor(plan, "user:bob", { type: "notification", data: { id: 3 } }), "notifications");
    assert.equal(M.feedFor(plan, "user:bob", { type: "something_else", data: {} }), null);
    assert.deepEqual(M.feedChannels(plan).jobs, ["user:bob"]);
  });

  test("staff keep `jobs` (and alerts) even with private jobs", () => {
    const plan = M.channelPlan({ user: "root", isStaff: true, privateJobs: true });
    assert.deepEqual(plan.jobs, ["jobs"]);
    assert.deepEqual(plan.alerts, ["alerts"]);
    assert.equal(M.feedFor(plan, "user:root", { type: "job_removed", data: { job_id: "1" } }), null);
  });

  test("isClusterWide: a stored notification without a user", () => {
    assert.equal(M.isClusterWide(M.normNotification({ id: 4, user: null, title: "Node cn01 is down" })), true);
    assert.equal(M.isClusterWide(M.normNotification({ id: 5, user: "alice", title: "Job 1 failed" })), false);
    assert.equal(M.isClusterWide(M.normNotification({ title: "no id" })), false);
  });
});

describe("freshness: stale data shows even while the socket is up", () => {
  const INTERVALS = { jobs: 5, nodes: 10, metrics: 15 };
  function streamsAt(times) {
    const streams = {};
    for (const [name, t] of Object.entries(times)) M.noteStream(streams, name, { updatedAt: t, interval: INTERVALS[name] });
    return streams;
  }

  test("no monitor information: unknown, never stale", () => {
    assert.deepEqual(M.dataFreshness({}, T0), { state: "unknown", late: [], age: undefined });
    const noInterval = M.noteStream({}, "jobs", { updatedAt: T0 - 3_600_000 }); // REST time only
    assert.equal(M.dataFreshness(noInterval, T0).state, "unknown");
  });

  test("streams polled recently are fresh; the age is the oldest one's", () => {
    const f = M.dataFreshness(streamsAt({ jobs: T0 - 2000, nodes: T0 - 7000, metrics: T0 - 1000 }), T0);
    assert.deepEqual(f, { state: "fresh", late: [], age: 7 });
  });

  test("a stream 3 intervals (plus the metrics interval that reports it) late is stale", () => {
    // jobs: 3 x 5 s + 15 s = 30 s of allowance; metrics: 3 x 15 s = 45 s.
    assert.equal(M.dataFreshness(streamsAt({ jobs: T0 - 30_000, metrics: T0 - 1000 }), T0).state, "fresh");
    const late = M.dataFreshness(streamsAt({ jobs: T0 - 30_001, metrics: T0 - 1000 }), T0);
    assert.deepEqual(late.late, ["jobs"]);
    assert.equal(late.state, "stale");
    assert.equal(Math.round(late.age), 30);
    const dead = M.dataFreshness(streamsAt({ jobs: T0 - 46_000, nodes: T0 - 46_000, metrics: T0 - 45_500 }), T0);
    assert.deepEqual(dead.late, ["jobs", "metrics", "nodes"]);
  });

  test("short intervals are judged no sooner than minStaleMs", () => {
    const fast = {};
    M.noteStream(fast, "jobs", { updatedAt: T0 - 9000, interval: 0.5 });
    M.noteStream(fast, "metrics", { updatedAt: T0 - 9000, interval: 2 });
    assert.equal(M.dataFreshness(fast, T0).state, "fresh");
    assert.equal(M.dataFreshness(fast, T0 + 1001).state, "stale");
    assert.equal(M.dataFreshness(fast, T0, { minStaleMs: 0 }).state, "stale");
  });

  test("metrics_update reports every stream; the newest time wins, replays do not rewind", () => {
    const streams = {};
    M.noteMetricsStreams(streams, { ...METRICS, streams: {
      jobs: { updated_at: "2026-11-22T10:00:04.000Z", interval: 5 },
      nodes: { updated_at: null, interval: 10 },
      metrics: { updated_at: "2026-11-22T10:00:05.000Z", interval: 15 },
    } });
    assert.deepEqual(streams.jobs, { updatedAt: T0 + 4000, interval: 5 });
    assert.deepEqual(streams.nodes, { updatedAt: undefined, interval: 10 });
    M.noteStream(streams, "jobs", { updatedAt: "2026-11-22T10:00:09.000Z" }); // a live job event
    M.noteStream(streams, "jobs", { updatedAt: "2026-11-22T10:00:01.000Z" }); // a replayed one
    assert.deepEqual(streams.jobs, { updatedAt: T0 + 9000, interval: 5 });
    M.noteMetricsStreams(streams, METRICS); // an older monitor: no streams, nothing changes
    assert.equal(streams.metrics.interval, 15);
  });

  test("the server's clock, and the age as the page says it", () => {
    assert.equal(M.clockOffset(T0 + 2500, "2026-11-22T10:00:00.000Z"), 2500);
    assert.equal(M.clockOffset(T0, undefined), undefined);
    assert.equal(M.formatDataAge(41.4), "data 41 s old");
    assert.equal(M.formatDataAge(600), "data 10 min old");
    assert.equal(M.formatDataAge(4 * 3600), "data 4 h old");
    assert.equal(M.formatDataAge(undefined), "");
  });
});

describe("several clusters", () => {
  const ANSWER = {
    primary: "default",
    clusters: [
      { name: "default", primary: true, channels: { jobs: "jobs", nodes: "nodes", metrics: "metrics" } },
      { name: "b", primary: false, channels: { jobs: "jobs.b", nodes: "nodes.b", metrics: "metrics.b" } },
    ],
  };
  const B = ANSWER.clusters[1];
  const PRIMARY = ANSWER.clusters[0];

  test("the shown cluster: the URL's if known, else the remembered one, else the primary", () => {
    assert.equal(M.pickCluster(ANSWER, "b", null), B);
    assert.equal(M.pickCluster(ANSWER, null, "b"), B);
    assert.equal(M.pickCluster(ANSWER, "nowhere", "gone"), PRIMARY);
    assert.equal(M.pickCluster(ANSWER, "default", "b"), PRIMARY);
    assert.equal(M.pickCluster({ primary: "tycho" }, "b", null).name, "tycho");
  });

  test("channels come from the answer; REST and links ask for the cluster off the primary only", () => {
    const plan = M.channelPlan({ user: "alice", channels: B.channels });
    assert.deepEqual(Object.keys(plan).sort(), ["jobs.b", "metrics.b", "nodes.b", "notifications", "user:alice"]);
    assert.deepEqual(Object.keys(M.channelPlan({ user: "alice", channels: PRIMARY.channels })).sort(),
      ["jobs", "metrics", "nodes", "notifications", "user:alice"]);
    assert.equal(M.withCluster("/api/cluster/jobs?view=active", B), "/api/cluster/jobs?view=active&cluster=b");
    assert.equal(M.withCluster("/api/cluster/nodes", B), "/api/cluster/nodes?cluster=b");
    assert.equal(M.withCluster("/api/cluster/nodes", PRIMARY), "/api/cluster/nodes");
    assert.equal(M.jobHref({ id: "42" }, B), "/jobs/42?cluster=b");
    assert.equal(M.jobHref({ id: "42" }, PRIMARY), "/jobs/42");
    assert.equal(M.clusterPageUrl({ pathname: "/", search: "?view=finished&cluster=a", hash: "" }, "b"),
      "/?view=finished&cluster=b");
  });

  test("job events on user:<me> apply only to the shown cluster", () => {
    const plan = M.channelPlan({ user: "bob", privateJobs: true, channels: B.channels });
    const on = (cluster) => ({ type: "job_state_changed", data: { job_id: "7", ...(cluster ? { cluster } : {}) } });
    assert.equal(M.feedFor(plan, "user:bob", on("b"), B), "jobs");
    assert.equal(M.feedFor(plan, "user:bob", on("default"), B), null);
    assert.equal(M.feedFor(plan, "user:bob", on(undefined), B), null); // unnamed: the primary's
    assert.equal(M.feedFor(plan, "user:bob", on(undefined), PRIMARY), "jobs");
    assert.equal(M.feedFor(plan, "user:bob", { type: "notification", data: { id: 1, cluster: "default" } }, B),
      "notifications"); // notifications: every cluster's
  });

  test("notifications name their cluster when there are several, and link to its job page", () => {
    const n = M.normNotification({ id: 5, title: "Job 42 failed", data: { job_id: "42", cluster: "b" } });
    assert.equal(M.notificationTitle(n, true), "Job 42 failed · b");
    assert.equal(M.notificationTitle(n, false), "Job 42 failed");
    assert.equal(M.notificationJobHref(n, "default"), "/jobs/42?cluster=b");
    assert.equal(M.notificationJobHref({ data: { job_id: "42", cluster: "default" } }, "default"), "/jobs/42");
  });

  test("rows keep their cluster", () => {
    assert.equal(M.normJob({ ...JOB, cluster: "b" }).cluster, "b");
  });
});
