/**
 * Browser (desktop) notifications for the dashboard (issue 15).
 *
 * Pure part (no DOM, tests/js/notify.test.mjs): `kindFor` mirrors hub/notify/notification_rules.py
 * (a notification's type -> the kind a person's rule names), `shouldShowBrowser` decides
 * whether one live notification becomes a desktop notification, `browserOptions` builds it.
 *
 * Browser part: `setupBrowserNotifications` wires the "Enable browser notifications" button.
 * Permission is asked ONLY from that click (browsers ignore or penalise asking on load), and
 * the button hides once permission is granted or denied. The person's rules come from
 * GET /api/notifications/rules; until they load (or if they cannot), the defaults apply:
 * every kind goes to the browser.
 */

const TYPE_KINDS = {
  job_completed: "job_completed", job_failed: "job_failed", job_timeout: "job_failed",
  job_cancelled: "job_cancelled", job_node_down: "job_node_down", job_low_usage: "job_low_usage",
  node_down: "node_down",
  node_drained: "node_down",
};

/** The rule kind of a notification `type`; `clusterWide`: it has no addressee. */
export function kindFor(type, clusterWide) {
  const t = String(type || "");
  if (t.startsWith("job_time_limit")) return "job_time_limit";
  const kind = TYPE_KINDS[t];
  if (clusterWide) return kind === "node_down" ? "node_down" : "maintenance";
  return kind && kind !== "node_down" ? kind : "other";
}

/**
 * Whether notification `n` (model.js normNotification shape) should become a desktop
 * notification: permission granted, not read, not shown before (`shown`: a Set of ids), and
 * the person's rule sends its kind to "browser" (`rules` null: the defaults, which do).
 */
export function shouldShowBrowser(n, { rules = null, permission = "default", shown = new Set() } = {}) {
  if (!n || permission !== "granted" || n.read || n.local || shown.has(String(n.id))) return false;
  const channels = rules && rules.channels && rules.channels[kindFor(n.type, !n.user)];
  return Array.isArray(channels) ? channels.includes("browser") : true;
}

/** The title and options of the desktop notification for `n`. */
export function browserOptions(n) {
  return {
    title: String(n.title || "Notification").slice(0, 200),
    options: { body: String(n.message || "").slice(0, 500), tag: `hub-notification-${n.id}` },
  };
}

/**
 * Wire `button` and return `{ notify(n) }` to call for each NEW live notification.
 * `loadRules()` resolves to the rules (GET /api/notifications/rules) or rejects.
 */
export function setupBrowserNotifications({ button, loadRules, win = globalThis }) {
  const supported = typeof win.Notification === "function";
  const shown = new Set();
  let rules = null;
  const permission = () => (supported ? win.Notification.permission : "denied");
  const refresh = () => { if (button) button.hidden = !supported || permission() !== "default"; };

  refresh();
  Promise.resolve().then(loadRules).then((r) => { rules = r; }, () => { rules = null; });
  if (button && supported) {
    button.addEventListener("click", async () => {
      try {
        await win.Notification.requestPermission();
      } finally {
        refresh();
      }
    });
  }
  return {
    notify(n) {
      if (!shouldShowBrowser(n, { rules, permission: permission(), shown })) return false;
      shown.add(String(n.id));
      const { title, options } = browserOptions(n);
      try {
        new win.Notification(title, options); // eslint-disable-line no-new
      } catch {
        return false; // e.g. Android Chrome allows only service-worker notifications
      }
      return true;
    },
  };
}
