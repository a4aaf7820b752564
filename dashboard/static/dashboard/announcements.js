/**
 * The announcement banner: broadcasts on `all` (the obvious way to announce maintenance) and
 * cluster-wide notifications of type `maintenance`. Broadcasts are replayed from the `all`
 * channel's history after a reload (the page subscribes it `since` 0); cluster-wide
 * notifications are persisted and listed by REST. Dismissing one hides it on this browser
 * (a notification is also marked read). `createAnnouncements(ctx)`; nothing runs at import.
 * ctx: {store, markRead(ids)}.
 */
import * as M from "./model.js";
import { el, setText } from "./dom.js";

const DISMISSED_KEY = "dashboard.dismissed.v1";
const SHOWN = 3;

/** A publication on `all` as an announcement: {key, title, message, severity, at}. */
export function fromBroadcast(msg) {
  const data = msg.data && typeof msg.data === "object" ? msg.data : { message: String(msg.data ?? "") };
  const message = typeof data.message === "string" ? data.message : typeof data.text === "string" ? data.text : "";
  const title = typeof data.title === "string" ? data.title : msg.type === "message" ? "Announcement" : M.titleOf(msg.type);
  return { key: `all:${msg.offset}:${msg.timestamp}`, title, message, severity: typeof data.severity === "string" ? data.severity : "warning",
    at: M.toMillis(msg.timestamp) ?? Date.now() };
}

export function createAnnouncements({ store, markRead }) {
  const box = document.getElementById("announcements");
  let dismissed;
  try { dismissed = new Set(JSON.parse(localStorage.getItem(DISMISSED_KEY) || "[]")); } catch (_) { dismissed = new Set(); }

  function dismiss(item) {
    dismissed.add(item.key);
    try { localStorage.setItem(DISMISSED_KEY, JSON.stringify([...dismissed].slice(-200))); } catch (_) { /* full or off */ }
    if (item.notificationId !== undefined) markRead([item.notificationId]);
    render();
  }

  function items() {
    const out = [...store.broadcasts.values()];
    for (const n of store.notifications.values()) {
      if (M.isClusterWide(n) && M.isAnnouncement(n) && !n.read) {
        out.push({ key: `n:${n.id}`, notificationId: n.id, title: n.title, message: n.message, severity: n.severity, at: n.created || 0 });
      }
    }
    return out.filter((a) => !dismissed.has(a.key)).sort((a, b) => b.at - a.at).slice(0, SHOWN);
  }

  function render() {
    const list = items();
    box.hidden = list.length === 0;
    box.replaceChildren(...list.map((a) => {
      const close = el("button", { type: "button", class: "link-button", text: "Dismiss", "aria-label": `Dismiss: ${a.title}` });
      close.addEventListener("click", () => dismiss(a));
      const text = el("div", { class: "announcement-text" }, el("strong", {}), el("span", {}));
      setText(text.children[0], a.title);
      setText(text.children[1], a.message ? ` ${a.message}` : "");
      return el("div", { class: "announcement", role: "status", "data-key": a.key, "data-severity": a.severity }, text, close);
    }));
  }
  return { render };
}
