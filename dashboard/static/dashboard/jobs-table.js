/**
 * The jobs table, windowed: only the rows in (and just around) the scroll viewport are in
 * the DOM, so 100,000 jobs cost the page what 40 do. Columns sort on click or Enter
 * (`aria-sort` on the header); filters and sort live in the URL. Each row links to the job's
 * page (/jobs/<display_id>): the id is a link (keyboard), the whole row is a click target
 * (touch). An array is one row with per-task counts that expands to its tasks.
 *
 * Live events only touch the index (jobs-model.js) and mark the table dirty: rows on screen
 * are refilled from the index each frame; the full filter + sort is rebuilt at most once per
 * REBUILD_MS on large queues (immediately on small ones and when the person changes a filter
 * or the sort). `createJobsTable(ctx)`; nothing runs at import.
 * ctx: {index (JobIndex), config, isLoaded(): boolean, onFilters(): the filters changed}.
 * While its panel is hidden (the Finished view is shown) it draws nothing.
 */
import * as M from "./model.js";
import { buildView, timeLeftMs } from "./jobs-model.js";
import { el, flash, setText, statePill, titleCase } from "./dom.js";
import { noMatchAdvice } from "./history-model.js";

export const ROW_HEIGHT = 40; // px, fixed by the CSS (tr.job-row), so the window is arithmetic
const OVERSCAN = 10;
const LARGE = 5000;
const REBUILD_MS = 1000;

export const COLUMNS = [
  { key: "id", label: "Job", cls: "col-id mono" },
  { key: "name", label: "Name", cls: "col-name" },
  { key: "user", label: "User", cls: "col-user" },
  { key: "partition", label: "Partition", cls: "col-partition" },
  { key: "state", label: "State", cls: "col-state" },
  { key: "nodes", label: "Nodes / reason", cls: "col-nodes" },
  { key: "cpus", label: "CPUs", cls: "col-res num" },
  { key: "timeLimit", label: "Limit", cls: "col-limit num" },
  { key: "timeLeft", label: "Left", cls: "col-left num" },
  { key: "time", label: "Time", cls: "col-time num" },
];

/** "-timeLeft" <-> {key, dir}; unknown keys fall back to the default (newest first). */
export function parseSort(text) {
  const dir = text && text.startsWith("-") ? "desc" : "asc";
  const key = (text || "").replace(/^-/, "");
  return COLUMNS.some((c) => c.key === key) ? { key, dir } : { key: "id", dir: "desc" };
}

