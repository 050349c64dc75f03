// Building the page's elements and wording its values. Every text from the server (a
// passage, a file name, an error) goes in as text, never as HTML.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  for (const child of children.flat(Infinity)) {
    if (child != null && child !== false) el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

const SVG = "http://www.w3.org/2000/svg";

export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  setAttrs(el, attrs);
  for (const child of children.flat(Infinity)) {
    if (child != null && child !== false) el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

function setAttrs(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value == null || value === false) continue;
    if (key === "text") el.textContent = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : value);
  }
}

export const $ = (id) => document.getElementById(id);

export const NO_KB = "No knowledge base yet: upload documents first (Documents).";

/** A status line: a message, and whether it is an error. */
export function say(el, text, kind = "") {
  el.textContent = text || "";
  el.classList.toggle("error", kind === "error");
  el.classList.toggle("ok", kind === "ok");
}

export function fileName(path) {
  return String(path).split(/[\\/]/).filter(Boolean).pop() || String(path);
}

/** Where a passage is in its document: a PDF page, lines of text, or a locator (slide, row...). */
export function place(item) {
  if (item.page != null) return `page ${item.page}`;
  if (item.lines) return `lines ${String(item.lines).replace("-", "–")}`;
  return item.locator || "";
}

export function bytes(n) {
  if (n == null) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function when(iso) {
  if (!iso) return "–";
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function ms(v) {
  if (v == null) return "–";
  return v < 1000 ? `${Math.round(v)} ms` : `${(v / 1000).toFixed(v < 10000 ? 2 : 1)} s`;
}

export function usd(v) {
  if (v == null) return "–";
  if (v === 0) return "$0";
  return v < 0.01 ? `$${v.toPrecision(2)}` : `$${v.toFixed(2)}`;
}

export function num(v) {
  return v == null ? "–" : Number(v).toLocaleString();
}

/** "1 chunk", "41 chunks". */
export function count(n, word) {
  return `${num(n)} ${word}${n === 1 ? "" : "s"}`;
}

/** A passage's text with the line breaks of hard-wrapped prose taken out (a line that goes
 * on in lower case, indented or not, continues a sentence), so it flows at any width;
 * paragraphs and list items stay. */
export function reflow(text) {
  return String(text).replace(/([^\n])\n[ \t]*(?=\p{Ll})/gu, "$1 ");
}

export function percent(v) {
  return v == null ? "–" : `${Math.round(v * 1000) / 10}%`;
}

/** A definition list entry: <div><dt>label</dt><dd>value</dd></div>. */
export function entry(label, value) {
  return h("div", {}, h("dt", { text: label }), h("dd", { text: value }));
}
