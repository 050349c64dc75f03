"""E-mail: a single message (.eml) or a mailbox (.mbox).

A message becomes its headers (Subject, From, To, Cc, Date) followed by its body: the
text/plain part, or the HTML part through the HTML section walker. Attachments whose
names have a suffix kb reads go through the reader registry (a PDF, a .docx, a forwarded
message…), nested at most MAX_DEPTH deep and at most MAX_ATTACHMENT bytes each; their
sections are located as "attachment NAME" plus their own place ("…, p. 2"). In a mailbox
every section is located by its message number first ("message 4, attachment …").

A damaged message is read as far as it goes and its defects are reported as a warning:
a mailbox cut off in its last message still holds every message before it.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path, PurePosixPath
from typing import Any

from kb.documents import Document, Section
from kb.errors import IngestError
from kb.ingest.decoding import decode
from kb.ingest.readers.failures import describe, translated
from kb.ingest.readers.html import html_sections

MAX_DEPTH = 2  # an attachment of an attached message, and no deeper
MAX_ATTACHMENT = 50 * 2**20
_HEADERS = ("Subject", "From", "To", "Cc", "Date")
_MAIL_HEADERS = {"from", "to", "subject", "date", "message-id", "received", "mime-version"}
# Defects that mean lost or garbled content; the parser also notes harmless oddities
# (an envelope line, an obsolete header form) that are not worth a warning.
_DAMAGE = {
    "CloseBoundaryNotFoundDefect",
    "StartBoundaryNotFoundDefect",
    "NoBoundaryInMultipartDefect",
    "MultipartInvariantViolationDefect",
    "MissingHeaderBodySeparatorDefect",
    "InvalidBase64PaddingDefect",
    "InvalidBase64CharactersDefect",
    "InvalidBase64LengthDefect",
}
_MBOX_SEPARATOR = re.compile(rb"(?:\A[\r\n]*|\n\r?\n)(From )")
_MBOXRD_ESCAPE = re.compile(rb"^>(>*From )", re.MULTILINE)
# How deep the current read is nested in attachments; a ContextVar because the pipeline
# reads files on a worker thread.
_depth: ContextVar[int] = ContextVar("kb_mail_depth", default=0)


def read_eml(path: Path, data: bytes) -> Document:
    with translated("e-mail"):
        message = _parse(data)
        if not _MAIL_HEADERS & {k.lower() for k in message}:
            raise IngestError("not an e-mail message (no From, To, Subject or Date header)")
        sections, warnings, subject = _message(message)
    return Document(source=str(path), sections=sections, title=subject, warnings=warnings)


def read_mbox(path: Path, data: bytes) -> Document:
    starts = [m.start(1) for m in _MBOX_SEPARATOR.finditer(data)]
    if not starts or data[: starts[0]].strip():
        raise IngestError("not an mbox mailbox (it does not start with a 'From ' line)")
    doc = Document(source=str(path), sections=[])
    for number, (start, end) in enumerate(zip(starts, [*starts[1:], len(data)]), start=1):
        raw = data[start:end]
        raw = _MBOXRD_ESCAPE.sub(rb"\1", raw[raw.find(b"\n") + 1 :])  # drop the From_ line
        try:
            sections, warnings, subject = _message(_parse(raw))
        except Exception as exc:  # one malformed message must not lose the rest of the mailbox
            doc.warnings.append(f"message {number} not read: {describe(exc)}")
            continue
        doc.sections += [_relocated(s, f"message {number}", subject) for s in sections]
        doc.warnings += [f"message {number}: {w}" for w in warnings]
    return doc


def _parse(data: bytes) -> Any:
    from email import policy
    from email.parser import BytesParser

    return BytesParser(policy=policy.default).parsebytes(data)


def _message(message: Any) -> tuple[list[Section], list[str], str | None]:
    """Sections, warnings and subject of one message, attachments included."""
    subject = " ".join(_header(message, "Subject").split()) or None
    header_lines = [f"{name}: {value}" for name in _HEADERS if (value := _header(message, name))]
    body, sections = _pick_body(message, subject)
    if header_lines:
        block = "\n".join(header_lines)
        if sections:
            sections[0].text = f"{block}\n\n{sections[0].text}"
        else:
            sections.append(Section(text=block, heading=subject))
    warnings = _defects(message)
    for part in _leaves(message):
        if part is not body:
            found, said = _attachment(part)
            sections += found
            warnings += said
    return sections, warnings, subject


def _header(message: Any, name: str) -> str:
    try:
        return str(message.get(name, "") or "")
    except Exception:  # a header the policy cannot parse is left out, not fatal
        return ""


def _pick_body(message: Any, subject: str | None) -> tuple[Any, list[Section]]:
    """The text/plain body, or the HTML one when there is no plain text (or it is empty)."""
    for kind in ("plain", "html"):
        part = message.get_body(preferencelist=(kind,))
        if part is not None and (sections := _body(part, subject)):
            return part, sections
    return None, []


def _body(part: Any, subject: str | None) -> list[Section]:
    text = _text(part)
    if part.get_content_subtype() == "html":
        found, _title = html_sections(text)
        return [Section(text=s.text, heading=_join(subject, s.heading)) for s in found]
    return [Section(text=text.strip(), heading=subject)] if text.strip() else []


def _text(part: Any) -> str:
    payload = part.get_payload(decode=True) or b""
    charset = part.get_content_charset()
    if charset:
        try:
            return payload.decode(charset, errors="replace")
        except LookupError:  # a charset Python does not know: detect instead
            pass
    try:
        return decode(payload)[0]
    except IngestError:
        return ""


def _leaves(part: Any) -> Any:
    """Non-multipart parts in order; an attached message is a leaf, read on its own."""
    if part.get_content_type() == "message/rfc822":
        yield part
    elif part.is_multipart():
        for sub in part.iter_parts():
            yield from _leaves(sub)
    else:
        yield part


def _attachment(part: Any) -> tuple[list[Section], list[str]]:
    from kb.ingest.readers import reader_for

    is_message = part.get_content_type() == "message/rfc822"
    name = _file_name(part) or ("forwarded message" if is_message else None)
    if name is None or (not is_message and (not Path(name).suffix or reader_for(Path(name)) is None)):
        return [], []  # inline images, signatures, formats kb does not read
    if _depth.get() >= MAX_DEPTH:
        return [], [f"attachment {name} not read: attachments nested more than {MAX_DEPTH} deep"]
    try:
        with _nested():
            doc = _attached_message(part) if is_message else _attached_file(name, part)
    except IngestError as exc:
        return [], [f"attachment {name} not read: {exc}"]
    except Exception as exc:  # a library fault inside one attachment must not lose the message
        return [], [f"attachment {name} not read: {describe(exc)}"]
    sections = [_relocated(s, f"attachment {name}", doc.title) for s in doc.sections]
    return sections, [f"attachment {name}: {w}" for w in doc.warnings]


def _attached_message(part: Any) -> Document:
    inner = part.get_payload()
    inner = inner[0] if isinstance(inner, list) and inner else inner
    sections, warnings, subject = _message(inner)
    return Document(source="", sections=sections, title=subject, warnings=warnings)


def _attached_file(name: str, part: Any) -> Document:
    from kb.ingest.readers import read

    data = part.get_payload(decode=True) or b""
    if len(data) > MAX_ATTACHMENT:
        raise IngestError(f"larger than {MAX_ATTACHMENT // 2**20} MB")
    return read(Path(name), data)


@contextmanager
def _nested() -> Any:
    token = _depth.set(_depth.get() + 1)
    try:
        yield
    finally:
        _depth.reset(token)


def _file_name(part: Any) -> str | None:
    try:
        name = part.get_filename()
    except Exception:
        return None
    if not name:
        return None
    # Only the last component: a name like "../../x.pdf" is a label here, never a path.
    return PurePosixPath(str(name).replace("\\", "/")).name or None


def _relocated(section: Section, where: str, title: str | None = None) -> Section:
    """A section of an attachment or mailbox message, located inside the outer file."""
    if section.page is not None:
        where += f", p. {section.page}"
    if section.locator:
        where += f", {section.locator}"
    return Section(text=section.text, heading=section.heading or title, locator=where)


def _defects(message: Any) -> list[str]:
    found = {type(d).__name__ for part in message.walk() for d in getattr(part, "defects", [])}
    names = sorted(found & _DAMAGE)
    if not names:
        return []
    return [f"damaged or truncated MIME ({', '.join(names)}); read as far as it goes"]


def _join(first: str | None, rest: str | None) -> str | None:
    return f"{first} > {rest}" if first and rest else first or rest
