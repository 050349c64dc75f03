"""`kb eval`: progress and the figures."""

from __future__ import annotations

from typing import Any

from kb.cli.render import err, fmt, out, warning


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
        "latency": f"p50 {fmt(lat['p50'])} ms, p95 {fmt(lat['p95'])} ms",
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
