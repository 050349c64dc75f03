import pytest

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
    kb.search(["apples", "bananas"])
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
