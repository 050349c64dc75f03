"""`kb eval`: measure retrieval and answers on labelled questions (see docs/quality.md)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from kb.cli import context
from kb.cli import render as ui
from kb.cli.render import evaluation as render
from kb.errors import InputError
from kb.options import search_mode

if TYPE_CHECKING:
    from kb.knowledge_base import KnowledgeBase

eval_app = typer.Typer(
    help="Measure retrieval and answer quality on your own labelled questions (docs/quality.md).",
    no_args_is_help=True,
)

MODE_CHOICES = ("all", "hybrid", "dense", "keyword")
JSON = typer.Option(False, "--json", help="One JSON object: the figures and a row per query (docs/quality.md).")
KB = typer.Option(None, "--kb", help="Knowledge base to evaluate (same as `kb --kb NAME eval ...`).")


def _kb(ctx: typer.Context, name: str | None) -> KnowledgeBase:
    if name is not None:
        context.of(ctx).kb = name
    return context.kb(ctx)


@eval_app.command("retrieval")
def retrieval(
    ctx: typer.Context,
    queries: Path = typer.Argument(..., help='Queries, JSONL: {"_id": "q1", "text": "..."} per line (BEIR layout).'),
    qrels: Path = typer.Argument(
        ...,
        help="Judgements, TSV with the header query-id<TAB>corpus-id<TAB>score; corpus id = file name "
        "without extension, or the path relative to the ingested folder.",
    ),
    mode: str = typer.Option(
        "all", "--mode", help="Search mode to score: all (every available one), hybrid, dense, keyword."
    ),
    as_json: bool = JSON,
    kb_name: str | None = KB,
) -> None:
    """nDCG@10, Recall@10, Recall@100 and MRR@10 per search mode, side by side.

    Passages are pooled to documents: a document ranks where its best
    passage does. Queries without a relevant judgement are skipped and
    counted."""
    from kb.evaluation import datasets
    from kb.evaluation.retrieval import MODES, evaluate

    if mode not in MODE_CHOICES:
        raise InputError(f"{mode!r}: use {', '.join(MODE_CHOICES)}", field="mode")
    q, r = datasets.load_queries(queries), datasets.load_qrels(qrels)
    progress = render.EvalProgress()
    try:
        report = evaluate(
            _kb(ctx, kb_name),
            q,
            r,
            list(MODES) if mode == "all" else [search_mode(mode)],
            progress.update,
        )
    finally:
        progress.finish()
    ui.emit_json(report.to_json()) if as_json else render.retrieval_eval(report.to_json(per_query=False))


@eval_app.command("answers")
def answers(
    ctx: typer.Context,
    qa: Path = typer.Argument(
        ...,
        help='Questions, JSONL: {"question": "...", "answers": ["gold", ...], "doc": "corpus-id"} per line; doc optional.',
    ),
    provider: str | None = typer.Option(None, "--provider", help="Use only this provider from the chain."),
    top_k: int | None = typer.Option(
        None, "--top-k", "-k", min=1, max=50, help="Passages given to the model (default: top_k, 5)."
    ),
    as_json: bool = JSON,
    kb_name: str | None = KB,
) -> None:
    """Answer each question through the provider chain and score the answers.

    Reports how often a gold answer is contained in the answer, token F1
    (both SQuAD-style), how often the gold document is cited, latency
    p50/p95, tokens and cost. The answer cache is bypassed."""
    from kb.evaluation import datasets
    from kb.evaluation.answers import evaluate

    items = datasets.load_qa(qa)
    progress = render.EvalProgress()
    try:
        summary, rows = evaluate(
            _kb(ctx, kb_name), items, provider, top_k, lambda d, t: progress.update("answers", d, t)
        )
    finally:
        progress.finish()
    ui.emit_json({**summary, "per_question": rows}) if as_json else render.answers_eval(summary)
