// The page: asks for a token when the server needs one, learns what the token may do
// (GET /v1/token), fills the knowledge base picker, and shows one view at a time, chosen by
// the address's #fragment so that Back, reload and bookmarks work.

import { api, onUnauthorized, token } from "./api.js";
import { $, h, say } from "./dom.js";
import { askView } from "./ask.js";
import { documentsView } from "./documents.js";
import { jobsView } from "./jobs.js";
import { searchView } from "./search.js";
import { statsView } from "./stats.js";

const KB_KEY = "kb.kb";
const state = { principal: null, tokenRequired: false, current: null };

const ctx = {
  kb: () => $("kb").value || null, // null: the server has none yet (its default is made by the first ingest)
  canWrite: () => !!state.principal && state.principal.scope !== "read",
  refreshKbs: () => fillPicker(), // an upload may have made the first knowledge base
};

const views = {
  search: searchView(ctx),
  ask: askView(ctx),
  documents: documentsView(ctx),
  jobs: jobsView(ctx),
  stats: statsView(ctx),
};

function showOnly(name) {
  for (const section of document.querySelectorAll("main > .view")) section.hidden = section.id !== `view-${name}`;
}

function route(moveFocus) {
  if (document.body.dataset.state !== "ready") return;
  const wanted = location.hash.slice(1);
  const name = wanted in views ? wanted : "search";
  if (state.current && state.current !== name) views[state.current].hide?.();
  state.current = name;
  showOnly(name);
  for (const link of document.querySelectorAll(".sections a")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  views[name].show();
  if (moveFocus) $(`${name}-title`).focus(); // where a screen reader's user expects to be after a link
}

function showSignIn(message) {
  if (state.current) views[state.current].hide?.();
  state.current = null;
  document.body.dataset.state = "signin";
  showOnly("token");
  $("who").hidden = true;
  say($("token-status"), message || "", message ? "error" : "");
  $("token").value = "";
  $("token").focus();
}

async function fillPicker() {
  const { kbs } = await api("v1/kbs");
  const picker = $("kb");
  const kept = picker.value || sessionStorage.getItem(KB_KEY);
  picker.replaceChildren(
    ...(kbs.length ? kbs.map((k) => h("option", { value: k.kb, text: k.kb })) : [h("option", { value: "", text: "server default" })]),
  );
  const names = kbs.map((k) => k.kb);
  picker.value = names.includes(kept) ? kept : names.includes("default") ? "default" : names[0] || "";
}

async function start() {
  state.principal = await api("v1/token");
  const p = state.principal;
  $("who-name").textContent = state.tokenRequired ? `${p.name} · ${p.scope}` : "";
  $("forget").hidden = !state.tokenRequired;
  $("who").hidden = !state.tokenRequired;
  await fillPicker();
  document.body.dataset.state = "ready";
  $("notice").hidden = true;
  route(false);
}

async function signIn(event) {
  event.preventDefault();
  const secret = $("token").value.trim();
  if (!secret) return;
  token.set(secret);
  say($("token-status"), "Checking the token…");
  try {
    await start();
    $(`${state.current}-title`).focus(); // the field that had focus is gone
  } catch (error) {
    if (error.status !== 401) say($("token-status"), error.message, "error"); // a 401 has shown the field again
  }
}

function fail(error) {
  const notice = $("notice");
  notice.textContent = `kb could not be reached: ${error.message}`;
  notice.hidden = false;
}

async function boot() {
  onUnauthorized((message) => showSignIn(`The server refused the token: ${message}`));
  $("token-form").addEventListener("submit", signIn);
  $("forget").addEventListener("click", () => {
    token.clear();
    showSignIn("");
  });
  $("kb").addEventListener("change", () => {
    sessionStorage.setItem(KB_KEY, $("kb").value);
    if (state.current) views[state.current].show();
  });
  window.addEventListener("hashchange", () => route(true));
  // Whether to ask for a token before the first data call (a 401 would show in the console).
  const answer = await fetch("server.json");
  if (!answer.ok) throw new Error(`the server answered ${answer.status}`);
  const server = await answer.json();
  state.tokenRequired = server.token_required;
  if (state.tokenRequired && !token.get()) {
    showSignIn("");
    return;
  }
  await start();
}

boot().catch((error) => {
  if (error.status !== 401) fail(error);
});
