// Search: POST /v1/search, the passages with their source, place, score, and the query's
// words marked in their text; the filters of filters.js narrow the documents searched.

import { api } from "./api.js";
import { $, NO_KB, fileName, h, place, reflow, say } from "./dom.js";
import { describe, filterOf, limitSince, loadTypes } from "./filters.js";

// Words too common to be worth marking; kb's keyword search ranks them low as well.
const COMMON = new Set(
  "a an and are as at be by can do does for from had has have how i if in into is it its of on or so than that the their there these this to was we what when where which who why will with you your".split(
    " ",
  ),
);

/** The query's words as patterns: a word's start, its plural or -ing/-ed form trimmed, so
 * "mites" also marks "mite", as kb's keyword index (Porter stemming) would match it. */
export function terms(query) {
  const words = query.toLowerCase().match(/[\p{L}\p{N}]+/gu) || [];
  const stems = words
    .filter((w) => w.length > 1 && !COMMON.has(w))
    .map((w) => (w.length > 4 ? w.replace(/(?:ing|ed|es|s)$/u, "") : w));
  return [...new Set(stems)].sort((a, b) => b.length - a.length);
}

const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** `text` as nodes, with each word that starts with one of `words` in a <mark>. */
export function marked(text, words) {
  const out = document.createDocumentFragment();
  if (!words.length) {
    out.append(text);
    return out;
  }
  const pattern = new RegExp(`(?<![\\p{L}\\p{N}])(?:${words.map(escape).join("|")})[\\p{L}\\p{N}]*`, "giu");
  let at = 0;
  for (const match of text.matchAll(pattern)) {
    out.append(text.slice(at, match.index), h("mark", { text: match[0] }));
    at = match.index + match[0].length;
  }
  out.append(text.slice(at));
  return out;
}

function hitItem(hit, words) {
  const spot = place(hit);
  return h(
    "li",
    { class: "hit" },
    h(
      "div",
      { class: "hit-head" },
      h("span", { class: "file", text: fileName(hit.source) }),
      spot && h("span", { class: "where", text: spot }),
      h("span", { class: "score", title: "How well it matches; the scale depends on the mode" }, `score ${hit.score.toFixed(3)}`),
    ),
    h("div", { class: "path", text: hit.source }),
    hit.heading && h("div", { class: "heading", text: hit.heading.replaceAll(" > ", " › ") }),
    h("p", { class: "text" }, marked(reflow(hit.text), words)),
  );
}

export function searchView(ctx) {
  const form = $("search-form");
  const status = $("search-status");
  const list = $("search-results");
  let last = null; // the query shown and its knowledge base: searched again in another one
  let lastKb = null;

  async function run(query) {
    if (!ctx.kb()) return say(status, NO_KB, "error");
    const body = { query, k: Number($("search-k").value) };
    if (ctx.kb()) body.kb = ctx.kb();
    if ($("search-mode").value) body.mode = $("search-mode").value;
    if ($("search-unique").checked) body.unique_sources = true;
    const filter = filterOf("search");
    if (filter) body.filter = filter;
    say(status, "Searching…");
    form.querySelector("button").disabled = true;
    try {
      const { hits } = await api("v1/search", { method: "POST", json: body });
      last = query;
      lastKb = ctx.kb();
      const words = terms(query);
      list.replaceChildren(...hits.map((hit) => hitItem(hit, words)));
      const among = filter ? ` in documents matching ${describe(filter)}` : "";
      say(status, hits.length ? `${hits.length} passage${hits.length === 1 ? "" : "s"} for “${query}”${among}` : `Nothing found for “${query}”${among}.`);
    } catch (error) {
      list.replaceChildren();
      if (error.status !== 401) say(status, error.message, "error"); // kb's own words: which filter left nothing
    } finally {
      form.querySelector("button").disabled = false;
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = $("q").value.trim();
    if (query) run(query);
  });

  return {
    async show() {
      limitSince("search");
      const kb = ctx.kb();
      await loadTypes("search", kb); // the types of this knowledge base, before searching it again
      if (last && kb === ctx.kb() && kb !== lastKb) run(last);
    },
  };
}
