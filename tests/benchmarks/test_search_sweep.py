"""The search sweep's recall and ef_search handling, on a real Chroma store (small N)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
from benchmarks.run import _chunk_texts

from benchmarks import search_sweep
from kb.config import load_settings
from tests.conftest import NET_DIR, NET_LOG, ROOT, SAMPLE


def test_exact_top_kept_batch_by_batch_equals_brute_force():
    rng = np.random.default_rng(0)
    probe = search_sweep._unit(rng.standard_normal((7, 16)))
    docs = search_sweep._unit(rng.standard_normal((95, 16)))
    exact = search_sweep._ExactTop(probe)
    for start in range(0, 95, 30):  # uneven last batch, first batch larger than K
        exact.see(start, docs[start : start + 30])
    want = np.argsort(-(probe @ docs.T), axis=1)[:, : search_sweep.K]
    assert [set(r) for r in exact.ids.tolist()] == [set(r) for r in want.tolist()]


def test_exact_top_reports_each_querys_tenth_distance():
    rng = np.random.default_rng(1)
    probe = search_sweep._unit(rng.standard_normal((5, 16)))
    docs = search_sweep._unit(rng.standard_normal((40, 16)))
    exact = search_sweep._ExactTop(probe)
    exact.see(0, docs)
    want = 1 - np.sort(probe @ docs.T, axis=1)[:, -search_sweep.K]
    assert np.allclose(exact.tenth_distance, want)


def test_an_equally_close_duplicate_is_a_hit_by_distance_but_not_by_id():
    want = np.arange(10)  # the exact top 10 are c0..c9; the 10th lies at distance 0.30
    ids = [f"c{i:08d}" for i in range(9)] + ["c00000042"]
    # c42 duplicates c9 (same distance); a result farther than 0.30 + 1e-3 misses both ways
    assert search_sweep.hits(ids, [0.1] * 9 + [0.30], want, 0.30) == (9, 10)
    assert search_sweep.hits(ids, [0.1] * 9 + [0.302], want, 0.30) == (9, 9)


def test_sweep_sets_each_ef_search_and_reports_recall(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "search_sweep.py"),
            "3000",
            str(tmp_path / "s"),
            "60",
            "--ef",
            "10,300",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={
            "PYTHONPATH": f"{NET_DIR}:{ROOT / 'src'}:{ROOT}",
            "PATH": "/usr/bin:/bin",
            "KB_HOME": str(tmp_path / "home"),
            NET_LOG: os.environ[NET_LOG],
        },
    )
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1  # run.py reads the one JSON line
    result = json.loads(lines[0])
    low, high = result["by_ef"]
    assert (low["ef_search"], high["ef_search"]) == (10, 300)  # read back from the collection
    assert result["p50_ms"] == low["p50_ms"] and result["recall_at_10"] == low["recall_at_10"]
    # Near-uniform vectors: ef 10 misses neighbours that ef 300 (a tenth of the store) finds.
    assert low["recall_at_10"] < high["recall_at_10"]
    assert high["recall_at_10"] >= 0.95
    # every id in the exact top 10 is also within its distance
    assert all(r["recall_at_10_dist"] >= r["recall_at_10"] for r in (low, high))
    assert low["first_query_ms"] > 0 and low["index_p50_ms"] > 0


def test_chunk_texts_reads_a_folder_with_kbs_chunker(tmp_path):
    texts = _chunk_texts(load_settings(home=str(tmp_path / "home")), SAMPLE)
    assert texts and all(isinstance(t, str) and t for t in texts)
