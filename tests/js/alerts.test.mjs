// Unit tests for dashboard/static/dashboard/alerts.js, the staff alerts banner's pure part.
// Payloads mirror slurm_monitor/alerting.py (active_payloads, acknowledged_payload) and
// slurm_monitor/events.py (build_alert, build_alert_resolved).
import { test, describe } from "node:test";
import assert from "node:assert/strict";

import { loadModule } from "./load.mjs";

const A = await loadModule("../../dashboard/static/dashboard/alerts.js");

const RAISED = "2026-11-22T10:00:00.000Z";
const ALERT = { alert_id: "nodes_down", severity: "critical", message: "2 node(s) down", value: 2, threshold: 0,
  raised_at: RAISED };
const ev = (type, data) => ({ type, channel: "alerts", data, timestamp: "2026-11-22T10:00:01.000Z" });

describe("the alerts model", () => {
  test("a snapshot row keeps who acknowledged it; resolved rows are left out", () => {
    const alerts = A.alertsFromSnapshot({ count: 2, results: [
      { ...ALERT, acknowledged_by: "boss", silenced_until: null },
      { ...ALERT, alert_id: "cpu_full:gpu", severity: "info", acknowledged_by: null },
      { ...ALERT, alert_id: "old", resolved_at: RAISED }] });
    assert.deepEqual([...alerts.keys()], ["nodes_down", "cpu_full:gpu"]);
    assert.equal(alerts.get("nodes_down").acknowledgedBy, "boss");
    assert.equal(alerts.get("cpu_full:gpu").acknowledgedBy, null);
    assert.equal(alerts.get("nodes_down").since, Date.parse(RAISED));
    assert.equal(A.alertsFromSnapshot(null).size, 0);
  });

  test("alert, alert_acknowledged, alert_resolved", () => {
    const alerts = new Map();
    assert.equal(A.applyAlertEvent(alerts, ev("alert", ALERT)), "nodes_down");
    assert.equal(alerts.get("nodes_down").acknowledgedBy, null);
    assert.equal(A.applyAlertEvent(alerts, ev("alert_acknowledged",
      { alert_id: "nodes_down", acknowledged_by: "boss", acknowledged_at: "2026-11-22T10:01:00.000Z" })), "nodes_down");
    assert.equal(alerts.get("nodes_down").acknowledgedBy, "boss");
    // The same raise replayed (a resubscription's history) keeps the acknowledgement ...
    A.applyAlertEvent(alerts, ev("alert", ALERT));
    assert.equal(alerts.get("nodes_down").acknowledgedBy, "boss");
    // ... a new raise of the same id starts unacknowledged.
    A.applyAlertEvent(alerts, ev("alert", { ...ALERT, raised_at: "2026-11-22T11:00:00.000Z" }));
    assert.equal(alerts.get("nodes_down").acknowledgedBy, null);
    assert.equal(A.applyAlertEvent(alerts, ev("alert_resolved", { alert_id: "nodes_down", message: "ok" })), "nodes_down");
    assert.equal(alerts.size, 0);
  });

  test("an acknowledgement for an alert this page does not hold, or a malformed one, changes nothing", () => {
    const alerts = new Map();
    assert.equal(A.applyAlertEvent(alerts, ev("alert_acknowledged", { alert_id: "x", acknowledged_by: "boss" })), null);
    A.applyAlertEvent(alerts, ev("alert", ALERT));
    for (const data of [{ alert_id: "nodes_down" }, { acknowledged_by: "boss" }, null]) {
      assert.equal(A.applyAlertEvent(alerts, ev("alert_acknowledged", data)), null);
    }
    assert.equal(A.applyAlertEvent(alerts, ev("something_else", ALERT)), null);
    assert.equal(alerts.get("nodes_down").acknowledgedBy, null);
  });

  test("most severe first, then newest", () => {
    const alerts = A.alertsFromSnapshot([
      { alert_id: "a", severity: "info", raised_at: "2026-11-22T10:00:00Z" },
      { alert_id: "b", severity: "critical", raised_at: "2026-11-22T09:00:00Z" },
      { alert_id: "c", severity: "critical", raised_at: "2026-11-22T10:00:00Z" },
      { alert_id: "d", severity: "warning" }]);
    assert.deepEqual(A.sortedAlerts(alerts).map((a) => a.id), ["c", "b", "d", "a"]);
  });

  test("the acknowledge URL encodes the id", () => {
    assert.equal(A.ackUrl("/api/cluster/alerts", "cpu_full:gpu node/1"),
      "/api/cluster/alerts/cpu_full%3Agpu%20node%2F1/acknowledge");
    assert.equal(A.ackUrl("/api/cluster/alerts/?cluster=b", "a"), "/api/cluster/alerts/a/acknowledge?cluster=b");
  });

  test("the view: a button for staff, disabled while pending; the stream's word once acknowledged", () => {
    const alert = A.normAlert(ALERT);
    assert.deepEqual(A.alertView(alert), { ackText: null, button: null });
    assert.deepEqual(A.alertView(alert, { canAcknowledge: true }).button, { label: "Acknowledge", disabled: false });
    assert.equal(A.alertView(alert, { canAcknowledge: true, pending: true }).button.disabled, true);
    const done = A.alertView({ ...alert, acknowledgedBy: "boss" }, { canAcknowledge: true, pending: true });
    assert.deepEqual(done, { ackText: "Acknowledged by boss", button: null });
  });
});

describe("acknowledging from the page", () => {
  test("POSTs once; stays pending after the answer until the stream settles it", async () => {
    const posted = [];
    let renders = 0;
    const actions = A.alertActions({ post: async (url) => { posted.push(url); return { status: "acknowledged" }; },
      listUrl: "/api/cluster/alerts", changed: () => { renders += 1; } });
    await Promise.all([actions.acknowledge("nodes_down"), actions.acknowledge("nodes_down")]);
    assert.deepEqual(posted, ["/api/cluster/alerts/nodes_down/acknowledge"]);
    assert.ok(actions.pending.has("nodes_down"), "the POST's answer does not confirm it");
    assert.ok(renders >= 1);
    const alerts = new Map();
    A.applyAlertEvent(alerts, ev("alert", ALERT));
    actions.settle(alerts);
    assert.ok(actions.pending.has("nodes_down"));
    A.applyAlertEvent(alerts, ev("alert_acknowledged", { alert_id: "nodes_down", acknowledged_by: "boss" }));
    actions.settle(alerts);
    assert.equal(actions.pending.size, 0);
  });

  test("a refused POST gives the button back and says why", async () => {
    const told = [];
    const actions = A.alertActions({ post: async () => { throw Object.assign(new Error("HTTP 404"), { status: 404 }); },
      listUrl: "/api/cluster/alerts", failed: (m) => told.push(m) });
    await actions.acknowledge("gone");
    assert.equal(actions.pending.size, 0);
    assert.deepEqual(told, ["That alert is no longer active"]);
    const other = A.alertActions({ post: async () => { throw Object.assign(new Error("HTTP 403"), { status: 403 }); },
      listUrl: "/api/cluster/alerts", failed: (m) => told.push(m) });
    await other.acknowledge("x");
    assert.equal(told[1], "Could not acknowledge the alert");
  });

  test("an alert that resolves while pending is forgotten", async () => {
    const actions = A.alertActions({ post: async () => ({}), listUrl: "/api/cluster/alerts" });
    await actions.acknowledge("nodes_down");
    actions.settle(new Map());
    assert.equal(actions.pending.size, 0);
  });
});
