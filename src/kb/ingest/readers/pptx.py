"""PowerPoint (.pptx, .pptm, .ppsx): one section per slide, headed by the slide title,
with the text of every shape (groups and tables included) and the speaker notes; the
slide number is the section's locator. Macros in a .pptm are never run, only noted."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kb.documents import Document, Section
from kb.errors import IngestError
from kb.ingest.readers import archive
from kb.ingest.readers.failures import translated


def read_pptx(path: Path, data: bytes) -> Document:
    with archive.open_zip(data, "PPTX") as zf:
        archive.refuse_entity_declarations(zf, "PPTX")
        macros = archive.has_macros(zf)
    with translated("PPTX"):
        deck = _open(data)
        sections = [s for n, slide in enumerate(deck.slides, start=1) if (s := _slide(slide, n))]
        title = _core_title(deck)
    doc = Document(source=str(path), sections=sections, title=title or None)
    if macros:
        doc.warnings.append(archive.MACRO_WARNING)
    return doc


def _open(data: bytes) -> Any:
    # Not pptx.Presentation(): it turns away slide shows (.ppsx), whose main part is a
    # presentation like any other under another content type.
    import pptx  # noqa: F401  (registers python-pptx's part classes)
    from pptx.package import Package
    from pptx.parts.presentation import PresentationPart

    part = Package.open(io.BytesIO(data)).main_document_part
    if not isinstance(part, PresentationPart):
        raise IngestError(f"not a PowerPoint presentation (its main part is {part.content_type})")
    return part.presentation


def _core_title(deck: Any) -> str | None:
    # Not deck.core_properties: for a file without them it invents "PowerPoint Presentation".
    from pptx.opc.constants import RELATIONSHIP_TYPE

    try:
        part = deck.part.package.part_related_by(RELATIONSHIP_TYPE.CORE_PROPERTIES)
    except KeyError:
        return None
    return part.title or None  # python-pptx's core-properties part is the properties object


def _slide(slide: Any, number: int) -> Section | None:
    title_shape = slide.shapes.title
    title = " ".join(title_shape.text_frame.text.split()) if title_shape is not None else ""
    parts: list[str] = []
    for shape in slide.shapes:
        if title_shape is None or shape.shape_id != title_shape.shape_id:
            parts.extend(_shape_texts(shape))
    notes = _notes(slide)
    if notes:
        parts.append(f"Notes: {notes}")
    if not parts and title:
        parts.append(title)  # a section divider: its title is all there is to find
    if not parts:
        return None
    return Section(text="\n\n".join(parts), heading=title or None, locator=f"slide {number}")


def _shape_texts(shape: Any) -> Iterator[str]:
    from pptx.shapes.group import GroupShape

    if isinstance(shape, GroupShape):
        for inner in shape.shapes:
            yield from _shape_texts(inner)
    elif shape.has_text_frame:
        text = _frame_text(shape.text_frame)
        if text:
            yield text
    elif getattr(shape, "has_table", False):
        for row in shape.table.rows:
            cells = [" ".join(_frame_text(cell.text_frame).split()) for cell in row.cells]
            if any(cells):
                yield " | ".join(cells)


def _frame_text(frame: Any) -> str:
    # python-pptx renders a line break inside a paragraph as a vertical tab.
    return "\n".join(p.text.replace("\v", "\n") for p in frame.paragraphs).strip()


def _notes(slide: Any) -> str:
    if not slide.has_notes_slide:
        return ""
    frame = slide.notes_slide.notes_text_frame
    return _frame_text(frame) if frame is not None else ""
