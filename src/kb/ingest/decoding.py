"""Bytes to text: BOMs, UTF-8, then detected legacy encodings; binary data refused."""

from __future__ import annotations

import codecs

from kb.errors import IngestError

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_WESTERN = ("cp1252", "latin_1", "iso8859_15")


def _looks_binary(data: bytes) -> bool:
    sample = data[:8192]
    if b"\x00" in sample:
        return True
    controls = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13, 27))
    return controls > len(sample) * 0.05


def decode(data: bytes) -> tuple[str, str]:
    """Return (text, encoding). Raises IngestError for data that is not text."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding), encoding
            except UnicodeDecodeError as exc:
                raise IngestError(f"starts with a {encoding} byte-order mark but does not decode ({exc.reason})") from exc
    if _looks_binary(data):
        raise IngestError("binary content, not text")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    results = list(from_bytes(data))
    if not results:
        raise IngestError("could not detect the text encoding")
    best = results[0]
    # Short Western text often scores the same in several code pages; Windows-1252 is by
    # far the most common of them, so it wins a tie.
    for r in results:
        if r.encoding in _WESTERN and r.chaos <= best.chaos and r.coherence >= best.coherence - 0.01:
            best = r
            break
    return str(best), best.encoding
