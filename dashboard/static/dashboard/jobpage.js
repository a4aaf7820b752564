// The job page (/jobs/<id>): the entry point, the only module here with side effects.
//
// 1. GET /api/cluster/jobs/<id>: the record, its transitions, steps, efficiency and the stream
//    `position` read with them ({channel: {offset, epoch}}: `jobs`, or `user:<me>` when jobs
//    are private).
// 2. Subscribe to that channel `since` the position, so every transition after the REST answer
//    arrives exactly once (docs/protocol.md section 6); events about other jobs are ignored.
//    A `reset` (history lost), or a null position, re-reads the detail: never a page reload.
// 3. While open: POST .../watch now and every 60 s (interest-driven start estimates and live
//    efficiency; a hub without it answers 404/405, ignored); `job_progress` updates them.
// 4. Cancel: a confirmation dialog, POST .../cancel; the page then says "Cancelling…" until the
//    CANCELLED transition arrives on the stream.
import { connect } from "../hub/hub-client.js";
import * as V from "./jobview.js";

const config = JSON.parse(document.getElementById("jobpage-config").textContent);
const $ = (id) => document.getElementById(id);
const root = $("job");
const WATCH_EVERY_MS = 60_000;

let state = null;
let channel = null;
let cancelRequested = false;
const seen = []; // the states this page showed, in order (for people and tests alike)
const cancelSeen = []; // likewise the cancel statuses: cancelling, cancelled, error

function api(url, method = "GET") {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRFToken"] = config.csrfToken;
  return fetch(url, { method, headers, credentials: "same-origin" });
}

function text(el, value) {
  if (el.textContent !== value) el.textContent = value;
}

function renderFields(now) {
  const container = $("job-fields");
  const wanted = V.sections(state, now);
  if (container.childElementCount !== wanted.length) {
    container.replaceChildren(...wanted.map((section) => {
      const box = document.createElement("section");
      box.className = "card job-section";
      const h = document.createElement("h2");
      h.textContent = section.title;
      const dl = document.createElement("dl");
      dl.className = "job-dl";
      box.append(h, dl);
      return box;
    }));
  }
  wanted.forEach((section, i) => {
    const dl = container.children[i].querySelector("dl");
    const rows = section.rows.map(([label, value, key]) => `${key}\u0000${label}`);
    if (dl.dataset.rows !== rows.join("|")) {
      dl.dataset.rows = rows.join("|");
      dl.replaceChildren(...section.rows.flatMap(([label, , key]) => {
        const dt = document.createElement("dt");
        dt.textContent = label;
        const dd = document.createElement("dd");
        dd.dataset.field = key;
        return [dt, dd];
      }));
    }
    for (const [, value, key] of section.rows) text(dl.querySelector(`[data-field="${key}"]`), value);
  });
}

function renderReason() {
  const { job } = state;
  const box = $("job-reason");
  box.hidden = !job.reason || V.TERMINAL.has(job.state) && !job.reason_text;
  text($("reason-title"), job.state === "PENDING" ? "Why it is waiting" : "Slurm's reason");
  text($("reason-text"), job.reason_text || job.reason || "");
  text($("reason-hint"), job.reason_hint || "");
  $("reason-hint").hidden = !job.reason_hint;
  text($("reason-code"), job.reason || "");
}

function renderTransitions() {
  const list = $("job-transitions");
  const items = state.transitions.map((t) => `${t.state}\u0000${t.at}`).join("|");
  if (list.dataset.items === items) return;
  list.dataset.items = items;
  list.replaceChildren(...state.transitions.map((t) => {
    const li = document.createElement("li");
    li.dataset.state = t.state;
    const pill = document.createElement("span");
    pill.className = `pill tone-${V.tone(t.state)}`;
    pill.textContent = V.stateLabel(t.state);
    const at = document.createElement("time");
    at.dateTime = t.at || "";
    at.textContent = V.formatTime(t.at);
    li.append(pill, at);
    return li;
  }));
}

function renderSteps() {
  const box = $("job-steps");
  box.hidden = state.steps.length === 0;
  $("job-steps-body").replaceChildren(...state.steps.map((s) => {
    const tr = document.createElement("tr");
    for (const value of [s.step, s.name || "", V.stateLabel(s.state), V.exitText(s), V.formatDuration(s.elapsed_seconds), s.nodes || ""]) {
      const td = document.createElement("td");
      td.textContent = value;
      tr.append(td);
    }
    return tr;
  }));
}

function renderEfficiency() {
  const rows = V.efficiencyRows(state);
  $("job-efficiency").hidden = rows.length === 0;
  text($("efficiency-source"), state.liveEfficiency ? "live, while it runs" : "from accounting");
  $("efficiency-list").replaceChildren(...rows.flatMap(([label, value]) => {
    const dt = document.createElement("dt");
    dt.textContent = label;
    const dd = document.createElement("dd");
    dd.textContent = value;
    return [dt, dd];
  }));
}

