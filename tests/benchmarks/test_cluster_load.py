"""benchmarks/cluster_load.py end to end in its --quick form: a real cluster (redis-server,
chroma run, two kb serve, kb worker, HAProxy), the hash embedder at the model seam, few
searches. Checks the run's machinery and what must hold whatever the timings: no failed
search in the measurements or once HAProxy has dropped the killed instance, and every
accepted ingest job done."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(
    not (shutil.which("redis-server") or os.access("/usr/bin/redis-server", os.X_OK))
    or not (shutil.which("haproxy") or os.access("/usr/sbin/haproxy", os.X_OK)),
    reason="redis-server or haproxy is not installed (make install-dev installs them)",
)


def test_cluster_load_quick_with_the_hash_embedder_survives_a_killed_instance(tmp_path):
    out = tmp_path / "figures.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "cluster_load.py"), "--quick", "--requests", "40",
         "--clients", "4", "--json", str(out)],
        capture_output=True, text=True, timeout=170, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert run.stdout.startswith("CPU flags: ")
    figures = json.loads(out.read_text())
    assert figures["quick"] is True
    configs = {(r["config"], r["round"]) for r in figures["search"].values()}
    assert len(configs) == 6  # three configurations, two rounds
    assert all(r["requests"] == 40 and r["errors"] == 0 for r in figures["search"].values())
    kill = figures["kill"]
    assert kill["kill_to_down_s"] is not None, kill  # HAProxy marked serve-1 DOWN
    assert kill["requests_after_down"] > 0 and kill["failed_after_down"] == 0, kill
    assert kill["served_by_serve_1_after_kill"] == 0
    assert kill["serve_2_status"] == "UP"
    assert kill["jobs_accepted"] == kill["jobs_posted"] == 6
    assert kill["jobs_final_states"] == {"done": 6}, kill["job_errors"]
    assert "| configuration | round | clients |" in run.stdout
