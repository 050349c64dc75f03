"""PDF: one section per page with text, the page number kept for citations."""

from __future__ import annotations

import io
from pathlib import Path

from kb.documents import Document, Section
from kb.errors import IngestError


def read_pdf(path: Path, data: bytes) -> Document:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        # An owner-password-only PDF opens with the empty user password.
        if reader.is_encrypted and not reader.decrypt(""):
            raise IngestError("encrypted PDF that needs a password; decrypt it first (e.g. qpdf --decrypt)")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = (reader.metadata.title if reader.metadata else None) or None
    except IngestError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise IngestError(f"unreadable PDF ({type(exc).__name__}: {exc})") from exc
    except Exception as exc:  # pypdf raises many internal types on damaged files
        raise IngestError(f"unreadable PDF ({type(exc).__name__}: {exc})") from exc
    doc = Document(source=str(path), sections=[], title=str(title) if title else None)
    empty = []
    for number, text in enumerate(pages, start=1):
        if text.strip():
            doc.sections.append(Section(text=text, page=number))
        else:
            empty.append(number)
    if empty and len(empty) == len(pages):
        doc.warnings.append("no text layer (scanned or image-only PDF?)")
    elif empty:
        doc.warnings.append(f"pages without text: {', '.join(map(str, empty))}")
    return doc
