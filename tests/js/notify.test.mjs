// Unit tests for dashboard/static/dashboard/notify.js: which live notifications become
// desktop notifications, and that permission is asked only from the button's click.
import { test, describe } from "node:test";
import assert from "node:assert/strict";

import { loadModule } from "./load.mjs";

const N = await loadModule("../../dashboard/static/dashboard/notify.js");

const mine = (type, extra = {}) => ({ id: 7, user: "alice", type, title: "Job 7 failed", message: "exit 1", read: false, ...extra });
const wide = (type) => ({ id: 9, user: undefined, type, title: "Node n1 is down", message: "", read: false });

describe("kindFor mirrors hub/notify/notification_rules.py", () => {
  test("job types", () => {
    assert.equal(N.kindFor("job_completed", false), "job_completed");
    assert.equal(N.kindFor("job_failed", false), "job_failed");
    assert.equal(N.kindFor("job_timeout", false), "job_failed");
    assert.equal(N.kindFor("job_cancelled", false), "job_cancelled");
    assert.equal(N.kindFor("job_time_limit_80", false), "job_time_limit");
    assert.equal(N.kindFor("job_time_limit", false), "job_time_limit");
    assert.equal(N.kindFor("job_node_down", false), "job_node_down"); // a node my job runs on
    assert.equal(N.kindFor("job_low_usage", false), "job_low_usage");
    assert.equal(N.kindFor("whatever", false), "other");
    assert.equal(N.kindFor("node_down", false), "other"); // a node kind is cluster-wide only
  });
  test("cluster-wide types", () => {
    assert.equal(N.kindFor("node_down", true), "node_down");
    assert.equal(N.kindFor("node_drained", true), "node_down");
    assert.equal(N.kindFor("maintenance", true), "maintenance");
    assert.equal(N.kindFor("job_failed", true), "maintenance");
  });
});

describe("shouldShowBrowser", () => {
  test("needs granted permission", () => {
    assert.equal(N.shouldShowBrowser(mine("job_failed"), { permission: "default" }), false);
    assert.equal(N.shouldShowBrowser(mine("job_failed"), { permission: "denied" }), false);
    assert.equal(N.shouldShowBrowser(mine("job_failed"), { permission: "granted" }), true);
  });
  test("defaults: every kind, when no rules are loaded", () => {
    assert.equal(N.shouldShowBrowser(wide("node_down"), { permission: "granted", rules: null }), true);
  });
  test("follows the person's rule per kind", () => {
    const rules = { channels: { job_failed: ["page", "browser"], job_completed: ["page"], node_down: ["page", "email"] } };
    assert.equal(N.shouldShowBrowser(mine("job_failed"), { permission: "granted", rules }), true);
    assert.equal(N.shouldShowBrowser(mine("job_completed"), { permission: "granted", rules }), false);
    assert.equal(N.shouldShowBrowser(wide("node_down"), { permission: "granted", rules }), false);
    assert.equal(N.shouldShowBrowser(wide("maintenance"), { permission: "granted", rules }), true); // not in the map
  });
  test("never twice, never read or page-local ones", () => {
    const shown = new Set(["7"]);
    assert.equal(N.shouldShowBrowser(mine("job_failed"), { permission: "granted", shown }), false);
    assert.equal(N.shouldShowBrowser(mine("job_failed", { read: true }), { permission: "granted" }), false);
    assert.equal(N.shouldShowBrowser(mine("job_failed", { local: true }), { permission: "granted" }), false);
    assert.equal(N.shouldShowBrowser(null, { permission: "granted" }), false);
  });
});

test("browserOptions: title, body, a tag per notification", () => {
  assert.deepEqual(N.browserOptions(mine("job_failed")),
    { title: "Job 7 failed", options: { body: "exit 1", tag: "hub-notification-7" } });
});

function fakeWindow(permission) {
  const made = [];
  let asked = 0;
  class FakeNotification {
    static permission = permission;
    static async requestPermission() { asked += 1; FakeNotification.permission = "granted"; return "granted"; }
    constructor(title, options) { made.push({ title, options }); }
  }
  return { win: { Notification: FakeNotification }, made, asked: () => asked };
}

function fakeButton() {
  const listeners = {};
  return { hidden: false, addEventListener: (type, fn) => { listeners[type] = fn; }, click: () => listeners.click() };
}

describe("setupBrowserNotifications", () => {
  test("asks permission only on the click, then shows each new notification once", async () => {
    const { win, made, asked } = fakeWindow("default");
    const button = fakeButton();
    const notifier = N.setupBrowserNotifications({ button, loadRules: async () => null, win });
    await Promise.resolve();
    assert.equal(asked(), 0, "never asked on load");
    assert.equal(button.hidden, false);
    assert.equal(notifier.notify(mine("job_failed")), false, "not before permission");
    await button.click();
    assert.equal(asked(), 1);
    assert.equal(button.hidden, true);
    assert.equal(notifier.notify(mine("job_failed")), true);
    assert.equal(notifier.notify(mine("job_failed")), false, "once");
    assert.deepEqual(made, [{ title: "Job 7 failed", options: { body: "exit 1", tag: "hub-notification-7" } }]);
  });
  test("no Notifications API: the button stays hidden, nothing breaks", () => {
    const button = fakeButton();
    const notifier = N.setupBrowserNotifications({ button, loadRules: async () => null, win: {} });
    assert.equal(button.hidden, true);
    assert.equal(notifier.notify(mine("job_failed")), false);
  });
  test("a rule that leaves the browser out is obeyed once loaded", async () => {
    const { win, made } = fakeWindow("granted");
    const notifier = N.setupBrowserNotifications({
      button: fakeButton(), win, loadRules: async () => ({ channels: { job_failed: ["page"] } }) });
    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.equal(notifier.notify(mine("job_failed")), false);
    assert.equal(made.length, 0);
  });
});
