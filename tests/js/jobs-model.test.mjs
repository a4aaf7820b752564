// Unit tests for dashboard/static/dashboard/jobs-model.js (the jobs the page holds, exact
// against the stream) and the model's node and notification readers, fed the event frames
// the Python suite generates from slurm_monitor/events.py (tests/dashboard/test_event_fixtures.py).
import { test, describe } from "node:test";
import assert from "node:assert/strict";

import { eventFixture, loadModule } from "./load.mjs";

const M = await loadModule("../../dashboard/static/dashboard/model.js");
const J = await loadModule("../../dashboard/static/dashboard/jobs-model.js");

const submitted = await eventFixture("job_submitted");
const started = await eventFixture("job_state_changed");
const completed = await eventFixture("job_state_changed.completed");
const removed = await eventFixture("job_removed");
const task = await eventFixture("job_submitted.array_task");
const at = (frame, offset) => ({ ...frame, offset });

describe("the event contract, read exactly", () => {
  test("a job's life from the builders' frames: one record, what events omit kept", () => {
    const index = new J.JobIndex();
    index.apply(submitted);
    assert.equal(index.jobs.get("1001").state, "PENDING");
    assert.equal(index.jobs.get("1001").reason, "Priority");
    assert.equal(index.jobs.get("1001").timeLimit, 60);
    index.apply(started);
    const job = index.jobs.get("1001");
    assert.equal(job.state, "RUNNING");
    assert.equal(job.previousState, "PENDING");
    assert.equal(job.nodes, "gpu[01-02]");
    assert.equal(job.cpus, 8, "job_state_changed carries no cpus: kept");
    assert.equal(job.displayId, "1001");
    assert.equal(J.timeLeftMs(job, job.startTime + 10 * 60_000), 50 * 60_000);
    index.apply(completed);
    assert.equal(index.jobs.get("1001").state, "COMPLETED");
    assert.equal(M.jobTime(index.jobs.get("1001")).label, "30m 00s");
    assert.deepEqual(index.apply(removed), { id: "1001", change: "remove" });
    assert.equal(index.size, 0);
  });

  test("every field of job_fields has a place in the page's job", () => {
    const job = M.normJob(submitted.data);
    for (const key of ["id", "name", "user", "partition", "state", "reason", "cpus", "gpus", "memory", "submitTime",
      "timeLimit", "stateFlags", "displayId"]) assert.ok(key in job, key);
    const t = M.normJob(task.data);
    assert.equal(t.displayId, "1010_1");
    assert.equal(t.arrayJobId, "1010");
    assert.equal(t.arrayTaskId, 1);
    assert.equal(M.jobHref(t), "/jobs/1010_1");
  });

  test("node_resource_change keeps the node's state (it carries none)", async () => {
    const nodes = new Map();
    M.applyNodeEvent(nodes, await eventFixture("node_added"));
    assert.equal(nodes.get("gpu01").state, "MIXED");
    assert.equal(nodes.get("gpu01").partitions, "gpu,all");
    M.applyNodeEvent(nodes, await eventFixture("node_resource_change"));
    assert.equal(nodes.get("gpu01").state, "MIXED");
    assert.equal(nodes.get("gpu01").cpusAlloc, 48);
    assert.equal(nodes.get("gpu01").memTotal, 256000, "what the event omits stays");
    M.applyNodeEvent(nodes, await eventFixture("node_state_changed"));
    assert.equal(nodes.get("gpu01").state, "DRAINED");
    assert.equal(nodes.get("gpu01").reason, "maintenance");
    M.applyNodeEvent(nodes, await eventFixture("node_removed"));
    assert.equal(nodes.size, 0);
  });

  test("metrics_update's per_node and totals", async () => {
    const frame = await eventFixture("metrics_update");
    const m = M.normMetrics(frame.data);
    assert.equal(m.cpusTotal, 64);
    assert.equal(m.jobsRunning, 2);
    const figures = M.normNode(frame.data.per_node[0]);
    assert.equal(figures.name, "gpu01");
    assert.equal(figures.memTotal, 256000);
  });

  test("notifications: the service's and the monitor's own shape, each linking to its job", async () => {
    const n = M.normNotification((await eventFixture("notification")).data);
    assert.equal(n.id, 42);
    assert.equal(n.user, "alice");
    assert.equal(n.severity, "success");
    assert.ok(n.created > 0);
    assert.equal(M.notificationJobHref(n), "/jobs/1001");
    const local = M.normNotification((await eventFixture("notification.monitor_only")).data);
    assert.equal(local.local, true);
    assert.equal(local.title, "Job 1001 (train) completed");
    assert.equal(M.notificationJobHref(local), "/jobs/1001");
  });
});

