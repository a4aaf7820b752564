// Unit tests for dashboard/static/dashboard/history-model.js: the jobs table's Finished view
// (server-side query, sort in the URL, which events end a job, what an empty search says).
import { test, describe } from "node:test";
import assert from "node:assert/strict";

import { eventFixture, loadModule } from "./load.mjs";

const H = await loadModule("../../dashboard/static/dashboard/history-model.js");
const M = await loadModule("../../dashboard/static/dashboard/model.js");

const query = (options) => Object.fromEntries(new URLSearchParams(H.historyQuery(options)));

describe("the Finished view's query", () => {
  test("defaults: finished jobs, newest ending first, one page", () => {
    assert.deepEqual(query({}), { view: "finished", ordering: "-ended_at", limit: "100" });
  });

  test("a sort column maps to the server's ordering, ascending without '-'", () => {
    assert.equal(query({ sort: { key: "id", dir: "asc" } }).ordering, "job_id");
    assert.equal(query({ sort: { key: "name", dir: "desc" } }).ordering, "-name");
    // a column the server cannot sort by falls back to the end time
    assert.equal(query({ sort: { key: "exit", dir: "asc" } }).ordering, "ended_at");
  });

  test("an id or an array task is looked up as `job`, other text as `search`", () => {
    assert.equal(query({ filters: { q: " 12_3 " } }).job, "12_3");
    assert.equal(query({ filters: { q: "12" } }).job, "12");
    const byName = query({ filters: { q: "train" } });
    assert.equal(byName.search, "train");
    assert.equal(byName.job, undefined);
    assert.equal(query({ filters: { q: "   " } }).search, undefined, "an empty search is a 400: never sent");
  });

  test("filters pass through; the Active-only state filter does not", () => {
    const q = query({ filters: { user: "root", partition: "debug", state: "FAILED" }, offset: 200, limit: 50 });
    assert.deepEqual([q.user, q.partition, q.state, q.offset, q.limit], ["root", "debug", "FAILED", "200", "50"]);
    assert.equal(query({ filters: { state: "ACTIVE" } }).state, undefined);
  });
});

describe("the sort in the URL", () => {
  test("round trip and fallbacks", () => {
    assert.deepEqual(H.parseHistorySort("-ended"), { key: "ended", dir: "desc" });
    assert.deepEqual(H.parseHistorySort("id"), { key: "id", dir: "asc" });
    assert.deepEqual(H.parseHistorySort("timeLeft"), H.DEFAULT_HISTORY_SORT);
    assert.deepEqual(H.parseHistorySort("-exit"), H.DEFAULT_HISTORY_SORT, "not sortable on the server");
    assert.deepEqual(H.parseHistorySort(null), H.DEFAULT_HISTORY_SORT);
    assert.equal(H.formatHistorySort({ key: "cpus", dir: "desc" }), "-cpus");
  });

  test("a header click flips its column, another column starts in its natural direction", () => {
    assert.deepEqual(H.nextHistorySort({ key: "ended", dir: "desc" }, "ended"), { key: "ended", dir: "asc" });
    assert.deepEqual(H.nextHistorySort({ key: "ended", dir: "desc" }, "user"), { key: "user", dir: "asc" });
    assert.deepEqual(H.nextHistorySort({ key: "user", dir: "asc" }, "id"), { key: "id", dir: "desc" });
    const sort = { key: "id", dir: "asc" };
    assert.equal(H.nextHistorySort(sort, "exit"), sort);
  });

  test("the view: only `finished` is the Finished view", () => {
    assert.equal(H.parseView("finished"), "finished");
    for (const text of [null, "", "all", "FINISHED"]) assert.equal(H.parseView(text), "active");
  });
});

describe("events that add to the Finished view", () => {
  test("a job that ended or left the queue; not one that starts, waits or is suspended", () => {
    assert.equal(H.endsAJob({ type: "job_removed", data: { job_id: "1" } }), true);
    for (const state of ["COMPLETED", "FAILED", "CANCELLED by 0", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL"]) {
      assert.equal(H.endsAJob({ type: "job_state_changed", data: { job_id: "1", state } }), true, state);
    }
    for (const state of ["RUNNING", "PENDING", "SUSPENDED", "PREEMPTED", "COMPLETING", ""]) {
      assert.equal(H.endsAJob({ type: "job_state_changed", data: { job_id: "1", state } }), false, state);
    }
    assert.equal(H.endsAJob({ type: "job_submitted", data: { job_id: "1", state: "PENDING" } }), false);
    assert.equal(H.endsAJob(null), false);
    assert.equal(H.endsAJob({ type: "job_state_changed" }), false);
  });

  test("the monitor's own frames", async () => {
    assert.equal(H.endsAJob(await eventFixture("job_removed")), true);
    assert.equal(H.endsAJob(await eventFixture("job_state_changed.completed")), true);
    assert.equal(H.endsAJob(await eventFixture("job_submitted")), false);
  });
});

describe("cells and advice", () => {
  test("the exit column", () => {
    assert.equal(H.exitLabel(M.normJob({ job_id: 1, exit_code: 0 })), "0");
    assert.equal(H.exitLabel(M.normJob({ job_id: 1, exit_code: 2 })), "2");
    assert.equal(H.exitLabel(M.normJob({ job_id: 1, exit_code: 0, signal: 9 })), "signal 9");
    assert.equal(H.exitLabel(M.normJob({ job_id: 1, exit_code: null })), "");
  });

  test("a search with no match in one view offers the other", () => {
    assert.deepEqual(H.noMatchAdvice("active", " 42 ", 0),
      { text: "No active job matches “42”.", other: "finished", action: "Look in finished jobs" });
    assert.equal(H.noMatchAdvice("finished", "42", 0).other, "active");
    assert.equal(H.noMatchAdvice("finished", "42", 1), null);
    assert.equal(H.noMatchAdvice("active", "", 0), null);
  });
});
