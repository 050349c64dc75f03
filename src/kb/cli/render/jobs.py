"""Background jobs: queued, listed, shown."""

from __future__ import annotations

from kb.cli.render import fmt, note, out


def job_queued(job: dict) -> None:
    out.print(job["id"], markup=False)
    note(f"queued: {job['kind']} into {job['kb']!r}; `kb jobs show {job['id']}` follows it (a `kb worker` runs it)")


def _progress(job: dict) -> str:
    p = job.get("progress") or {}
    if not p:
        return ""
    total = p.get("files_total") or 0
    text = f"{p.get('files_done', 0)}/{total} files, {p.get('chunks', 0)} chunks"
    if p.get("parts_total"):
        workers = len(p.get("workers") or [])
        text += f"; {p.get('parts_done', 0)}/{p['parts_total']} parts by {workers} worker{'s' * (workers != 1)}"
    return text


def jobs(rows: list[dict], state: str | None = None) -> None:
    from rich.table import Table

    if not rows:
        note(f"no {state} jobs" if state else "no jobs yet; `kb ingest --background PATH` queues one")
        return
    table = Table()
    for col in ("id", "kb", "state", "progress", "created", "error"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["id"], r["kb"], r["state"], _progress(r), r["created_at"] or "", (r["error"] or "")[:80])
    out.print(table)


def job(data: dict) -> None:
    for key in ("id", "kb", "kind", "state", "created_at", "started_at", "finished_at", "runs", "worker"):
        out.print(f"[bold]{key:>11}[/]  {fmt(data.get(key))}")
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
