// Unit tests for dashboard/static/dashboard/feeds.js: a snapshot read before the monitor's
// first save of its stream (`updated_at` null) is loaded again once that save is heard of.
import { test, describe } from "node:test";
import assert from "node:assert/strict";

import { loadModule } from "./load.mjs";

const { Feed } = await loadModule("../../dashboard/static/dashboard/feeds.js");

/** A feed over `answers` (one REST body per load, the last repeated); counts its loads. */
function feedOver(answers) {
  const feed = new Feed("nodes", {
    load: async () => answers[Math.min(feed.loads++, answers.length - 1)],
    applySnapshot(body) { feed.rows = body.results; },
    applyEvent() {},
  });
  feed.loads = 0;
  return feed;
}

const SAVED = "2026-01-01T00:00:00+00:00";

describe("the first save of a stream", () => {
  test("a snapshot read before it loads again once the save is heard of, once per save time", async () => {
    const feed = feedOver([{ results: [], updated_at: null, position: { nodes: null } },
      { results: [{ node: "n1" }], updated_at: SAVED, position: { nodes: null } }]);
    await feed.reload();
    assert.equal(feed.updatedAt, null);
    assert.equal(feed.catchFirstSave(undefined), false, "nothing says the stream was saved");
    assert.equal(feed.catchFirstSave(1000), true);
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.equal(feed.loads, 2);
    assert.deepEqual(feed.rows, [{ node: "n1" }]);
    assert.equal(feed.updatedAt, SAVED);
    assert.equal(feed.catchFirstSave(2000), false, "the snapshot includes a save: events carry the rest");
  });

  test("a save the reload did not see yet (it failed) is retried at the next save time only", async () => {
    const feed = feedOver([{ results: [], updated_at: null }]);
    await feed.reload();
    assert.equal(feed.catchFirstSave(1000), true);
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.equal(feed.catchFirstSave(1000), false, "once per save time");
    assert.equal(feed.catchFirstSave(2000), true);
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.equal(feed.loads, 3);
  });

  test("not before a snapshot, nor while one loads, nor when the snapshot has no updated_at", async () => {
    const feed = feedOver([{ results: [], updated_at: null }]);
    assert.equal(feed.catchFirstSave(1000), false, "no snapshot yet: its load decides");
    const loading = feed.reload();
    assert.equal(feed.catchFirstSave(1000), false, "in flight");
    await loading;
    assert.equal(feed.catchFirstSave(1000), true);
    const bare = feedOver([{ results: [] }]);
    await bare.reload();
    assert.equal(bare.catchFirstSave(1000), false);
  });
});
