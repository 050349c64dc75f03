"""A folder of hostile files, generated here: the run neither crashes nor hangs, each
problem file is listed with its reason, every good file is ingested, and the quality
report flags pages without text, badly decoded text, macros and damaged e-mail. Hash
embedder; real readers."""

from __future__ import annotations

import os
import stat
from email.message import EmailMessage

import pytest

from tests.conftest import run_kb
from tests.formats import rezip, write_docx, write_epub, write_odt, write_pptx, zip_bomb
from tests.pdfs import write_pdf

GOOD = "Bees collect nectar and pollen from flowers. The queen lays eggs in the brood comb."


def _encrypted_pdf(path, user_password: str, owner_password: str):
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_encryption(owner_password=owner_password, user_password=user_password)
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.multi_cell(0, 8, GOOD)
    pdf.output(str(path))


def _image_only_pdf(path):
    from fpdf import FPDF
    from PIL import Image

    image = path.with_suffix(".png")
    Image.new("RGB", (200, 80), (240, 200, 40)).save(image)
    pdf = FPDF()
    pdf.add_page()
    pdf.image(str(image), x=10, y=10, w=120)
    pdf.output(str(path))
    image.unlink()


@pytest.fixture
def hostile(tmp_path):
    root = tmp_path / "hostile"
    root.mkdir()
    good = {}

    def put(name: str, data: bytes | str, is_good: bool = False):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        if is_good:
            good[name] = path
        return path

    put("good.md", f"# Good\n\n{GOOD}\n", True)
    put("empty.txt", b"")
    put("blank.md", "   \n\n\t\n")
    put("zero.pdf", b"")
    real = write_pdf(root / "real.pdf", [GOOD, GOOD.upper()])
    good["real.pdf"] = real
    put("truncated.pdf", real.read_bytes()[: len(real.read_bytes()) // 3])
    put("corrupt.pdf", b"%PDF-1.7\n" + os.urandom(3000))
    _encrypted_pdf(root / "needs_password.pdf", user_password="secret", owner_password="owner")
    _encrypted_pdf(root / "owner_only.pdf", user_password="", owner_password="owner")
    good["owner_only.pdf"] = root / "owner_only.pdf"
    _image_only_pdf(root / "scan.pdf")
    put("binary.txt", os.urandom(4096))
    put("nul_bytes.md", "# Title\n\nsome text\x00\x00with NULs\x00 inside\n")
    put("huge_line.txt", ("honey bee " * 1_250_000).encode(), True)  # 12.5 MB, no newline
    put("latin1.txt", "Le miel de la ruche est récolté en été, après la miellée.".encode("latin-1"), True)
    put(
        "mixed.txt",
        "Café crème".encode()
        + " et café noir, résumé: été".encode("latin-1")
        + " puis naïve façade à côté".encode() * 3,
        True,
    )
    put("utf16.txt", "\ufeffBees make honey from nectar in the summer.".encode("utf-16-le"), True)
    put("weird name; rm -rf ~ 'quoted' \"double\" ✓.md", f"# Odd\n\n{GOOD}", True)
    put("-leading-dash.md", f"# Dash\n\n{GOOD}", True)
    put("line\nbreak.md", f"# Newline in name\n\n{GOOD}", True)
    deep = "/".join(f"level{i:02d}" for i in range(60))
    put(f"{deep}/deep.md", f"# Deep\n\n{GOOD}", True)
    (root / "loop").symlink_to(root)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text(f"# Outside\n\n{GOOD}")
    (root / "escape").symlink_to(outside)
    (root / "escape.md").symlink_to(outside / "secret.md")
    (root / "dangling.md").symlink_to(tmp_path / "missing.md")
    os.mkfifo(root / "pipe.txt")  # reading a FIFO blocks forever: must be skipped
    locked = put("locked.md", f"# Locked\n\n{GOOD}")
    locked.chmod(0)
    readable = os.access(locked, os.R_OK)  # root reads it anyway
    if readable:
        good["locked.md"] = locked
    (root / os.fsdecode(b"latin1-\xe9t\xe9.md")).write_text(f"# Undecodable name\n\n{GOOD}")
    _office_files(root, good, put)
    yield root, good
    locked.chmod(stat.S_IRUSR | stat.S_IWUSR)


def _office_files(root, good, put):
    """The zip-based formats, notebooks, CSV and e-mail, each real and each broken."""
    for writer, name in (
        (write_docx, "real.docx"),
        (write_pptx, "real.pptx"),
        (write_odt, "real.odt"),
        (write_epub, "real.epub"),
    ):
        data = writer(root / name).read_bytes()
        good[name] = root / name
        put(name.replace("real", "truncated"), data[: len(data) // 3])
    # A password-protected OOXML file is an OLE2 compound file holding EncryptionInfo and
    # EncryptedPackage streams. Making a real one needs msoffcrypto, so this is the OLE2
    # magic and those two directory names (UTF-16LE, as OLE2 stores them): what kb looks at.
    directory = "EncryptionInfo".encode("utf-16-le") + bytes(50) + "EncryptedPackage".encode("utf-16-le")
    put("password.docx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504) + directory + bytes(2000))
    put("legacy.doc.docx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(4096))  # a .doc renamed
    zip_bomb(root / "real.docx", root / "bomb.docx")  # 1 GB of zeros in ~1 MB
    macro = rezip(root / "real.docx", root / "macro.docm", add={"word/vbaProject.bin": b"\xd0\xcf\x11\xe0 VBA"})
    good["macro.docm"] = macro
    put("broken.ipynb", '{"cells": [{"cell_type": "code", "source": "print(1)"')
    put("garbage.csv", os.urandom(4096))
    mail = EmailMessage()
    mail["Subject"], mail["From"] = "Swarm alert", "ann@example.org"
    mail.set_content(GOOD)
    mail.add_attachment((root / "real.pdf").read_bytes(), maintype="application", subtype="pdf", filename="real.pdf")
    data = mail.as_bytes()
    good["truncated.eml"] = put("truncated.eml", data[: len(data) * 2 // 3])  # cut inside the base64 PDF


def test_hostile_folder_is_ingested_without_crash_hash_embedder(hostile, kb_home):
    root, good = hostile
    res = run_kb("ingest", root, "--json", env={"KB_MODEL": "hash"}, timeout=300)
    assert "Traceback" not in res.err, res.err
    assert res.code == 1  # some files failed, and the exit code says so
    report = res.json()
    reasons = {os.path.relpath(f["path"], root): f["reason"] for f in report["failed"] + report["skipped"]}
    for name in (
        "empty.txt",
        "blank.md",
        "zero.pdf",
        "corrupt.pdf",
        "needs_password.pdf",
        "binary.txt",
        "nul_bytes.md",
        "scan.pdf",
        "dangling.md",
        "pipe.txt",
        "escape",
        "escape.md",
        "truncated.docx",
        "truncated.pptx",
        "truncated.odt",
        "truncated.epub",
        "password.docx",
        "legacy.doc.docx",
        "bomb.docx",
        "broken.ipynb",
        "garbage.csv",
    ):
        assert reasons.get(name), (name, reasons)
    for name in ("truncated.docx", "truncated.pptx", "truncated.odt", "truncated.epub"):
        assert "truncated or damaged" in reasons[name], reasons[name]
    assert "password-protected DOCX" in reasons["password.docx"]
    assert "legacy Word .doc" in reasons["legacy.doc.docx"]
    assert "zip bomb" in reasons["bomb.docx"]
    assert "not a Jupyter notebook (invalid JSON" in reasons["broken.ipynb"]
    assert "binary" in reasons["garbage.csv"]
    assert "password" in reasons["needs_password.pdf"]
    assert "no text layer" in reasons["scan.pdf"]
    assert "outside" in reasons["escape"] and "outside" in reasons["escape.md"]
    assert "binary" in reasons["binary.txt"]
    assert "not a regular file" in reasons["pipe.txt"]
    assert "not valid UTF-8" in reasons["latin1-\ufffdt\ufffd.md"]
    assert reasons["truncated.pdf"].startswith("unreadable PDF")
    listed = {os.path.relpath(d["source"], root) for d in _listed(kb_home)}
    assert set(good) <= listed, set(good) - listed
    assert not any(name.startswith(("loop/", "escape/")) for name in listed)

    warnings = {os.path.relpath(w["path"], root): w["warning"] for w in report["warnings"]}
    assert "decoded as" in warnings.get("latin1.txt", "")
    assert "badly decoded" in warnings.get("mixed.txt", "")
    assert warnings.get("macro.docm") == "contains macros (not run)"
    mail_warnings = [w["warning"] for w in report["warnings"] if w["path"].endswith("truncated.eml")]
    assert any("damaged or truncated MIME" in w for w in mail_warnings), mail_warnings
    assert any(w.startswith("attachment real.pdf not read") for w in mail_warnings), mail_warnings
    assert run_kb("search", "honey", "--json", env={"KB_MODEL": "hash"}).code == 0
    again = run_kb("ingest", root, "--json", env={"KB_MODEL": "hash"}, timeout=300).json()
    assert again["unchanged"] == len(listed) and again["added"] == 0


def _listed(kb_home):
    res = run_kb("list", "--json", env={"KB_MODEL": "hash"})
    assert res.code == 0, res.err
    return res.ndjson()


def test_unreadable_file_is_reported_and_the_rest_ingested_hash_embedder(tmp_path, kb_home):
    root = tmp_path / "docs"
    root.mkdir()
    (root / "ok.md").write_text(f"# Ok\n\n{GOOD}")
    secret = root / "secret.md"
    secret.write_text(f"# Secret\n\n{GOOD}")
    secret.chmod(0)
    try:  # without root's override, the permission bits hold
        res = run_kb("ingest", root, "--json", env={"KB_MODEL": "hash"}, as_user=True)
    finally:
        secret.chmod(0o644)
    report = res.json()
    assert res.code == 1
    assert [(f["path"].rsplit("/", 1)[-1], f["reason"]) for f in report["failed"]] == [
        ("secret.md", "cannot read (Permission denied)")
    ]
    assert report["added"] == 1
