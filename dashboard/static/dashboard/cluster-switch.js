/**
 * Which cluster the dashboard shows (slurm_monitor.clusters): `?cluster=NAME` if known, else
 * the one remembered in this browser, else the primary; and the top bar's "Cluster" select,
 * shown only when the hub knows more than one. The names and channels come from the config's
 * `clusters` (GET /api/cluster/clusters's answer). `createClusterSwitch(ctx)`; nothing at import.
 * ctx: {config, onSwitch(cluster)}: called when the person picks another cluster (or goes
 * back to one with the browser's history); the URL and the memory are already updated.
 */
import * as M from "./model.js";

const KEY = "hub.dashboard.cluster";

function remembered() {
  try { return localStorage.getItem(KEY); } catch (_) { return null; } // storage may be off
}

function remember(name) {
  try { localStorage.setItem(KEY, name); } catch (_) { /* not remembered: fine */ }
}

export function createClusterSwitch({ config, onSwitch }) {
  const list = config.clusters?.clusters || [];
  const pick = (wanted, fallback) => M.pickCluster(config.clusters, wanted, fallback);
  const wanted = new URLSearchParams(location.search).get("cluster");
  let shown = pick(wanted, remembered());
  if (wanted !== shown.name && !(wanted === null && shown.primary)) {
    history.replaceState(history.state, "", M.clusterPageUrl(location, shown.name));
  }
  remember(shown.name);

  const select = document.getElementById("cluster-select");
  function show(next) {
    if (next.name === shown.name) return;
    shown = next;
    remember(next.name);
    select.value = next.name;
    onSwitch(next);
  }
  if (list.length > 1) { // one cluster: nothing visible changes
    select.replaceChildren(...list.map((c) => new Option(c.name, c.name, false, c.name === shown.name)));
    select.addEventListener("change", () => {
      history.pushState(history.state, "", M.clusterPageUrl(location, select.value));
      show(pick(select.value, null));
    });
    document.getElementById("cluster-switch").hidden = false;
  }
  window.addEventListener("popstate", () => show(pick(new URLSearchParams(location.search).get("cluster"), null)));

  return {
    get shown() { return shown; },
    several: list.length > 1,
  };
}
