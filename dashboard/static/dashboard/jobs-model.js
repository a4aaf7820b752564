/**
 * PURE: the jobs the page knows, kept exact against the stream, and the table's view of them.
 * No DOM; tests/js/jobs-model.test.mjs covers it.
 *
 * Zero gap (docs/protocol.md section 6): every REST page of jobs carries `position` (the
 * offset of the last `jobs` publication its rows include). `JobIndex` remembers, per job, the
 * offset its record reflects (`asOf`), and a tombstone per removed job, so that
 * - an event at or below a row's `asOf` is not applied again (it is in the row already);
 * - a REST row older than what an event already told (`asOf` below it) does not undo it;
 * - a job removed by an event does not come back from an older page.
 * Events for jobs the index does not hold apply when they are newer than `floor`, the
 * position of the first page (the one the page subscribed `since`). Offsets are of one epoch:
 * a reset (new epoch) calls `clear()` and loads again.
 *
 * `buildView` filters and sorts (server rules mirrored: user, partition, state, text) and
 * folds array tasks into one row per array with per-task counts, expanded on demand.
 */
import { jobTone, normJob, JOB_STATES } from "./model.js";

const NONE = -Infinity;
const JOB_EVENT_TYPES = new Set(["job_submitted", "job_state_changed", "job_removed"]);

export class JobIndex {
  constructor() { this.clear(); }

  clear() {
    this.jobs = new Map(); // id -> job (model.js normJob shape) with asOf
    this.tombstones = new Map(); // id -> offset of its job_removed
    this.floor = NONE;
    this.version = 0; // any change
    this.shape = 0; // a job added or removed, or a state changed: what filters and order may see
    this.stateCounts = new Map(); // state -> jobs, kept as jobs come, change and go
    this.applied = []; // offsets of the events applied (the last 10,000): none may repeat
  }

  get size() { return this.jobs.size; }

  _put(id, job) {
    const known = this.jobs.get(id);
    if (!known || known.state !== job.state) {
      this.shape += 1;
      if (known) this._count(known.state, -1);
      this._count(job.state, 1);
    }
    this.jobs.set(id, job);
  }

  _drop(id) {
    const known = this.jobs.get(id);
    if (!known) return;
    this.jobs.delete(id);
    this._count(known.state, -1);
    this.shape += 1;
  }

  _count(state, delta) {
    const n = (this.stateCounts.get(state) || 0) + delta;
    if (n > 0) this.stateCounts.set(state, n); else this.stateCounts.delete(state);
  }

  /** Rows of one REST page whose `position` offset is `asOf` (null: unknown, i.e. oldest). */
  loadRows(rows, asOf, { first = false, seen = null } = {}) {
    const at = asOf ?? NONE;
    if (first) this.floor = at;
    for (const raw of rows) {
      const job = normJob(raw);
      if (!job) continue;
      if (seen) seen.add(job.id);
      if ((this.tombstones.get(job.id) ?? NONE) > at) continue; // removed since this page was read
      const known = this.jobs.get(job.id);
      if (known && known.asOf > at) continue; // an event already told something newer
      this._put(job.id, { ...job, asOf: at });
    }
    this.version += 1;
    this.shape += 1;
  }

  /**
   * After a full reload: drop the jobs no page listed (`seen`: their ids), unless an event
   * newer than the first page told of them since.
   */
  sweep(seen) {
    for (const [id, job] of this.jobs) if (!seen.has(id) && job.asOf <= this.floor) this._drop(id);
    this.version += 1;
  }

