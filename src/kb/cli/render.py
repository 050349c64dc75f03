"""All terminal output: rich tables, progress, Markdown on a TTY; JSON/NDJSON otherwise.

Machine output goes to stdout as plain JSON lines; messages and progress go to stderr,
and colour and progress appear only when the stream is a terminal.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

out = Console(highlight=False, soft_wrap=True)  # lines are not cut at 80 columns in a pipe
err = Console(stderr=True, highlight=False, soft_wrap=True)


def emit_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")


def error(message: str) -> None:
    err.print(
        f"[bold red]error:[/] {message}" if err.is_terminal else f"error: {message}",
        markup=err.is_terminal,
        soft_wrap=True,
    )


def warning(message: str) -> None:
    err.print(f"[yellow]warning:[/] {message}" if err.is_terminal else f"warning: {message}", markup=err.is_terminal,
              soft_wrap=True, highlight=False)  # fmt: skip


def note(message: str) -> None:
    err.print(f"[dim]{message}[/]" if err.is_terminal else message, markup=err.is_terminal, soft_wrap=True)


def _short(path: str) -> str:
    try:
        return os.path.relpath(path) if Path(path).is_relative_to(Path.cwd()) else path
    except ValueError:
        return path


class IngestProgress:
    """A rich progress bar: files, chunks and an ETA by work (bytes of the changed files,
    see kb.ingest.progress); silent when stderr is not a TTY."""

    def __init__(self) -> None:
        from kb.ingest.progress import WorkMeter

        self.meter = WorkMeter()
        self._bar: Any = None

    def start(self, total_files: int) -> None:
        self.meter.start(total_files)
        if not err.is_terminal:
            return
        from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn
        from rich.text import Text

        from kb.ingest.progress import format_eta

        meter = self.meter

        class Eta(ProgressColumn):
            def render(self, task) -> Text:
                return Text(format_eta(meter.eta_s()))

        self._bar = Progress(
            TextColumn("[bold]ingesting"),
            BarColumn(),
            TextColumn("{task.fields[files]} files"),
            TextColumn("{task.fields[chunks]} chunks embedded"),
            Eta(),
            TextColumn("{task.fields[name]}"),
            console=err,
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task("ingest", total=None, files=self._files(), chunks=0, name="")

    def _files(self) -> str:
        return f"{self.meter.files_done}/{self.meter.files_total}"

    def planned(self, work_bytes: int) -> None:
        self.meter.planned(work_bytes)
        if self._bar:
            self._bar.update(self._task, total=max(work_bytes, 1), completed=0)

    def advance(self, path: str, chunks: int) -> None:
        self.meter.advance(path, chunks)
        if self._bar:
            self._bar.update(self._task, files=self._files(), name=Path(path).name[:40])

    def embedded(self, chunks: int) -> None:
        """As each batch lands, so a big file shows its progress before it is done."""
        self.meter.embedded(chunks)
        if self._bar:
            self._bar.update(self._task, chunks=self.meter.chunks)

    def worked(self, work_bytes: float) -> None:
        self.meter.worked(work_bytes)
        if self._bar:
            self._bar.update(self._task, completed=self.meter.work_done)

    def finish(self) -> None:
        if self._bar:
            self._bar.stop()


def ingest_report(report) -> None:
    r = report
    out.print(
        f"{r.files_seen} files: {r.added} added, {r.updated} updated, {r.unchanged} unchanged, "
        f"{r.removed} removed, {len(r.failed)} failed; {r.chunks_added} chunks added, "
        f"{r.chunks_removed} removed in {r.seconds:.1f}s"
    )
    for item in r.failed:
        err.print(f"  failed: {_short(item['path'])}: {item['reason']}", markup=False)
    for item in r.skipped:
        err.print(f"  skipped: {_short(item['path'])}: {item['reason']}", markup=False)
    for source in r.removed_sources:
        err.print(f"  removed: {_short(source)}", markup=False)
    for item in r.warnings:
        err.print(f"  warning: {_short(item['path'])}: {item['warning']}", markup=False)


def watch_batch(report) -> None:
    """One line per applied batch of a watched folder; details on stderr as for an ingest."""
    import time

    r = report
    out.print(
        f"{time.strftime('%H:%M:%S')} {r.added} added, {r.updated} updated, {r.removed} removed, "
        f"{len(r.failed)} failed; {r.chunks_added} chunks added, {r.chunks_removed} removed in {r.seconds:.1f}s",
        markup=False,
    )
    for item in r.failed:
        err.print(f"  failed: {_short(item['path'])}: {item['reason']}", markup=False)
    for source in r.removed_sources:
        err.print(f"  removed: {_short(source)}", markup=False)
    for source in r.held:
        err.print(f"  still being written, later: {_short(source)}", markup=False)


def watch_stopped(summary: dict) -> None:
    out.print(
        f"stopped ({summary['signal']}) after {summary['batches']} batches: {summary['added']} added, "
        f"{summary['updated']} updated, {summary['removed']} removed",
        markup=False,
    )


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def ingest_plan(plan) -> None:
    state = "exists" if plan.kb_exists else "does not exist yet"
    out.print(f"dry run: nothing written; knowledge base {plan.kb!r} {state}", markup=False)
    out.print(
        f"would add {len(plan.added)}, update {len(plan.updated)}, remove {len(plan.removed)}"
        + (f", prune {len(plan.pruned)}" if plan.pruned else "")
        + f"; {plan.unchanged} unchanged, {len(plan.failed)} failed",
        markup=False,
    )
    line = f"about {plan.chunks_estimate} chunks from {_size(plan.work_bytes)}"
    if plan.chunks_per_s:
        line += (
            f", about {plan.seconds_estimate:g}s on this machine at {plan.chunks_per_s:g} chunks/s "
            f"({plan.rate_source}: {plan.rate_detail})"
        )
    if plan.updated:
        line += "; an update embeds only the chunks whose text changed, so it may take less"
    out.print(line, markup=False)
    for verb, items in (("add", plan.added), ("update", plan.updated)):
        for item in items:
            out.print(f"  {verb}: {_short(item['path'])} (~{item['chunks_estimate']} chunks)", markup=False)
    for verb, sources in (("remove", plan.removed), ("prune", plan.pruned)):
        for source in sources:
            out.print(f"  {verb}: {_short(source)}", markup=False)
    for item in plan.failed:
        err.print(f"  failed: {_short(item['path'])}: {item['reason']}", markup=False)
    for item in plan.skipped:
        err.print(f"  skipped: {_short(item['path'])}: {item['reason']}", markup=False)


def doctor(report, repaired: bool) -> None:
    for line in report.repaired:
        out.print(f"repaired: {line}", markup=False)
    store = "?" if report.chunks_in_store is None else report.chunks_in_store
    out.print(
        f"{report.kb}: {report.documents} documents, {report.chunks_in_manifest} chunks in the manifest, "
        f"{store} in the store"
    )
    for p in report.problems:
        where = f"{_short(p.source)}: " if p.source else ""
        err.print(f"  problem ({p.kind}): {where}{p.detail}", markup=False)
    for q in report.quality:
        err.print(f"  quality: {_short(q['source'])}: {'; '.join(q['warnings'])}", markup=False)
    if report.healthy:
        out.print("healthy")
    elif not repaired:
        out.print(f"{len(report.problems)} problems; `kb doctor --repair` fixes them")


def hits_table(query: str, hits) -> None:
    from rich.table import Table

    table = Table(title=f"[bold]{query}[/]", title_justify="left", show_lines=True)
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("source", max_width=36, overflow="fold")
    table.add_column("text", ratio=1, min_width=30)
    for h in hits:
        snippet = " ".join(h.text.split())
        snippet = snippet[:300] + ("…" if len(snippet) > 300 else "")
        where = "\n".join(x for x in (_short(h.source), h.location(), h.heading) if x)
        table.add_row(str(h.rank), f"{h.score:.3f}", where, snippet)
    out.print(table)


class MarkdownStream:
    """Shows a streamed answer as Markdown while it arrives (TTY only)."""

    def __init__(self) -> None:
        from rich.live import Live

        self.parts: list[str] = []
        self._live = Live(console=out, refresh_per_second=12, vertical_overflow="visible")
        self._live.start()

    def text(self, delta: str) -> None:
        from rich.markdown import Markdown

        self.parts.append(delta)
        self._live.update(Markdown("".join(self.parts)))

    def reset(self, reason: str) -> None:
        self._live.update("")
        self.parts = []
        note(f"{reason}; trying the next provider")

    def close(self, final: str | None = None) -> None:
        """Stop; `final` replaces the streamed text (citations may have been dropped)."""
        from rich.markdown import Markdown

        if final is not None and self.parts:
            self._live.update(Markdown(final))
        self._live.stop()


def answer(ans, streamed: bool) -> None:
    from rich.markdown import Markdown

    if not streamed:
        out.print(Markdown(ans.answer) if out.is_terminal else ans.answer)
    if ans.citations:
        out.print()
        for c in ans.citations:
            where = c.hit.location()
            out.print(
                f"[{c.n}] {_short(c.hit.source)}" + (f", {where}" if where else ""), markup=False, highlight=False
            )
    if ans.dropped_citations:
        note(f"dropped citations to passages the model was not given: {ans.dropped_citations}")
    u = ans.usage
    cost = f"${u.cost_usd:.6f}" if u.cost_usd else "$0"
    line = (
        f"{ans.provider} ({ans.model}) · {ans.latency_ms['total']:.0f} ms · "
        f"{u.input_tokens} in / {u.output_tokens} out tokens · {cost}" + (" · cached" if ans.cached else "")
    )
    note(line)
    for a in ans.attempts:
        if a.outcome != "ok":
            note(f"  fell back past {a.provider} ({a.error}): {a.message or 'no details'}")


def documents(rows: list[dict]) -> None:
    from rich.table import Table

    if not rows:
        note("no documents yet; add some with `kb ingest PATH`")
        return

    table = Table()
    for col in ("source", "chunks", "bytes", "ingested"):
        table.add_column(col, justify="right" if col in ("chunks", "bytes") else "left")
    for r in rows:
        table.add_row(_short(r["source"]), str(r["chunks"]), str(r["bytes"]), r["ingested_at"])
    out.print(table)


def info(data: dict) -> None:
    for key, value in data.items():
        out.print(f"[bold]{key:>10}[/]  {value}")


def _fmt(value) -> str:
    return "–" if value is None else str(value)


def stats(data: dict) -> None:
    from rich.table import Table

    req = ", ".join(f"{n} {k}" for k, n in data["requests"].items()) or "none"
    cache = data["cache"]
    out.print(f"[bold]requests[/] {req}; {data['errors']} with errors")
    out.print(
        f"[bold]cache[/] {cache['hits']} of {cache['asks']} asks answered from cache (hit rate {_fmt(cache['hit_rate'])})"
    )
    lat = Table(title="latency (ms)", title_justify="left")
    for col in ("stage", "request", "n", "p50", "p95", "p99"):
        lat.add_column(col)
    for stage, kinds in data["latency_ms"].items():
        for kind, v in kinds.items():
            if v["n"]:
                lat.add_row(stage, kind, str(v["n"]), _fmt(v["p50"]), _fmt(v["p95"]), _fmt(v["p99"]))
    out.print(lat)
    prov = Table(title="providers", title_justify="left")
    for col in ("provider", "answers", "tokens in", "tokens out", "cost $", "attempts", "error rate", "breaker"):
        prov.add_column(col)
    for name, p in data["providers"].items():
        prov.add_row(
            name,
            _fmt(p.get("answers")),
            _fmt(p.get("input_tokens")),
            _fmt(p.get("output_tokens")),
            _fmt(p.get("cost_usd")),
            _fmt(p.get("attempts")),
            _fmt(p.get("error_rate")),
            p.get("breaker", "closed"),
        )
    out.print(prov)
    d = data["drift"]
    r, b = d["recent"], d["baseline"]
    out.print(
        f"[bold]drift[/] top-1 similarity: recent mean {_fmt(r['mean'])} (n={r['n']}), baseline mean "
        f"{_fmt(b['mean'])} (n={b['n']}), shift {_fmt(d['mean_shift'])}, KS {_fmt(d['ks'])}; "
        f"share below {d['low_match']}: recent {_fmt(r['low_match_share'])}, baseline {_fmt(b['low_match_share'])}"
        + ("; [bold red]drifting[/]" if d["drifting"] else "")
    )


class EvalProgress:
    """Queries or questions done, on a terminal's stderr; silent otherwise."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._tasks: dict[str, Any] = {}

    def update(self, label: str, done: int, total: int) -> None:
        if not err.is_terminal:
            return
        if self._bar is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), console=err, transient=True)  # fmt: skip
            self._bar.start()
        if label not in self._tasks:
            self._tasks[label] = self._bar.add_task(label, total=total)
        self._bar.update(self._tasks[label], completed=done)

    def finish(self) -> None:
        if self._bar:
            self._bar.stop()


