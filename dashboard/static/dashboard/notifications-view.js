/**
 * The notifications panel: list (unread first), unread badge, mark read (optimistic, undone
 * when the server refuses). `createNotificationsView(ctx)` wires it; nothing runs at import.
 * ctx: {store, api, config, schedule, toast, pendingFlash}.
 */
import * as M from "./model.js";
import { el, flash, setText } from "./dom.js";

export function createNotificationsView({ store, api, config, schedule, toast, pendingFlash }) {
  const $ = (id) => document.getElementById(id);
  const items = new Map();

  function item(n) {
    const title = el("strong", { class: "n-title" });
    const message = el("p", { class: "n-message" });
    const time = el("time", { class: "n-time" });
    const link = el("a", { class: "n-job link-button", text: "Open job" });
    const button = el("button", { type: "button", class: "n-read link-button", text: "Mark read" });
    button.addEventListener("click", () => markRead([n.id]));
    const li = el("li", { class: "notification", "data-notification-id": String(n.id) },
      el("span", { class: "n-dot", "aria-hidden": "true" }),
      el("div", { class: "n-body" }, el("div", { class: "n-head" }, title, time), message,
        el("div", { class: "n-actions" }, link, button)));
    return { li, title, message, time, button, link };
  }

  function render() {
    const list = $("notifications-list");
    const sorted = M.sortNotifications([...store.notifications.values()]);
    const keep = new Set(sorted.map((n) => String(n.id)));
    for (const [id, it] of items) if (!keep.has(id)) { it.li.remove(); items.delete(id); }
    let previous = null;
    for (const n of sorted.slice(0, 100)) {
      const id = String(n.id);
      let it = items.get(id);
      if (!it) { it = item(n); items.set(id, it); }
      it.li.dataset.read = String(n.read);
      it.li.dataset.severity = n.severity;
      it.li.dataset.scope = M.isClusterWide(n) ? "cluster" : "user";
      it.li.title = M.isClusterWide(n) ? "For everyone on the cluster" : "";
      it.li.classList.toggle("unread", !n.read);
      setText(it.title, M.notificationTitle(n, config.severalClusters));
      setText(it.message, n.message);
      it.message.hidden = !n.message;
      setText(it.time, M.formatAgo(n.created));
      if (n.created) it.time.dateTime = new Date(n.created).toISOString();
      const jobHref = M.notificationJobHref(n, config.clusterPrimary);
      it.link.hidden = !jobHref;
      if (jobHref) it.link.href = jobHref;
      it.button.hidden = n.read;
      if (pendingFlash.has(`n:${id}`)) flash(it.li);
      const expected = previous ? previous.nextSibling : list.firstChild;
      if (expected !== it.li) list.insertBefore(it.li, expected);
      previous = it.li;
    }
    const unread = sorted.filter((n) => !n.read).length;
    const badge = $("unread-badge");
    badge.hidden = unread === 0;
    setText(badge, unread > 99 ? "99+" : String(unread));
    $("notifications-toggle").setAttribute("aria-label", `Notifications, ${unread} unread`);
    setText($("notifications-count"), unread ? `${unread} unread` : "");
    $("mark-all-read").hidden = unread === 0;
    $("notifications-empty").hidden = sorted.length > 0;
    document.title = unread ? `(${unread}) Cluster hub` : "Cluster hub";
  }

  async function markRead(ids, { all = false } = {}) {
    const targets = ids.map(String).filter((id) => store.notifications.get(id) && !store.notifications.get(id).read);
    for (const id of targets) store.notifications.get(id).read = true; // optimistic
    schedule("notifications");
    const remote = targets.filter((id) => !store.notifications.get(id).local);
    if (!remote.length) return;
    let failed = [];
    if (all) {
      try {
        await api(`${config.api.notifications}/read`, { method: "POST", body: {} });
      } catch (_) {
        failed = remote;
      }
    } else {
      const results = await Promise.allSettled(remote.map((id) =>
        api(`${config.api.notifications}/${encodeURIComponent(id)}/read`, { method: "POST", body: {} })));
      failed = remote.filter((_, i) => results[i].status === "rejected");
    }
    for (const id of failed) {
      const n = store.notifications.get(id);
      if (n) n.read = false;
    }
    if (failed.length) toast(`Could not mark ${failed.length} notification${failed.length > 1 ? "s" : ""} read`, "error");
    schedule("notifications");
  }

  $("mark-all-read").addEventListener("click", () =>
    markRead([...store.notifications.values()].filter((n) => !n.read).map((n) => n.id), { all: true }));
  $("notifications-toggle").addEventListener("click", () => {
    const panel = $("notifications");
    panel.scrollIntoView({ behavior: "smooth", block: "start" });
    flash(panel);
  });
  return { render, markRead };
}
