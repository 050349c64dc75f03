"""Cheap estimates for `kb ingest --dry-run`: the chunks a file will make, and how fast
this machine embeds chunks.

Chunks are estimated from words, not by running the chunker: a document's text is parsed
(cheap next to embedding), its word-piece-per-word ratio measured on a sample of it with
the model's tokenizer, and each section's pieces divided by what one chunk holds. A PDF is
not parsed whole (pypdf takes seconds per hundred pages): its pages are counted and a few
of them, spread through the file, stand for the rest.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable
from pathlib import Path

from kb.ingest import readers
from kb.ingest.chunking import Chunker

PDF_SAMPLE_PAGES = 8
RATIO_SAMPLE_CHARS = 4000
# Paragraphs are packed whole, so chunks are rarely full: measured on sample_corpus and
# the tests' documents, a chunk carries ~85% of the window before its overlap.
FILL = 0.85


def _ratio(texts: list[str], count: Callable[[str], int]) -> float:
    """Word pieces per whitespace word, from the first few thousand characters."""
    sample = " ".join(texts)[:RATIO_SAMPLE_CHARS]
    words = len(sample.split())
    return count(sample) / words if words else 1.0


def _section_chunks(words: int, ratio: float, chunker: Chunker) -> int:
    if words == 0:
        return 0
    tokens = words * ratio
    window = chunker.max_tokens * FILL
    if tokens <= window:
        return 1
    return math.ceil((tokens - chunker.overlap) / max(1.0, window - chunker.overlap))


def _pdf_pages(data: bytes) -> tuple[list[str], float]:
    """Texts of up to PDF_SAMPLE_PAGES pages spread through the file, and how many pages
    each stands for."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        reader.decrypt("")
    n = len(reader.pages)
    if n == 0:
        return [], 0.0
    picks = sorted({round(i * (n - 1) / max(1, PDF_SAMPLE_PAGES - 1)) for i in range(min(n, PDF_SAMPLE_PAGES))})
    return [reader.pages[i].extract_text() or "" for i in picks], n / len(picks)


def estimate_chunks(path: Path, data: bytes, chunker: Chunker) -> tuple[int, list[str]]:
    """(estimated chunks of the file, some of its text for a calibration run). A file kb
    cannot parse estimates 0: a real ingest would report it failed."""
    try:
        if path.suffix.lower() == ".pdf":
            texts, scale = _pdf_pages(data)
        else:
            texts, scale = [s.text for s in readers.read(path, data).sections], 1.0
    except Exception:  # the ingest itself reports why; an estimate must not fail the dry run
        return 0, []
    ratio = _ratio(texts, chunker.count)
    chunks = sum(_section_chunks(len(t.split()), ratio, chunker) for t in texts)
    return round(chunks * scale), [t for t in texts if t.strip()][:4]


def calibrate(embed: Callable[[list[str]], object], texts: list[str], max_tokens: int, n: int = 32) -> float:
    """Chunks per second of the encoder alone, timing `n` chunk-sized passages of `texts`
    (after one warm-up call, which loads what the encoder loads lazily)."""
    words = " ".join(texts).split() or ["calibration"]
    size = max(1, int(max_tokens * FILL / 1.3))  # ~1.3 word pieces per English word
    passages = [" ".join(words[(i * size) % len(words) :][:size]) for i in range(n)]
    embed(passages[:2])
    started = time.perf_counter()
    embed(passages)
    return n / max(time.perf_counter() - started, 1e-6)
