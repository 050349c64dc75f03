"""CSV and TSV: one section per data row, written as "header: value" lines so that every
passage carries the names of its columns; the row number (the header is row 1, as in a
spreadsheet) is the locator."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from kb.documents import Document, Section
from kb.errors import IngestError
from kb.ingest.decoding import decode
from kb.ingest.readers.text import with_encoding_warning

# The Sniffer's regexes backtrack over their sample (16 KB of `,"` takes over a second);
# a few lines are plenty to see a dialect.
_SNIFF_BYTES = 4096
_DELIMITERS = ",;\t|"


def read_csv(path: Path, data: bytes) -> Document:
    text, encoding = decode(data)
    dialect = _dialect(text, tab=path.suffix.lower() in (".tsv", ".tab"))
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    header: list[str] | None = None
    sections: list[Section] = []
    try:
        for number, row in enumerate(reader, start=1):
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header = [name.strip() or f"column {i}" for i, name in enumerate(row, start=1)]
                continue
            sections.append(Section(text=_passage(header, row), locator=f"row {number}"))
    except csv.Error as exc:
        raise IngestError(f"unreadable CSV (line {reader.line_num}: {exc})") from exc
    if header is None:
        raise IngestError("no rows (the file is empty)")
    if not sections:
        raise IngestError("no rows (only a header line)")
    return with_encoding_warning(Document(source=str(path), sections=sections), encoding)


def _dialect(text: str, tab: bool) -> type[csv.Dialect] | csv.Dialect:
    if tab:
        return csv.excel_tab
    sample = text[:_SNIFF_BYTES]
    if len(text) > _SNIFF_BYTES and "\n" in sample:
        sample = sample[: sample.rindex("\n")]  # whole lines only: a cut line misleads the Sniffer
    header = next((line for line in sample.splitlines() if line.strip()), "")
    try:
        sniffed = csv.Sniffer().sniff(sample, delimiters=_DELIMITERS)
        if sniffed.delimiter in header:
            return sniffed
    except csv.Error:  # quoted line breaks or ragged rows defeat it
        pass
    # The header line rarely holds quotes or line breaks: its commonest candidate wins.
    delimiter = max(_DELIMITERS, key=header.count)
    if not header.count(delimiter):
        return csv.excel  # one column
    return type("HeaderDialect", (csv.excel,), {"delimiter": delimiter})


def _passage(header: list[str], row: list[str]) -> str:
    lines = []
    for i, value in enumerate(row):
        name = header[i] if i < len(header) else f"column {i + 1}"
        if value.strip():
            lines.append(f"{name}: {value.strip()}")
    return "\n".join(lines)
