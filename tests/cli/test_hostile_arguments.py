"""Whatever a user types or pipes, kb answers with one line on stderr and an exit code,
never a traceback. Every command is driven with hostile arguments and standard input
(in-process, so an escaping exception fails the test; a few in real processes)."""

from __future__ import annotations

import pytest

from tests.conftest import run_kb

BAD_UTF8 = b"abc\xff\xfe def"
LONG = "x" * 5000


def _cases(corpus: str) -> list[tuple[list[str], bytes | None]]:
    cases: list[tuple[list[str], bytes | None]] = []
    for command in ("search", "ask"):
        cases += [
            ([command, ""], None),
            ([command, "   "], None),
            ([command, LONG], None),
            ([command, "a\x01\x02\x03\x04b"], None),
            ([command, "-"], BAD_UTF8),
            ([command, "-"], b""),
            ([command, "-"], b"\x00\x00\x00"),
            ([command, "bees", "-k", "0"], None),
            ([command, "bees", "-k", "-3"], None),
            ([command, "bees", "-k", "lots"], None),
            ([command, "bees", "--no-such-flag"], None),
            (["--kb", "typo", command, "bees"], None),
            (["--kb", "../../etc", command, "bees"], None),
            (["--kb", "", command, "bees"], None),
        ]
    for command in ("search", "ask"):
        cases += [
            ([command, "bees", "--since", "yesterday"], None),
            ([command, "bees", "--type", "*"], None),
            ([command, "bees", "--source", "*.docx"], None),  # leaves no document
        ]
    cases += [
        (["chat"], BAD_UTF8),
        (["chat"], b"\x00\x00\x00\n"),
        (["chat"], LONG.encode() + b"\n"),
        (["chat", "--since", "soon"], b"bees\n"),
        (["chat", "--source", "*.docx"], b"bees\n"),
        (["--kb", "typo", "chat"], b"bees\n"),
        (["ask", "bees", "--provider", "nope"], None),
        (["ingest"], None),
        (["ingest", ""], None),
        (["ingest", "/no/such/folder"], None),
        (["ingest", corpus, "--include"], None),
        (["remove", "/no/such/file.md"], None),
        (["remove", ""], None),
        (["stats", "--since", "yesterday"], None),
        (["stats", "--since", "-5h"], None),
        (["--kb", "typo", "stats"], None),
        (["--kb", "typo", "list"], None),
        (["--kb", "typo", "info"], None),
        (["--kb", "typo", "doctor"], None),
        (["--kb", "typo", "remove", corpus], None),
        (["kbs", "delete"], None),
        (["kbs", "delete", "typo", "--yes"], None),
        (["kbs", "delete", "default"], None),  # no --yes and no terminal to ask on
        (["kbs", "delete", "../x", "--yes"], None),
        (["config", "nope"], None),
        (["cache", "nope"], None),
        (["nosuchcommand"], None),
        (["--kb"], None),
    ]
    return cases


def test_every_command_with_hostile_input_fails_in_one_line_hash_embedder(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("KB_MODEL", "hash")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "bees.md").write_text("# Bees\n\nBees make honey from nectar.\n")
    assert cli("ingest", corpus).code == 0
    for args, stdin in _cases(str(corpus)):
        res = cli(*args, stdin=stdin)
        where = (args, stdin)
        assert res.code in (1, 2), (where, res.code, res.err)
        lines = [line for line in res.err.splitlines() if line.strip()]
        # One error line; an ingest reports a path it could not read as its one failed file.
        assert len(lines) == 1 and lines[0].startswith(("error: ", "  failed: ")), (where, res.err)
        assert "Traceback" not in res.err and "internal error" not in res.err, (where, res.err)
    # ...and the knowledge base is untouched by all of it.
    assert [d["source"] for d in cli("list", "--json").ndjson()] == [str(corpus / "bees.md")]
    assert cli("kbs", "--json").ndjson()[0]["kb"] == "default"


@pytest.mark.parametrize(
    "args, stdin, message",
    [
        (["ask", "-"], b"abc\xff", "standard input is not valid UTF-8"),
        (["search", "-"], b"bees\n\xc3\x28\n", "standard input is not valid UTF-8"),
    ],
)
def test_invalid_utf8_on_stdin_is_a_clear_error_in_a_real_process(tmp_path, args, stdin, message):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "kb", *args], input=stdin, capture_output=True, timeout=60)
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert err.strip().splitlines() == [f"error: {err.strip().removeprefix('error: ')}"] and message in err


def test_invalid_utf8_in_arguments_is_a_clear_error_in_a_real_process():
    import os
    import subprocess
    import sys

    arg = os.fsdecode(b"caf\xe9")  # what a Latin-1 terminal sends
    proc = subprocess.run([sys.executable, "-m", "kb", "search", arg], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: argument 'caf\ufffd' is not valid UTF-8; kb takes UTF-8 text and file names"
    ]


def test_shell_completion_is_available():
    # What `kb --install-completion` installs: a script that asks kb for completions. Driven
    # through that protocol directly, as `--show-completion` depends on detecting the shell.
    script = run_kb(env={"_KB_COMPLETE": "source_bash"})
    assert script.code == 0 and "_kb_completion" in script.out and "_KB_COMPLETE=complete_bash" in script.out
    words = run_kb(env={"_KB_COMPLETE": "complete_bash", "COMP_WORDS": "kb se", "COMP_CWORD": "1"})
    assert words.code == 0 and set(words.out.split()) == {"search", "serve"}
    options = run_kb(env={"_KB_COMPLETE": "complete_bash", "COMP_WORDS": "kb ingest --pr", "COMP_CWORD": "2"})
    assert options.out.split() == ["--prune"]
