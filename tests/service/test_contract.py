"""The OpenAPI document is the contract: schemathesis (an independent, property-based API
tester) runs every check it has against a real `kb serve` on loopback and finds nothing — no
server error, no status, content type, header or body the document does not describe, no
schema-valid request refused and no invalid one accepted (tests/service/schemathesis.toml
says where a schema cannot say what kb refuses). The hash embedder stands in for the model.

Without a worker, queued ingests never run, so no webhook or callback is ever sent. kb
resolves the host of every generated callback_url for its SSRF guard: the loopback net
refuses those look-ups before they leave (they are expected below), and kb answers 400.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import SAMPLE, run_kb
from tests.service.processes import Server

TOKEN = "contract-admin-token-0123456789"
CONFIG = Path(__file__).with_name("schemathesis.toml")


def test_schemathesis_finds_nothing_hash_embedder(tmp_path, loopback_net):
    loopback_net.expect("look-up of the name")  # callback hosts, refused by the net, answered 400 by kb
    home, docs = tmp_path / "home", tmp_path / "docs"
    shutil.copytree(SAMPLE, docs)
    env = {"KB_MODEL": "hash", "KB_HOME": str(home)}
    assert run_kb("ingest", docs, env=env).code == 0
    assert run_kb("--kb", "notes", "ingest", docs / "honey_harvest.md", env=env).code == 0  # the docs' example name
    server = Server(home, {**env, "KB_SERVE_ROOTS": str(docs), "KB_SERVE_TOKENS": TOKEN}).wait_ready()
    report = tmp_path / "report.json"
    schemathesis = Path(sys.executable).parent / "schemathesis"
    try:
        run = subprocess.run(
            [str(schemathesis), "--config-file", str(CONFIG), "run", f"{server.url}/openapi.json",
             "--report", "json", "--report-json-path", str(report), "--no-color"],
            cwd=tmp_path, capture_output=True, text=True, timeout=600,
            env={**os.environ, "KB_CONTRACT_TOKEN": TOKEN, "HYPOTHESIS_STORAGE_DIRECTORY": str(tmp_path / "hyp")},
        )  # fmt: skip
    finally:
        server.stop()
    found = json.loads(report.read_text()) if report.exists() else {}
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert found["failures"] == [] and found["errors"] == [], found
    assert found["test_cases"]["generated"] > 500  # every operation was exercised
    assert "Internal Server Error" not in server.output() and "Traceback" not in server.output()
