// Ask: POST /v1/ask as server-sent events. The answer grows as the model writes it; the
// last event carries the whole answer, whose citations become links (named by the cited
// file) that open the cited passage, with provider, latency, tokens, cost and cache. The
// filters of filters.js narrow the documents the passages come from.

import { stream } from "./api.js";
import { $, NO_KB, entry, fileName, h, ms, num, place, reflow, say, usd } from "./dom.js";
import { filterOf, limitSince, loadTypes } from "./filters.js";

// A citation as kb writes it: [n] or [n, m], not glued to a word, not a Markdown link.
const CITATION = /(?<![\p{L}\p{N}_[])\[(\d{1,2}(?:[ \t]*,[ \t]*\d{1,2})*)\](?![(\p{L}\p{N}_])/gu;

export function openPassage(citation, opener) {
  const dialog = $("passage");
  $("passage-title").textContent = fileName(citation.source);
  $("passage-where").textContent = [citation.source, place(citation)].filter(Boolean).join(" · ");
  $("passage-text").textContent = reflow(citation.text);
  dialog.addEventListener("close", () => opener && opener.focus(), { once: true });
  dialog.showModal();
}

function citationLink(citation, text, label) {
  return h("a", {
    href: "#ask",
    text,
    "aria-label": label,
    title: `${citation.source}${place(citation) ? ` (${place(citation)})` : ""}`,
    onclick(event) {
      event.preventDefault();
      openPassage(citation, event.currentTarget);
    },
  });
}

/** The answer's text with each [n] that names a citation as a link to its passage. */
function answerNodes(answer) {
  const byN = new Map(answer.citations.map((c) => [c.n, c]));
  const out = document.createDocumentFragment();
  let at = 0;
  for (const match of answer.answer.matchAll(CITATION)) {
    const numbers = match[1].split(",").map((n) => Number(n.trim()));
    if (!numbers.every((n) => byN.has(n))) continue;
    out.append(answer.answer.slice(at, match.index));
    numbers.forEach((n) => {
      const c = byN.get(n);
      out.append(citationLink(c, `[${n}]`, `[${n}] ${fileName(c.source)}`));
    });
    at = match.index + match[0].length;
  }
  out.append(answer.answer.slice(at));
  return out;
}

function metaEntries(answer) {
  const lat = answer.latency_ms || {};
  const usage = answer.usage || {};
  const failed = (answer.attempts || []).filter((a) => a.outcome !== "ok");
  return [
    entry("Provider", answer.provider === answer.model ? answer.provider : `${answer.provider} (${answer.model})`),
    entry("Latency", `${ms(lat.total)} (retrieve ${ms(lat.retrieve)}, generate ${ms(lat.generate)})`),
    entry("Tokens", `${num(usage.input_tokens)} in, ${num(usage.output_tokens)} out`),
    entry("Cost", usd(usage.cost_usd)),
    entry("Cached", answer.cached ? "yes" : "no"),
    failed.length > 0 && entry("Tried first", failed.map((a) => `${a.provider}: ${a.error || a.outcome}`).join("; ")),
  ];
}

export function askView(ctx) {
  const form = $("ask-form");
  const status = $("ask-status");
  const text = $("answer-text");
  let running = null;

  function render(answer) {
    text.replaceChildren(answerNodes(answer));
    const list = $("citations");
    list.replaceChildren(
      ...answer.citations.map((c) =>
        h("li", { value: c.n }, citationLink(c, fileName(c.source), null), place(c) && h("span", { class: "where" }, ` ${place(c)}`)),
      ),
    );
    $("citations-title").hidden = answer.citations.length === 0;
    $("answer-meta").replaceChildren(...metaEntries(answer).filter(Boolean));
    $("answer-meta").hidden = false;
  }

  async function run(question) {
    if (!ctx.kb()) return say(status, NO_KB, "error");
    const body = { question, stream: true };
    if (ctx.kb()) body.kb = ctx.kb();
    if ($("ask-mode").value) body.mode = $("ask-mode").value;
    if ($("ask-k").value) body.top_k = Number($("ask-k").value);
    if ($("ask-fresh").checked) body.no_cache = true;
    const filter = filterOf("ask");
    if (filter) body.filter = filter;
    running = new AbortController();
    $("answer").hidden = false;
    $("answer").setAttribute("aria-busy", "true");
    text.replaceChildren();
    $("citations").replaceChildren();
    $("citations-title").hidden = true;
    $("answer-meta").hidden = true;
    $("ask-go").disabled = true;
    $("ask-stop").hidden = false;
    say(status, "Answering…");
    try {
      for await (const { event, data } of stream("v1/ask", body, running.signal)) {
        if (event === "delta") text.append(data.text);
        else if (event === "reset") {
          text.replaceChildren();
          say(status, `A provider failed mid-answer (${data.reason}); the next one starts over.`);
        } else if (event === "answer") {
          render(data);
          say(status, "");
        } else if (event === "error") {
          throw new Error(data.error.message); // kb's own words: a filter that leaves no document...
        }
      }
    } catch (error) {
      if (error.name === "AbortError") say(status, "Stopped.");
      else if (error.status !== 401) say(status, error.message, "error");
      if (!text.textContent) $("answer").hidden = true;
    } finally {
      $("answer").removeAttribute("aria-busy");
      $("ask-go").disabled = false;
      $("ask-stop").hidden = true;
      running = null;
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const question = $("question").value.trim();
    if (question && !running) run(question);
  });
  // Enter asks, Shift+Enter starts a new line, as in a chat box.
  $("question").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  $("ask-stop").addEventListener("click", () => running && running.abort());
  $("passage-close").addEventListener("click", () => $("passage").close());

  return {
    show() {
      limitSince("ask");
      return loadTypes("ask", ctx.kb());
    },
    hide() {
      if (running) running.abort();
    },
  };
}