def retrieval_eval(data: dict) -> None:
    from rich.table import Table

    modes = data["modes"]
    skipped = len(data["skipped_queries"])
    out.print(
        f"{data['kb']}: {data['queries']} queries" + (f", {skipped} skipped (no relevant judgement)" if skipped else "")
    )
    table = Table()
    table.add_column("metric")
    for mode in modes:
        table.add_column(mode, justify="right")
    for metric in ("ndcg@10", "recall@10", "recall@100", "mrr@10", "ms_per_query"):
        table.add_row(metric, *(f"{m[metric]:.4g}" for m in modes.values()))
    out.print(table)
    if data["unknown_corpus_ids"]:
        ids = data["unknown_corpus_ids"]
        warning(f"{len(ids)} relevant corpus id(s) name no document of the KB (scored as missed): {', '.join(ids[:5])}")
    if data["qrels_without_query"]:
        warning(f"{len(data['qrels_without_query'])} query id(s) of the qrels are not in the queries file")


def answers_eval(data: dict) -> None:
    lat = data["latency_ms"]
    cost = "unknown" if data["cost_usd"] is None else f"${data['cost_usd']:.6f}"
    cited = "–" if data["cited_doc"] is None else f"{data['cited_doc']:.1%} of {data['with_doc']}"
    rows = {
        "questions": str(data["questions"]),
        "contained": f"{data['contained']:.1%}",
        "token F1": f"{data['f1']:.3f}",
        "cited doc": cited,
        "words": f"{data['mean_words']} per answer",
        "latency": f"p50 {_fmt(lat['p50'])} ms, p95 {_fmt(lat['p95'])} ms",
        "tokens": f"{data['input_tokens']} in / {data['output_tokens']} out",
        "cost": cost,
        "providers": ", ".join(f"{p} {n}" for p, n in data["providers"].items()) or "none",
    }
    for key, value in rows.items():
        out.print(f"[bold]{key:>10}[/]  {value}")
    if data["errors"]:
        warning(f"{data['errors']} question(s) got no answer (counted as misses); --json shows the errors")
    if data["unknown_docs"]:
        warning(f"gold doc(s) not in the KB: {', '.join(data['unknown_docs'][:5])}")