function renderCancel() {
  const { job } = state;
  const mine = config.isStaff || job.user === config.user;
  const button = $("cancel-button");
  button.hidden = !(config.cancelEnabled && mine && V.canCancel(state));
  button.disabled = cancelRequested;
  const status = $("cancel-status");
  if (job.state === "CANCELLED") {
    status.dataset.state = "cancelled";
    text(status, cancelRequested ? "Cancelled." : "");
  } else if (cancelRequested) {
    status.dataset.state = "cancelling";
    text(status, "Cancelling… waiting for Slurm to confirm.");
  }
  const shown = status.dataset.state;
  if (shown && cancelSeen[cancelSeen.length - 1] !== shown) cancelSeen.push(shown);
}

function render() {
  const { job } = state;
  const now = Date.now();
  root.dataset.state = job.state;
  root.dataset.inQueue = String(job.in_queue !== false);
  if (seen[seen.length - 1] !== job.state) seen.push(job.state);
  // Job ids repeat across clusters: with several, the title says which one.
  const where = config.severalClusters && job.cluster ? ` on ${job.cluster}` : "";
  text($("job-title"), `Job ${job.display_id || job.job_id}${where}`);
  text($("job-name"), job.name || "");
  const pill = $("job-state");
  pill.className = `pill tone-${V.tone(job.state)}`;
  text(pill, V.stateLabel(job.state) + (job.state_flags && job.state_flags.length ? ` (${job.state_flags.join(", ").toLowerCase()})` : ""));
  document.title = `Job ${job.display_id || job.job_id}${where} · ${V.stateLabel(job.state)}`;
  renderReason();
  renderFields(now);
  renderTransitions();
  renderSteps();
  renderEfficiency();
  renderCancel();
}

function showGone() {
  root.dataset.state = "GONE";
  $("job-gone").hidden = false;
  $("job-main").hidden = true;
}

async function loadDetail() {
  const response = await api(config.api.detail);
  if (response.status === 404) return showGone();
  if (!response.ok) throw new Error(`job detail: HTTP ${response.status}`);
  const detail = await response.json();
  state = V.fromDetail(detail);
  render();
  return detail;
}

function onPublication(msg) {
  if (!state) return;
  const next = V.applyEvent(state, msg);
  if (next === null) return;
  state = next;
  render();
}

function setConnection(stateName) {
  const el = $("connection");
  el.dataset.state = stateName;
  text($("connection-text"), { connected: "Live", connecting: "Connecting…", reconnecting: "Reconnecting…" }[stateName] || "Offline");
}

async function watch() {
  try {
    await api(config.api.watch, "POST"); // 404/405 until the hub offers it: fine
  } catch (_) { /* offline: the next tick tries again */ }
}

async function requestCancel() {
  cancelRequested = true;
  render();
  let message = "";
  try {
    const response = await api(config.api.cancel, "POST");
    if (response.status !== 202) {
      const body = await response.json().catch(() => ({}));
      message = body.message || `HTTP ${response.status}`;
    }
  } catch (err) {
    message = String(err && err.message || err);
  }
  if (message) {
    cancelRequested = false;
    const status = $("cancel-status");
    status.dataset.state = "error";
    text(status, `Could not cancel: ${message}`);
    render();
  }
}

function setupCancel() {
  const dialog = $("cancel-dialog");
  $("cancel-button").addEventListener("click", () => {
    text($("cancel-dialog-job"), state.job.display_id || state.job.job_id);
    dialog.showModal();
  });
  dialog.addEventListener("close", () => {
    if (dialog.returnValue === "confirm") requestCancel();
  });
}

async function start() {
  setupCancel();
  const detail = await loadDetail();
  if (!detail) return;
  channel = Object.keys(detail.position || {})[0] || null;
  const hub = connect(config.wsUrl);
  window.jobPage = { hub, seen, cancelSeen, get state() { return state; } };
  hub.on("state", ({ state: s }) => setConnection(s));
  if (channel) {
    const since = detail.position[channel];
    hub.subscribe(channel, onPublication, { since });
    // No position to resume from, or the history could not bridge the gap: re-read the job.
    hub.on("subscribed", (frame) => { if (frame.channel === channel && !since) loadDetail(); });
    hub.on("reset", ({ channel: c }) => { if (c === channel) loadDetail(); });
  }
  setInterval(() => { if (state) render(); }, 1000);
  watch();
  setInterval(watch, WATCH_EVERY_MS);
}

start().catch((err) => {
  console.error(err);
  text($("job-error"), "Could not load this job; try reloading the page.");
  $("job-error").hidden = false;
});
