/**
 * The jobs card's "Active | Finished" switch (a WAI-ARIA tablist: arrows move, the view is
 * kept in the URL as `view=finished`) and the Finished view: jobs that ended, read from the
 * server (`GET /api/cluster/jobs?view=finished`), which filters, sorts (`hsort` in the URL,
 * newest ending first by default) and pages (`offset`, "Show more"). The active view's filters
 * and search apply to it too; a search that finds nothing offers the other view.
 *
 * Live: a `jobs` publication that ends a job (history-model.js `endsAJob`) re-reads the pages
 * shown, once per second at most, while the view is open (otherwise on the next switch).
 * Re-reading is simpler than merging and right by construction: the server holds the ended
 * job's accounting (exit code, end) and the order. `createHistoryView(ctx)`; nothing at import.
 * ctx: {api, config, filters(): {user, partition, state, q}, onView(view)}.
 */
import * as M from "./model.js";
import * as H from "./history-model.js";
import { el, setText, statePill } from "./dom.js";

const PAGE = 100;
const MAX_REREAD = 1000;
const REREAD_MS = 1000;

export function createHistoryView({ api, config, filters, onView }) {
  const $ = (id) => document.getElementById(id);
  const base = config.api.jobs.split("?")[0];
  const params = new URLSearchParams(location.search);
  let view = H.parseView(params.get("view"));
  let sort = H.parseHistorySort(params.get("hsort") || "");
  let rows = [];
  let count = 0;
  let loaded = false;
  let stale = true;
  let generation = 0;
  let rereadTimer = null;
  const tabs = [...document.querySelectorAll("#jobs-tabs [role=tab]")];
  const panels = { active: $("jobs-wrap"), finished: $("history-wrap") };

  // --- the switch ---
  for (const tab of tabs) {
    tab.addEventListener("click", () => setView(tab.dataset.view));
    tab.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowLeft: -1, Home: -99, End: 99 }[event.key];
      if (!step) return;
      event.preventDefault();
      const i = Math.max(0, Math.min(tabs.length - 1, tabs.indexOf(tab) + step));
      tabs[i].focus();
      setView(tabs[i].dataset.view);
    });
  }
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-show-view]");
    if (button) setView(button.dataset.showView);
  });

  function setView(next) {
    view = H.parseView(next);
    for (const tab of tabs) {
      const on = tab.dataset.view === view;
      tab.setAttribute("aria-selected", String(on));
      tab.tabIndex = on ? 0 : -1;
    }
    for (const [name, panel] of Object.entries(panels)) panel.hidden = name !== view;
    writeUrl();
    if (view === "finished" && stale) reread(); else if (view === "finished") render();
    onView(view);
  }

  function writeUrl() {
    const p = new URLSearchParams(location.search);
    if (view === "finished") p.set("view", "finished"); else p.delete("view");
    const s = H.formatHistorySort(sort);
    if (s !== H.formatHistorySort(H.DEFAULT_HISTORY_SORT)) p.set("hsort", s); else p.delete("hsort");
    const query = p.toString();
    history.replaceState(null, "", query ? `?${query}` : location.pathname);
  }

  // --- header ---
  const headRow = $("history-head");
  for (const col of H.HISTORY_COLUMNS) {
    const th = el("th", { scope: "col", class: col.cls, "data-key": col.key }); // not data-col: the active table's headers own that
    if (col.ordering) {
      const button = el("button", { type: "button", class: "sort", text: col.label });
      button.addEventListener("click", () => { sort = H.nextHistorySort(sort, col.key); writeUrl(); reread({ fresh: true }); });
      th.append(button);
    } else th.append(el("span", { text: col.label }));
    headRow.append(th);
  }

  // --- loading ---
  /** The first pages again (as many rows as shown, `fresh`: one page), or the next page (`more`). */
  async function load({ more = false, fresh = false } = {}) {
    const run = ++generation;
    const offset = more ? rows.length : 0;
    const limit = more || fresh ? PAGE : Math.min(MAX_REREAD, Math.max(PAGE, rows.length));
    $("history-wrap").setAttribute("aria-busy", "true");
    try {
      const body = await api(M.withCluster(`${base}?${H.historyQuery({ sort, filters: filters(), offset, limit })}`, config.cluster));
      if (run !== generation) return;
      const page = M.resultsOf(body).map(M.normJob).filter(Boolean);
      rows = more ? rows.concat(page) : page;
      count = Number.isFinite(body.count) ? body.count : rows.length;
      loaded = true;
      stale = false;
      setText($("history-error"), "");
    } catch (err) {
      if (run !== generation) return;
      console.warn("dashboard: loading finished jobs failed", err);
      setText($("history-error"), "Finished jobs could not be loaded. They will be read again on the next change.");
    } finally {
      if (run === generation) $("history-wrap").removeAttribute("aria-busy");
    }
    render();
  }
  function reread(options) { stale = true; return load(options); }
  $("history-more").addEventListener("click", () => load({ more: true }));

  // --- rows ---
  function row(job) {
    const tr = el("tr", { class: "job-row", "data-job-id": job.id, "data-state": job.state || "", "data-tone": M.jobTone(job.state) });
    const label = job.displayId || job.id;
    const ended = job.endedAt ?? job.endTime;
    const cells = {
      id: el("a", { class: "job-link", href: M.jobHref(job, config.cluster), text: label, "aria-label": `Job ${label}${job.name ? `, ${job.name}` : ""}` }),
      name: job.name || "—", user: job.user || "", partition: job.partition || "",
      state: statePill(job.state, M.jobTone(job.state)), exit: H.exitLabel(job),
      cpus: job.cpus !== undefined ? String(job.cpus) : "", ran: M.jobTime(job).label,
      ended: ended ? new Date(ended).toLocaleString([], { dateStyle: "short", timeStyle: "short" }) : "",
    };
    for (const col of H.HISTORY_COLUMNS) {
      const value = cells[col.key];
      tr.append(el("td", { class: col.cls }, typeof value === "string" ? document.createTextNode(value) : value));
    }
    if (ended) tr.lastChild.title = new Date(ended).toISOString();
    tr.addEventListener("click", (event) => {
      if (!event.target.closest("a, button")) location.assign(tr.querySelector("a.job-link").href);
    });
    return tr;
  }

  function render() {
    if (view !== "finished") return;
    for (const th of headRow.children) {
      if (th.dataset.key === sort.key) th.setAttribute("aria-sort", sort.dir === "asc" ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    }
    $("history-body").replaceChildren(...rows.map(row));
    setText($("jobs-count"), loaded ? (rows.length < count ? `${rows.length} of ${count}` : `${count}`) : "");
    $("history-more").hidden = rows.length >= count;
    const advice = H.noMatchAdvice("finished", filters().q, rows.length);
    $("history-empty").hidden = !loaded || rows.length > 0;
    setText($("history-empty-text"), advice ? advice.text : "No finished jobs match these filters.");
    const other = $("history-other");
    other.hidden = !advice;
    if (advice) setText(other, advice.action);
  }

  return {
    get view() { return view; },
    /** Show the view the URL named (call once the page is built). */
    start() { setView(view); },
    /** A `jobs` publication: an ended job re-reads the open view (at most once per REREAD_MS). */
    onJobEvent(msg) {
      if (!H.endsAJob(msg)) return;
      stale = true;
      if (view !== "finished" || rereadTimer) return;
      rereadTimer = setTimeout(() => { rereadTimer = null; if (view === "finished") load(); }, REREAD_MS);
    },
    /** The filters or the search changed. */
    filtersChanged() {
      stale = true;
      if (view !== "finished") return;
      clearTimeout(rereadTimer);
      rereadTimer = setTimeout(() => { rereadTimer = null; load({ fresh: true }); }, 250);
    },
    /** After a reconnect the stream may have skipped ended jobs: re-read on the next look. */
    invalidate() { stale = true; if (view === "finished") load(); },
  };
}
