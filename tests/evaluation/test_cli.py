"""`kb eval` end to end on sample_corpus: real Chroma, SQLite and files; the model is the
hash embedder (KB_MODEL=hash) and, for token accounting, the fake OpenAI server."""

import json
import shutil

import pytest

from kb.evaluation.metrics import contains_answer, token_f1
from tests.conftest import ROOT, SAMPLE, provider_config, write_config

SET = ROOT / "eval" / "sample"
# A sentence copied from one page of the PDF: the hash embedder puts that page first.
EXACT = "The small hive beetle, Aethina tumida, is a pest whose larvae tunnel through comb"


@pytest.fixture
def hash_kb(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("KB_MODEL", "hash")
    corpus = tmp_path / "corpus"
    shutil.copytree(SAMPLE, corpus)
    assert cli("ingest", corpus, "--json").code == 0
    return corpus


def eval_files(tmp_path, qrels_lines):
    queries = tmp_path / "queries.jsonl"
    shutil.copy(SET / "queries.jsonl", queries)
    with queries.open("a") as f:
        f.write(json.dumps({"_id": "exact", "text": EXACT}) + "\n")
        f.write(json.dumps({"_id": "unjudged", "text": "what is a drone?"}) + "\n")
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text((SET / "qrels.tsv").read_text() + "".join(f"{line}\n" for line in qrels_lines))
    return queries, qrels


def test_eval_retrieval_with_hash_embedder_table_and_json(cli, hash_kb, tmp_path):
    queries, qrels = eval_files(
        tmp_path, ["exact\tbee_health_field_manual\t1", "q03\tno_such_doc\t1", "ghost\tbee_biology\t1"]
    )
    res = cli("eval", "retrieval", queries, qrels)
    assert res.code == 0, res.err
    lines = res.out.splitlines()
    assert lines[0] == "default: 31 queries, 1 skipped (no relevant judgement)"
    assert "dense" in lines[2]
    for metric in ("ndcg@10", "recall@10", "recall@100", "mrr@10"):
        assert any(line.split()[1] == metric for line in lines if len(line.split()) > 2), metric
    assert "1 relevant corpus id(s) name no document of the KB (scored as missed): no_such_doc" in res.err
    assert "1 query id(s) of the qrels are not in the queries file" in res.err

    data = cli("eval", "retrieval", queries, qrels, "--mode", "dense", "--json").json()
    assert list(data["modes"]) == ["dense"]
    assert data["queries"] == 31 and data["skipped_queries"] == ["unjudged"]
    assert data["unknown_corpus_ids"] == ["no_such_doc"]
    assert data["qrels_without_query"] == ["ghost"]
    rows = {r["query_id"]: r for r in data["per_query"]}
    assert len(rows) == 31 and set(rows["q01"]) >= {
        "ndcg@10",
        "recall@10",
        "recall@100",
        "mrr@10",
        "ranked",
        "relevant",
    }
    exact = rows["exact"]
    assert exact["ranked"][0] == "bee_health_field_manual"
    assert exact["ndcg@10"] == exact["mrr@10"] == exact["recall@10"] == 1.0
    # The sample corpus has 11 documents, so every document is within the top 100...
    assert all(r["recall@100"] == 1.0 for qid, r in rows.items() if qid != "q03")
    assert rows["q03"]["recall@100"] == 0.5  # ...but one that is not in the KB is missed.
    summary = data["modes"]["dense"]
    for metric in ("ndcg@10", "mrr@10"):
        assert summary[metric] == pytest.approx(sum(r[metric] for r in rows.values()) / 31, abs=1e-3)


def test_eval_retrieval_all_modes_reports_every_mode(cli, hash_kb, tmp_path):
    data = cli("eval", "retrieval", SET / "queries.jsonl", SET / "qrels.tsv", "--json").json()
    assert set(data["modes"]) == {"hybrid", "dense", "keyword"}
    for mode, figures in data["modes"].items():
        assert set(figures) >= {"ndcg@10", "recall@10", "recall@100", "mrr@10", "ms_per_query"}, mode
        assert 0 < figures["ndcg@10"] <= 1 and 0 < figures["recall@100"] <= 1, (mode, figures)


def test_eval_retrieval_input_errors_exit_2(cli, hash_kb, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"_id": "q1", "text": "x"}\nnot json\n')
    res = cli("eval", "retrieval", bad, SET / "qrels.tsv")
    assert res.code == 2 and f"{bad}:2: not a JSON object" in res.err and "Traceback" not in res.err
    noheader = tmp_path / "qrels.tsv"
    noheader.write_text("q01\tbee_biology\t1\n")
    res = cli("eval", "retrieval", SET / "queries.jsonl", noheader)
    assert res.code == 2 and "expected the header line" in res.err
    wrong = tmp_path / "wrong.tsv"
    wrong.write_text("query-id\tcorpus-id\tscore\nq01\tnot_here\t1\n")
    res = cli("eval", "retrieval", SET / "queries.jsonl", wrong)
    assert res.code == 2 and "no relevant corpus id of the qrels names a document" in res.err
    res = cli("eval", "retrieval", SET / "queries.jsonl", SET / "qrels.tsv", "--mode", "fuzzy")
    assert res.code == 2 and "--mode 'fuzzy'" in res.err


def test_eval_answers_through_extractive_with_hash_embedder(cli, hash_kb):
    res = cli("eval", "answers", SET / "qa.jsonl", "--provider", "extractive", "--json")
    assert res.code == 0, res.err
    data = res.json()
    rows = data["per_question"]
    assert data["questions"] == len(rows) == 30 and data["with_doc"] == 30
    assert data["providers"] == {"extractive": 30} and data["errors"] == 0
    assert data["input_tokens"] == data["output_tokens"] == 0
    for row in rows:  # the scores are those of the answers actually given
        assert row["contained"] == contains_answer(row["answer"], row["gold"])
        assert row["f1"] == pytest.approx(token_f1(row["answer"], row["gold"]), abs=1e-4)
        assert row["cited_doc"] == (row["doc"] in row["cited"])
        assert row["latency_ms"] > 0
    assert data["contained"] == pytest.approx(sum(r["contained"] for r in rows) / 30, abs=1e-4)
    assert data["cited_doc"] == pytest.approx(sum(r["cited_doc"] for r in rows) / 30, abs=1e-4)
    assert data["latency_ms"]["p50"] <= data["latency_ms"]["p95"]

    table = cli("eval", "answers", SET / "qa.jsonl", "--provider", "extractive")
    assert table.code == 0
    assert [line.split()[0] for line in table.out.splitlines()] == [
        "questions", "contained", "token", "cited", "words", "latency", "tokens", "cost", "providers"
    ]  # fmt: skip


def test_eval_answers_adds_up_tokens_and_cost_from_a_fake_openai_server(
    cli, hash_kb, kb_home, fake_openai, monkeypatch, tmp_path
):
    write_config(kb_home, provider_config(fake_openai.url))
    monkeypatch.setenv("KB_TEST_KEY", "sk-test-1234567890abcdef")
    fake_openai.answer = "A queen lays up to 2,000 eggs per day [1]."
    qa = tmp_path / "qa.jsonl"
    qa.write_text(
        json.dumps(
            {"question": "How many eggs does a queen lay per day?", "answers": ["2,000 eggs"], "doc": "bee_biology"}
        )
        + "\n"
        + json.dumps({"question": "What is propolis made of?", "answers": ["plant resin"]})
        + "\n"
    )
    data = cli("eval", "answers", qa, "--json").json()
    assert fake_openai.hits == 2  # the answer cache is bypassed, nothing else is asked
    tokens_in = sum(len(m["content"].split()) for r in fake_openai.requests for m in r["messages"])
    tokens_out = 2 * len(fake_openai.answer.split())
    assert (data["input_tokens"], data["output_tokens"]) == (tokens_in, tokens_out)
    assert data["cost_usd"] == pytest.approx((tokens_in * 0.15 + tokens_out * 0.60) / 1e6, abs=1e-6)
    assert data["providers"] == {"primary": 2}
    assert [r["contained"] for r in data["per_question"]] == [True, False]
    assert data["contained"] == 0.5 and data["with_doc"] == 1
    # Asked again, the same questions reach the server again: no cached answers are scored.
    cli("eval", "answers", qa, "--json")
    assert fake_openai.hits == 4