  /**
   * One `jobs` publication: {id, change: "upsert" | "remove"}, or null when it is not
   * about a job or the index already reflects it.
   */
  apply(msg) {
    if (!msg || !JOB_EVENT_TYPES.has(msg.type)) return null;
    const job = msg.data && typeof msg.data === "object" ? normJob(msg.data) : null;
    if (!job) return null;
    const offset = typeof msg.offset === "number" ? msg.offset : undefined;
    const known = this.jobs.get(job.id);
    if (offset !== undefined) {
      if (offset <= (known ? known.asOf : Math.max(this.floor, this.tombstones.get(job.id) ?? NONE))) return null;
    }
    const at = offset ?? (known ? known.asOf : this.floor);
    this.version += 1;
    if (offset !== undefined) {
      this.applied.push(offset);
      if (this.applied.length > 10_000) this.applied.splice(0, 5_000);
    }
    if (msg.type === "job_removed") {
      this._drop(job.id);
      if (offset !== undefined) this.tombstones.set(job.id, offset);
      return { id: job.id, change: "remove" };
    }
    const merged = known ? { ...known, ...job } : job;
    merged.asOf = at;
    if (msg.timestamp) merged.updatedAt = Date.parse(msg.timestamp);
    this._put(job.id, merged);
    return { id: job.id, change: "upsert" };
  }

  /** {states: {STATE: n}} over every job held, and {running, pending, total} as the cards show them. */
  counts() {
    if (this._counts && this._counts.version === this.version) return this._counts;
    const states = Object.fromEntries(this.stateCounts);
    let running = 0;
    let pending = 0;
    for (const [state, n] of this.stateCounts) {
      const tone = jobTone(state);
      if (tone === "running") running += n;
      else if (tone === "pending") pending += n;
    }
    this._counts = { version: this.version, states, running, pending, total: this.jobs.size };
    return this._counts;
  }
}

// --- arrays -----------------------------------------------------------------------------

/** Tasks a pending array record stands for, from its display id: "10_[3-4,7]" -> 3; else 1. */
export function taskCount(job) {
  const match = /_\[([^\]]*)\]$/.exec(job.displayId || "");
  if (!match) return 1;
  let total = 0;
  for (const part of match[1].split("%", 1)[0].split(",")) {
    const range = /^(\d+)(?:-(\d+)(?::(\d+))?)?$/.exec(part.trim());
    if (!range) { total += part.trim() ? 1 : 0; continue; }
    const [lo, hi, step] = [Number(range[1]), range[2] === undefined ? undefined : Number(range[2]), Number(range[3] || 1)];
    total += hi === undefined ? 1 : hi >= lo ? Math.floor((hi - lo) / Math.max(1, step)) + 1 : 0;
  }
  return total;
}

/** Per-task counts of an array's records: {pending, running, done, failed, total}. */
export function arrayCounts(tasks) {
  const c = { pending: 0, running: 0, done: 0, failed: 0, total: 0 };
  for (const job of tasks) {
    const n = taskCount(job);
    const tone = jobTone(job.state);
    if (tone === "pending") c.pending += n;
    else if (tone === "running") c.running += n;
    else { c.done += n; if (job.state !== "COMPLETED") c.failed += n; }
    c.total += n;
  }
  return c;
}

// --- filter, sort, view -------------------------------------------------------------------

/** Whether `job` passes the filters (user, partition, state or "ACTIVE", text: id, array task or name). */
export function matches(job, { user = "", partition = "", state = "", q = "" } = {}) {
  if (user && job.user !== user) return false;
  if (partition && !(job.partition || "").split(",").includes(partition)) return false;
  if (state === "ACTIVE" && !["pending", "running"].includes(jobTone(job.state))) return false;
  if (state && state !== "ACTIVE" && job.state !== state) return false;
  const query = q.trim().toLowerCase();
  if (query && !textMatch(job, query)) return false;
  return true;
}

function textMatch(job, query) {
  if (job.id.startsWith(query) || (job.displayId || "").toLowerCase().startsWith(query)) return true;
  if (job.arrayJobId && /^\d+_\d+$/.test(query) && query.startsWith(`${job.arrayJobId}_`)) {
    return taskIncluded(job, Number(query.split("_")[1]));
  }
  return (job.name || "").toLowerCase().includes(query);
}