export function createJobsTable({ index, config, isLoaded, onFilters = () => {} }) {
  const $ = (id) => document.getElementById(id);
  const wrap = $("jobs-wrap");
  const table = $("jobs-table");
  const body = $("jobs-body");
  const params = new URLSearchParams(location.search);
  const filters = { user: params.get("user") || "", partition: params.get("partition") || "",
    state: params.get("state") || "", q: params.get("q") || "" };
  let sort = parseSort(params.get("sort") || "-id");
  const expanded = new Set();
  const rows = new Map(); // row key -> <tr> currently in the DOM
  const pendingFlash = new Set();
  let view = [];
  let builtVersion = -1;
  let builtAt = 0;
  let forced = true;
  let rebuildTimer = null;
  const top = el("tr", { class: "spacer", "aria-hidden": "true" }, el("td", { colspan: String(COLUMNS.length) }));
  const bottom = el("tr", { class: "spacer", "aria-hidden": "true" }, el("td", { colspan: String(COLUMNS.length) }));
  body.append(top, bottom);

  // --- header: sortable columns ---
  const headRow = $("jobs-head");
  for (const col of COLUMNS) {
    const button = el("button", { type: "button", class: "sort", "data-sort": col.key, text: col.label });
    button.addEventListener("click", () => setSort(col.key));
    headRow.append(el("th", { scope: "col", class: col.cls, "data-col": col.key }, button));
  }

  function setSort(key) {
    sort = sort.key === key ? { key, dir: sort.dir === "asc" ? "desc" : "asc" }
      : { key, dir: ["id", "cpus", "time"].includes(key) ? "desc" : "asc" };
    writeUrl();
    refresh();
  }

  function renderHeader() {
    for (const th of headRow.children) {
      const active = th.dataset.col === sort.key;
      if (active) th.setAttribute("aria-sort", sort.dir === "asc" ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    }
  }

  function writeUrl() {
    const p = new URLSearchParams(location.search); // keeps the other view's keys (view, hsort)
    for (const [key, value] of Object.entries(filters)) if (value) p.set(key, value); else p.delete(key);
    const s = `${sort.dir === "desc" ? "-" : ""}${sort.key}`;
    if (s !== "-id") p.set("sort", s); else p.delete("sort");
    const query = p.toString();
    history.replaceState(null, "", query ? `?${query}` : location.pathname);
  }

  /** The person changed something: rebuild at the next frame, whatever the size. */
  function refresh() { forced = true; schedule(); }
  let scheduled = null;
  function schedule() {
    if (scheduled !== null) return;
    scheduled = requestAnimationFrame(() => { scheduled = null; render(); });
  }
  wrap.addEventListener("scroll", () => schedule(), { passive: true });
  window.addEventListener("resize", () => schedule());

  // --- rows ---
  function jobRow(key) {
    const tr = el("tr", { class: "job-row" });
    for (const col of COLUMNS) tr.append(el("td", { class: col.cls }));
    tr.cells[0].append(el("a", { class: "job-link" }));
    tr.addEventListener("click", (event) => {
      if (event.target.closest("a, button")) return;
      const link = tr.querySelector("a.job-link");
      if (link && link.href) location.assign(link.href);
    });
    rows.set(key, tr);
    return tr;
  }

  function fill(tr, row, now) {
    const job = index.jobs.get(row.job.id) || row.job;
    const tone = M.jobTone(job.state);
    const time = M.jobTime(job, now);
    const left = timeLeftMs(job, now);
    const resources = [job.cpus !== undefined ? String(job.cpus) : "", job.gpus ? `${job.gpus} GPU` : ""].filter(Boolean).join(" · ");
    const reason = job.reasonText || (job.reason && job.reason !== "None" ? job.reason : "");
    const where = tone === "pending" ? reason : (job.nodes || "");
    const isArray = row.kind === "array";
    const label = isArray ? `${row.id}_[${row.counts.total}]` : (job.displayId || job.id);
    const counts = isArray ? `${row.counts.pending} pending · ${row.counts.running} running · ${row.counts.done} done${row.counts.failed ? ` (${row.counts.failed} failed)` : ""}` : "";
    const sig = [job.state, label, job.name, job.user, job.partition, where, resources, time.label, counts, row.expanded,
      job.timeLimit, left === undefined ? "" : Math.floor(left / 1000), row.depth, config.cluster?.name].join("|");
    if (tr.dataset.sig === sig) return;
    const stateChanged = tr.dataset.state !== undefined && tr.dataset.state !== job.state && !isArray;
    tr.dataset.sig = sig;
    if (isArray) { delete tr.dataset.jobId; tr.dataset.arrayId = row.id; } else { tr.dataset.jobId = job.id; delete tr.dataset.arrayId; }
    tr.dataset.state = job.state;
    tr.dataset.tone = tone;
    tr.dataset.depth = String(row.depth || 0);
    const cells = tr.cells;
    const link = cells[0].querySelector("a.job-link");
    setText(link, label);
    link.href = isArray ? `/jobs/${encodeURIComponent(row.id)}${M.clusterSuffix(config.cluster)}` : M.jobHref(job, config.cluster);
    link.setAttribute("aria-label", `Job ${label}${job.name ? `, ${job.name}` : ""}`);
    let toggle = cells[0].querySelector("button.expand");
    if (isArray && !toggle) {
      toggle = el("button", { type: "button", class: "expand link-button" });
      toggle.addEventListener("click", () => {
        const id = tr.dataset.arrayId;
        if (expanded.has(id)) expanded.delete(id); else expanded.add(id);
        refresh();
      });
      cells[0].prepend(toggle);
    } else if (!isArray && toggle) toggle.remove();
    if (isArray) {
      toggle.setAttribute("aria-expanded", String(Boolean(row.expanded)));
      toggle.setAttribute("aria-label", `${row.expanded ? "Hide" : "Show"} the ${row.counts.total} tasks of array ${row.id}`);
      setText(toggle, row.expanded ? "▾" : "▸");
    }
    setText(cells[1], isArray ? `${job.name || "—"} · ${counts}` : (job.name || "—"));
    cells[1].title = cells[1].textContent;
    setText(cells[2], job.user || "");
    setText(cells[3], job.partition || "");
    if (!cells[4].firstChild || cells[4].firstChild.textContent !== titleCase(job.state)) cells[4].replaceChildren(statePill(job.state, tone));
    setText(cells[5], where);
    cells[5].classList.toggle("muted", tone === "pending");
    cells[5].title = tone === "pending" && job.reasonHint ? `${where} ${job.reasonHint}` : where;
    setText(cells[6], resources);
    setText(cells[7], M.formatLimit(job.timeLimit));
    setText(cells[8], left === undefined ? "" : (left < 0 ? "over" : M.formatDuration(left)));
    setText(cells[9], time.label);
    cells[9].title = time.hint;
    if (stateChanged || pendingFlash.has(job.id)) flash(tr);
  }

  function render() {
    if (wrap.hidden) return;
    const now = Date.now();
    renderHeader();
    // Rebuild the order when what it depends on moved: jobs added or removed or a state
    // changed (index.shape), or any field when the sort or the text search reads more than
    // that; on large queues at most once per REBUILD_MS (rows on screen refill every frame).
    const large = index.size > LARGE;
    const depends = ["id", "user", "partition", "state"].includes(sort.key) && !filters.q ? index.shape : index.version;
    if (forced || (builtVersion !== depends && (!large || now - builtAt >= REBUILD_MS))) {
      view = buildView(index.jobs.values(), filters, sort, { expanded, now });
      builtVersion = depends;
      builtAt = now;
      forced = false;
    } else if (builtVersion !== depends && !rebuildTimer) {
      rebuildTimer = setTimeout(() => { rebuildTimer = null; schedule(); }, REBUILD_MS - (now - builtAt));
    }
    const viewport = wrap.clientHeight || 600;
    const head = table.tHead ? table.tHead.offsetHeight : 0;
    const first = Math.max(0, Math.floor((wrap.scrollTop - head) / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(view.length, first + Math.ceil(viewport / ROW_HEIGHT) + 2 * OVERSCAN);
    const keep = new Set();
    let previous = top;
    for (let i = first; i < last; i += 1) {
      const row = view[i];
      const key = row.kind === "array" ? `a:${row.id}` : row.job.id;
      keep.add(key);
      const tr = rows.get(key) || jobRow(key);
      tr.setAttribute("aria-rowindex", String(i + 2));
      fill(tr, row, now);
      if (previous.nextSibling !== tr) body.insertBefore(tr, previous.nextSibling);
      previous = tr;
    }
    for (const [key, tr] of rows) if (!keep.has(key)) { tr.remove(); rows.delete(key); }
    top.firstChild.style.height = `${first * ROW_HEIGHT}px`;
    bottom.firstChild.style.height = `${(view.length - last) * ROW_HEIGHT}px`;
    top.hidden = first === 0;
    bottom.hidden = last === view.length;
    table.setAttribute("aria-rowcount", String(view.length + 1));
    const total = index.size;
    const shown = view.reduce((n, r) => n + (r.kind === "array" ? r.tasks.length : r.depth ? 0 : 1), 0);
    setText($("jobs-count"), shown === total ? `${total}` : `${shown} of ${total}`);
    $("jobs-empty").hidden = view.length > 0 || !isLoaded();
    const advice = noMatchAdvice("active", filters.q, view.length);
    setText($("jobs-empty-text"), advice ? advice.text : "No jobs match these filters.");
    $("jobs-other").hidden = !advice;
    pendingFlash.clear();
  }

  // --- filters ---
  function fillSelect(select, values, current, labels = {}, fixed = 0) {
    const wanted = [...values];
    if (current && !wanted.includes(current) && ![...select.options].slice(0, 1 + fixed).some((o) => o.value === current)) wanted.push(current);
    const existing = [...select.options].slice(1 + fixed).map((o) => o.value);
    if (existing.join("\u0000") !== wanted.join("\u0000")) {
      while (select.options.length > 1 + fixed) select.remove(1 + fixed);
      for (const value of wanted) select.add(new Option(labels[value] || value, value));
    }
    for (const option of select.options) if (labels[option.value]) setText(option, labels[option.value]);
    if (select.value !== current) select.value = current;
  }

  let filtersShape = -1;
  let filtersAt = 0;
  function renderFilters() {
    // The lists (users, partitions, states with counts) change with the queue's shape; on a
    // large queue at most once per REBUILD_MS.
    const now = Date.now();
    if (filtersShape === index.shape || (index.size > LARGE && now - filtersAt < REBUILD_MS)) return;
    filtersShape = index.shape;
    filtersAt = now;
    const users = new Set();
    const partitions = new Set();
    for (const job of index.jobs.values()) {
      if (job.user) users.add(job.user);
      for (const p of (job.partition || "").split(",")) if (p) partitions.add(p);
    }
    const byName = (a, b) => a.localeCompare(b, undefined, { numeric: true });
    const userSelect = $("filter-user");
    if (userSelect.options.length === 1) userSelect.add(new Option(`Mine (${config.user})`, config.user));
    users.delete(config.user);
    fillSelect(userSelect, [...users].sort(byName), filters.user, {}, 1);
    fillSelect($("filter-partition"), [...partitions].sort(byName), filters.partition);
    const stateSelect = $("filter-state");
    if (stateSelect.options.length === 1) stateSelect.add(new Option("Active (pending + running)", "ACTIVE"));
    const counts = index.counts().states;
    const states = Object.keys(counts).sort((a, b) => (M.JOB_STATES.indexOf(a) + 1 || 99) - (M.JOB_STATES.indexOf(b) + 1 || 99));
    const labels = Object.fromEntries(states.map((s) => [s, `${titleCase(s)} (${counts[s]})`]));
    fillSelect(stateSelect, states, filters.state, labels, 1);
  }

  function onFilterChange(event) {
    const { name, value } = event.target;
    if (!(name in filters)) return;
    filters[name] = value;
    writeUrl();
    refresh();
    onFilters();
  }
  const form = $("job-filters");
  form.addEventListener("change", onFilterChange);
  form.addEventListener("input", (event) => { if (event.target.name === "q") onFilterChange(event); });
  form.addEventListener("submit", (event) => event.preventDefault());
  $("filter-q").value = filters.q;

  return {
    /** Redraw what is on screen (and the filter lists); called once per frame when jobs changed. */
    render() { renderFilters(); render(); },
    flash(id) { pendingFlash.add(id); },
    refresh,
    get view() { return view; },
    get filters() { return { ...filters }; },
  };
}