describe("zero gap: REST pages and the stream join exactly", () => {
  const row = (id, state, extra = {}) => ({ job_id: id, state, user: "u", partition: "p", ...extra });

  test("an event the snapshot already includes is not applied twice; a newer one is", () => {
    const index = new J.JobIndex();
    index.loadRows([row("1001", "RUNNING")], 10, { first: true });
    assert.equal(index.apply(at(started, 9)), null, "replayed, at or below the position");
    assert.equal(index.apply(at(submitted, 10)), null);
    assert.equal(index.jobs.get("1001").state, "RUNNING");
    assert.deepEqual(index.apply(at(completed, 11)), { id: "1001", change: "upsert" });
    assert.equal(index.jobs.get("1001").state, "COMPLETED");
  });

  test("a later page older than an event does not undo it; a removed job stays removed", () => {
    const index = new J.JobIndex();
    index.loadRows([row("1", "PENDING")], 5, { first: true });
    index.apply(at({ ...completed, data: { ...completed.data, job_id: "2000" } }, 8));
    index.apply(at({ ...removed, data: { ...removed.data, job_id: "2001" } }, 9));
    index.loadRows([row("2000", "RUNNING"), row("2001", "RUNNING"), row("2002", "PENDING")], 7);
    assert.equal(index.jobs.get("2000").state, "COMPLETED", "the page (7) is older than the event (8)");
    assert.equal(index.jobs.has("2001"), false, "removed at 9, the page is of 7");
    assert.equal(index.jobs.get("2002").state, "PENDING");
    index.loadRows([row("2000", "COMPLETED", { exit_code: 0 })], 12);
    assert.equal(index.jobs.get("2000").exitCode, 0, "a newer page replaces the row");
  });

  test("an event for a job no page has shown applies only after the first page's position", () => {
    const index = new J.JobIndex();
    index.loadRows([], 20, { first: true });
    assert.equal(index.apply(at(submitted, 20)), null);
    assert.notEqual(index.apply(at(submitted, 21)), null);
    const fresh = new J.JobIndex(); // no position (null): every event applies
    fresh.loadRows([], null, { first: true });
    assert.notEqual(fresh.apply(at(submitted, 1)), null);
  });

  test("a reload without a position keeps the rows on screen and drops only what no page listed", () => {
    const index = new J.JobIndex();
    index.loadRows([row("1", "RUNNING"), row("2", "PENDING")], null, { first: true });
    index.apply(at(submitted, 3)); // job 1001, told by an event
    const seen = new Set();
    index.loadRows([row("2", "RUNNING")], 2, { first: true, seen });
    index.sweep(seen);
    assert.deepEqual([...index.jobs.keys()].sort(), ["1001", "2"]);
    assert.equal(index.jobs.get("2").state, "RUNNING");
  });

  test("counts follow the rows, for the cards and the state filter", () => {
    const index = new J.JobIndex();
    index.loadRows([row("1", "RUNNING"), row("2", "PENDING"), row("3", "COMPLETED")], 1, { first: true });
    assert.deepEqual(index.counts().states, { RUNNING: 1, PENDING: 1, COMPLETED: 1 });
    index.apply({ type: "job_state_changed", offset: 2, data: { job_id: "2", state: "RUNNING", previous_state: "PENDING" } });
    const c = index.counts();
    assert.equal(c.running, 2);
    assert.equal(c.pending, 0);
    assert.equal(c.total, 3);
  });
});

