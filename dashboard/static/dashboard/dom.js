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

export function flash(node) {
  node.classList.remove("flash");
  void node.offsetWidth; // restart the animation
  node.classList.add("flash");
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
