/**
 * Small DOM helpers shared by the dashboard's views. No side effects at import.
 */

/** `el("td", {class, text, onclick, ...attrs}, ...children)`: false/null attributes are left out. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) if (child != null) node.append(child);
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";
export function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

/** Set text only when it changed (no layout work for an unchanged cell). */
export function setText(node, value) {
  const textValue = value == null ? "" : String(value);
  if (node.textContent !== textValue) node.textContent = textValue;
}

let flashColor = null;
/**
 * Highlight a changed row or tile briefly. The Web Animations API restarts the animation
 * without forcing a layout (reading offsetWidth to restart a CSS animation did, once per
 * changed row: seconds per minute at 1,000 events/s, bench/dashboard_frames.py).
 */
export function flash(node) {
  if (typeof node.animate !== "function") return;
  if (matchMedia("(prefers-reduced-motion: reduce)").matches) return;
  flashColor ??= getComputedStyle(document.documentElement).getPropertyValue("--flash").trim() || "rgb(37 99 235 / 0.14)";
  for (const running of node.getAnimations ? node.getAnimations() : []) if (running.id === "flash") running.cancel();
  const animation = node.animate([{ backgroundColor: flashColor }, { backgroundColor: "transparent" }],
    { duration: 1600, easing: "ease-out" });
  animation.id = "flash";
}

/** "OUT_OF_MEMORY" -> "Out of memory" */
export function titleCase(state) {
  return state.charAt(0) + state.slice(1).toLowerCase().replace(/_/g, " ");
}

export function statePill(state, tone) {
  return el("span", { class: `pill tone-${tone}`, text: titleCase(state) });
}

/** A toast box: `show(message, tone)` shows it for four seconds. */
export function toaster(box) {
  let timer = null;
  return (message, tone = "info") => {
    box.textContent = message;
    box.dataset.tone = tone;
    box.hidden = false;
    clearTimeout(timer);
    timer = setTimeout(() => { box.hidden = true; }, 4000);
  };
}