describe("the table's view: filters, sort, arrays", () => {
  const jobs = [
    { job_id: "9", name: "alpha", user: "alice", partition: "cpu", state: "RUNNING", cpus: 4, time_limit_minutes: 30,
      start_time: "2026-11-22T10:00:00.000Z" },
    { job_id: "10", name: "beta", user: "bob", partition: "gpu", state: "PENDING", cpus: 16, time_limit_minutes: 600 },
    { job_id: "100", name: "gamma", user: "alice", partition: "cpu,gpu", state: "COMPLETED", cpus: 1 },
    { job_id: "21", array_job_id: "20", array_task_id: 1, display_id: "20_1", name: "sweep", user: "bob", partition: "cpu", state: "RUNNING" },
    { job_id: "20", array_job_id: "20", display_id: "20_[2-5]", name: "sweep", user: "bob", partition: "cpu", state: "PENDING" },
    { job_id: "22", array_job_id: "20", array_task_id: 0, display_id: "20_0", name: "sweep", user: "bob", partition: "cpu", state: "FAILED" },
  ].map(M.normJob);
  const ids = (filters = {}, sort = {}, opts = {}) => J.buildView(jobs, filters, sort, opts)
    .map((r) => (r.kind === "array" ? `a${r.id}` : r.job.id));

  test("newest first by default; an array is one row with per-task counts", () => {
    assert.deepEqual(ids(), ["100", "a20", "10", "9"]);
    const array = J.buildView(jobs).find((r) => r.kind === "array");
    assert.deepEqual(array.counts, { pending: 4, running: 1, done: 1, failed: 1, total: 6 });
  });

  test("filters: user, partition, state, active, text", () => {
    assert.deepEqual(ids({ user: "alice" }), ["100", "9"]);
    assert.deepEqual(ids({ partition: "gpu" }), ["100", "10"]);
    assert.deepEqual(ids({ state: "PENDING" }), ["a20", "10"]);
    assert.deepEqual(ids({ state: "ACTIVE" }), ["a20", "10", "9"]);
    assert.deepEqual(ids({ q: "gam" }), ["100"]);
    assert.deepEqual(ids({ q: "10" }), ["100", "10"]);
  });

  test("an array expands to its tasks; a task id ('20_1', or '20_3' still pending) finds it", () => {
    assert.deepEqual(ids({}, {}, { expanded: new Set(["20"]) }), ["100", "a20", "22", "21", "20", "10", "9"]);
    assert.deepEqual(ids({ q: "20_1" }), ["a20", "21"]);
    assert.deepEqual(ids({ q: "20_3" }), ["a20", "20"]);
    assert.deepEqual(ids({ q: "20_9" }), []);
  });

  test("sorting by any column, both ways, ties newest first", () => {
    assert.deepEqual(ids({ state: "ACTIVE" }, { key: "cpus", dir: "desc" }), ["10", "9", "a20"]);
    assert.deepEqual(ids({}, { key: "name", dir: "asc" }), ["9", "10", "100", "a20"]);
    assert.deepEqual(ids({}, { key: "timeLimit", dir: "asc" }), ["9", "10", "100", "a20"]);
    const now = Date.parse("2026-11-22T10:10:00.000Z");
    assert.deepEqual(J.buildView(jobs, {}, { key: "timeLeft", dir: "asc" }, { now }).map((r) => r.job.id)[0], "9");
    assert.deepEqual(ids({}, { key: "id", dir: "asc" }), ["9", "10", "a20", "100"]);
  });

  test("host lists expand for the node panel", () => {
    assert.deepEqual(M.expandHostlist("gpu[01-03],cn7"), ["gpu01", "gpu02", "gpu03", "cn7"]);
    assert.deepEqual(M.expandHostlist("n[1,3-4]"), ["n1", "n3", "n4"]);
    assert.deepEqual(M.expandHostlist(""), []);
  });
});
