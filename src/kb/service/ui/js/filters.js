// The search filters of the Search and Ask forms (the `filter` of /v1/search and /v1/ask):
// Source (a glob, a file or a folder name), Type (one of the suffixes of the knowledge
// base's documents) and Modified since (a date: midnight in the server's time zone). Only
// the fields filled in are sent; a filter that leaves no document is kb's error, which the
// form shows as kb words it.

import { api } from "./api.js";
import { $, fileName, h } from "./dom.js";

const TYPE = /^[a-z0-9][a-z0-9_+-]{0,15}$/; // what the API takes as a type (schemas.py)

/** The filter of the form whose fields are `${prefix}-source`, `-type` and `-since`, or
 * null when none is filled in. */
export function filterOf(prefix) {
  const filter = {};
  const source = $(`${prefix}-source`).value.trim();
  const type = $(`${prefix}-type`).value;
  const since = $(`${prefix}-since`).value; // yyyy-mm-dd from the date field, or ""
  if (source) filter.source = [source];
  if (type) filter.type = [type];
  if (since) filter.since = since;
  return Object.keys(filter).length ? filter : null;
}

/** A filter in words: "source “manuals”, type pdf, modified since 2025-01-31". */
export function describe(filter) {
  const parts = [];
  if (filter.source) parts.push(`source “${filter.source.join("”, “")}”`);
  if (filter.type) parts.push(`type ${filter.type.join(", ")}`);
  if (filter.since) parts.push(`modified since ${filter.since}`);
  return parts.join(", ");
}

/** A document's type as kb's filter sees it: its suffix, lower case, without the dot. */
export function typeOf(source) {
  const name = fileName(source);
  const dot = name.lastIndexOf(".");
  const type = dot > 0 ? name.slice(dot + 1).toLowerCase() : "";
  return TYPE.test(type) ? type : "";
}

const loading = new WeakMap(); // select → the latest load, so that a slow answer for another kb is dropped

/** Offers in `${prefix}-type` the types of the knowledge base's documents, with how many
 * there are of each; the choice stays if the knowledge base still has that type. */
export async function loadTypes(prefix, kb) {
  const select = $(`${prefix}-type`);
  const mine = {};
  loading.set(select, mine);
  let documents = [];
  if (kb) {
    try {
      ({ documents } = await api("v1/documents", { params: { kb } }));
    } catch {
      documents = []; // none yet, or a 401 (handled by api.js): no types to offer
    }
  }
  if (loading.get(select) !== mine) return;
  const counts = new Map();
  for (const doc of documents) {
    const type = typeOf(doc.source);
    if (type) counts.set(type, (counts.get(type) || 0) + 1);
  }
  const kept = select.value;
  const types = [...counts.keys()].sort();
  select.replaceChildren(
    h("option", { value: "", text: "any" }),
    ...types.map((type) => h("option", { value: type, text: `${type} (${counts.get(type)})` })),
  );
  select.value = types.includes(kept) ? kept : "";
}

/** The latest date the since field takes: today (a later one would leave no document). */
export function limitSince(prefix) {
  const now = new Date();
  const pad = (n) => String(n).padStart(2, "0");
  $(`${prefix}-since`).max = `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
}
