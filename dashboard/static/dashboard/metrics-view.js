/**
 * The metric cards with their last-hour sparklines, and the samples behind them (kept in
 * sessionStorage so a reload keeps the hour). `createMetricsView(ctx)`; nothing runs at import.
 * ctx: {store}. The job cards count what the jobs table counts (store.jobCounts), so the
 * two agree; the rest comes from metrics_update, or from the node store without one.
 */
import * as M from "./model.js";
import { el, setText, svg } from "./dom.js";

const HISTORY_KEY = "dashboard.metrics.v1";

const CARDS = [
  { key: "jobsRunning", label: "Running jobs", tone: "running", format: (v) => (v ?? "–"), detail: (m) => (m.jobsTotal !== undefined ? `of ${m.jobsTotal} listed` : "") },
  { key: "jobsPending", label: "Pending jobs", tone: "pending", format: (v) => (v ?? "–"), detail: () => "waiting in queue" },
  { key: "cpuUtil", label: "CPU allocated", tone: "cpu", format: M.formatPercent, max: 100, detail: (m) => (m.cpusTotal ? `${m.cpusAlloc ?? 0} / ${m.cpusTotal} cores` : "") },
  { key: "memUtil", label: "Memory allocated", tone: "mem", format: M.formatPercent, max: 100, detail: (m) => (m.memTotal ? M.formatMegabytesPair(m.memAlloc, m.memTotal) : "") },
  { key: "gpuUtil", label: "GPU allocated", tone: "gpu", format: M.formatPercent, max: 100, optional: (m) => !m.gpusTotal && m.gpuUtil === undefined, detail: (m) => (m.gpusTotal ? `${m.gpusAlloc ?? 0} / ${m.gpusTotal} GPUs` : "") },
  { key: "nodesUp", label: "Nodes available", tone: "nodes", format: (v) => (v ?? "–"), detail: (m) => (m.nodesTotal !== undefined ? `of ${m.nodesTotal}${m.nodesDown ? ` · ${m.nodesDown} down/draining` : ""}` : "") },
];

/** The sparklines' storage key: one hour of samples per cluster (the primary keeps the old key). */
export function historyKey(shown) {
  return shown && !shown.primary ? `${HISTORY_KEY}.${shown.name}` : HISTORY_KEY;
}

export function loadHistory(storage = globalThis.sessionStorage, key = HISTORY_KEY) {
  try {
    const saved = JSON.parse(storage.getItem(key) || "[]");
    return Array.isArray(saved) ? saved.filter((s) => Date.now() - s.t < M.HOUR_MS) : [];
  } catch (_) {
    return [];
  }
}

function withNodesUp(m) {
  return { ...m, nodesUp: m.nodesTotal !== undefined ? m.nodesTotal - (m.nodesDown || 0) : undefined };
}

export function createMetricsView({ store }) {
  const section = document.getElementById("metrics");
  const cards = new Map();

  function current() {
    return M.normMetrics(store.metricsRaw || {}, { nodes: store.nodes, jobCounts: store.jobCounts });
  }

  function addSample(when) {
    M.pushSample(store.history, { ...current(), t: M.toMillis(when) ?? Date.now() });
    try { sessionStorage.setItem(store.historyKey || HISTORY_KEY, JSON.stringify(store.history)); } catch (_) { /* full or off */ }
  }

  function card(def) {
    const value = el("span", { class: "metric-value" });
    const detail = el("span", { class: "metric-detail" });
    const chart = svg("svg", { class: "spark", viewBox: "0 0 120 32", preserveAspectRatio: "none", "aria-hidden": "true" });
    const area = svg("path", { class: "spark-area" });
    const line = svg("path", { class: "spark-line", "vector-effect": "non-scaling-stroke" });
    chart.append(area, line);
    const box = el("div", { class: `metric tone-${def.tone}`, "data-metric": def.key },
      el("span", { class: "metric-label", text: def.label }), value, detail, chart);
    return { box, value, detail, area, line, chart };
  }

  function render() {
    const now = Date.now();
    const figures = withNodesUp(current());
    const history = store.history.map(withNodesUp);
    for (const def of CARDS) {
      let c = cards.get(def.key);
      if (!c) { c = card(def); cards.set(def.key, c); section.append(c.box); }
      c.box.hidden = Boolean(def.optional && def.optional(figures));
      setText(c.value, def.format(figures[def.key]));
      setText(c.detail, def.detail(figures));
      const points = history.map((s) => ({ t: s.t, v: s[def.key] }));
      if (Number.isFinite(figures[def.key])) points.push({ t: now, v: figures[def.key] });
      const paths = M.sparklinePaths(points, { now, min: 0, max: def.max });
      c.line.setAttribute("d", paths ? paths.line : "");
      c.area.setAttribute("d", paths ? paths.area : "");
      c.chart.setAttribute("aria-label", `${def.label}, last hour`);
    }
  }
  return { render, addSample };
}
