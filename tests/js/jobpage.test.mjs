// The job page's pure model (dashboard/static/dashboard/jobview.js) and the client's `since`.
import { test, describe } from "node:test";
import assert from "node:assert/strict";

import { FakeClock, makeFakeWebSocket } from "./fakes.mjs";
import { eventFixture, loadModule } from "./load.mjs";

const V = await loadModule("../../dashboard/static/dashboard/jobview.js");
const { HubClient } = await loadModule("../../hub/static/hub/hub-client.js");

const DETAIL = {
  job: { job_id: "7", display_id: "7", state: "PENDING", user: "alice", reason: "JobHeldUser",
    submit_time: "2026-01-01T10:00:00.000Z", start_time: null, end_time: null, time_limit_minutes: 5, in_queue: true },
  transitions: [{ state: "PENDING", at: "2026-01-01T10:00:00.000Z" }],
  steps: [], efficiency: null, position: { jobs: { offset: 41, epoch: "e1" } },
};
const at = (iso) => Date.parse(iso);
const msg = (type, data, timestamp = "2026-01-01T10:01:00.000Z") => ({ type, channel: "jobs", offset: 42, timestamp, data });

describe("job page model", () => {
  test("a transition for this job is applied once, another job's ignored", () => {
    const s0 = V.fromDetail(DETAIL);
    assert.equal(V.applyEvent(s0, msg("job_state_changed", { job_id: "8", state: "RUNNING" })), null);
    const s1 = V.applyEvent(s0, msg("job_state_changed", { job_id: "7", state: "RUNNING", previous_state: "PENDING",
      start_time: "2026-01-01T10:00:30.000Z", reason: null }));
    assert.equal(s1.job.state, "RUNNING");
    assert.equal(s1.job.previous_state, undefined);
    assert.deepEqual(s1.transitions.map((t) => [t.state, t.at]),
      [["PENDING", "2026-01-01T10:00:00.000Z"], ["RUNNING", "2026-01-01T10:00:30.000Z"]]);
    assert.equal(s0.job.state, "PENDING"); // never mutated
    const again = V.applyEvent(s1, msg("job_state_changed", { job_id: "7", state: "RUNNING" }));
    assert.equal(again.transitions.length, 2);
  });

  test("time left counts down from start + limit; elapsed grows", () => {
    const s = V.applyEvent(V.fromDetail(DETAIL), msg("job_state_changed", { job_id: "7", state: "RUNNING", start_time: "2026-01-01T10:00:00.000Z" }));
    assert.equal(V.timeLeftSeconds(s.job, at("2026-01-01T10:01:00.000Z")), 240);
    assert.equal(V.timeLeftText(s.job, at("2026-01-01T10:01:00.000Z")), "4 min 00 s");
    assert.equal(V.elapsedSeconds(s.job, at("2026-01-01T10:02:05.000Z")), 125);
    const done = V.applyEvent(s, msg("job_state_changed", { job_id: "7", state: "COMPLETED", end_time: "2026-01-01T10:03:00.000Z", exit_code: 0 }));
    assert.equal(V.timeLeftText(done.job, at("2026-01-01T11:00:00.000Z")), "ended");
    assert.equal(V.elapsedSeconds(done.job, at("2026-01-01T11:00:00.000Z")), 180);
    assert.equal(V.canCancel(done), false);
  });

  test("job_progress updates the estimate and live efficiency", () => {
    const s = V.applyEvent(V.fromDetail(DETAIL), msg("job_progress", { job_id: "7", start_estimate: "2026-01-01T12:00:00.000Z", efficiency: { cpu: { percent: 50 } } }));
    assert.equal(s.startEstimate, "2026-01-01T12:00:00.000Z");
    assert.deepEqual(V.efficiencyRows(s)[0], ["CPU", "50%"]);
  });

  test("the server's own job_progress frame (fixture from slurm_monitor/progress.py) is read exactly", async () => {
    const frame = await eventFixture("job_progress");
    const detail = { ...DETAIL, job: { ...DETAIL.job, job_id: frame.data.job_id, display_id: frame.data.display_id,
      state: "RUNNING" } };
    const s = V.applyEvent(V.fromDetail(detail), frame);
    const rows = Object.fromEntries(V.efficiencyRows(s));
    assert.equal(rows.CPU, "50%");
    assert.ok(String(rows.Memory).startsWith("25%"), rows.Memory);
  });

  test("fields are sectioned and unknown values shown as a dash", () => {
    const rows = V.sections(V.fromDetail(DETAIL), at("2026-01-01T10:01:00.000Z")).flatMap((s) => s.rows);
    const byKey = Object.fromEntries(rows.map(([, value, key]) => [key, value]));
    assert.equal(byKey.account, "—");
    assert.equal(byKey.left, "5 min 00 s once it starts");
    assert.equal(byKey.estimate, "not estimated");
  });
});

function fakeClient() {
  const clock = new FakeClock();
  const WS = makeFakeWebSocket();
  const client = new HubClient({ WebSocket: WS, setTimeout: clock.setTimeout, clearTimeout: clock.clearTimeout,
    now: clock.dateNow, random: () => 0.5, location: { href: "http://hub.example/" }, window: null });
  const resets = [];
  client.on("reset", (r) => resets.push(r));
  return { WS, client, resets };
}

describe("subscribe since a REST position", () => {
  test("the first subscribe carries since; the same epoch resumes without a reset", () => {
    const { WS, client, resets } = fakeClient();
    const got = [];
    client.subscribe("jobs", (m) => got.push(m.offset), { since: { offset: 41, epoch: "e1" } });
    client.connect("/ws/");
    const ws = WS.last();
    ws.accept();
    assert.deepEqual(ws.sentOfType("subscribe"), [{ type: "subscribe", channels: ["jobs"], since: { jobs: 41 } }]);
    ws.serverSend({ type: "subscribed", channel: "jobs", offset: 43, epoch: "e1" });
    ws.serverSend({ type: "job_state_changed", channel: "jobs", offset: 41, data: {} }); // already in REST
    ws.serverSend({ type: "job_state_changed", channel: "jobs", offset: 42, data: {} });
    assert.deepEqual(got, [42]);
    assert.equal(resets.length, 0);
  });

  test("another epoch on subscribed is a reset (the page re-reads over REST)", () => {
    const { WS, client, resets } = fakeClient();
    client.subscribe("jobs", () => {}, { since: { offset: 41, epoch: "e1" } });
    client.connect("/ws/");
    WS.last().accept();
    WS.last().serverSend({ type: "subscribed", channel: "jobs", offset: 3, epoch: "e2" });
    assert.equal(resets.length, 1);
  });
});

describe("a job of another cluster", () => {
  test("the same id on another cluster is not this job (user:<me> carries every cluster's)", () => {
    const s0 = V.fromDetail({ ...DETAIL, job: { ...DETAIL.job, cluster: "b" }, cluster: "b" });
    assert.equal(V.applyEvent(s0, msg("job_state_changed", { job_id: "7", state: "RUNNING", cluster: "default" })), null);
    assert.equal(V.applyEvent(s0, msg("job_state_changed", { job_id: "7", state: "RUNNING", cluster: "b" })).job.state,
      "RUNNING");
  });
});
