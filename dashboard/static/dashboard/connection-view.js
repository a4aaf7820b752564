/**
 * The connection badge ("Live" only while the socket is up AND the monitor's streams are
 * current; amber "data N s old" otherwise) and the footer. `createConnectionView(ctx)`;
 * nothing runs at import. ctx: {store, hub}.
 */
import * as M from "./model.js";
import { setText } from "./dom.js";

export function createConnectionView({ store, hub }) {
  const $ = (id) => document.getElementById(id);
  let countdown = null;
  let state = "connecting";

  function show(next, detail = {}) {
    const box = $("connection");
    box.dataset.state = next;
    state = next;
    clearInterval(countdown);
    const label = $("connection-text");
    $("reconnect-now").hidden = next !== "reconnecting";
    box.title = detail.code ? `WebSocket closed (${detail.code}${detail.reason ? `: ${detail.reason}` : ""})` : "WebSocket connection";
    if (next === "connected") renderFreshness();
    else if (next === "reconnecting") {
      const until = Date.now() + (detail.delay || 0);
      const tick = () => {
        const left = Math.ceil((until - Date.now()) / 1000);
        setText(label, left > 0 ? `Reconnecting in ${left}s` : "Reconnecting…");
      };
      tick();
      countdown = setInterval(tick, 500);
    } else if (next === "closed") setText(label, detail.authFailed ? "Signed out" : "Offline");
    else setText(label, "Connecting…");
  }

  function renderFreshness() {
    const box = $("connection");
    const freshness = M.dataFreshness(store.streams, Date.now() - store.clockOffset);
    box.dataset.freshness = freshness.state;
    if (state !== "connected") return;
    const stale = freshness.state === "stale";
    setText($("connection-text"), stale ? M.formatDataAge(freshness.age) : "Live");
    box.title = stale ? `Connected, but no update from the Slurm monitor for ${freshness.late.join(", ")}`
      : "WebSocket connection";
  }

  function renderFooter() {
    const parts = [];
    if (hub.server) parts.push(`hub ${hub.server}`);
    if (hub.clientId) parts.push(`client ${hub.clientId}`);
    if (store.source) parts.push(`data from ${store.source === "mock" ? "the simulated cluster" : store.source}`);
    setText($("footer-server"), parts.join(" · "));
    setText($("footer-updated"), store.lastEventAt ? `last event ${M.formatAgo(store.lastEventAt)}` : "");
  }

  $("reconnect-now").addEventListener("click", () => hub.reconnectNow());
  return { show, renderFreshness, renderFooter };
}
