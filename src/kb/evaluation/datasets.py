"""Reading evaluation files; a malformed line is an InputError naming the file and line.

- queries: JSONL, one `{"_id": "q1", "text": "..."}` per line (BEIR's queries.jsonl);
- qrels: TSV with the header `query-id  corpus-id  score`, one judgement per line
  (BEIR's qrels/test.tsv); the score is an integer grade, 0 meaning judged not relevant;
- QA: JSONL, one `{"question": "...", "answers": ["...", ...], "doc": "corpus-id"}` per
  line, `doc` optional.
Blank lines are skipped everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kb.errors import InputError

QRELS_HEADER = ("query-id", "corpus-id", "score")


@dataclass
class QaItem:
    question: str
    answers: list[str]
    doc: str | None = None


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of the non-blank lines."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    for number, raw in enumerate(data.splitlines(), start=1):
        try:
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{path}:{number}: not valid UTF-8; save the file as UTF-8") from None
        if line.strip():
            yield number, line


def _json_objects(path: Path) -> Iterator[tuple[int, dict]]:
    for number, line in _lines(path):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{number}: not a JSON object ({exc.msg}); write one object per line") from None
        if not isinstance(obj, dict):
            raise InputError(f"{path}:{number}: expected a JSON object, got {type(obj).__name__}")
        yield number, obj


def _text(obj: dict, key: str, path: Path, number: int) -> str:
    value = obj.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool) and key == "_id":
        value = str(value)  # BEIR sets with numeric ids write some as numbers
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{path}:{number}: {key!r} must be a non-empty string")
    return value.strip()


def load_queries(path: Path) -> dict[str, str]:
    """Query id → text, in file order."""
    queries: dict[str, str] = {}
    for number, obj in _json_objects(path):
        qid = _text(obj, "_id", path, number)
        if qid in queries:
            raise InputError(f"{path}:{number}: query id {qid!r} appears twice")
        queries[qid] = _text(obj, "text", path, number)
    if not queries:
        raise InputError(f"{path} holds no queries; write one JSON object per line")
    return queries


def _fields(line: str) -> list[str]:
    fields = line.rstrip("\r\n").split("\t")
    return fields if len(fields) == 3 else line.split()


def load_qrels(path: Path) -> dict[str, dict[str, int]]:
    """Query id → {corpus id → grade}."""
    lines = _lines(path)
    first = next(lines, None)
    if first is None:
        raise InputError(f"{path} is empty; qrels need the header line query-id<TAB>corpus-id<TAB>score")
    number, header = first
    if tuple(f.strip().lower() for f in _fields(header)) != QRELS_HEADER:
        raise InputError(
            f"{path}:{number}: expected the header line query-id<TAB>corpus-id<TAB>score, got {header.strip()[:60]!r}"
        )
    qrels: dict[str, dict[str, int]] = {}
    for number, line in lines:
        fields = [f.strip() for f in _fields(line)]
        if len(fields) != 3 or not all(fields):
            raise InputError(f"{path}:{number}: expected query-id<TAB>corpus-id<TAB>score")
        qid, doc, score = fields
        try:
            grade = int(score)
        except ValueError:
            raise InputError(f"{path}:{number}: score {score!r} is not an integer grade") from None
        qrels.setdefault(qid, {})[doc] = grade
    if not qrels:
        raise InputError(f"{path} holds no judgements after its header")
    return qrels


def load_qa(path: Path) -> list[QaItem]:
    items = []
    for number, obj in _json_objects(path):
        question = _text(obj, "question", path, number)
        answers = obj.get("answers")
        if not isinstance(answers, list) or not answers or not all(isinstance(a, str) and a.strip() for a in answers):
            raise InputError(f"{path}:{number}: 'answers' must be a non-empty list of non-empty strings")
        doc = obj.get("doc")
        if doc is not None and (not isinstance(doc, str) or not doc.strip()):
            raise InputError(f"{path}:{number}: 'doc' must be a corpus id (a string) when given")
        items.append(QaItem(question, [a.strip() for a in answers], doc.strip() if doc else None))
    if not items:
        raise InputError(f"{path} holds no questions; write one JSON object per line")
    return items
