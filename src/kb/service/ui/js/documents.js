// Documents: GET /v1/documents with chunks, size and date; for tokens that may write,
// removal (DELETE /v1/documents) and uploads (multipart POST /v1/ingest), whose job is
// followed to done or failed before the list is read again.

import { api } from "./api.js";
import { $, bytes, count, fileName, h, num, say, when } from "./dom.js";
import { followJob, progressOf, reportLine } from "./jobs.js";

export function documentsView(ctx) {
  const status = $("documents-status");
  const table = $("documents");
  let uploading = false;

  function row(doc) {
    const name = fileName(doc.source);
    return h(
      "tr",
      {},
      h("td", { class: "doc" }, h("span", { class: "file", text: name }), h("span", { class: "path", text: doc.source })),
      h("td", { class: "num", "data-label": "Chunks", text: num(doc.chunks) }),
      h("td", { class: "num", "data-label": "Size", text: bytes(doc.bytes) }),
      h("td", { "data-label": "Ingested" }, h("time", { datetime: doc.ingested_at, text: when(doc.ingested_at) })),
      h(
        "td",
        { class: "actions" },
        ctx.canWrite() && h("button", { type: "button", class: "danger", "aria-label": `Remove ${name}`, onclick: () => remove(doc) }, "Remove"),
      ),
    );
  }

  async function load() {
    if (!ctx.kb()) {
      table.hidden = true;
      say(status, emptyText());
      return [];
    }
    try {
      const { documents } = await api("v1/documents", { params: { kb: ctx.kb() } });
      documents.sort((a, b) => fileName(a.source).localeCompare(fileName(b.source)));
      table.tBodies[0].replaceChildren(...documents.map(row));
      table.hidden = documents.length === 0;
      const chunks = documents.reduce((sum, d) => sum + d.chunks, 0);
      if (!status.classList.contains("ok") && !status.classList.contains("error")) {
        say(status, documents.length ? `${count(documents.length, "document")}, ${count(chunks, "chunk")}` : emptyText());
      }
      return documents;
    } catch (error) {
      table.hidden = true;
      if (error.kind === "kb_not_found") say(status, emptyText());
      else if (error.status !== 401) say(status, error.message, "error");
      return [];
    }
  }

  const emptyText = () => (ctx.canWrite() ? "No documents yet: upload some." : "No documents yet.");

  async function remove(doc) {
    const name = fileName(doc.source);
    if (!window.confirm(`Remove ${name} and its ${doc.chunks} chunks from the knowledge base? The file itself is not touched.`)) return;
    try {
      const removed = await api("v1/documents", { method: "DELETE", params: { kb: ctx.kb(), source: doc.source } });
      say(status, `Removed ${name} (${count(removed.chunks, "chunk")}).`, "ok");
      await load();
      $("documents-title").focus(); // the button that had focus is gone with its row
    } catch (error) {
      if (error.status !== 401) say(status, error.message, "error");
    }
  }

  async function upload(files) {
    const form = new FormData();
    for (const file of files) form.append("files", file, file.name);
    if (ctx.kb()) form.append("kb", ctx.kb());
    const box = $("upload-progress");
    const line = $("upload-status");
    const bar = $("upload-bar");
    const what = files.length === 1 ? files[0].name : `${files.length} files`;
    uploading = true;
    $("upload-box").classList.add("busy");
    box.hidden = false;
    bar.hidden = false;
    bar.value = 0;
    say(status, "");
    say(line, `Sending ${what}…`);
    try {
      const { job_id } = await api("v1/ingest", { method: "POST", form });
      const job = await followJob(job_id, (j) => {
        const p = progressOf(j);
        bar.value = p.share;
        say(line, `Ingesting ${what} (${job_id}): ${p.text}`);
      });
      if (job.state === "done") {
        const failed = job.report && job.report.failed && job.report.failed.length;
        say(line, `Uploaded ${what}: ${reportLine(job.report)}.`, failed ? "error" : "ok");
        if (!ctx.kb()) await ctx.refreshKbs();
      } else {
        say(line, `Ingesting ${what} failed: ${job.error || "see Jobs"}`, "error");
      }
      await load();
    } catch (error) {
      if (error.status !== 401) say(line, error.message, "error");
    } finally {
      bar.hidden = true; // the line says how it ended
      uploading = false;
      $("upload-box").classList.remove("busy");
      $("upload").value = "";
    }
  }

  $("upload").addEventListener("change", () => {
    const files = [...$("upload").files];
    if (files.length && !uploading) upload(files);
  });

  return {
    show() {
      $("upload-box").hidden = !ctx.canWrite();
      say(status, "");
      load();
    },
  };
}
