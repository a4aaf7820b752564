/**
 * Node tiles (one per node, kept in place, flashing on a state change), the legend, and the
 * node panel: state, reason, partitions, load, allocation and the jobs on the node, opened
 * from a tile by click, tap, Enter or Space (a dialog; Escape or the close button returns
 * focus to the tile). `createNodesView(ctx)`; nothing runs at import.
 * ctx: {store, index (JobIndex), isLoaded(): boolean}.
 */
import * as M from "./model.js";
import { el, flash, setText, titleCase } from "./dom.js";

const TONES = ["idle", "mixed", "allocated", "drain", "down", "reserved", "other"];
const TONE_LABELS = { idle: "Idle", mixed: "Mixed", allocated: "Allocated", drain: "Draining", down: "Down", reserved: "Reserved", other: "Other" };

function bar(label) {
  const fill = el("span", { class: "bar-fill" });
  const value = el("span", { class: "bar-value" });
  const wrap = el("div", { class: "bar", "data-bar": label.toLowerCase() },
    el("span", { class: "bar-label", text: label }), el("span", { class: "bar-track" }, fill), value);
  return { wrap, fill, value };
}

function setBar(b, used, total, formatter = (u, t) => `${u} / ${t}`) {
  const known = total !== undefined && total > 0;
  b.wrap.hidden = !known;
  if (!known) return;
  const pct = Math.max(0, Math.min(100, (100 * (used || 0)) / total));
  b.fill.style.width = `${pct.toFixed(1)}%`;
  b.fill.dataset.level = pct >= 90 ? "high" : pct >= 60 ? "mid" : "low";
  setText(b.value, formatter(used || 0, total));
  b.wrap.title = `${Math.round(pct)}% allocated`;
}

function stateLabel(node) {
  const flags = (node.flags || []).filter((f) => f && !node.state.includes(f.toUpperCase()));
  return { short: titleCase(node.state.split("+")[0]) + (node.state.includes("+") || flags.length ? "+" : ""),
    full: [node.state, ...flags].join("+") };
}

/** Jobs whose node list names `name` (running ones first), from the index. */
export function jobsOnNode(jobs, name) {
  const out = [];
  for (const job of jobs) if (job.nodes && M.expandHostlist(job.nodes).includes(name)) out.push(job);
  return out.sort((a, b) => (M.jobTone(a.state) === "running" ? 0 : 1) - (M.jobTone(b.state) === "running" ? 0 : 1));
}

export function createNodesView({ store, index, isLoaded, shown }) {
  const $ = (id) => document.getElementById(id);
  const tiles = new Map();
  const dialog = $("node-panel");
  let openNode = null;
  let opener = null;

  function tile(node) {
    const name = el("span", { class: "node-name mono" });
    const state = el("span", { class: "node-state" });
    const reason = el("p", { class: "node-reason" });
    const cpu = bar("CPU");
    const mem = bar("Mem");
    const gpu = bar("GPU");
    const box = el("article", { class: "node", "data-node": node.name, tabindex: "0", role: "button", "aria-haspopup": "dialog" },
      el("header", {}, name, state), cpu.wrap, mem.wrap, gpu.wrap, reason);
    const open = () => openPanel(box.dataset.node, box);
    box.addEventListener("click", open);
    box.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); open(); }
    });
    return { box, name, state, reason, cpu, mem, gpu };
  }

  function render() {
    const grid = $("nodes-grid");
    const nodes = [...store.nodes.values()].sort(M.compareNodes);
    const keep = new Set(nodes.map((n) => n.name));
    for (const [name, t] of tiles) if (!keep.has(name)) { t.box.remove(); tiles.delete(name); }
    const counts = {};
    let previous = null;
    for (const node of nodes) {
      let t = tiles.get(node.name);
      if (!t) { t = tile(node); tiles.set(node.name, t); }
      const tone = M.nodeTone(node.state, node.flags || []);
      counts[tone] = (counts[tone] || 0) + 1;
      if (t.box.dataset.state !== undefined && t.box.dataset.state !== node.state) flash(t.box);
      t.box.dataset.state = node.state;
      t.box.dataset.tone = tone;
      setText(t.name, node.name);
      const label = stateLabel(node);
      setText(t.state, label.short);
      t.state.title = label.full;
      setBar(t.cpu, node.cpusAlloc, node.cpusTotal);
      setBar(t.mem, node.memAlloc, node.memTotal, M.formatMegabytesPair);
      setBar(t.gpu, node.gpusAlloc, node.gpusTotal);
      setText(t.reason, node.reason || "");
      t.reason.hidden = !node.reason;
      t.box.setAttribute("aria-label", `Node ${node.name}, ${label.full}${node.reason ? `: ${node.reason}` : ""}. Open details`);
      const expected = previous ? previous.nextSibling : grid.firstChild;
      if (expected !== t.box) grid.insertBefore(t.box, expected);
      previous = t.box;
    }
    setText($("nodes-count"), nodes.length ? String(nodes.length) : "");
    $("nodes-empty").hidden = nodes.length > 0 || !isLoaded();
    $("nodes-legend").replaceChildren(...TONES.filter((tone) => counts[tone]).map((tone) =>
      el("span", { class: `legend-item tone-${tone}` }, el("span", { class: "swatch" }), `${TONE_LABELS[tone]} ${counts[tone]}`)));
    if (openNode) renderPanel();
  }

  function renderPanel() {
    const node = store.nodes.get(openNode);
    if (!node) { setText($("node-panel-title"), `${openNode} (gone)`); return; }
    setText($("node-panel-title"), node.name);
    const label = stateLabel(node);
    const load = node.cpuLoadPercent !== undefined ? `${Math.round(node.cpuLoadPercent)}%` : node.cpuLoad !== undefined ? String(node.cpuLoad) : "unknown";
    const facts = [
      ["State", label.full], ["Reason", node.reason || "—"], ["Partitions", node.partitions || "—"],
      ["CPU load", load], ["CPUs allocated", node.cpusTotal ? `${node.cpusAlloc ?? 0} / ${node.cpusTotal}` : "—"],
      ["Memory allocated", node.memTotal ? M.formatMegabytesPair(node.memAlloc, node.memTotal) : "—"],
      ["GPUs allocated", node.gpusTotal ? `${node.gpusAlloc ?? 0} / ${node.gpusTotal}` : "—"],
    ];
    $("node-panel-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v, "data-fact": k.toLowerCase() })]));
    const jobs = jobsOnNode(index.jobs.values(), node.name);
    $("node-panel-jobs").replaceChildren(...jobs.slice(0, 200).map((job) => el("li", {},
      el("a", { href: M.jobHref(job, shown()), text: job.displayId || job.id }), ` ${job.name || ""} · ${job.user || ""} · ${titleCase(job.state)}`)));
    $("node-panel-nojobs").hidden = jobs.length > 0;
  }

  function openPanel(name, from) {
    openNode = name;
    opener = from;
    renderPanel();
    if (!dialog.open) dialog.showModal();
    $("node-panel-close").focus();
  }

  dialog.addEventListener("close", () => {
    openNode = null;
    if (opener && opener.isConnected) opener.focus();
  });
  $("node-panel-close").addEventListener("click", () => dialog.close());
  dialog.addEventListener("click", (event) => { if (event.target === dialog) dialog.close(); });
  return { render };
}
