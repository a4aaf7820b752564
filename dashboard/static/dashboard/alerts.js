/**
 * The staff alerts banner: the active alerts (REST snapshot, then the `alerts` channel), each
 * with an "Acknowledge" button that POSTs /api/cluster/alerts/<id>/acknowledge.
 *
 * The stream is the confirmation: an alert shows "Acknowledged by X" when `alert_acknowledged`
 * arrives (or a snapshot says so), never from the POST's answer, so every staff page shows
 * the same thing, whoever acknowledged, from here or from the admin. Until then the button
 * says "Acknowledging…"; a refused POST gives the button back.
 *
 * Self-contained (no imports): the pure part (normAlert … alertView) is unit-tested under
 * Node; the DOM part (renderAlerts) takes `formatAgo` and the document from its caller.
 */

export const ACK_EVENT = "alert_acknowledged";
const SEVERITY_ORDER = { critical: 0, error: 1, warning: 2, info: 3 };

function text(value) {
  if (value === undefined || value === null) return undefined;
  const s = String(value).trim();
  return s === "" ? undefined : s;
}

function first(...values) {
  return values.find((v) => v !== undefined && v !== null && v !== "");
}

/** ISO text, seconds or milliseconds -> milliseconds (undefined when unreadable). */
export function toMillis(value) {
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value === "number") return value < 1e11 ? value * 1000 : value;
  const n = Number(value);
  if (Number.isFinite(n)) return toMillis(n);
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : t;
}