/** A pending array record "10_[1-4]" holds task 3; a started task holds only itself. */
function taskIncluded(job, task) {
  if (job.arrayTaskId !== undefined && job.arrayTaskId !== null) return job.arrayTaskId === task;
  const match = /_\[([^\]]*)\]$/.exec(job.displayId || "");
  if (!match) return false;
  return match[1].split("%", 1)[0].split(",").some((part) => {
    const r = /^(\d+)(?:-(\d+)(?::(\d+))?)?$/.exec(part.trim());
    if (!r) return false;
    const lo = Number(r[1]);
    const hi = r[2] === undefined ? lo : Number(r[2]);
    return task >= lo && task <= hi && (task - lo) % Math.max(1, Number(r[3] || 1)) === 0;
  });
}

const STATE_RANK = Object.fromEntries(JOB_STATES.map((s, i) => [s, i]));

/** Minutes -> ms left for a running job (negative: past its limit); undefined otherwise. */
export function timeLeftMs(job, now = Date.now()) {
  if (jobTone(job.state) !== "running" || !job.startTime || !(job.timeLimit > 0)) return undefined;
  return job.startTime + job.timeLimit * 60_000 - now;
}

export const SORT_KEYS = {
  id: (j) => numericId(j),
  name: (j) => j.name || "",
  user: (j) => j.user || "",
  partition: (j) => j.partition || "",
  state: (j) => STATE_RANK[j.state] ?? 99,
  nodes: (j) => j.reasonText || j.reason || j.nodes || "",
  cpus: (j) => j.cpus ?? -1,
  timeLimit: (j) => j.timeLimit ?? Infinity,
  timeLeft: (j, now) => timeLeftMs(j, now) ?? Infinity,
  time: (j, now) => (j.startTime ? (jobTone(j.state) === "running" ? now : (j.endTime ?? now)) - j.startTime : -1),
};

/** Job ids as numbers for sorting: "10" -> 10, array task "10_3" (job 12) sorts as 10.0000004. */
function numericId(job) {
  const base = Number(job.arrayJobId ?? job.id);
  const task = job.arrayTaskId ?? (job.arrayJobId ? 999_999 : -1); // the pending record: after its started tasks
  return Number.isFinite(base) ? base + (task + 1) / 1e7 : 0;
}

export function comparator({ key = "id", dir = "desc" } = {}, now = Date.now()) {
  const get = SORT_KEYS[key] || SORT_KEYS.id;
  const sign = dir === "asc" ? 1 : -1;
  return (a, b) => {
    const va = get(a, now);
    const vb = get(b, now);
    if (va < vb) return -sign;
    if (va > vb) return sign;
    return numericId(b) - numericId(a); // ties: newest first, so rows keep their places
  };
}

/**
 * The table's rows: [{kind: "job", job, depth}] and [{kind: "array", id, job, tasks, counts,
 * expanded}], filtered and sorted. Tasks of an array fold into one row (sorted by the array's
 * newest record) unless the array is in `expanded` or the search names one task ("10_1").
 */
export function buildView(jobs, filters = {}, sort = {}, { expanded = new Set(), now = Date.now() } = {}) {
  const cmp = comparator(sort, now);
  const singles = [];
  const arrays = new Map();
  for (const job of jobs) {
    if (!matches(job, filters)) continue;
    if (job.arrayJobId) {
      const list = arrays.get(job.arrayJobId);
      if (list) list.push(job); else arrays.set(job.arrayJobId, [job]);
    } else singles.push(job);
  }
  const searchedTask = /^\d+_\d+$/.test((filters.q || "").trim());
  const top = singles.map((job) => ({ kind: "job", job, depth: 0 }));
  for (const [id, tasks] of arrays) {
    tasks.sort(comparator({ key: "id", dir: "asc" }, now));
    const lead = [...tasks].sort(cmp)[0];
    top.push({ kind: "array", id, job: lead, tasks, counts: arrayCounts(tasks), expanded: expanded.has(id) || searchedTask });
  }
  top.sort((a, b) => cmp(a.job, b.job));
  const rows = [];
  for (const row of top) {
    rows.push(row);
    if (row.kind === "array" && row.expanded) for (const job of row.tasks) rows.push({ kind: "job", job, depth: 1 });
  }
  return rows;
}
