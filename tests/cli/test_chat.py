"""`kb chat`: a session whose follow-ups are answered as the conversation means them (the real
model on sample_corpus), its commands, and how a failed question leaves the session going."""

from __future__ import annotations


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def test_chat_answers_a_follow_up_with_the_conversation_real_model(cli, sample_kb):
    res = cli("chat", "--json", stdin="How do I make candles from beeswax?\nWhat temperature should it be?\n")
    assert res.code == 0, res.err
    first, second = res.ndjson()
    assert first["standalone_method"] == "question"
    assert second["question"] == "What temperature should it be?" and second["standalone_method"] == "weighted"
    assert _name(second["citations"][0]["source"]) == "beeswax_candles.txt" and "75" in second["answer"]


def test_chat_reset_multi_and_exit_real_model(cli, sample_kb):
    script = (
        "How do I make candles from beeswax?\n!reset\nWhat temperature should it be?\n"
        "!multi\nHow many eggs\ndoes a queen lay?\n!end\nexit\nnever asked\n"
    )
    res = cli("chat", "--json", stdin=script)
    assert res.code == 0, res.err
    answers = res.ndjson()
    assert len(answers) == 3 and "forgotten" in res.err
    assert answers[1]["standalone_method"] == "question"  # the reset forgot the candles
    assert answers[2]["question"] == "How many eggs does a queen lay?"  # !multi joined the lines


def test_a_failed_question_leaves_the_session_going_real_model(cli, sample_kb):
    res = cli("chat", stdin="x" * 3000 + "\nHow many eggs does a queen lay per day?\n")
    assert res.code == 1  # one question failed
    assert "characters long" in res.err and "2,000 eggs" in res.out
    text = cli("chat", stdin="How do I make candles from beeswax?\nWhat temperature should it be?\n")
    assert "searched for (the conversation's questions): How do I make candles" in text.err


def _pty_session(env: dict, lines: list[bytes], timeout: float = 60) -> tuple[str, int]:
    """`kb chat` on a pseudo-terminal, as a person uses it: each line sent once the prompt
    shows; (what the terminal showed, exit code)."""
    import os
    import pty
    import select
    import sys
    import time

    pid, fd = pty.fork()
    if pid == 0:  # the child: kb chat with the terminal as stdin, stdout and stderr
        os.execvpe(sys.executable, [sys.executable, "-m", "kb", "chat", "--no-stream"], {**os.environ, **env})
    shown = b""

    def until_prompt() -> None:
        nonlocal shown
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not shown.rstrip().endswith(b">"):
            if select.select([fd], [], [], 0.5)[0]:
                try:
                    data = os.read(fd, 4096)
                except OSError:  # the child closed the terminal
                    return
                if not data:
                    return
                shown += data

    try:
        for line in lines:
            until_prompt()
            shown += b"\n"  # the prompt's echo: a marker that the next answer starts afresh
            os.write(fd, line)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # the rest, until the terminal closes
            if select.select([fd], [], [], 0.5)[0]:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    break
                if not data:
                    break
                shown += data
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    return shown.decode(errors="replace"), os.waitstatus_to_exitcode(status)


def test_an_interactive_session_keeps_its_history_until_reset_hash_embedder(kb_home, tmp_path):
    import shutil

    from tests.conftest import SAMPLE, run_kb

    env = {"KB_MODEL": "hash", "KB_HOME": str(kb_home), "COLUMNS": "200"}  # no line wrapped
    corpus = tmp_path / "corpus"
    shutil.copytree(SAMPLE, corpus)
    assert run_kb("ingest", corpus, env=env).code == 0
    questions = ["How do I make candles from beeswax?", "What temperature should it be?", "!reset"]
    questions.append("What temperature should it be?")
    shown, code = _pty_session(env, [q.encode() + b"\n" for q in questions] + [b"\x04"])  # Ctrl-D ends it
    assert code == 0, shown
    assert "Chatting with knowledge base 'default'" in shown
    searched = "searched for (the conversation's questions): How do I make candles from beeswax? What temperature"
    assert shown.count(searched) == 1  # the follow-up, with the first question; not after !reset
    assert "the conversation is forgotten" in shown
    assert shown.count("beeswax_candles.txt") >= 1


def test_kb_help_and_chat_help_stay_light():
    import subprocess
    import sys

    code = (
        "import sys\nimport kb.cli.app\n"
        "for args in (['--help'], ['chat', '--help']):\n"
        "    try:\n        kb.cli.app.main(args)\n    except SystemExit:\n        pass\n"
        "heavy = ('numpy', 'chromadb', 'torch', 'httpx')\n"
        "print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert " chat " in proc.stdout and "--source" in proc.stdout  # both helps were printed...
    assert proc.stderr.strip() == "[]"  # ...without the heavy imports a search needs
