import pytest

from kb import Library
from kb.config import load_settings
from kb.errors import InputError
from kb.metrics.stats import drift, parse_since, percentile


def test_percentiles_nearest_rank():
    values = list(range(1, 101))
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 99)) == (50, 95, 99)
    assert percentile([], 50) is None


def test_drift_flags_a_fall_in_top1_similarity():
    baseline = [0.6 + 0.01 * (i % 10) for i in range(100)]
    steady = drift(baseline[:50], baseline, low=0.35)
    assert steady["drifting"] is False
    falling = drift([0.3 + 0.01 * (i % 10) for i in range(50)], baseline, low=0.35)
    assert falling["drifting"] is True and falling["mean_shift"] < -0.2
    assert falling["recent"]["low_match_share"] == 0.5 and falling["baseline"]["low_match_share"] == 0


def test_since_parsing():
    assert parse_since(None) is None
    with pytest.raises(InputError, match="7d"):
        parse_since("yesterday")


def test_hash_embedder_stats_figures(tmp_path, make_kb, cli):
    (tmp_path / "n.md").write_text("# Notes\n\nApples are red and sweet.\n\nBananas are yellow.\n")
    kb = make_kb(model="hash")
    kb.ingest([tmp_path])
    kb.search_many(["apples", "bananas"])
    kb.ask("Which fruit is red?")
    kb.ask("which fruit is red")
    stats = make_kb(model="hash").stats()
    assert stats["requests"] == {"ingest": 1, "search": 2, "ask": 2}
    assert stats["cache"] == {"asks": 2, "hits": 1, "hit_rate": 0.5}
    assert stats["latency_ms"]["total"]["ask"]["n"] == 2
    assert stats["latency_ms"]["generate"]["ask"]["n"] == 1  # the cached ask generated nothing
    assert stats["providers"]["extractive"]["answers"] == 1 and stats["providers"]["extractive"]["error_rate"] == 0
    assert stats["drift"]["recent"]["n"] == 4 and stats["drift"]["baseline"]["n"] == 0
    assert make_kb(model="hash").stats(since="1h")["requests"]["ask"] == 2
    res = cli("stats")
    assert res.code == 0 and "cache" in res.out and "drift" in res.out
    assert len(cli("stats", "--json").json()["providers"]) == 1


V1_METRICS = """
CREATE TABLE events (id INTEGER PRIMARY KEY, ts REAL NOT NULL, kind TEXT NOT NULL, kb TEXT NOT NULL,
    retrieve_ms REAL, generate_ms REAL, total_ms REAL, provider TEXT, model TEXT, input_tokens INTEGER,
    output_tokens INTEGER, cost_usd REAL, cached INTEGER NOT NULL DEFAULT 0, error TEXT, top1 REAL);
CREATE INDEX events_ts ON events(ts);
CREATE TABLE attempts (ts REAL NOT NULL, provider TEXT NOT NULL, outcome TEXT NOT NULL, error TEXT, latency_ms REAL);
CREATE INDEX attempts_ts ON attempts(ts);
"""


def test_hash_embedder_stats_cover_one_kb_and_old_metrics_files_are_migrated(tmp_path, kb_home, make_kb):
    import sqlite3

    kb_home.mkdir(parents=True)
    old = sqlite3.connect(kb_home / "metrics.db")  # a metrics file from before stats were per KB
    old.executescript(V1_METRICS)
    rows = [(1.0 + i, "ask", "alpha" if i % 2 else "beta", 10.0, "primary", 0.3 + i / 100) for i in range(20)]
    old.executemany("INSERT INTO events(ts, kind, kb, total_ms, provider, top1) VALUES (?, ?, ?, ?, ?, ?)", rows)
    old.executemany(
        "INSERT INTO attempts VALUES (?, 'primary', 'error', 'timeout', 5.0)",
        [(r[0],) for r in rows if r[2] == "alpha"],
    )
    old.commit()
    old.close()

    (tmp_path / "n.md").write_text("# Notes\n\nApples are red and sweet.\n")
    for name in ("alpha", "beta"):
        make_kb(model="hash", kb=name).ingest([tmp_path])
    make_kb(model="hash", kb="alpha").search("apples")

    alpha = make_kb(model="hash", kb="alpha").stats()
    assert alpha["requests"] == {"ask": 10, "ingest": 1, "search": 1}
    assert alpha["providers"]["primary"]["attempts"] == 10 and alpha["providers"]["primary"]["errors"] == 10
    assert alpha["drift"]["recent"]["n"] == 11  # its own top-1 values only
    beta = make_kb(model="hash", kb="beta").stats()
    assert beta["requests"] == {"ask": 10, "ingest": 1}
    assert beta["providers"].get("primary", {}).get("attempts", 0) == 0
    everything = Library(load_settings(model="hash")).stats()
    assert everything["requests"] == {"ask": 20, "ingest": 2, "search": 1}
    assert sqlite3.connect(kb_home / "metrics.db").execute("PRAGMA user_version").fetchone()[0] == 3


def test_hash_embedder_totals_do_not_parse_chunk_lists_and_old_manifests_are_migrated(tmp_path, make_kb):
    import sqlite3

    (tmp_path / "a.md").write_text(
        "# A\n\n" + "\n\n".join(f"Paragraph {i} about apples and pears." * 8 for i in range(30))
    )
    kb = make_kb(model="hash")
    kb.ingest([tmp_path])
    docs, chunks, _ = kb.access.manifest.totals()
    assert docs == 1 and chunks == len(kb.access.manifest.get(str(tmp_path / "a.md")).chunk_ids) > 3
    kb.close()
    # Make the file look like a schema-1 manifest: no chunk_count column, no version.
    path = kb.settings.kb_dir / "manifest.db"
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE files DROP COLUMN chunk_count")
    db.execute("PRAGMA user_version = 0")
    db.commit()
    db.close()
    again = make_kb(model="hash")
    assert again.access.manifest.totals()[:2] == (docs, chunks)
    assert again.info().chunks == chunks
