// PURE: the job page's model. No DOM, no network, no clock of its own (callers pass `now`, ms).
// jobpage.js (the entry point) renders what these functions return.
//
// State: {job, transitions, steps, efficiency, startEstimate, liveEfficiency} from
// GET /api/cluster/jobs/<id> (docs/protocol.md section 6); live events update it through
// `applyEvent`, which answers null for an event about another job.

export const TERMINAL = new Set(["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL",
  "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL", "DEADLINE"]);
const JOB_EVENTS = new Set(["job_submitted", "job_state_changed", "job_removed", "job_progress"]);
// Fields of job_state_changed that are not the record's (the rest are merged as they come).
const NOT_RECORD = new Set(["previous_state", "start_estimate", "efficiency"]);

export function parseTime(iso) {
  if (typeof iso !== "string" || !iso) return null;
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? ms : null;
}

/** 59 -> "59 s", 125 -> "2 min 05 s", 7260 -> "2 h 01 min", 90000 -> "1 d 1 h". */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  const s = Math.max(0, Math.floor(seconds));
  const pad = (n) => String(n).padStart(2, "0");
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${pad(s % 60)} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${pad(Math.floor((s % 3600) / 60))} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

export function formatTime(iso) {
  const ms = parseTime(iso);
  if (ms === null) return "—";
  return new Date(ms).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

export function formatMemory(mb) {
  if (mb === null || mb === undefined) return "—";
  return mb >= 1024 ? `${(mb / 1024).toFixed(mb % 1024 ? 1 : 0)} GB` : `${mb} MB`;
}

export function stateLabel(state) {
  if (!state) return "Unknown";
  return state.charAt(0) + state.slice(1).toLowerCase().replace(/_/g, " ");
}

export function tone(state) {
  if (state === "PENDING") return "pending";
  if (state === "RUNNING" || state === "COMPLETING" || state === "CONFIGURING") return "running";
  if (state === "COMPLETED") return "done";
  if (state === "CANCELLED") return "cancelled";
  return TERMINAL.has(state) ? "failed" : "other";
}

/** Seconds it has run: start -> end (or now while it runs); null before it started. */
export function elapsedSeconds(job, now) {
  const start = parseTime(job.start_time);
  if (start === null || job.state === "PENDING") return null;
  const end = parseTime(job.end_time) ?? (TERMINAL.has(job.state) ? null : now);
  return end === null ? null : Math.max(0, (end - start) / 1000);
}

/** Seconds before the time limit ends it; null unless it runs and has a limit. */
export function timeLeftSeconds(job, now) {
  const start = parseTime(job.start_time);
  if (job.state !== "RUNNING" || start === null || !Number.isFinite(job.time_limit_minutes)) return null;
  return Math.max(0, (start + job.time_limit_minutes * 60_000 - now) / 1000);
}

export function timeLeftText(job, now) {
  if (TERMINAL.has(job.state)) return "ended";
  if (job.state === "PENDING") return job.time_limit_minutes ? `${formatDuration(job.time_limit_minutes * 60)} once it starts` : "no limit reported";
  const left = timeLeftSeconds(job, now);
  return left === null ? "no limit reported" : formatDuration(left);
}

export function exitText(job) {
  if (job.signal) return `killed by signal ${job.signal}` + (job.exit_code ? ` (exit code ${job.exit_code})` : "");
  if (job.exit_code === null || job.exit_code === undefined) return TERMINAL.has(job.state) ? "not reported" : "—";
  return String(job.exit_code);
}

export function fromDetail(detail) {
  return {
    job: { ...detail.job },
    transitions: [...(detail.transitions || [])],
    steps: [...(detail.steps || [])],
    efficiency: detail.efficiency ?? null,
    startEstimate: detail.start_estimate ?? null,
    liveEfficiency: detail.live_efficiency ?? null,
  };
}

/** Does this publication concern the page's job? By record id, or the array task's "10_1". */
export function concerns(state, msg) {
  if (!msg || !JOB_EVENTS.has(msg.type) || !msg.data) return false;
  // Job ids repeat across clusters: on a shared channel (user:<me>) the event names its cluster.
  if (msg.data.cluster && state.job.cluster && msg.data.cluster !== state.job.cluster) return false;
  const id = String(msg.data.job_id ?? "");
  return id === state.job.job_id || (!!msg.data.display_id && msg.data.display_id === state.job.display_id);
}

function enteredAt(data, timestamp) {
  if (TERMINAL.has(data.state) && data.end_time) return data.end_time;
  if (data.state === "RUNNING" && data.start_time) return data.start_time;
  return timestamp || null;
}

/** The state after `msg`, or null when it is not about this job. Never mutates `state`. */
export function applyEvent(state, msg) {
  if (!concerns(state, msg)) return null;
  const data = msg.data;
  if (msg.type === "job_progress") {
    return { ...state, startEstimate: data.start_estimate ?? null, liveEfficiency: data.efficiency ?? null };
  }
  const job = { ...state.job };
  for (const [key, value] of Object.entries(data)) if (!NOT_RECORD.has(key)) job[key] = value;
  if (msg.type === "job_removed") job.in_queue = false;
  const transitions = [...state.transitions];
  const last = transitions[transitions.length - 1];
  if (msg.type !== "job_removed" && data.state && (!last || last.state !== data.state)) {
    transitions.push({ state: data.state, at: enteredAt(data, msg.timestamp) });
  }
  if (TERMINAL.has(job.state) && !job.ended_at) job.ended_at = job.end_time || msg.timestamp || null;
  return { ...state, job, transitions };
}

const or = (value) => (value === null || value === undefined || value === "" ? "—" : String(value));

/** The page's fields, in sections: [{title, rows: [[label, text, key]]}]. */
export function sections(state, now) {
  const j = state.job;
  const time = [
    ["Submitted", formatTime(j.submit_time), "submit"],
    ["Started", formatTime(j.start_time), "start"],
    ["Ended", formatTime(j.end_time || (TERMINAL.has(j.state) ? j.ended_at : null)), "end"],
    ["Elapsed", formatDuration(elapsedSeconds(j, now)), "elapsed"],
    ["Time limit", j.time_limit_minutes ? formatDuration(j.time_limit_minutes * 60) : "none reported", "limit"],
    ["Time left", timeLeftText(j, now), "left"],
  ];
  if (j.state === "PENDING") time.push(["Expected start", state.startEstimate ? formatTime(state.startEstimate) : "not estimated", "estimate"]);
  return [
    { title: "Where and what", rows: [
      ["User", or(j.user), "user"], ["Account", or(j.account), "account"], ["QOS", or(j.qos), "qos"],
      ["Partition", or(j.partition), "partition"], ["Nodes", or(j.nodes), "nodes"],
      ["Node count", or(j.node_count), "node-count"], ["CPUs", or(j.cpus), "cpus"],
      ["Memory", formatMemory(j.memory_mb), "memory"], ["GPUs", or(j.gpus), "gpus"],
    ] },
    { title: "Time", rows: time },
    { title: "Files and outcome", rows: [
      ["Working directory", or(j.working_directory), "workdir"], ["Output", or(j.stdout_path), "stdout"],
      ["Error output", or(j.stderr_path), "stderr"], ["Dependency", or(j.dependency), "dependency"],
      ["Exit code", exitText(j), "exit"],
    ] },
  ];
}

/** Efficiency lines: live (sstat, while it runs) first, else accounting's; [] when unknown. */
export function efficiencyRows(state) {
  const e = state.liveEfficiency || state.efficiency;
  if (!e) return [];
  const pct = (x) => (x && Number.isFinite(x.percent) ? `${x.percent}%` : "—");
  return [["CPU", pct(e.cpu)], ["Memory", pct(e.memory)], ["GPU", e.gpu && e.gpu.requested ? pct(e.gpu) : "—"]];
}

export function canCancel(state) {
  return state.job.in_queue !== false && !TERMINAL.has(state.job.state);
}
