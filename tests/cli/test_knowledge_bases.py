"""Knowledge bases as a whole: reading one that does not exist creates nothing, `kb kbs`
lists them, `kb kbs delete` removes one (hash embedder)."""

from __future__ import annotations

import os

from tests.conftest import run_kb


def _tree(root) -> list[str]:
    """Every file and folder under root, but SQLite's transient -wal/-shm companions."""
    out = []
    for folder, dirs, files in os.walk(root):
        out += [
            os.path.relpath(os.path.join(folder, n), root) for n in dirs + files if not n.endswith(("-wal", "-shm"))
        ]
    return sorted(out)


def test_read_commands_on_a_missing_kb_create_nothing_and_list_the_existing_ones(cli, tmp_path, kb_home, monkeypatch):
    monkeypatch.setenv("KB_MODEL", "hash")
    (tmp_path / "n.md").write_text("# Notes\n\nApples are red.\n")
    assert cli("--kb", "notes", "ingest", tmp_path / "n.md").code == 0
    before = _tree(kb_home)
    for args in (["list"], ["search", "apples"], ["ask", "apples?"], ["info"], ["stats"], ["doctor"], ["remove", "x"]):
        res = cli("--kb", "typo", *args)
        assert res.code == 2, (args, res.err)
        assert res.err.strip() == (
            f"error: knowledge base 'typo' does not exist in {kb_home} (existing: notes); "
            "create it with `kb --kb typo ingest PATH`, or pick one with --kb"
        )
    assert _tree(kb_home) == before


def test_kbs_lists_and_deletes_knowledge_bases(cli, tmp_path, kb_home, monkeypatch):
    monkeypatch.setenv("KB_MODEL", "hash")
    (tmp_path / "a.md").write_text("# A\n\nApples are red.\n")
    (tmp_path / "b.md").write_text("# B\n\nBananas are yellow.\n\nBlueberries are blue.\n")
    assert cli("kbs").code == 0 and "no knowledge bases yet" in cli("kbs").err
    cli("--kb", "alpha", "ingest", tmp_path / "a.md")
    cli("--kb", "beta", "ingest", tmp_path)
    rows = cli("kbs", "--json").ndjson()
    assert [(r["kb"], r["documents"]) for r in rows] == [("alpha", 1), ("beta", 2)]
    assert all(r["chunks"] >= 1 and r["bytes"] > 0 for r in rows)

    refused = cli("kbs", "delete", "alpha")  # not a terminal: no one to confirm with
    assert refused.code == 2 and "pass --yes" in refused.err
    assert cli("kbs", "delete", "alpha", "--yes").code == 0
    assert [r["kb"] for r in cli("kbs", "--json").ndjson()] == ["beta"]
    assert not (kb_home / "kbs" / "alpha").exists()
    assert cli("--kb", "alpha", "list").code == 2
    assert cli("--kb", "beta", "search", "bananas", "--json").code == 0
    assert (tmp_path / "a.md").exists()  # the user's files are never touched


def test_deleting_waits_for_a_writer_hash_embedder(tmp_path, kb_home):
    from filelock import FileLock

    (tmp_path / "a.md").write_text("# A\n\nApples are red.\n")
    assert run_kb("--kb", "alpha", "ingest", tmp_path, env={"KB_MODEL": "hash"}).code == 0
    with FileLock(str(kb_home / "kbs" / "alpha" / "write.lock")):
        res = run_kb("kbs", "delete", "alpha", "--yes", env={"KB_MODEL": "hash", "KB_LOCK_TIMEOUT_S": "1"})
    assert res.code == 1 and "still locked" in res.err
    assert (kb_home / "kbs" / "alpha" / "manifest.db").exists()