/** "cluster_cpu_high" -> "Cluster cpu high" */
export function humanize(id) {
  const words = String(id).replace(/[_-]+/g, " ").trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** An `alert` payload or a GET /api/cluster/alerts row -> the banner's alert (null: not one). */
export function normAlert(raw, timestamp) {
  if (!raw || typeof raw !== "object") return null;
  const id = text(first(raw.alert_id, raw.id, raw.name));
  if (id === undefined) return null;
  return {
    id,
    severity: (text(raw.severity) || "warning").toLowerCase(),
    title: text(first(raw.title, raw.name)) || humanize(id),
    message: text(first(raw.message, raw.description)) || "",
    since: toMillis(first(raw.raised_at, raw.since, raw.timestamp)) ?? toMillis(timestamp),
    acknowledgedBy: text(raw.acknowledged_by) ?? null,
  };
}

/** GET /api/cluster/alerts ({results: [...]}, or a bare list) -> Map id -> alert. */
export function alertsFromSnapshot(body) {
  const rows = Array.isArray(body) ? body : Array.isArray(body?.results) ? body.results
    : Array.isArray(body?.alerts) ? body.alerts : [];
  const alerts = new Map();
  for (const raw of rows) {
    const alert = normAlert(raw);
    if (alert && !raw.resolved && !raw.resolved_at) alerts.set(alert.id, alert);
  }
  return alerts;
}

/**
 * Apply one `alerts` channel event to `alerts` (Map, changed in place). Returns the id it
 * changed, or null. A replayed `alert` for the raise the page already holds (same raised_at)
 * keeps what is known of it (its acknowledgement); a new raise starts unacknowledged.
 */
export function applyAlertEvent(alerts, msg) {
  const data = msg && msg.data;
  const id = text(data && data.alert_id);
  if (!id) return null;
  if (msg.type === "alert_resolved") return alerts.delete(id) ? id : null;
  if (msg.type === "alert") {
    const alert = normAlert(data, msg.timestamp);
    const known = alerts.get(id);
    if (known && known.since === alert.since) alert.acknowledgedBy = alert.acknowledgedBy ?? known.acknowledgedBy;
    alerts.set(id, alert);
    return id;
  }
  if (msg.type === ACK_EVENT) {
    const known = alerts.get(id);
    const by = text(data.acknowledged_by);
    if (!known || !by) return null;
    alerts.set(id, { ...known, acknowledgedBy: by });
    return id;
  }
  return null;
}

/** Most severe first, then newest. */
export function sortedAlerts(alerts) {
  return [...alerts.values()].sort((a, b) =>
    (SEVERITY_ORDER[a.severity] ?? 9) - (SEVERITY_ORDER[b.severity] ?? 9) || (b.since || 0) - (a.since || 0));
}

/** POST target for acknowledging `id` under the alerts list URL; its query string (the
 * shown cluster: `?cluster=b`) is kept; the id (`b/nodes_down`) names its cluster too. */
export function ackUrl(listUrl, id) {
  const [path, query] = String(listUrl).split("?", 2);
  return `${path.replace(/\/+$/, "")}/${encodeURIComponent(id)}/acknowledge${query ? `?${query}` : ""}`;
}

/**
 * What the banner shows for one alert: `ackText` ("Acknowledged by X") once the stream or a
 * snapshot said so; else, for staff, a button, disabled while this page's POST is pending.
 */
export function alertView(alert, { canAcknowledge = false, pending = false } = {}) {
  if (alert.acknowledgedBy) return { ackText: `Acknowledged by ${alert.acknowledgedBy}`, button: null };
  if (!canAcknowledge) return { ackText: null, button: null };
  return { ackText: null, button: pending ? { label: "Acknowledging…", disabled: true } : { label: "Acknowledge", disabled: false } };
}

/**
 * This page's acknowledgements in flight. `post(url)` returns a promise (the dashboard's
 * REST helper); `changed()` asks for a render; `failed(message)` tells the user.
 */
export function alertActions({ post, listUrl, changed = () => {}, failed = () => {} }) {
  const pending = new Set();
  return {
    pending,
    async acknowledge(id) {
      if (pending.has(id)) return;
      pending.add(id);
      changed();
      try {
        await post(ackUrl(listUrl, id));
        // Stays pending: the alert_acknowledged event (or the alert going) settles it.
      } catch (err) {
        pending.delete(id);
        failed(err && err.status === 404 ? "That alert is no longer active" : "Could not acknowledge the alert");
        changed();
      }
    },
    /** Forget what the alerts now settle: acknowledged or gone. */
    settle(alerts) {
      for (const id of [...pending]) if (!alerts.has(id) || alerts.get(id).acknowledgedBy) pending.delete(id);
    },
  };
}

// --- DOM ---------------------------------------------------------------------------------

/** Draw `alerts` (Map) into `box`; the banner hides when there is none. */
export function renderAlerts(box, alerts, { actions = null, canAcknowledge = false, formatAgo = () => "" } = {}) {
  const doc = box.ownerDocument;
  const make = (tag, className, content) => {
    const node = doc.createElement(tag);
    if (className) node.className = className;
    if (content !== undefined) node.textContent = content;
    return node;
  };
  if (actions) actions.settle(alerts);
  const list = sortedAlerts(alerts);
  box.hidden = list.length === 0;
  box.replaceChildren(...list.map((alert) => {
    const row = make("div", "alert");
    row.dataset.severity = alert.severity;
    row.dataset.alertId = alert.id;
    const icon = make("span", "alert-icon", alert.severity === "info" ? "ℹ" : "⚠");
    icon.setAttribute("aria-hidden", "true");
    const body = make("div", "alert-text");
    body.append(make("strong", null, alert.title));
    if (alert.message) body.append(make("span", null, ` ${alert.message}`));
    if (alert.since) body.append(make("span", "alert-time", ` · ${formatAgo(alert.since)}`));
    row.append(icon, body);
    const view = alertView(alert, { canAcknowledge: canAcknowledge && !!actions, pending: actions?.pending.has(alert.id) });
    if (view.ackText) {
      row.dataset.acknowledged = "";
      row.append(make("span", "alert-ack", view.ackText));
    } else if (view.button) {
      const button = make("button", "alert-ack-button", view.button.label);
      button.type = "button";
      button.disabled = view.button.disabled;
      button.addEventListener("click", () => actions.acknowledge(alert.id));
      row.append(button);
    }
    return row;
  }));
}
