/**
 * PURE: the jobs table's "Finished" view, read from the server page by page
 * (`GET /api/cluster/jobs?view=finished`, docs/protocol.md section 6): its columns, the sort
 * kept in the URL (`hsort`), the query for a page, which live events may change it, and what
 * to say when a search finds nothing in one view. No DOM; tests/js/history-model.test.mjs.
 */
export const VIEWS = ["active", "finished"];

/** Columns of the Finished view; `ordering` is the server's key (null: not sortable). */
export const HISTORY_COLUMNS = [
  { key: "id", label: "Job", cls: "col-id mono", ordering: "job_id" },
  { key: "name", label: "Name", cls: "col-name", ordering: "name" },
  { key: "user", label: "User", cls: "col-user", ordering: "user" },
  { key: "partition", label: "Partition", cls: "col-partition", ordering: "partition" },
  { key: "state", label: "State", cls: "col-state", ordering: "state" },
  { key: "exit", label: "Exit", cls: "col-exit", ordering: null },
  { key: "cpus", label: "CPUs", cls: "col-res num", ordering: "cpus" },
  { key: "ran", label: "Ran", cls: "col-time num", ordering: null },
  { key: "ended", label: "Ended", cls: "col-ended num", ordering: "ended_at" },
];

export const DEFAULT_HISTORY_SORT = { key: "ended", dir: "desc" };

/** The view named in the URL (`view=finished`); anything else is the Active view. */
export function parseView(text) {
  return text === "finished" ? "finished" : "active";
}

/** "-ended" <-> {key, dir}; an unknown or unsortable key falls back to newest ending first. */
export function parseHistorySort(text) {
  const dir = text && text.startsWith("-") ? "desc" : "asc";
  const key = (text || "").replace(/^-/, "");
  return HISTORY_COLUMNS.some((c) => c.key === key && c.ordering) ? { key, dir } : { ...DEFAULT_HISTORY_SORT };
}

export function formatHistorySort({ key, dir }) {
  return `${dir === "desc" ? "-" : ""}${key}`;
}

/** Clicking a header: the same column flips, another starts descending (newest, biggest first). */
export function nextHistorySort(sort, key) {
  if (!HISTORY_COLUMNS.some((c) => c.key === key && c.ordering)) return sort;
  if (sort.key === key) return { key, dir: sort.dir === "asc" ? "desc" : "asc" };
  return { key, dir: ["name", "user", "partition", "state"].includes(key) ? "asc" : "desc" };
}

/**
 * The query string of one page of `view` (`finished` or `all`) with the table's filters:
 * an id or an array task ("12", "12_3") goes as `job` (the server finds every task of an array
 * and a task by its `<array>_<task>` id), other text as `search` (name, or start of the id).
 */
export function historyQuery({ view = "finished", sort = DEFAULT_HISTORY_SORT, filters = {}, offset = 0, limit = 100 } = {}) {
  const column = HISTORY_COLUMNS.find((c) => c.key === sort.key && c.ordering) || HISTORY_COLUMNS.at(-1);
  const p = new URLSearchParams({ view, ordering: `${sort.dir === "desc" ? "-" : ""}${column.ordering}` });
  if (filters.user) p.set("user", filters.user);
  if (filters.partition) p.set("partition", filters.partition);
  if (filters.state && filters.state !== "ACTIVE") p.set("state", filters.state);
  const q = (filters.q || "").trim();
  if (/^\d+(_\d+)?$/.test(q)) p.set("job", q);
  else if (q) p.set("search", q.slice(0, 100));
  p.set("limit", String(limit));
  if (offset) p.set("offset", String(offset));
  return p.toString();
}

// States a job ends in (SUSPENDED and PREEMPTED may run again, so they do not count).
const ENDED = new Set(["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE"]);

/** Whether a `jobs` publication may add a row to the Finished view: a job that ended or left. */
export function endsAJob(msg) {
  if (!msg || typeof msg !== "object") return false;
  if (msg.type === "job_removed") return true;
  if (msg.type !== "job_state_changed" || !msg.data) return false;
  return ENDED.has(String(msg.data.state || "").toUpperCase().split(/[\s+]/)[0]);
}

/** The exit column: "0", "2", "signal 9", "" (not reported). `job` is model.js normJob's shape. */
export function exitLabel(job) {
  if (job.signal) return `signal ${job.signal}`;
  return job.exitCode === undefined || job.exitCode === null ? "" : String(job.exitCode);
}

/**
 * What the table says when a search shows nothing in `view`: {text, other, action} (offer the
 * other view), or null when there is no search or something was found.
 */
export function noMatchAdvice(view, q, shown) {
  const query = (q || "").trim();
  if (!query || shown > 0) return null;
  const other = view === "finished" ? "active" : "finished";
  return { text: `No ${view} job matches “${query}”.`, other, action: `Look in ${other} jobs` };
}
