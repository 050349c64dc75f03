"""Bytes to text: BOMs, UTF-8, then detected legacy encodings; binary data refused."""

from __future__ import annotations

import codecs
import re

from kb.errors import IngestError

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_WESTERN = ("cp1252", "latin_1", "iso8859_15")
# UTF-8 read as Windows-1252 turns "é" into "Ã©" and "’" into "â€™": a lead character
# followed by one of the characters that 0x80–0xBF become in that code page.
_MOJIBAKE = re.compile("[ÃÂâ][" + re.escape(bytes(range(0x80, 0xC0)).decode("cp1252", errors="ignore")) + "]")


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
                raise IngestError(
                    f"starts with a {encoding} byte-order mark but does not decode ({exc.reason})"
                ) from exc
    if _looks_binary(data):
        raise IngestError("binary content, not text")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    results = list(from_bytes(data))
    if not results:
        # Typically UTF-8 with some legacy-encoded lines pasted in: keep the text, replace
        # the bytes that do not decode, and let the quality report flag the file.
        return data.decode("utf-8", errors="replace"), "utf-8 with invalid bytes replaced"
    best = results[0]
    # Short Western text often scores the same in several code pages; Windows-1252 is by
    # far the most common of them, so it wins a tie.
    for r in results:
        if r.encoding in _WESTERN and r.chaos <= best.chaos and r.coherence >= best.coherence - 0.01:
            best = r
            break
    return str(best), best.encoding


def suspicious_characters(text: str) -> int:
    """How many U+FFFD replacement characters and mojibake pairs `text` holds, if that is
    more than a stray few: the quality report flags such files."""
    count = text.count("\ufffd") + len(_MOJIBAKE.findall(text))
    return count if count >= 3 else 0