def pretty_json(obj) -> None:
    if out.is_terminal:
        out.print_json(data=obj)
    else:
        emit_json(obj)


def knowledge_bases(rows: list[dict]) -> None:
    from rich.table import Table

    if not rows:
        note("no knowledge bases yet; create one with `kb ingest PATH` (or `kb --kb NAME ingest PATH`)")
        return
    table = Table()
    for col in ("kb", "documents", "chunks", "bytes"):
        table.add_column(col, justify="left" if col == "kb" else "right")
    for r in rows:
        table.add_row(r["kb"], str(r["documents"]), str(r["chunks"]), str(r["bytes"]))
    out.print(table)


def job_queued(job: dict) -> None:
    out.print(job["id"], markup=False)
    note(f"queued: {job['kind']} into {job['kb']!r}; `kb jobs show {job['id']}` follows it (a `kb worker` runs it)")


def _progress(job: dict) -> str:
    p = job.get("progress") or {}
    if not p:
        return ""
    total = p.get("files_total") or 0
    return f"{p.get('files_done', 0)}/{total} files, {p.get('chunks', 0)} chunks"


def jobs(rows: list[dict]) -> None:
    from rich.table import Table

    if not rows:
        note("no jobs yet; `kb ingest --background PATH` queues one")
        return
    table = Table()
    for col in ("id", "kb", "state", "progress", "created", "error"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["id"], r["kb"], r["state"], _progress(r), r["created_at"] or "", (r["error"] or "")[:80])
    out.print(table)


def job(data: dict) -> None:
    for key in ("id", "kb", "kind", "state", "created_at", "started_at", "finished_at", "runs", "worker"):
        out.print(f"[bold]{key:>11}[/]  {_fmt(data.get(key))}")
    out.print(f"[bold]{'paths':>11}[/]  {' '.join(data['params'].get('paths', []))}", markup=True)
    if data.get("progress"):
        out.print(f"[bold]{'progress':>11}[/]  {_progress(data)}")
    if data.get("error"):
        out.print(f"[bold]{'error':>11}[/]  {data['error']}")
    report = data.get("report")
    if report:
        out.print(
            f"[bold]{'report':>11}[/]  {report['added']} added, {report['updated']} updated, "
            f"{report['unchanged']} unchanged, {report['removed']} removed, {len(report['failed'])} failed; "
            f"{report['chunks_added']} chunks added"
        )
    for d in data.get("deliveries") or []:
        status = "delivered" if d.get("delivered") else "not delivered"
        out.print(f"[bold]{'webhook':>11}[/]  {d.get('event')} → {d.get('url')}: {status} after "
                  f"{len(d.get('attempts') or [])} attempt(s)" + (f" ({d['error']})" if d.get("error") else ""),
                  markup=True)  # fmt: skip
