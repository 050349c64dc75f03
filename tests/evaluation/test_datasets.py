"""Loading evaluation files: good files parse, bad ones name the file and line."""

import json

import pytest

from kb.errors import InputError
from kb.evaluation.corpus import CorpusIds
from kb.evaluation.datasets import load_qa, load_qrels, load_queries


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_beir_files_load(tmp_path):
    queries = write(tmp_path, "q.jsonl", '{"_id": "q1", "text": "what is bee space"}\n\n{"_id": 2, "text": "x"}\n')
    assert load_queries(queries) == {"q1": "what is bee space", "2": "x"}
    qrels = write(tmp_path, "qrels.tsv", "query-id\tcorpus-id\tscore\nq1\tglossary\t2\nq1\tequipment\t0\n2\tdoc\t1\n")
    assert load_qrels(qrels) == {"q1": {"glossary": 2, "equipment": 0}, "2": {"doc": 1}}


def test_a_bad_json_line_names_file_and_line(tmp_path):
    path = write(tmp_path, "q.jsonl", '{"_id": "q1", "text": "ok"}\n{"_id": "q2", "text": \n')
    with pytest.raises(InputError, match=r"q\.jsonl:2: not a JSON object"):
        load_queries(path)
    path = write(tmp_path, "q2.jsonl", '["q1", "text"]\n')
    with pytest.raises(InputError, match=r"q2\.jsonl:1: expected a JSON object"):
        load_queries(path)
    path = write(tmp_path, "q3.jsonl", '{"_id": "q1"}\n')
    with pytest.raises(InputError, match=r"q3\.jsonl:1: 'text' must be a non-empty string"):
        load_queries(path)
    path = write(tmp_path, "q4.jsonl", '{"_id": "q1", "text": "a"}\n{"_id": "q1", "text": "b"}\n')
    with pytest.raises(InputError, match=r"q4\.jsonl:2: query id 'q1' appears twice"):
        load_queries(path)


def test_qrels_without_header_or_with_bad_lines(tmp_path):
    path = write(tmp_path, "qrels.tsv", "q1\tglossary\t1\n")
    with pytest.raises(InputError, match=r"qrels\.tsv:1: expected the header line query-id<TAB>corpus-id<TAB>score"):
        load_qrels(path)
    path = write(tmp_path, "bad.tsv", "query-id\tcorpus-id\tscore\nq1\tglossary\n")
    with pytest.raises(InputError, match=r"bad\.tsv:2: expected query-id<TAB>corpus-id<TAB>score"):
        load_qrels(path)
    path = write(tmp_path, "grade.tsv", "query-id\tcorpus-id\tscore\nq1\tglossary\thigh\n")
    with pytest.raises(InputError, match=r"grade\.tsv:2: score 'high' is not an integer"):
        load_qrels(path)
    with pytest.raises(InputError, match="is empty"):
        load_qrels(write(tmp_path, "empty.tsv", ""))


def test_unreadable_files(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        load_queries(tmp_path / "missing.jsonl")
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"_id": "q1", "text": "ok"}\n{"_id": "q2", "text": "caf\xe9"}\n')
    with pytest.raises(InputError, match=r"latin1\.jsonl:2: not valid UTF-8"):
        load_queries(path)


def test_qa_file(tmp_path):
    rows = [
        {"question": "What is propolis?", "answers": ["plant resin"], "doc": "glossary"},
        {"question": "Q?", "answers": ["a"]},
    ]
    path = write(tmp_path, "qa.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    items = load_qa(path)
    assert [(i.question, i.answers, i.doc) for i in items] == [
        ("What is propolis?", ["plant resin"], "glossary"),
        ("Q?", ["a"], None),
    ]
    path = write(tmp_path, "bad.jsonl", json.dumps(rows[0]) + "\n" + '{"question": "Q?", "answers": "a"}\n')
    with pytest.raises(InputError, match=r"bad\.jsonl:2: 'answers' must be a non-empty list"):
        load_qa(path)


def test_corpus_ids_name_files_by_stem_or_relative_path():
    corpus = CorpusIds(["/data/notes/bee.md", "/data/notes/sub/readme.md", "/data/other/readme.md"])
    assert corpus.source("bee") == corpus.source("notes/bee.md") == corpus.source("./bee.md") == "/data/notes/bee.md"
    assert corpus.source("sub/readme") == "/data/notes/sub/readme.md"
    assert corpus.source("nothing") is None
    with pytest.raises(InputError, match="fits 2 documents"):
        corpus.source("readme")
    assert corpus.id_for("/data/notes/sub/readme.md") == "sub/readme"  # as the files named it
    assert corpus.id_for("/data/other/readme.md") == "readme"
