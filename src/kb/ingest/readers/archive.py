"""Safety checks shared by the zip-based formats (DOCX, PPTX, ODT, EPUB).

The parsing libraries open the zip themselves and read every member into memory, so what
could make them run away is refused here first, from the central directory, before any
member is decompressed: a file that is no zip at all (truncated, or an OLE2 compound
file: a password-protected Office file or a legacy .doc/.ppt), too many entries, and a
declared size or compression ratio no real document has (a zip bomb). A header that lies
about a member's size cannot get past this either: zipfile stops inflating a member at
the size the central directory declares and then fails its CRC check, and `read_member`
counts the bytes it receives on top of that.

XML members are scanned for entity declarations before a library parses them: OOXML, ODF
and EPUB never need them, and they are how "billion laughs" expansion attacks work.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

from kb.errors import IngestError
from kb.ingest.readers.failures import describe

OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_MiB = 2**20


@dataclass(frozen=True)
class Limits:
    # Real documents: a few hundred entries (EPUBs with many images, a few thousand).
    max_entries: int = 20_000
    # Everything the library will hold in memory at once; decks with video run to ~100s of MB.
    max_total: int = 512 * _MiB
    # XML deflates 5–20:1, rarely 100:1; zeros deflate ~1000:1.
    max_ratio: int = 200
    # Members smaller than this cannot hurt whatever their ratio (a tiny, very regular styles.xml).
    ratio_floor: int = 8 * _MiB


LIMITS = Limits()
_XML_SUFFIXES = (".xml", ".rels", ".xhtml", ".html", ".htm", ".opf", ".ncx", ".svg", ".smil")
_ENTITY = (b"<!ENTITY", "<!ENTITY".encode("utf-16-le"), "<!ENTITY".encode("utf-16-be"))
_LEGACY = {"DOCX": "Word .doc", "PPTX": "PowerPoint .ppt", "ODT": "Word .doc"}


def open_zip(data: bytes, kind: str, limits: Limits = LIMITS) -> zipfile.ZipFile:
    """The archive, checked; raises IngestError saying what is wrong and what to do."""
    if data.startswith(OLE2_MAGIC):
        raise IngestError(_ole2_reason(data, kind))
    if not data.startswith(b"PK"):
        raise IngestError(f"not a valid {kind} file (not a zip archive)")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        entries = zf.infolist()
    except Exception as exc:  # BadZipFile mostly; struct/Value/OSError on odd damage
        raise IngestError(f"truncated or damaged {kind} (the zip archive is unreadable: {describe(exc)})") from exc
    try:
        _check_entries(entries, kind, limits)
    except IngestError:
        zf.close()
        raise
    return zf


def _check_entries(entries: list[zipfile.ZipInfo], kind: str, limits: Limits) -> None:
    if len(entries) > limits.max_entries:
        raise IngestError(f"{kind} refused: {len(entries)} entries in its zip archive (limit {limits.max_entries})")
    for e in entries:
        if e.file_size > limits.ratio_floor and e.file_size > limits.max_ratio * max(e.compress_size, 1):
            ratio = e.file_size // max(e.compress_size, 1)
            raise IngestError(
                f"{kind} refused: {e.filename} would expand {ratio}:1 to {_size(e.file_size)}; a zip bomb?"
            )
        if e.flag_bits & 0x1:
            raise IngestError(f"{kind} with encrypted zip entries: save it without a password and ingest it again")
    total = sum(e.file_size for e in entries)
    if total > limits.max_total:
        raise IngestError(
            f"{kind} refused: it would expand to {_size(total)} (limit {_size(limits.max_total)}); a zip bomb?"
        )


def _ole2_reason(data: bytes, kind: str) -> str:
    # Encrypted OOXML is an OLE2 container whose directory names these streams (UTF-16LE).
    if "EncryptedPackage".encode("utf-16-le") in data or "EncryptionInfo".encode("utf-16-le") in data:
        return f"password-protected {kind}: save it without a password and ingest it again"
    legacy = _LEGACY.get(kind, "Office binary")
    return (
        f"not a {kind} but a legacy {legacy} file (or a password-protected Office file): "
        f"save it as .{kind.lower()} without a password and ingest it again"
    )


def read_member(zf: zipfile.ZipFile, name: str, kind: str, limit: int = LIMITS.max_total) -> bytes:
    """A member's bytes, counted as they inflate: never more than `limit`."""
    out = bytearray()
    try:
        with zf.open(name) as member:
            while chunk := member.read(_MiB):
                out += chunk
                if len(out) > limit:
                    raise IngestError(f"{kind} refused: {name} expands beyond {_size(limit)}; a zip bomb?")
    except IngestError:
        raise
    except KeyError as exc:
        raise IngestError(f"damaged {kind}: {name} is missing") from exc
    except Exception as exc:  # a bad CRC, a truncated member, an unsupported compression method
        raise IngestError(f"damaged {kind}: {name} is unreadable ({describe(exc)})") from exc
    return bytes(out)


def refuse_entity_declarations(zf: zipfile.ZipFile, kind: str) -> None:
    for info in zf.infolist():
        if info.filename.lower().endswith(_XML_SUFFIXES):
            data = read_member(zf, info.filename, kind)
            if any(marker in data for marker in _ENTITY):
                raise IngestError(
                    f"{kind} refused: {info.filename} declares XML entities (an entity-expansion attack?)"
                )


def has_macros(zf: zipfile.ZipFile) -> bool:
    """VBA in OOXML (vbaProject.bin), Basic or other scripts in ODF."""
    for name in zf.namelist():
        lower = name.lower()
        if lower.endswith("vbaproject.bin") or lower.startswith(("basic/", "scripts/")):
            return True
    return False


MACRO_WARNING = "contains macros (not run)"


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / _MiB:.0f} MB"
