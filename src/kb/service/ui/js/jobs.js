// Jobs: GET /v1/jobs of the chosen knowledge base, with state, progress, the ingest report,
// the error of a failed one, and Retry (tokens that may write). While a job is queued or
// running the list is read again every second.

import { api } from "./api.js";
import { $, bytes, count, h, num, say, when } from "./dom.js";

const POLL_MS = 1000;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Reads a job until it is done or failed, calling `update(job)` with each reading. */
export async function followJob(id, update, every = 500) {
  for (;;) {
    const job = await api(`v1/jobs/${encodeURIComponent(id)}`);
    update(job);
    if (job.state === "done" || job.state === "failed") return job;
    await sleep(every);
  }
}

/** "3 of 4 files, 41 chunks", and the share done for a <progress>. */
export function progressOf(job) {
  const p = job.progress || {};
  if (job.state === "done") return { text: "done", share: 1 };
  if (!p.files_total) return { text: job.state === "queued" ? "waiting for a worker" : "starting", share: 0 };
  const share = p.bytes_total ? p.bytes_done / p.bytes_total : p.files_done / p.files_total;
  return { text: `${num(p.files_done)} of ${count(p.files_total, "file")}, ${count(p.chunks, "chunk")}`, share: Math.min(1, share) };
}

/** A finished ingest in a few words: "2 added, 1 updated, 41 chunks; 1 failed". */
export function reportLine(report) {
  if (!report) return "";
  const failed = (report.failed || []).length;
  const parts = ["added", "updated", "removed"].filter((k) => report[k]).map((k) => `${num(report[k])} ${k}`);
  if (report.unchanged && !parts.length) parts.push(`${num(report.unchanged)} unchanged`);
  if (failed) parts.push(`${num(failed)} failed`);
  if (!parts.length) return "nothing to do";
  return `${parts.join(", ")}; ${count(report.chunks_added || 0, "chunk")} added`;
}

function reportDetails(job) {
  const r = job.report;
  const rows = [
    ["files seen", num(r.files_seen)],
    ["added", num(r.added)],
    ["updated", num(r.updated)],
    ["unchanged", num(r.unchanged)],
    ["removed", num(r.removed)],
    ["chunks added", num(r.chunks_added)],
    ["seconds", r.seconds == null ? "–" : r.seconds.toFixed(1)],
    ...(r.failed || []).map((f) => ["failed", `${f.path}: ${f.reason}`]),
    ...(r.skipped || []).map((f) => ["skipped", `${f.path}: ${f.reason}`]),
  ];
  return h("details", {}, h("summary", { text: `Report: ${reportLine(r)}` }), h("dl", {}, rows.map(([k, v]) => [h("dt", { text: k }), h("dd", { text: v })])));
}

function jobItem(job, ctx, retry) {
  const progress = progressOf(job);
  const paths = (job.params && job.params.paths) || [];
  return h(
    "li",
    { class: "job" },
    h(
      "div",
      { class: "job-head" },
      h("code", { text: job.id }),
      h("span", { class: `badge state-${job.state}`, text: job.state }),
      h("span", { text: `${job.kind} · ${job.kb}` }),
      h("span", { class: "when", text: `created ${when(job.created_at)}${job.finished_at ? `, finished ${when(job.finished_at)}` : ""}` }),
      ctx.canWrite() && (job.state === "done" || job.state === "failed") &&
        h("button", { type: "button", class: "quiet retry", "aria-label": `Retry ${job.id}`, onclick: () => retry(job) }, "Retry"),
    ),
    (job.state === "queued" || job.state === "running") &&
      h("div", { class: "progress-line" }, h("progress", { max: 1, value: progress.share, "aria-label": `Progress of ${job.id}` }), progress.text),
    job.progress && job.progress.bytes_total > 0 && job.state === "running" && h("div", { class: "when", text: `${bytes(job.progress.bytes_done)} of ${bytes(job.progress.bytes_total)}` }),
    paths.length > 0 && h("div", { class: "path", text: paths.join(", ") }),
    job.error && h("p", { class: "error", text: job.error }),
    job.report && reportDetails(job),
  );
}

export function jobsView(ctx) {
  const status = $("jobs-status");
  const list = $("jobs");
  let visible = false;
  let timer = null;

  async function load() {
    clearTimeout(timer);
    try {
      const { jobs } = await api("v1/jobs", { params: { kb: ctx.kb(), state: $("jobs-state").value, limit: 50 } });
      if (!visible) return;
      const open = new Set([...list.querySelectorAll("details[open] summary")].map((s) => s.closest(".job").querySelector("code").textContent));
      list.replaceChildren(...jobs.map((job) => jobItem(job, ctx, retry)));
      for (const item of list.querySelectorAll(".job")) {
        if (open.has(item.querySelector("code").textContent)) item.querySelector("details")?.setAttribute("open", "");
      }
      if (!jobs.length) say(status, "No jobs yet: uploads and ingests run as jobs.");
      else if (status.classList.contains("error") || !status.classList.contains("ok")) say(status, "");
      if (jobs.some((j) => j.state === "queued" || j.state === "running")) timer = setTimeout(load, POLL_MS);
    } catch (error) {
      if (error.status === 404) {
        list.replaceChildren();
        say(status, "No jobs yet: uploads and ingests run as jobs.");
      } else if (error.status !== 401) say(status, error.message, "error");
    }
  }

  async function retry(job) {
    try {
      await api(`v1/jobs/${encodeURIComponent(job.id)}/retry`, { method: "POST" });
      await load();
      say(status, `${job.id} is queued again.`, "ok");
    } catch (error) {
      if (error.status !== 401) say(status, error.message, "error");
    }
  }

  $("jobs-state").addEventListener("change", load);
  $("jobs-refresh").addEventListener("click", load);

  return {
    show() {
      visible = true;
      load();
    },
    hide() {
      visible = false;
      clearTimeout(timer);
    },
  };
}
